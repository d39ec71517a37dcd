"""Surface normals of Gaussians: each one's shortest axis, oriented towards the views that saw it.

A flat Gaussian (a surfel, what 3DGS fits on a surface) has one scale much smaller than the
other two; the rotation column of that scale is the surface normal, up to sign. Grasp planners
taking a cloud (GPD, Contact-GraspNet) want the sign too, pointing out of the surface, i.e.
towards the cameras that saw the Gaussian:

- with the per-Gaussian view direction recorded at training time
  (``ViewWeights.view_directions``, saved as ``scene.view_direction`` in the checkpoint) the
  normal is flipped so that ``n . d >= 0``: the side the training views actually showed
  (occlusion included, the compositing weights being the rendered ones);
- without it (checkpoints from before it was saved, or Gaussians no view showed: d = 0) the
  orientation is approximate: towards the nearest of the given camera centres (``viewpoints``),
  or, with none given, away from the centroid of the given centres (only right for a convex
  cloud). docs/RESULTS.md#normals measures both.

Degenerate rows (a zero or non-finite quaternion, a non-finite scale or mean) get a zero normal
instead of an error, so that one broken Gaussian never stops a query; callers that need unit
normals test ``norm > 0``. Everything is vectorised numpy (torch tensors are accepted and
converted): shortest_axes takes about 0.2 s for a million Gaussians.
"""
import numpy as np

#: Rows per block of the nearest-viewpoint search (bounds its memory to block x cameras).
_BLOCK = 65536


def _numpy(values, what: str, columns: int, dtype=np.float64) -> np.ndarray:
    """Return ``values`` as a [N, columns] array of ``dtype`` (torch tensors converted)."""
    if hasattr(values, 'detach'):  # a torch tensor: no torch import needed here
        values = values.detach().to('cpu').numpy()
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f'{what} must have shape [N, {columns}], got {list(array.shape)}')
    return array


def _unit_quats(quats_wxyz) -> np.ndarray:  # [N, 4] float32, NaN rows for zero quaternions
    q = _numpy(quats_wxyz, 'quats', 4, np.float32)
    with np.errstate(invalid='ignore', divide='ignore'):
        return q / np.sqrt(np.einsum('ij,ij->i', q, q))[:, None]


def _column(q: np.ndarray, k: int) -> np.ndarray:  # [N, 4] unit wxyz -> [N, 3]
    """Return column ``k`` of the rotation matrices of unit quaternions."""
    w, x, y, z = q.T
    if k == 0:
        return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], 1)
    if k == 1:
        return np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], 1)
    return np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1)


def rotation_columns(quats_wxyz) -> np.ndarray:  # [N, 4] -> [N, 3, 3] float32
    """Return the rotation matrices of (w, x, y, z) quaternions, normalised first.

    ``R[:, :, k]`` is the world direction of the Gaussian's local axis k (the axis that
    ``scales[:, k]`` stretches). Zero or non-finite quaternions give NaN matrices.
    """
    q = _unit_quats(quats_wxyz)
    return np.stack([_column(q, k) for k in range(3)], axis=2)


def shortest_axes(quats_wxyz, scales) -> np.ndarray:  # [N, 4], [N, 3] -> [N, 3] float32
    """Return each Gaussian's shortest axis, a unit vector of arbitrary sign (its normal).

    Args:
        quats_wxyz: [N, 4] (w, x, y, z) rotations, unnormalised as 3DGS stores them.
        scales: [N, 3] per-axis scales, activated or as log-scales (the smallest axis is the
            same: ``exp`` is monotonic).

    Returns:
        [N, 3] float32: the rotation column of the smallest scale (the first one on ties, e.g.
        for a round Gaussian, whose normal is then arbitrary). A zero row for a zero or
        non-finite quaternion or non-finite scales.
    """
    q = _unit_quats(quats_wxyz)
    s = _numpy(scales, 'scales', 3, np.float32)
    if len(s) != len(q):
        raise ValueError(f'scales have {len(s)} rows, quats {len(q)}')
    valid = np.isfinite(s).all(axis=1) & np.isfinite(q).all(axis=1)
    axis = np.argmin(s, axis=1)  # NaN rows are invalid anyway
    out = np.zeros((len(q), 3), np.float32)
    for k in range(3):
        rows = np.nonzero(valid & (axis == k))[0]
        if len(rows):
            out[rows] = _column(q[rows], k)
    return out


