"""The object graph: each annotated object with its words, colour, size and place in a view.

Built once per scene from ``SceneObjects`` (Gaussian labels lifted from the training masks, the
objects' names and training sentences) and the Gaussians themselves:

- words: the head nouns, colour and size words, and other content words of the object's name and
  of its training sentences' *target* phrases (``parse.py`` reads them as it reads queries, so
  "the small ball left of the mug" names a ball, not a mug);
- colour: the opacity-weighted median colour of its Gaussians, named by the nearest basic colour
  in CIE Lab (``lexicon.COLOUR_PROTOTYPES``): what a names-only object is known by;
- geometry: a sample of its Gaussian centres; in a view (``ViewFrame``: right, forward-away and up
  axes from a camera and the scene's up) each object is a box of robust extents (2nd-98th
  percentiles) and a centre.

Relations between objects are evaluated on these boxes, scale-free (every tolerance is relative to
the objects' own sizes), from the view's side: docs/LANGUAGE.md#relations.
"""
from dataclasses import dataclass, field
import math
from typing import Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from refersplat_ros.core.datasets.reflerf.layout import category_phrase
from refersplat_ros.core.language import lexicon as lx
from refersplat_ros.core.language.parse import NounPhrase, parse_query
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.objects import SceneObjects

#: Gaussian centres kept per object for its extents in a view.
SAMPLE = 2000
#: Longer side / shorter side of a footprint from which an object counts as elongated.
ELONGATED = 2.5


# ------------------------------------------------------------------------------ colour names
def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:  # [..., 3] in [0, 1] -> [..., 3]
    rgb = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                          [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


_PROTO_NAMES = list(lx.COLOUR_PROTOTYPES)
_PROTO_LAB = _srgb_to_lab(np.array([lx.COLOUR_PROTOTYPES[n] for n in _PROTO_NAMES]))


def colour_names(rgb) -> List[Tuple[str, float]]:
    """Name an sRGB colour: basic colour names, nearest first, with their Lab distances."""
    d = np.linalg.norm(_PROTO_LAB - _srgb_to_lab(rgb)[None], axis=1)
    order = np.argsort(d)
    return [(_PROTO_NAMES[i], float(d[i])) for i in order]


# ------------------------------------------------------------------------------ views
@dataclass(frozen=True)
class ViewFrame:
    """Axes of a viewpoint: right, forward (away from the viewer) and up, unit vectors."""

    right: np.ndarray
    forward: np.ndarray
    up: np.ndarray
    name: str = 'reference'

    @classmethod
    def from_camera(cls, camera: Camera, up, name: str = 'reference') -> 'ViewFrame':
        """Right = the camera's x axis made horizontal; forward = up x right (away)."""
        up = np.asarray(up, np.float64)
        up = up / np.linalg.norm(up)
        rows = camera.world_to_camera[:3, :3].double().numpy()
        right = rows[0] - rows[0].dot(up) * up
        if np.linalg.norm(right) < 1e-6:  # camera looking straight down with x along up?
            right = rows[1] - rows[1].dot(up) * up
        right = right / np.linalg.norm(right)
        return cls(right, np.cross(up, right), up, name)

    @classmethod
    def world(cls, up) -> 'ViewFrame':
        """Scene axes: x right, y away; only when no camera is known (said in the answer)."""
        up = np.asarray(up, np.float64)
        up = up / np.linalg.norm(up)
        x = np.array([1.0, 0.0, 0.0])
        if abs(x.dot(up)) > 0.9:
            x = np.array([0.0, 1.0, 0.0])
        right = x - x.dot(up) * up
        right = right / np.linalg.norm(right)
        return cls(right, np.cross(up, right), up, 'scene axes (no reference view)')

    def coords(self, points: np.ndarray) -> np.ndarray:  # [P, 3] -> [P, 3] (u, v, h)
        return np.asarray(points, np.float64) @ np.stack([self.right, self.forward, self.up]).T


@dataclass
class Placed:
    """An object's box in a view: centre and robust extents along right (u), away (v), up (h)."""

    centre: np.ndarray   # [3] (u, v, h) of the median
    lo: np.ndarray       # [3] 2nd percentiles
    hi: np.ndarray       # [3] 98th percentiles

    @property
    def radius(self) -> float:
        """Half of the larger horizontal extent."""
        return 0.5 * float(max(self.hi[0] - self.lo[0], self.hi[1] - self.lo[1], 1e-9))

    @property
    def height(self) -> float:
        return float(self.hi[2] - self.lo[2])

    @property
    def elongated(self) -> bool:
        du, dv = self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]
        return max(du, dv) > ELONGATED * max(min(du, dv), 1e-9)

    def nearest_horizontal(self, u: float, v: float) -> np.ndarray:
        """Point of the footprint nearest (u, v) (the point itself when inside)."""
        return np.array([min(max(u, self.lo[0]), self.hi[0]), min(max(v, self.lo[1]), self.hi[1])])


