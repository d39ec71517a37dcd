"""Shape primitives of Ref-Synth: surfaces sampled into oriented points.

Every shape is built in its own local frame, base on the plane z = 0, centred on the z axis, then
placed by :func:`place_samples` (yaw about z, translation). A shape is a list of surface pieces
(cylinder sides, discs, frustums, sphere zones, box faces, a torus handle); each piece is sampled
uniformly by area with ``round(area * density)`` points so that the Gaussian count follows the
density parameter. Normals point out of the visible side; they orient the flat Gaussians and bake
a little Lambert shading into the colours.

:data:`SHAPES` is the catalogue of the classic layouts (``default`` and ``tiny`` presets);
:data:`EXTRA_SHAPES` (a drink can and a long wall shelf) are used by the cluttered layout of the
``hard`` presets only, so the classic layouts sample exactly as before.
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

SHAPES = ('mug', 'box', 'ball', 'bowl', 'plate', 'bottle', 'cone')
EXTRA_SHAPES = ('can', 'shelf')
ALL_SHAPES = SHAPES + EXTRA_SHAPES


@dataclass
class SurfaceSamples:
    """Points sampled on a surface with their unit normals (float64 numpy arrays)."""

    points: np.ndarray   # [n, 3]
    normals: np.ndarray  # [n, 3]

    @staticmethod
    def concat(parts: List['SurfaceSamples']) -> 'SurfaceSamples':
        if not parts:
            return SurfaceSamples(np.zeros((0, 3)), np.zeros((0, 3)))
        return SurfaceSamples(np.concatenate([p.points for p in parts]),
                              np.concatenate([p.normals for p in parts]))

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class ShapeExtent:
    """Size of a placed shape in its local frame: footprint half extents and height (metres)."""

    half_x: float   # footprint half width along local x (before yaw)
    half_y: float   # footprint half depth along local y
    height: float   # top of the shape above its base
    round_footprint: bool  # True: the footprint is a disc of radius half_x

    @property
    def radius(self) -> float:
        """Radius of a disc that contains the footprint."""
        return math.hypot(self.half_x, self.half_y) if not self.round_footprint else self.half_x


def _count(area: float, density: float) -> int:
    return max(1, int(round(area * density)))


def cylinder_side(rng: np.random.Generator, density: float, radius: float, z0: float, z1: float,
                  outward: bool = True) -> SurfaceSamples:
    """Lateral surface of a z-axis cylinder; ``outward=False`` for an inner wall."""
    n = _count(2 * math.pi * radius * (z1 - z0), density)
    theta = rng.uniform(0, 2 * math.pi, n)
    z = rng.uniform(z0, z1, n)
    dirs = np.stack([np.cos(theta), np.sin(theta), np.zeros(n)], 1)
    sign = 1.0 if outward else -1.0
    return SurfaceSamples(np.concatenate([radius * dirs[:, :2], z[:, None]], 1), sign * dirs)


def annulus(rng: np.random.Generator, density: float, r_in: float, r_out: float, z: float,
            up: bool = True) -> SurfaceSamples:
    """Flat ring (disc when ``r_in = 0``) at height z, normal +z (or -z)."""
    n = _count(math.pi * (r_out ** 2 - r_in ** 2), density)
    r = np.sqrt(rng.uniform(r_in ** 2, r_out ** 2, n))
    theta = rng.uniform(0, 2 * math.pi, n)
    pts = np.stack([r * np.cos(theta), r * np.sin(theta), np.full(n, z)], 1)
    nrm = np.zeros((n, 3))
    nrm[:, 2] = 1.0 if up else -1.0
    return SurfaceSamples(pts, nrm)


def frustum_side(rng: np.random.Generator, density: float, r0: float, r1: float, z0: float,
                 z1: float) -> SurfaceSamples:
    """Lateral surface of a cone frustum from radius r0 at z0 to r1 at z1 (r1 may be 0)."""
    slant = math.hypot(r1 - r0, z1 - z0)
    n = _count(math.pi * (r0 + r1) * slant, density)
    u = rng.uniform(0, 1, n)
    if abs(r1 - r0) < 1e-9:
        t = u
    else:
        # Area element grows linearly with the radius: invert the CDF of r^2.
        r = np.sqrt(r0 ** 2 + u * (r1 ** 2 - r0 ** 2))
        t = (r - r0) / (r1 - r0)
    radius = r0 + (r1 - r0) * t
    z = z0 + (z1 - z0) * t
    theta = rng.uniform(0, 2 * math.pi, n)
    c, s = np.cos(theta), np.sin(theta)
    pts = np.stack([radius * c, radius * s, z], 1)
    # Outward normal of the slanted wall: (dz, -dr) rotated around z.
    nz = (r0 - r1) / slant
    nr = (z1 - z0) / slant
    nrm = np.stack([nr * c, nr * s, np.full(n, nz)], 1)
    return SurfaceSamples(pts, nrm)


def sphere_zone(rng: np.random.Generator, density: float, radius: float, center_z: float,
                z_min: float, z_max: float, outward: bool = True) -> SurfaceSamples:
    """Part of a sphere (centre on the z axis) between two heights; uniform since dA ~ dz."""
    z_min = max(z_min, center_z - radius)
    z_max = min(z_max, center_z + radius)
    n = _count(2 * math.pi * radius * (z_max - z_min), density)
    z = rng.uniform(z_min, z_max, n)
    theta = rng.uniform(0, 2 * math.pi, n)
    rho = np.sqrt(np.clip(radius ** 2 - (z - center_z) ** 2, 0, None))
    pts = np.stack([rho * np.cos(theta), rho * np.sin(theta), z], 1)
    nrm = (pts - np.array([0.0, 0.0, center_z])) / radius
    return SurfaceSamples(pts, nrm if outward else -nrm)


def box_faces(rng: np.random.Generator, density: float, half: Tuple[float, float, float],
              z0: float = 0.0, bottom: bool = False) -> SurfaceSamples:
    """Faces of an axis-aligned box centred on the z axis with its base at z0."""
    hx, hy, hz = half
    parts = []
    # (normal axis, sign, the two in-plane axes and their half sizes)
    faces = [(2, 1.0), (0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)] + ([(2, -1.0)] if bottom else [])
    size = np.array([hx, hy, hz])
    center = np.array([0.0, 0.0, z0 + hz])
    for axis, sign in faces:
        others = [a for a in range(3) if a != axis]
        area = 4 * size[others[0]] * size[others[1]]
        n = _count(area, density)
        pts = np.zeros((n, 3))
        for a in others:
            pts[:, a] = rng.uniform(-size[a], size[a], n)
        pts[:, axis] = sign * size[axis]
        nrm = np.zeros((n, 3))
        nrm[:, axis] = sign
        parts.append(SurfaceSamples(pts + center, nrm))
    return SurfaceSamples.concat(parts)


def torus_arc(rng: np.random.Generator, density: float, center_x: float, center_z: float,
              major: float, minor: float, arc: Tuple[float, float]) -> SurfaceSamples:
    """Torus segment in the xz plane (a mug handle); arc angles measured from +x towards +z."""
    area = (arc[1] - arc[0]) * major * 2 * math.pi * minor
    n = _count(area, density)
    # Rejection sampling: the area element is proportional to (major + minor cos(phi)).
    out_t, out_p = [], []
    while sum(len(t) for t in out_t) < n:
        t = rng.uniform(arc[0], arc[1], 2 * n)
        p = rng.uniform(0, 2 * math.pi, 2 * n)
        keep = rng.uniform(0, major + minor, 2 * n) < major + minor * np.cos(p)
        out_t.append(t[keep])
        out_p.append(p[keep])
    t = np.concatenate(out_t)[:n]
    p = np.concatenate(out_p)[:n]
    ring = np.stack([np.cos(t), np.zeros(n), np.sin(t)], 1)  # direction in the xz plane
    nrm = np.cos(p)[:, None] * ring + np.sin(p)[:, None] * np.array([0.0, 1.0, 0.0])
    pts = np.array([center_x, 0.0, center_z]) + major * ring + minor * nrm
    return SurfaceSamples(pts, nrm)


# ---------------------------------------------------------------- shape catalogue (large size)
def _mug(rng, density, s):
    r, h, wall = 0.045 * s, 0.10 * s, 0.006 * s
    parts = [cylinder_side(rng, density, r, 0.0, h),
             cylinder_side(rng, density, r - wall, wall, h, outward=False),
             annulus(rng, density, 0.0, r - wall, wall),
             annulus(rng, density, r - wall, r, h),
             torus_arc(rng, density, r, 0.5 * h, 0.032 * s, 0.007 * s,
                       (-0.5 * math.pi, 0.5 * math.pi))]
    return SurfaceSamples.concat(parts), ShapeExtent(r + 0.039 * s, r, h, False)


def _box(rng, density, s):
    half = (0.065 * s, 0.055 * s, 0.045 * s)
    return box_faces(rng, density, half), ShapeExtent(half[0], half[1], 2 * half[2], False)


def _ball(rng, density, s):
    r = 0.05 * s
    return sphere_zone(rng, density, r, r, 0.0, 2 * r), ShapeExtent(r, r, 2 * r, True)


def _bowl(rng, density, s):
    big_r, h, wall = 0.085 * s, 0.06 * s, 0.005 * s
    rim = math.sqrt(big_r ** 2 - (big_r - h) ** 2)
    inner_rim = math.sqrt((big_r - wall) ** 2 - (big_r - h) ** 2)
    parts = [sphere_zone(rng, density, big_r, big_r, 0.0, h),
             sphere_zone(rng, density, big_r - wall, big_r, wall, h, outward=False),
             annulus(rng, density, inner_rim, rim, h)]
    return SurfaceSamples.concat(parts), ShapeExtent(rim, rim, h, True)


def _plate(rng, density, s):
    r, h = 0.09 * s, 0.014 * s
    parts = [annulus(rng, density, 0.0, r, h), cylinder_side(rng, density, r, 0.0, h)]
    return SurfaceSamples.concat(parts), ShapeExtent(r, r, h, True)


def _bottle(rng, density, s):
    r, neck = 0.035 * s, 0.012 * s
    body, shoulder, top = 0.14 * s, 0.18 * s, 0.22 * s
    parts = [cylinder_side(rng, density, r, 0.0, body),
             frustum_side(rng, density, r, neck, body, shoulder),
             cylinder_side(rng, density, neck, shoulder, top),
             annulus(rng, density, 0.0, neck, top)]
    return SurfaceSamples.concat(parts), ShapeExtent(r, r, top, True)


def _cone(rng, density, s):
    r, h = 0.055 * s, 0.14 * s
    return frustum_side(rng, density, r, 0.0, 0.0, h), ShapeExtent(r, r, h, True)


def _can(rng, density, s):
    r, h = 0.033 * s, 0.12 * s
    parts = [cylinder_side(rng, density, r, 0.0, h), annulus(rng, density, 0.0, r, h)]
    return SurfaceSamples.concat(parts), ShapeExtent(r, r, h, True)


def _shelf(rng, density, s):
    """Low wall shelf, long along local x: a top board on two end panels and a back panel (+y).

    Open at the front (-y) and underneath; small objects stand on the top board.
    """
    hx, hy, height, board = 0.42 * s, 0.07 * s, 0.16 * s, 0.02 * s
    panel = 0.5 * (height - board)  # half height of the panels below the top board
    parts = [box_faces(rng, density, (hx, hy, 0.5 * board), z0=height - board, bottom=True)]
    for side in (-1.0, 1.0):
        end = box_faces(rng, density, (0.5 * board, hy, panel))
        parts.append(place_samples(end, 0.0, np.array([side * (hx - 0.5 * board), 0.0, 0.0])))
    back = box_faces(rng, density, (hx - board, 0.5 * board, panel))
    parts.append(place_samples(back, 0.0, np.array([0.0, hy - 0.5 * board, 0.0])))
    return SurfaceSamples.concat(parts), ShapeExtent(hx, hy, height, False)


_BUILDERS: Dict[str, Callable] = {
    'mug': _mug, 'box': _box, 'ball': _ball, 'bowl': _bowl, 'plate': _plate, 'bottle': _bottle,
    'cone': _cone, 'can': _can, 'shelf': _shelf,
}


def sample_shape(shape: str, rng: np.random.Generator, density: float,
                 scale: float) -> Tuple[SurfaceSamples, ShapeExtent]:
    """Sample one shape in its local frame.

    Args:
        shape: one of :data:`ALL_SHAPES`.
        rng: random generator (all randomness of the sample).
        density: points per square metre of surface.
        scale: size factor (1.0 = large, see ``SIZE_SCALES`` in the layout module).

    Returns:
        The samples and the shape's extent.
    """
    if shape not in _BUILDERS:
        raise ValueError(f'unknown shape {shape!r}; expected one of {ALL_SHAPES}')
    return _BUILDERS[shape](rng, density, scale)


def shape_extent(shape: str, scale: float) -> ShapeExtent:
    """Extent of a shape without sampling it (cheap: uses a minimal density)."""
    return sample_shape(shape, np.random.default_rng(0), 1.0, scale)[1]


def place_samples(samples: SurfaceSamples, yaw: float, offset: np.ndarray) -> SurfaceSamples:
    """Rotate samples by ``yaw`` about +z then translate them by ``offset`` [3]."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return SurfaceSamples(samples.points @ rot.T + offset, samples.normals @ rot.T)