def surface_variation(scales) -> np.ndarray:  # [N, 3] activated -> [N] float32
    """Return how little a Gaussian is a surface: PCL's ``curvature`` of its own covariance.

    ``λ_min / (λ_0 + λ_1 + λ_2)`` with the variances λ = scale²: 0 for a flat disc (its normal
    is its shortest axis), 1/3 for a round blob (it has no normal; its shortest axis is
    arbitrary). A grasp planner that reads normals can trust them where this is small
    (docs/RESULTS.md#normals measures the error against it). NaN for non-finite scales.

    Args:
        scales: [N, 3] activated per-axis scales (standard deviations).
    """
    s = _numpy(scales, 'scales', 3, np.float64)
    variances = s * s
    total = variances.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        out = np.where(total > 0, variances.min(axis=1) / total, np.nan)
    return out.astype(np.float32)


def _nearest_viewpoint_directions(means: np.ndarray, viewpoints: np.ndarray) -> np.ndarray:
    """Return the vector from each centre to its nearest viewpoint, [N, 3]."""
    out = np.zeros_like(means)
    vp = viewpoints.astype(np.float64)
    vp_sq = (vp * vp).sum(axis=1)
    for start in range(0, len(means), _BLOCK):
        block = means[start:start + _BLOCK]
        # |p - c|^2 = |c|^2 - 2 p.c (+ |p|^2, the same for every camera)
        nearest = np.argmin(vp_sq[None, :] - 2.0 * block @ vp.T, axis=1)
        out[start:start + _BLOCK] = vp[nearest] - block
    return out


def oriented_normals(
    axes,  # [N, 3]
    means,  # [N, 3]
    view_direction=None,  # [N, 3]
    viewpoints=None,  # [C, 3]
) -> np.ndarray:  # [N, 3] float32
    """Return ``axes`` with each sign flipped to point towards the views that saw its Gaussian.

    Args:
        axes: [N, 3] unit axes of arbitrary sign (``shortest_axes``); zero rows stay zero.
        means: [N, 3] Gaussian centres (same frame as ``viewpoints``).
        view_direction: [N, 3] optional per-Gaussian view direction recorded at training time
            (``ViewWeights.view_directions``: compositing weight x unit vector to each training
            camera, summed). Each normal gets ``n . d >= 0``.
        viewpoints: [C, 3] optional camera centres, for the fallback.

    Returns:
        [N, 3] float32 normals; zero rows for zero or non-finite axes or centres. Rows whose
        view direction is zero or non-finite, or all rows when ``view_direction`` is None, take
        the approximate fallback: towards the nearest of ``viewpoints``; with no viewpoints
        either, away from the centroid of ``means`` (right only for a convex cloud). A Gaussian
        whose nearest camera does not see it (occluded, behind it) may come out flipped: prefer
        recorded view directions.
    """
    n = _numpy(axes, 'axes', 3)
    p = _numpy(means, 'means', 3)
    if len(p) != len(n):
        raise ValueError(f'means have {len(p)} rows, axes {len(n)}')
    finite = np.isfinite(p).all(axis=1)
    n = np.where((np.isfinite(n).all(axis=1) & finite)[:, None], n, 0.0)
    reference = np.zeros_like(n)
    if view_direction is not None:
        d = _numpy(view_direction, 'view_direction', 3)
        if len(d) != len(n):
            raise ValueError(f'view_direction has {len(d)} rows, axes {len(n)}')
        reference = np.where(np.isfinite(d).all(axis=1, keepdims=True), d, 0.0)
    fallback = ~(reference != 0.0).any(axis=1)
    rows = np.nonzero(fallback & finite)[0]
    if len(rows):
        vp = None if viewpoints is None else _numpy(viewpoints, 'viewpoints', 3)
        if vp is not None and len(vp):
            vp = vp[np.isfinite(vp).all(axis=1)]
        if vp is not None and len(vp):
            reference[rows] = _nearest_viewpoint_directions(p[rows], vp)
        else:
            reference[rows] = p[rows] - p[finite].mean(axis=0)
    flip = (n * reference).sum(axis=1) < 0.0
    n[flip] = -n[flip]
    return n.astype(np.float32)


def gaussian_normals(quats_wxyz, scales, means, view_direction=None,
                     viewpoints=None) -> np.ndarray:  # [N, 3] float32
    """Return oriented unit normals of Gaussians (``shortest_axes`` then ``oriented_normals``)."""
    return oriented_normals(shortest_axes(quats_wxyz, scales), means, view_direction, viewpoints)