@dataclass
class GraphObject:
    """One annotated object of the scene (see the module docstring)."""

    index: int
    name: str                           # the dataset's category, e.g. 'red-can-2'
    members: np.ndarray                 # [P] Gaussian indices
    sample: np.ndarray                  # [S, 3] Gaussian centres (subsample)
    heads: Set[str] = field(default_factory=set)       # head nouns and compounds
    colours: Set[str] = field(default_factory=set)     # colours its sentences give it
    sizes: Set[Tuple[str, int]] = field(default_factory=set)
    measured: List[Tuple[str, float]] = field(default_factory=list)  # colour names, nearest 1st
    sentences: List[str] = field(default_factory=list)
    volume: float = 0.0     # of its box (view-independent up to the box's yaw)
    length: float = 0.0     # longer horizontal side of its box
    height: float = 0.0     # vertical extent
    top: float = 0.0        # highest point along up

    @property
    def label(self) -> str:
        return self.name


class ObjectGraph:
    """Objects of a scene with their words and geometry; their boxes in the reference view."""

    def __init__(self, objects: List[GraphObject], up: np.ndarray,
                 reference_view: Optional[Camera], reference_source: str = 'first frame'):
        self.objects = objects
        self.up = np.asarray(up, np.float64)
        self.reference_view = reference_view
        self.reference = (ViewFrame.from_camera(reference_view, self.up,
                                                f'reference ({reference_source})')
                          if reference_view is not None else ViewFrame.world(self.up))
        self._reference_boxes = self._boxes(self.reference)
        for obj, box in zip(objects, self._reference_boxes):
            size = np.maximum(box.hi - box.lo, 1e-9)
            obj.volume = float(np.prod(size))
            obj.length = float(max(size[0], size[1]))
            obj.height = box.height
            obj.top = float(box.hi[2])

    def __len__(self) -> int:
        return len(self.objects)

    @classmethod
    def build(cls, objects: SceneObjects, means: np.ndarray, colours: np.ndarray,
              opacities: np.ndarray, visibility: Optional[np.ndarray] = None,
              seed: int = 0) -> 'ObjectGraph':
        """Objects with at least one Gaussian; words from names and sentences (see module)."""
        rng = np.random.default_rng(seed)
        weight = np.asarray(opacities, np.float64).reshape(-1)
        if visibility is not None:
            weight = weight * np.sqrt(np.maximum(np.asarray(visibility, np.float64), 0.0))
        built = []
        for k, name in enumerate(objects.names):
            members = objects.members(k)
            if members.size == 0:
                continue
            pick = members if members.size <= SAMPLE else rng.choice(members, SAMPLE,
                                                                     replace=False)
            obj = GraphObject(k, name, members, np.asarray(means[pick], np.float64),
                              sentences=list(objects.sentences[k]))
            for text in [category_phrase(name)] + list(objects.sentences[k]):
                _learn(obj, parse_query(text).target)
            w = weight[members]
            rgb = np.asarray(colours[members], np.float64)
            median = np.array([_weighted_median(rgb[:, c], w) for c in range(3)])
            obj.measured = colour_names(median)
            built.append(obj)
        return cls(built, objects.up, objects.reference_view, objects.reference_source)

    def frame(self, camera: Optional[Camera]) -> ViewFrame:
        """Return the view of a query camera, else the reference view (else the scene axes)."""
        if camera is not None:
            return ViewFrame.from_camera(camera, self.up, 'query camera')
        return self.reference

    def placed(self, frame: ViewFrame) -> List[Placed]:
        """Return each object's box in ``frame`` (those of the reference view are kept)."""
        return self._reference_boxes if frame is self.reference else self._boxes(frame)

    def _boxes(self, frame: ViewFrame) -> List[Placed]:
        boxes = []
        for obj in self.objects:
            uvh = frame.coords(obj.sample)
            boxes.append(Placed(np.median(uvh, axis=0), np.percentile(uvh, 2, axis=0),
                                np.percentile(uvh, 98, axis=0)))
        return boxes


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    if cum[-1] <= 0:
        return float(np.median(values))
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _learn(obj: GraphObject, phrase: NounPhrase) -> None:
    """Record a noun phrase that names ``obj``: its head, compound, colours and sizes."""
    obj.heads.update(w for w in (phrase.head, phrase.compound) if w)
    obj.colours.update(phrase.colours)
    obj.sizes.update(phrase.sizes)


