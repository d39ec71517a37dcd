"""Ref-Synth tabletop layouts and their Gaussians.

Table frame (the world frame of every Ref-Synth scene; all relations are defined in it, so the
referring expressions do not depend on the viewpoint):

- origin at the centre of the table top, **z up**, the table top is the plane z = 0;
- **x to the right** and **y away from** the default "front" viewer, who stands at -y and looks
  along +y;
- "left of" means smaller x, "right of" larger x, "in front of" smaller y (nearer the front
  viewer), "behind" larger y (see ``relations.py`` for the exact predicates).

A scene is K objects (ids 1..K) built from shape primitives (``shapes.py``) with a named colour and
one of two sizes, standing on the table or stacked on a box, plus the table and a floor (id 0,
"background"). Same-class objects (distractors) are always present: a group of three of one shape,
two of which share colour and size so that only a relation separates them, and a pair of another
shape that differs in colour or size.

The cluttered layout of the ``hard`` presets (:class:`ClutterSpec`, ``LayoutConfig.clutter``)
adds what real scenes have: a long wall shelf along the back edge (many times longer than the
small objects) with small objects standing on it, boxes carrying small objects, two identical
objects side by side, and many objects of very different sizes. A long footprint ("elongated",
see :attr:`SceneObject.elongated`) is handled by its outline instead of its bounding disc, both
when placing objects and in ``relations.py``.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.datasets.ref_synth.shapes import (box_faces, cylinder_side, place_samples,
                                                           sample_shape, shape_extent, ShapeExtent,
                                                           SHAPES, SurfaceSamples)

# Footprint aspect ratio (long / short half extent) from which an object counts as elongated.
ELONGATION = 2.5
# Size classes by the longest dimension (footprint length, width or height, metres).
SIZE_CLASSES = ((0.10, 'small'), (0.25, 'medium'), (math.inf, 'large'))

# Named palette (linear-ish sRGB in [0, 1]); none of them is close to the table's wood colour.
PALETTE = {
    'red': (0.86, 0.12, 0.10),
    'green': (0.16, 0.66, 0.22),
    'blue': (0.12, 0.30, 0.88),
    'yellow': (0.96, 0.86, 0.12),
    'orange': (0.98, 0.50, 0.06),
    'purple': (0.52, 0.20, 0.72),
    'pink': (0.96, 0.52, 0.72),
    'white': (0.94, 0.94, 0.94),
    'black': (0.10, 0.10, 0.11),
    'cyan': (0.10, 0.76, 0.82),
}
SIZE_SCALES = {'small': 0.7, 'large': 1.0}
TABLE_RGB = (0.74, 0.58, 0.40)
LEG_RGB = (0.45, 0.33, 0.22)
FLOOR_RGB = (0.36, 0.38, 0.44)
STACKABLE = ('mug', 'ball', 'cone', 'bottle', 'bowl')
# Small objects that the cluttered layout stands on the shelf or on a box.
CLUTTER_STACKABLE = ('mug', 'ball', 'can', 'cone', 'bottle', 'bowl')
BACKGROUND_ID = 0


@dataclass
class TableSpec:
    """The table and the floor around it (metres, table frame)."""

    half_x: float = 0.5        # table top half width (x)
    half_y: float = 0.35       # table top half depth (y)
    thickness: float = 0.04    # table top slab thickness
    leg_height: float = 0.70   # from the floor to the bottom of the slab
    leg_radius: float = 0.025
    floor_half: float = 1.2    # the floor is a square of side 2 * floor_half
    edge_margin: float = 0.04  # objects keep this distance from the table edge


@dataclass
class SceneObject:
    """One object of a Ref-Synth scene, in the table frame."""

    id: int                  # 1..K (0 is the table/background)
    shape: str               # one of shapes.SHAPES
    colour: str              # a key of PALETTE
    size: str                # 'small' or 'large'
    x: float                 # footprint centre
    y: float
    base_z: float            # height of the object's base (0 on the table, box top when stacked)
    yaw: float               # rotation about +z (radians)
    extent: ShapeExtent
    support: int = BACKGROUND_ID  # id of the object it stands on (0 = the table)
    category: str = ''       # unique readable id used as the Ref-LERF category, e.g. 'red-mug-2'

    @property
    def radius(self) -> float:
        """Radius of a disc that contains the footprint."""
        return self.extent.radius

    @property
    def top_z(self) -> float:
        return self.base_z + self.extent.height

    @property
    def center(self) -> np.ndarray:
        """Centre of the bounding box [3]."""
        return np.array([self.x, self.y, self.base_z + 0.5 * self.extent.height])

    @property
    def elongated(self) -> bool:
        """Long footprint (the shelf): placement and relations use its outline, not a disc."""
        e = self.extent
        return (not e.round_footprint
                and max(e.half_x, e.half_y) >= ELONGATION * min(e.half_x, e.half_y))

    def footprint_bounds(self) -> Tuple[float, float, float, float]:
        """Axis-aligned bounds (x0, x1, y0, y1) of the footprint rectangle after the yaw.

        Exact for yaws that are multiples of 90 degrees (boxes and the shelf); a disc's square
        for a round footprint.
        """
        e = self.extent
        if e.round_footprint:
            hx = hy = e.half_x
        else:
            c, s = abs(math.cos(self.yaw)), abs(math.sin(self.yaw))
            hx, hy = c * e.half_x + s * e.half_y, s * e.half_x + c * e.half_y
        return self.x - hx, self.x + hx, self.y - hy, self.y + hy

    def outline_distance(self, x: float, y: float) -> float:
        """Horizontal distance from the point (x, y) to the footprint (0 inside it).

        The footprint is the bounds rectangle for an elongated object, else the bounding disc.
        """
        if not self.elongated:
            return max(0.0, math.hypot(x - self.x, y - self.y) - self.radius)
        x0, x1, y0, y1 = self.footprint_bounds()
        return math.hypot(max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1))

    def to_dict(self) -> dict:
        return {
            'id': self.id, 'category': self.category, 'shape': self.shape, 'colour': self.colour,
            'size': self.size, 'x': round(self.x, 6), 'y': round(self.y, 6),
            'base_z': round(self.base_z, 6), 'yaw': round(self.yaw, 6),
            'height': round(self.extent.height, 6), 'radius': round(self.radius, 6),
            'support': self.support,
        }


def size_class(obj: SceneObject) -> str:
    """'small' / 'medium' / 'large' from the longest dimension (see :data:`SIZE_CLASSES`)."""
    e = obj.extent
    longest = max(2 * e.half_x, 2 * e.half_y, e.height)
    return next(name for limit, name in SIZE_CLASSES if longest < limit)


def identical(a: SceneObject, b: SceneObject) -> bool:
    """Tell whether a and b share shape, colour and size (only a relation separates them)."""
    return a.id != b.id and (a.shape, a.colour, a.size) == (b.shape, b.colour, b.size)


def object_facts(obj: SceneObject, objects: Sequence[SceneObject]) -> dict:
    """Manifest facts of the cluttered layout: size class, footprint, support, twins."""
    by_id = {o.id: o for o in objects}
    twins = [o.category for o in objects if identical(obj, o)]
    x0, x1, y0, y1 = obj.footprint_bounds()
    return {'size_class': size_class(obj), 'elongated': obj.elongated,
            'footprint_size': [round(x1 - x0, 6), round(y1 - y0, 6)],
            'on_top_of': by_id[obj.support].category if obj.support else None,
            'has_twin': bool(twins), 'identical_to': twins}


@dataclass
class ClutterSpec:
    """The cluttered layout of the ``hard`` presets (``LayoutConfig.clutter``).

    A long wall shelf along the back edge of the table carrying ``on_shelf`` small objects,
    two identical objects (same shape, colour and size) side by side on the table plus one more
    of their shape that differs in colour or size, small objects of ``small_on_table`` shapes on
    the table, ``on_box`` large boxes each carrying a small object, and other objects up to
    ``num_objects`` (shapes spread evenly). Apart from the twins no two objects share shape,
    colour and size.
    """

    on_shelf: int = 2
    on_box: int = 1
    twin_shapes: Tuple[str, ...] = ('can', 'mug', 'bottle', 'ball')
    twin_gap: Tuple[float, float] = (0.03, 0.06)   # free space between the twins along x (m)
    small_on_table: Tuple[str, ...] = ('ball', 'mug')  # small (fruit-sized) objects on the table
    filler_shapes: Tuple[str, ...] = SHAPES + ('can',)

    @property
    def min_objects(self) -> int:
        """Shelf, twins and their distractor, small ones, loaded boxes, objects on the shelf."""
        return 4 + len(self.small_on_table) + self.on_shelf + 2 * self.on_box


@dataclass
class LayoutConfig:
    """How objects are chosen and placed."""

    num_objects: int = 7
    stack_probability: float = 0.6  # chance that one object stands on a box
    min_gap: float = 0.03           # free space between the bounding discs of two objects
    max_tries: int = 400            # placement attempts per object before restarting the layout
    table: TableSpec = field(default_factory=TableSpec)
    clutter: Optional[ClutterSpec] = None  # the cluttered layout (hard presets) instead


def _group_sizes(k: int) -> List[int]:
    """Sizes of the same-shape groups: a triple and a pair (distractors), then singles."""
    sizes = [3, 2] if k >= 6 else ([2] if k >= 2 else [])
    sizes = sizes[:]
    while sum(sizes) < k and len(sizes) < len(SHAPES):
        sizes.append(1)
    i = 0
    while sum(sizes) < k:  # more objects than shapes: grow the groups round-robin
        sizes[i % len(sizes)] += 1
        i += 1
    return sizes


def _choose_attributes(rng: np.random.Generator, k: int,
                       want_stack: bool) -> List[Tuple[str, str, str]]:
    """Pick (shape, colour, size) per object with the distractor structure of the docstring."""
    sizes = _group_sizes(k)
    shapes = list(rng.permutation(SHAPES))
    if want_stack and 'box' not in shapes[:len(sizes)]:
        # Put a box among the chosen shapes (as a single) so something can stand on it.
        shapes.remove('box')
        shapes.insert(max(len(sizes) - 1, 0), 'box')
    colours = list(PALETTE)
    out = []
    for group, shape in zip(sizes, shapes):
        if group == 1:
            out.append((shape, str(rng.choice(colours)), str(rng.choice(list(SIZE_SCALES)))))
            continue
        picked = [str(c) for c in rng.choice(colours, size=group, replace=False)]
        size = str(rng.choice(list(SIZE_SCALES)))
        members = [(shape, picked[0], size)]
        if group >= 3:
            # Two identical twins: only a spatial relation or an ordinal tells them apart.
            members.append((shape, picked[0], size))
        elif rng.uniform() < 0.5:
            # Same colour, other size: only the size attribute separates them.
            members.append((shape, picked[0], 'small' if size == 'large' else 'large'))
        while len(members) < group:
            members.append((shape, picked[len(members)], str(rng.choice(list(SIZE_SCALES)))))
        out.extend(members)
    return out


def _categories(objects: List[SceneObject]) -> None:
    """Readable unique ids without underscores (Ref-LERF keys masks up to the first '_')."""
    seen = {}
    for obj in objects:
        base = f'{obj.colour}-{obj.shape}' if obj.size == 'large' else \
            f'small-{obj.colour}-{obj.shape}'
        seen[base] = seen.get(base, 0) + 1
        obj.category = base if seen[base] == 1 else f'{base}-{seen[base]}'


def sample_layout(rng: np.random.Generator, config: LayoutConfig) -> List[SceneObject]:
    """Choose and place ``config.num_objects`` objects on the table (no overlap, maybe a stack).

    Raises:
        RuntimeError: when no layout fits after 50 restarts (table too small for K objects).
    """
    if config.clutter is not None:
        return sample_clutter_layout(rng, config)
    table = config.table
    for _ in range(50):
        want_stack = rng.uniform() < config.stack_probability
        attrs = _choose_attributes(rng, config.num_objects, want_stack)
        objects = [SceneObject(i + 1, s, c, z, 0.0, 0.0, 0.0,
                               float(rng.uniform(0, 2 * math.pi)), shape_extent(s, SIZE_SCALES[z]))
                   for i, (s, c, z) in enumerate(attrs)]
        stacked = None
        if want_stack:
            boxes = [o for o in objects if o.shape == 'box']
            tops = [o for o in objects if o.shape in STACKABLE]
            if boxes and tops:
                base = boxes[0]
                base.size, base.extent = 'large', shape_extent('box', SIZE_SCALES['large'])
                base.yaw = float(rng.choice([0.0, 0.5 * math.pi]))
                stacked = tops[int(rng.integers(len(tops)))]
                stacked.size = 'small'
                stacked.extent = shape_extent(stacked.shape, SIZE_SCALES['small'])
                stacked.support = base.id
        if _place(rng, objects, table, config):
            _categories(objects)
            return objects
    raise RuntimeError(f'could not place {config.num_objects} objects on a '
                       f'{2 * table.half_x} x {2 * table.half_y} m table')


def _place(rng: np.random.Generator, objects: List[SceneObject], table: TableSpec,
           config: LayoutConfig) -> bool:
    placed: List[SceneObject] = []
    for obj in sorted(objects, key=lambda o: -o.radius):
        if obj.support:
            continue
        lim_x = table.half_x - table.edge_margin - obj.radius
        lim_y = table.half_y - table.edge_margin - obj.radius
        for _ in range(config.max_tries):
            x, y = rng.uniform(-lim_x, lim_x), rng.uniform(-lim_y, lim_y)
            if all(math.hypot(x - o.x, y - o.y) >= o.radius + obj.radius + config.min_gap
                   for o in placed):
                obj.x, obj.y = float(x), float(y)
                placed.append(obj)
                break
        else:
            return False
    by_id = {o.id: o for o in objects}
    for obj in objects:
        if obj.support:
            base = by_id[obj.support]
            obj.x, obj.y, obj.base_z = base.x, base.y, base.top_z
    return True


# ------------------------------------------------------------------------ cluttered layout
_ROLES = ('shelf', 'twin', 'box', 'box_top', 'shelf_top', 'free')


def _clutter_attributes(rng: np.random.Generator, k: int,
                        spec: ClutterSpec) -> List[Tuple[str, str, str, str]]:
    """Pick (shape, colour, size, role) per object; only the twins share all three attributes."""
    if k < spec.min_objects:
        raise ValueError(f'the cluttered layout needs at least {spec.min_objects} objects, '
                         f'got {k}')
    colours, sizes = list(PALETTE), list(SIZE_SCALES)
    used = set()
    out: List[Tuple[str, str, str, str]] = []

    def pick(role: str, shapes: Sequence[str], size: Optional[str] = None,
             count: int = 1) -> Tuple[str, str, str]:
        for _ in range(200):
            attrs = (str(rng.choice(list(shapes))), str(rng.choice(colours)),
                     size or str(rng.choice(sizes)))
            if attrs not in used:
                break
        else:
            raise RuntimeError(f'no unused attributes left for a {role}')
        used.add(attrs)
        out.extend([attrs + (role,)] * count)
        return attrs

    pick('shelf', ('shelf',), 'large')
    twin_shape = pick('twin', spec.twin_shapes, count=2)[0]
    pick('free', (twin_shape,))  # the twins' noun alone is ambiguous
    for _ in range(spec.on_box):
        pick('box', ('box',), 'large')
        pick('box_top', CLUTTER_STACKABLE, 'small')
    for shape in spec.small_on_table:
        pick('free', (shape,), 'small')
    for _ in range(spec.on_shelf):
        pick('shelf_top', CLUTTER_STACKABLE, 'small')
    while len(out) < k:  # fillers: the least used shapes first
        uses = {s: sum(a[0] == s for a in out) for s in spec.filler_shapes}
        pick('free', [s for s in spec.filler_shapes if uses[s] == min(uses.values())])
    return out


def sample_clutter_layout(rng: np.random.Generator, config: LayoutConfig) -> List[SceneObject]:
    """Choose and place the objects of the cluttered layout (:class:`ClutterSpec`).

    Raises:
        ValueError: fewer objects than the layout's fixed parts need.
        RuntimeError: when no layout fits after 50 restarts.
    """
    spec = config.clutter
    for _ in range(50):
        attrs = _clutter_attributes(rng, config.num_objects, spec)
        objects = [SceneObject(i + 1, s, c, z, 0.0, 0.0, 0.0,
                               float(rng.uniform(0, 2 * math.pi)), shape_extent(s, SIZE_SCALES[z]))
                   for i, (s, c, z, _) in enumerate(attrs)]
        roles = {o.id: role for o, (_, _, _, role) in zip(objects, attrs)}
        if _place_clutter(rng, objects, roles, config):
            _categories(objects)
            return objects
    raise RuntimeError(f'could not place the cluttered layout of {config.num_objects} objects on '
                       f'a {2 * config.table.half_x} x {2 * config.table.half_y} m table')


def _place_clutter(rng: np.random.Generator, objects: List[SceneObject], roles: dict,
                   config: LayoutConfig) -> bool:
    table, spec = config.table, config.clutter
    by_role = {r: [o for o in objects if roles[o.id] == r] for r in _ROLES}
    lim_x = table.half_x - table.edge_margin
    lim_y = table.half_y - table.edge_margin
    shelf = by_role['shelf'][0]
    shelf.yaw = 0.0  # along the back edge, open towards the front viewer
    slack = max(0.0, lim_x - shelf.extent.half_x)
    shelf.x = float(rng.uniform(-0.5 * slack, 0.5 * slack))
    shelf.y = lim_y - shelf.extent.half_y
    placed = [shelf]

    def free(x: float, y: float, r: float) -> bool:
        return (abs(x) + r <= lim_x and abs(y) + r <= lim_y
                and all(o.outline_distance(x, y) - r >= config.min_gap for o in placed))

    def random_spot(r: float) -> Tuple[float, float]:
        return float(rng.uniform(-lim_x + r, lim_x - r)), float(rng.uniform(-lim_y + r, lim_y - r))

    a, b = by_role['twin']
    for _ in range(config.max_tries):  # the twins stand side by side along x
        (x, y), side = random_spot(a.radius), float(rng.choice([-1.0, 1.0]))
        x2 = x + side * (a.radius + b.radius + float(rng.uniform(*spec.twin_gap)))
        y2 = y + float(rng.uniform(-0.01, 0.01))
        if free(x, y, a.radius) and free(x2, y2, b.radius) and \
                math.hypot(x2 - x, y2 - y) - a.radius - b.radius >= config.min_gap:
            a.x, a.y, b.x, b.y = x, y, float(x2), float(y2)
            placed += [a, b]
            break
    else:
        return False
    for box in by_role['box']:
        box.yaw = float(rng.choice([0.0, 0.5 * math.pi]))
    for obj in sorted(by_role['box'] + by_role['free'], key=lambda o: -o.radius):
        for _ in range(config.max_tries):
            x, y = random_spot(obj.radius)
            if free(x, y, obj.radius):
                obj.x, obj.y = x, y
                placed.append(obj)
                break
        else:
            return False
    for box, top in zip(by_role['box'], by_role['box_top']):
        top.x, top.y, top.base_z, top.support = box.x, box.y, box.top_z, box.id
    on_shelf: List[SceneObject] = []
    for obj in by_role['shelf_top']:
        lo = shelf.x - shelf.extent.half_x + obj.radius + 0.02  # clear of the end panels
        hi = shelf.x + shelf.extent.half_x - obj.radius - 0.02
        for _ in range(config.max_tries):
            x = float(rng.uniform(lo, hi))
            if all(abs(x - o.x) - o.radius - obj.radius >= config.min_gap for o in on_shelf):
                obj.x, obj.y, obj.base_z, obj.support = x, shelf.y, shelf.top_z, shelf.id
                on_shelf.append(obj)
                break
        else:
            return False
    return True


# ------------------------------------------------------------------------------- Gaussians
@dataclass
class GaussianConfig:
    """How surfaces become Gaussians."""

    density: float = 14000.0           # Gaussians per square metre on objects
    table_density_scale: float = 0.6   # table top and edge: density * this
    background_density_scale: float = 0.05  # floor and legs: density * this
    coverage: float = 0.9              # tangent sigma = coverage / sqrt(local density)
    flatness: float = 0.15             # normal sigma = flatness * tangent sigma
    opacity: float = 0.95
    colour_jitter: float = 0.025       # per-Gaussian colour noise (a little texture)
    light_dir: Tuple[float, float, float] = (0.35, -0.55, 0.76)  # baked Lambert light


@dataclass
class SynthGaussians:
    """Activated Gaussian parameters of a Ref-Synth scene (numpy, float32) and object ids."""

    means: np.ndarray       # [N, 3]
    quats: np.ndarray       # [N, 4] wxyz, unit
    scales: np.ndarray      # [N, 3] activated
    opacities: np.ndarray   # [N]
    colors: np.ndarray      # [N, 3] RGB in [0, 1]
    object_ids: np.ndarray  # [N] int32, 0 = table/background, 1..K objects

    def __len__(self) -> int:
        return len(self.means)

    def to_scene(self):
        """Build the core ``GaussianScene`` (SH degree 0, colours in the DC term)."""
        import torch

        from refersplat_ros.core.scene.gaussians import GaussianScene
        return GaussianScene.from_colors(
            torch.from_numpy(self.means), torch.from_numpy(self.colors),
            torch.from_numpy(self.scales), torch.from_numpy(self.opacities),
            quats=torch.from_numpy(self.quats))


def quats_from_normals(normals: np.ndarray) -> np.ndarray:
    """Return unit quaternions (wxyz) rotating +z onto each normal (a surfel's flat axis).

    Args:
        normals: [n, 3] unit vectors.

    Returns:
        [n, 4] quaternions.
    """
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    # Half-way construction: q = (1 + z.n, z x n) normalised; z x n = (-n_y, n_x, 0).
    q = np.stack([1.0 + n[:, 2], -n[:, 1], n[:, 0], np.zeros(len(n))], 1)
    flip = q[:, 0] < 1e-6  # n = -z: rotate by pi about x
    q[flip] = np.array([0.0, 1.0, 0.0, 0.0])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _surfels(rng: np.random.Generator, samples: SurfaceSamples, rgb, density: float,
             obj_id: int, config: GaussianConfig) -> dict:
    n = len(samples)
    sigma = config.coverage / math.sqrt(density)
    light = np.asarray(config.light_dir) / np.linalg.norm(config.light_dir)
    shade = 0.62 + 0.38 * np.clip(samples.normals @ light, 0.0, None)
    colors = np.asarray(rgb)[None, :] * shade[:, None]
    colors = colors + rng.normal(0.0, config.colour_jitter, (n, 3))
    scales = np.tile([sigma, sigma, max(config.flatness * sigma, 5e-4)], (n, 1))
    return {'means': samples.points, 'quats': quats_from_normals(samples.normals),
            'scales': scales, 'opacities': np.full(n, config.opacity),
            'colors': np.clip(colors, 0.0, 1.0), 'object_ids': np.full(n, obj_id)}


def table_samples(rng: np.random.Generator, table: TableSpec, density: float,
                  background_density: float) -> Tuple[SurfaceSamples, SurfaceSamples,
                                                      SurfaceSamples]:
    """Table top (with its edge), legs, and floor samples."""
    top = box_faces(rng, density, (table.half_x, table.half_y, 0.5 * table.thickness),
                    z0=-table.thickness)
    floor_z = -table.thickness - table.leg_height
    legs = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = cylinder_side(rng, background_density, table.leg_radius, floor_z,
                                -table.thickness)
            offset = np.array([sx * (table.half_x - 0.06), sy * (table.half_y - 0.06), 0.0])
            legs.append(place_samples(leg, 0.0, offset))
    n = max(1, int(round((2 * table.floor_half) ** 2 * background_density)))
    pts = np.stack([rng.uniform(-table.floor_half, table.floor_half, n),
                    rng.uniform(-table.floor_half, table.floor_half, n), np.full(n, floor_z)], 1)
    nrm = np.tile([0.0, 0.0, 1.0], (n, 1))
    floor = SurfaceSamples(pts, nrm)
    return top, SurfaceSamples.concat(legs), floor


def build_gaussians(rng: np.random.Generator, objects: List[SceneObject], table: TableSpec,
                    config: Optional[GaussianConfig] = None) -> SynthGaussians:
    """Sample every surface of the scene into flat, coloured Gaussians with object ids.

    Args:
        rng: random generator (positions on the surfaces, colour noise).
        objects: placed objects (ids 1..K).
        table: table and floor geometry (id 0).
        config: density and appearance; defaults to ``GaussianConfig()``.

    Returns:
        Gaussians ordered background first, then objects by id.
    """
    config = config or GaussianConfig()
    table_density = config.density * config.table_density_scale
    bg_density = config.density * config.background_density_scale
    top, legs, floor = table_samples(rng, table, table_density, bg_density)
    parts = [_surfels(rng, top, TABLE_RGB, table_density, BACKGROUND_ID, config),
             _surfels(rng, legs, LEG_RGB, bg_density, BACKGROUND_ID, config),
             _surfels(rng, floor, FLOOR_RGB, bg_density, BACKGROUND_ID, config)]
    for obj in objects:
        local, _ = sample_shape(obj.shape, rng, config.density, SIZE_SCALES[obj.size])
        placed = place_samples(local, obj.yaw, np.array([obj.x, obj.y, obj.base_z]))
        parts.append(_surfels(rng, placed, PALETTE[obj.colour], config.density, obj.id, config))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SynthGaussians(
        means=cat['means'].astype(np.float32), quats=cat['quats'].astype(np.float32),
        scales=cat['scales'].astype(np.float32), opacities=cat['opacities'].astype(np.float32),
        colors=cat['colors'].astype(np.float32), object_ids=cat['object_ids'].astype(np.int32))
