"""Oriented bounding boxes of point sets, with an axis convention a grasp planner can rely on.

With ``upright=True`` (default) z is the scene's up axis and x, y are the principal directions of
the points' footprint in the horizontal plane, x along the longer one; otherwise the box axes are
the 3D principal axes and z is the one closest to up. x is then signed to point along +x of the
scene frame (+y when x is perpendicular to it), z upward, and y = z × x (right-handed). The box is
computed with numpy (PCA), not open3d's qhull-based box, which fails on fewer than 4 or coplanar
points.
"""
import numpy as np


def _signed_axis(axis: np.ndarray, reference: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Flip ``axis`` to point along ``reference`` (``fallback`` when nearly perpendicular)."""
    dot = float(axis @ reference)
    if abs(dot) < 1e-3:
        dot = float(axis @ fallback)
    return axis if dot >= 0.0 else -axis


def oriented_box(points: np.ndarray, up=(0.0, 0.0, 1.0), upright: bool = True):
    """PCA oriented bounding box with the module's axis convention.

    Args:
        points: [P, 3] positions, P >= 1.
        up: [3] scene up direction.
        upright: z = up (footprint PCA in the horizontal plane) instead of free 3D PCA.

    Returns:
        (center [3], rotation [3, 3] with the box axes x, y, z as columns, extent [3]).
    """
    points = np.asarray(points, np.float64)
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    # A reference "scene x" orthogonal to up, used to sign the box x axis deterministically.
    ref_x = np.array([1.0, 0.0, 0.0]) - up * up[0]
    if np.linalg.norm(ref_x) < 1e-6:
        ref_x = np.array([0.0, 1.0, 0.0]) - up * up[1]
    ref_x /= np.linalg.norm(ref_x)
    ref_y = np.cross(up, ref_x)
    centred = points - points.mean(axis=0)
    if upright:
        z = up
        planar = centred @ np.stack([ref_x, ref_y], axis=1)      # [P, 2] footprint
        cov = planar.T @ planar if len(points) > 1 else np.eye(2)
        _, vecs = np.linalg.eigh(cov)
        major = vecs[:, -1]                                         # largest variance
        x = major[0] * ref_x + major[1] * ref_y
    else:
        cov = centred.T @ centred if len(points) > 1 else np.eye(3)
        _, vecs = np.linalg.eigh(cov)
        z = vecs[:, int(np.argmax(np.abs(vecs.T @ up)))]
        z = z if z @ up >= 0 else -z
        rest = [vecs[:, i] for i in range(3) if not np.allclose(np.abs(vecs[:, i] @ z), 1.0)]
        spans = [np.ptp(centred @ v) for v in rest]
        x = rest[int(np.argmax(spans))] if rest else ref_x
    x = x - z * (x @ z)
    x = _signed_axis(x / np.linalg.norm(x), ref_x, ref_y)
    y = np.cross(z, x)
    rotation = np.stack([x, y, z], axis=1)
    local = points @ rotation                                       # coordinates in box axes
    low, high = local.min(axis=0), local.max(axis=0)
    center = rotation @ ((low + high) / 2.0)
    return center, rotation, high - low