# ------------------------------------------------------------------------------ relations
def stacked(t: Placed, a: Placed) -> bool:
    """Tell whether t stands on a: bottom near a's top, centre over a's footprint."""
    tol = 0.25 * max(t.height, 0.2 * a.height, 1e-9)
    over = (a.lo[0] - 0.2 * a.radius <= t.centre[0] <= a.hi[0] + 0.2 * a.radius
            and a.lo[1] - 0.2 * a.radius <= t.centre[1] <= a.hi[1] + 0.2 * a.radius)
    return over and a.hi[2] - tol <= t.lo[2] <= a.hi[2] + tol


def _axis_offsets(axis: int, sign: float, t: Placed, a: Placed) -> Tuple[float, float]:
    """(along, across) of t from a along ``sign`` x ``axis``; long objects count by outline."""
    other = 1 - axis
    if not (t.elongated or a.elongated):
        along = sign * (t.centre[axis] - a.centre[axis])
        return float(along), float(abs(t.centre[other] - a.centre[other]))
    if a.elongated:  # t lies beyond the anchor's outline (free space between them)
        along = t.lo[axis] - a.hi[axis] if sign > 0 else a.lo[axis] - t.hi[axis]
    else:  # a long target: its centre beyond the anchor's edge
        along = t.centre[axis] - a.hi[axis] if sign > 0 else a.lo[axis] - t.centre[axis]
    gap = max(a.lo[other] - t.hi[other], t.lo[other] - a.hi[other], 0.0)
    return float(along), float(gap)


def _directional(axis: int, sign: float, t: Placed, a: Placed) -> float:
    """Score t beside a towards ``sign`` x ``axis`` (0 = u right, 1 = v away), in a cone.

    Holds when along >= 0.5 x across (about 63 degrees from the axis) and neither stands on the
    other; higher the closer to the axis and the nearer the two.
    """
    if stacked(t, a) or stacked(a, t):
        return 0.0
    along, across = _axis_offsets(axis, sign, t, a)
    if along <= 0.0 or along < 0.5 * across:
        return 0.0
    cone = along / (along + across + 1e-12)
    reach = (t.radius + a.radius)
    nearness = 1.0 / (1.0 + max(along - 2.0 * reach, 0.0) / (4.0 * reach))
    return float(0.5 + 0.5 * cone * nearness)


def _left_of(t: Placed, a: Placed) -> float:
    """Score t left of a: towards -u."""
    return _directional(0, -1.0, t, a)


def _right_of(t: Placed, a: Placed) -> float:
    """Score t right of a: towards +u."""
    return _directional(0, 1.0, t, a)


def _in_front_of(t: Placed, a: Placed) -> float:
    """Score t in front of a: towards -v (nearer the viewer)."""
    return _directional(1, -1.0, t, a)


def _behind(t: Placed, a: Placed) -> float:
    """Score t behind a: towards +v (farther from the viewer)."""
    return _directional(1, 1.0, t, a)


def _on_top_of(t: Placed, a: Placed) -> float:
    """Score t on top of a: 1 when t stands on a, else 0."""
    return 1.0 if stacked(t, a) else 0.0


def _under(t: Placed, a: Placed) -> float:
    """Score t under a: 1 when a stands on t, else 0."""
    return 1.0 if stacked(a, t) else 0.0


def _above(t: Placed, a: Placed) -> float:
    """Score t above a: 1 on it, 0.8 with its centre over a's footprint and bottom near a's top."""
    if stacked(t, a):
        return 1.0
    over = a.lo[0] <= t.centre[0] <= a.hi[0] and a.lo[1] <= t.centre[1] <= a.hi[1]
    return 0.8 if over and t.lo[2] >= a.hi[2] - 0.25 * t.height else 0.0


def _next_to(t: Placed, a: Placed) -> float:
    """Score t next to a (not stacked): :func:`_closeness` of the footprints."""
    if stacked(t, a) or stacked(a, t):
        return 0.0
    return _closeness(t, a)


def _at_edge_of(t: Placed, a: Placed) -> float:
    """Score t at the edge / end of a ("at the end of the shelf"): near it, as next_to."""
    return _next_to(t, a)


#: Pairwise relations: operator -> score of target t to anchor a in [0, 1] (0 = it does not
#: hold). 'between' (two anchors, :func:`between_score`) and 'nearest_to' / 'farthest_from'
#: (ranked by :func:`distance`) are evaluated by the grounding.
PAIRWISE: Dict[str, Callable[[Placed, Placed], float]] = {
    'left_of': _left_of, 'right_of': _right_of, 'in_front_of': _in_front_of,
    'behind': _behind, 'on_top_of': _on_top_of, 'under': _under, 'above': _above,
    'next_to': _next_to, 'at_edge_of': _at_edge_of,
}


