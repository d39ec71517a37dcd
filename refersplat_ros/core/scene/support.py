"""The scene's vertical from its support plane (table, counter, floor), not from the cameras.

Cameras that all look down at a counter from the front tilt the same way, so their mean image-up
leans towards them (11 degrees on an independently captured counter). The robust vertical of a
tabletop scene is the normal of the dominant plane among the Gaussians that belong to no
annotated object (the table top, the counter, the floor), oriented towards the cameras' side.
RANSAC over those Gaussians, each plane's normal kept only within ``max_tilt_deg`` of the cameras'
up (a wall is a large plane too), the best plane refined by least squares over its inliers.
"""
import math
from typing import Optional, Tuple

import numpy as np

#: Fewest background Gaussians from which a plane is looked for.
MIN_POINTS = 200


def support_up(points: np.ndarray, hint_up: np.ndarray, max_tilt_deg: float = 30.0,
               iterations: int = 300, inlier_fraction: float = 0.01,
               seed: int = 0) -> Tuple[np.ndarray, Optional[float], str]:
    """Return ``(up [3], plane offset or None, source)`` of the dominant support plane.

    Args:
        points: Centres of the Gaussians that belong to no annotated object. [P, 3]
        hint_up: The cameras' mean image-up: the orientation of the result, the fallback, and
            the cone (``max_tilt_deg``) a support plane's normal must lie in. [3]
        inlier_fraction: Inlier distance as a fraction of the points' extent (robust scale).

    The source says which: 'support plane (k of P Gaussians, t deg from the cameras)' or
    'cameras' when there are fewer than ``MIN_POINTS`` points or no plane in the cone.
    """
    hint = np.asarray(hint_up, np.float64)
    hint = hint / np.linalg.norm(hint)
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < MIN_POINTS:
        return hint, None, 'cameras'
    rng = np.random.default_rng(seed)
    if len(pts) > 20000:
        pts = pts[rng.choice(len(pts), 20000, replace=False)]
    lo, hi = np.percentile(pts, 2, axis=0), np.percentile(pts, 98, axis=0)
    tol = inlier_fraction * float(np.linalg.norm(hi - lo)) + 1e-9
    cos_max = math.cos(math.radians(max_tilt_deg))
    best_count, best = 0, None
    triples = rng.integers(0, len(pts), (iterations, 3))
    for i, j, k in triples:
        normal = np.cross(pts[j] - pts[i], pts[k] - pts[i])
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal /= norm
        if abs(normal @ hint) < cos_max:
            continue
        count = int((np.abs((pts - pts[i]) @ normal) < tol).sum())
        if count > best_count:
            best_count, best = count, (normal, pts[i])
    if best is None or best_count < MIN_POINTS // 2:
        return hint, None, 'cameras'
    normal, origin = best
    inliers = pts[np.abs((pts - origin) @ normal) < tol]
    centre = inliers.mean(axis=0)
    # least-squares normal: the smallest principal axis of the inliers
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]
    if normal @ hint < 0:
        normal = -normal
    if normal @ hint < cos_max:
        return hint, None, 'cameras'
    tilt = math.degrees(math.acos(min(1.0, float(normal @ hint))))
    return (normal, float(normal @ centre),
            f'support plane ({len(inliers)} of {len(pts)} Gaussians, {tilt:.1f} deg from the '
            'cameras)')