def relation_score(op: str, t: Placed, a: Placed) -> float:
    """How well target t stands in relation ``op`` to anchor a, in [0, 1] (0 = it does not).

    Looks ``op`` up in :data:`PAIRWISE`. Directional relations hold inside a cone (along >= 0.5
    x across, about 63 degrees from the axis) and score higher the closer to the axis and the
    nearer the two; on/under/above use heights and footprints; next_to holds when the
    footprints' gap is below 0.75 x the sum of their radii.

    Raises:
        ValueError: if ``op`` is not a pairwise relation.
    """
    score = PAIRWISE.get(op)
    if score is None:
        raise ValueError(f'not a pairwise relation: {op}')
    return score(t, a)


def _closeness(t: Placed, a: Placed) -> float:
    """next_to: 1 touching, falling to 0.5 at a gap of 3 to 4 times the smaller radius."""
    gap_u = max(a.lo[0] - t.hi[0], t.lo[0] - a.hi[0], 0.0)
    gap_v = max(a.lo[1] - t.hi[1], t.lo[1] - a.hi[1], 0.0)
    gap = math.hypot(gap_u, gap_v)
    small, large = sorted((t.radius, a.radius))
    limit = 3.0 * small + 0.5 * min(large, 2.0 * small)
    return float(1.0 - 0.5 * gap / limit) if gap <= limit else 0.0


def distance(t: Placed, a: Placed) -> float:
    """Horizontal distance from t's centre to a's footprint (its outline for long objects)."""
    if a.elongated:
        near = a.nearest_horizontal(t.centre[0], t.centre[1])
        return float(np.hypot(*(t.centre[:2] - near)))
    return float(np.hypot(*(t.centre[:2] - a.centre[:2])))


def between_score(t: Placed, a: Placed, b: Placed) -> float:
    """Score how well t lies between a and b (inside the middle of the segment, near it)."""
    pa = a.nearest_horizontal(*b.centre[:2]) if a.elongated else a.centre[:2]
    pb = b.nearest_horizontal(*a.centre[:2]) if b.elongated else b.centre[:2]
    ab = pb - pa
    length = float(np.linalg.norm(ab))
    if length < 1e-9 or t.elongated:
        return 0.0
    lam = float(np.dot(t.centre[:2] - pa, ab) / length ** 2)
    perp = float(np.linalg.norm(t.centre[:2] - (pa + lam * ab))) / length
    if not 0.05 < lam < 0.95 or perp > 0.5:
        return 0.0
    return float(1.0 - perp) * (1.0 - abs(lam - 0.5))


def order_key(side: str, placed: Placed) -> float:
    """Sort key of an ordinal counted from ``side`` (smaller = nearer that side)."""
    u, v = placed.centre[0], placed.centre[1]
    return {'left': u, 'right': -u, 'front': v, 'back': -v}[side]


def surface_factors(op: str, word: Optional[str], placed: List[Placed]) -> Optional[np.ndarray]:
    """Factors [M] of a relation to a surface that is no annotated object; None if not one.

    Surfaces are where real sentences put objects without annotating them
    (``lexicon.SURFACE_WORDS``). A support surface (table, counter, floor) is the plane under the
    objects, at the lowest object bottom: "on the table" is 1 for the objects standing on it and
    0.3 for those on another object; "at the edge / end of the table", "by the counter": higher
    the farther from the middle of the layout (0.3 to 1); "on the left of the table": by position
    along that side. A shelf that is not annotated carries the raised objects. A wall is the back
    of the scene seen from the view: "on / against / near the wall" favour the farthest objects.
    Other relations to a surface (under the table) return None: the caller drops them.
    """
    if word not in lx.SURFACE_WORDS or not placed:
        return None
    centres = np.array([p.centre for p in placed])
    bottoms = np.array([p.lo[2] for p in placed])
    heights = np.array([max(p.height, 1e-9) for p in placed])
    standing = bottoms <= bottoms.min() + 0.25 * heights
    if word in lx.WALL_WORDS:
        return (0.3 + 0.7 * _spread(centres[:, 1])
                if op in ('on_top_of', 'next_to', 'at_edge_of', 'above', 'behind') else None)
    if word in lx.SHELF_WORDS:
        return np.where(standing, 0.3, 1.0) if op in ('on_top_of', 'above') else None
    if op in ('on_top_of', 'above'):
        return np.where(standing, 1.0, 0.3)
    if op in ('next_to', 'at_edge_of'):
        middle = np.median(centres[:, :2], axis=0)
        return 0.3 + 0.7 * _spread(np.linalg.norm(centres[:, :2] - middle, axis=1))
    along = {'left_of': -centres[:, 0], 'right_of': centres[:, 0],
             'in_front_of': -centres[:, 1], 'behind': centres[:, 1]}.get(op)
    return None if along is None else 0.3 + 0.7 * _spread(along)


def _spread(values: np.ndarray) -> np.ndarray:
    """Map values linearly onto [0, 1] across the objects (all 1 when they are equal)."""
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span > 1e-12 else np.ones_like(values)
