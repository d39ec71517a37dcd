"""Spatial relations of Ref-Synth, evaluated in the fixed table frame (see ``scene.py``).

Frame: z up, x right, y away from the front viewer. With ``dx = t.x - a.x`` and
``dy = t.y - a.y`` for a target t and an anchor a (footprint centres, metres):

==============  =====================================================================
relation        strict truth (the expression generator only states strict truths)
==============  =====================================================================
left_of         -dx >= margin and |dx| >= |dy|    (t lies in the 90 degree cone to a's left)
right_of        dx >= margin and |dx| >= |dy|
in_front_of     -dy >= margin and |dy| >= |dx|    (front = towards -y, the default viewer)
behind          dy >= margin and |dy| >= |dx|
next_to         footprint gap <= next_gap, same support level, neither stands on the other
on_top_of       t stands on a: t.base_z = a.top_z and t's centre lies over a's footprint
under           a stands on t
between         t projects inside the middle of segment (a, b) and lies near that segment
nearest_to      among the objects that match t's description, t is the closest to a by at
                least ``superlative_margin``
farthest_from   likewise, the farthest
ordinal k/side  among the objects that match the description, t is k-th along the side's
                axis (left: ascending x, right: descending x, front: ascending y, back:
                descending y) with gaps of at least ``ordinal_margin`` to its neighbours
==============  =====================================================================

Uniqueness uses a **lenient** reading for the other objects (wider cones, larger gaps): an
expression is kept only if no other object satisfies it even leniently, so a person looking at a
borderline configuration cannot pick a second object.

Long objects (``SceneObject.elongated``: the wall shelf of the ``hard`` presets) are taken by
their outline, since their centre says little about where they are: when either object of a pair
is elongated, an object is its footprint rectangle (``footprint_bounds``) and the others their
centre point, and

- directional: ``along`` is the free space between the two along the relation's axis (t must lie
  beyond the anchor's far edge), ``across`` the free space along the other axis (0 when they
  overlap in that axis);
- next_to and the superlatives use the distance to the outline instead of the bounding disc and
  the centre;
- on_top_of: t's centre lies over the rectangle;
- between: an elongated anchor counts by its point nearest the other anchor (t lies in the gap
  between the two); an elongated target is never between two objects.

Pairs without an elongated object evaluate exactly as described in the table.
"""
from dataclasses import dataclass
import math
from typing import List, Optional, Sequence, Tuple

from refersplat_ros.core.datasets.ref_synth.scene import SceneObject

DIRECTIONAL = ('left_of', 'right_of', 'in_front_of', 'behind')
BINARY = DIRECTIONAL + ('next_to', 'on_top_of', 'under', 'nearest_to', 'farthest_from')
TERNARY = ('between',)
SIDES = ('left', 'right', 'front', 'back')


@dataclass(frozen=True)
class RelationThresholds:
    """Margins (metres) that keep stated relations clear to a human."""

    margin: float = 0.06            # directional: minimum offset along the relation's axis
    lenient_margin: float = 0.0     # directional, lenient reading
    lenient_cone: float = 0.5       # lenient: |along| >= lenient_cone * |across| (about 63 deg)
    next_gap: float = 0.08          # next_to: footprint gap
    lenient_next_gap: float = 0.15
    between_t: tuple = (0.2, 0.8)   # between: projection parameter range along (a, b)
    between_perp: float = 0.3       # between: distance to the segment / |ab|
    lenient_between_t: tuple = (0.05, 0.95)
    lenient_between_perp: float = 0.5
    superlative_margin: float = 0.05
    ordinal_margin: float = 0.05


@dataclass(frozen=True)
class Description:
    """Attribute description of objects: noun (shape) plus optional colour and size."""

    shape: Optional[str] = None   # None = any object ('object', 'thing')
    colour: Optional[str] = None
    size: Optional[str] = None

    def matches(self, obj: SceneObject) -> bool:
        return ((self.shape is None or obj.shape == self.shape)
                and (self.colour is None or obj.colour == self.colour)
                and (self.size is None or obj.size == self.size))

    def members(self, objects: Sequence[SceneObject]) -> List[SceneObject]:
        return [o for o in objects if self.matches(o)]

    def to_dict(self) -> dict:
        return {'shape': self.shape, 'colour': self.colour, 'size': self.size}


def _stacked_pair(t: SceneObject, a: SceneObject) -> bool:
    return t.support == a.id or a.support == t.id


def _span(o: SceneObject) -> Tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the footprint rectangle of an elongated object, else its centre."""
    return o.footprint_bounds() if o.elongated else (o.x, o.x, o.y, o.y)


def _outline_offsets(rel: str, t: SceneObject, a: SceneObject) -> Tuple[float, float]:
    """(along, across) of a directional relation between spans (see the module docstring)."""
    tx0, tx1, ty0, ty1 = _span(t)
    ax0, ax1, ay0, ay1 = _span(a)
    gap_x, gap_y = max(ax0 - tx1, tx0 - ax1, 0.0), max(ay0 - ty1, ty0 - ay1, 0.0)
    return {'left_of': (ax0 - tx1, gap_y), 'right_of': (tx0 - ax1, gap_y),
            'in_front_of': (ay0 - ty1, gap_x), 'behind': (ty0 - ay1, gap_x)}[rel]


def directional(rel: str, t: SceneObject, a: SceneObject, th: RelationThresholds,
                strict: bool = True) -> bool:
    """Evaluate left_of / right_of / in_front_of / behind of target t w.r.t. anchor a."""
    if t.id == a.id or _stacked_pair(t, a):
        return False
    if t.elongated or a.elongated:
        along, across = _outline_offsets(rel, t, a)
    else:
        dx, dy = t.x - a.x, t.y - a.y
        along, across = {'left_of': (-dx, dy), 'right_of': (dx, dy),
                         'in_front_of': (-dy, dx), 'behind': (dy, dx)}[rel]
    if strict:
        return along >= th.margin and along >= abs(across)
    return along > th.lenient_margin and along >= th.lenient_cone * abs(across)


def footprint_gap(t: SceneObject, a: SceneObject) -> float:
    """Horizontal free space between two footprints (negative = overlap).

    Bounding discs; the outline of an elongated object (distance from the other's centre minus
    its radius; between two elongated ones, the gap between their rectangles).
    """
    if t.elongated and a.elongated:
        return _span_distance(t, a)
    if t.elongated or a.elongated:
        long, other = (t, a) if t.elongated else (a, t)
        return long.outline_distance(other.x, other.y) - other.radius
    return math.hypot(t.x - a.x, t.y - a.y) - t.radius - a.radius


def _span_distance(t: SceneObject, a: SceneObject) -> float:
    tx0, tx1, ty0, ty1 = _span(t)
    ax0, ax1, ay0, ay1 = _span(a)
    return math.hypot(max(ax0 - tx1, tx0 - ax1, 0.0), max(ay0 - ty1, ty0 - ay1, 0.0))


def next_to(t: SceneObject, a: SceneObject, th: RelationThresholds, strict: bool = True) -> bool:
    if t.id == a.id or _stacked_pair(t, a) or abs(t.base_z - a.base_z) > 1e-6:
        return False
    return footprint_gap(t, a) <= (th.next_gap if strict else th.lenient_next_gap)


def on_top_of(t: SceneObject, a: SceneObject) -> bool:
    """Tell whether t stands on a (from the geometry, not only the support id)."""
    if t.id == a.id or abs(t.base_z - a.top_z) >= 1e-6:
        return False
    if a.elongated:
        x0, x1, y0, y1 = a.footprint_bounds()
        return x0 <= t.x <= x1 and y0 <= t.y <= y1
    return math.hypot(t.x - a.x, t.y - a.y) <= min(a.extent.half_x, a.extent.half_y)


def between(t: SceneObject, a: SceneObject, b: SceneObject, th: RelationThresholds,
            strict: bool = True) -> bool:
    if len({t.id, a.id, b.id}) < 3 or _stacked_pair(t, a) or _stacked_pair(t, b) or t.elongated:
        return False
    ax, ay, bx, by = a.x, a.y, b.x, b.y
    if a.elongated or b.elongated:  # an elongated anchor by its point nearest the other anchor
        ax, ay, bx, by = (*_nearest_point(a, b.x, b.y), *_nearest_point(b, a.x, a.y))
    length = math.hypot(bx - ax, by - ay)
    if length < 1e-9:
        return False
    u = ((t.x - ax) * (bx - ax) + (t.y - ay) * (by - ay)) / length ** 2
    perp = abs((t.x - ax) * (by - ay) - (t.y - ay) * (bx - ax)) / length
    lo, hi = th.between_t if strict else th.lenient_between_t
    ratio = th.between_perp if strict else th.lenient_between_perp
    return lo <= u <= hi and perp <= ratio * length


def _nearest_point(o: SceneObject, x: float, y: float) -> Tuple[float, float]:
    """Point of o nearest to (x, y): on an elongated footprint's rectangle, else o's centre."""
    if not o.elongated:
        return o.x, o.y
    x0, x1, y0, y1 = o.footprint_bounds()
    return min(max(x, x0), x1), min(max(y, y0), y1)


def _distance(t: SceneObject, a: SceneObject) -> float:
    if t.elongated or a.elongated:
        return _span_distance(t, a)
    return math.hypot(t.x - a.x, t.y - a.y)


def superlative(rel: str, t: SceneObject, a: SceneObject, candidates: Sequence[SceneObject],
                th: RelationThresholds) -> bool:
    """nearest_to / farthest_from: t wins among ``candidates`` (anchor excluded) by a margin."""
    others = [c for c in candidates if c.id not in (t.id, a.id)]
    if t.id == a.id or not others or _stacked_pair(t, a):
        return False
    d = _distance(t, a)
    if rel == 'nearest_to':
        return all(d + th.superlative_margin <= _distance(c, a) for c in others)
    return all(d - th.superlative_margin >= _distance(c, a) for c in others)


def ordinal_position(t: SceneObject, side: str, candidates: Sequence[SceneObject],
                     th: RelationThresholds) -> Optional[int]:
    """1-based rank of t among ``candidates`` counted from ``side``, or None when ambiguous.

    Ambiguous means that a neighbour in the ranking is closer than ``ordinal_margin`` along the
    axis (a person could not tell which comes first) or that two candidates share a stack.
    """
    key = {'left': lambda o: o.x, 'right': lambda o: -o.x,
           'front': lambda o: o.y, 'back': lambda o: -o.y}[side]
    ranked = sorted(candidates, key=key)
    ids = [o.id for o in ranked]
    if t.id not in ids:
        return None
    i = ids.index(t.id)
    for j in (i - 1, i + 1):
        if 0 <= j < len(ranked) and abs(key(ranked[j]) - key(t)) < th.ordinal_margin:
            return None
    return i + 1


def relation_holds(rel: str, t: SceneObject, anchors: Sequence[SceneObject],
                   candidates: Sequence[SceneObject], th: RelationThresholds,
                   strict: bool = True) -> bool:
    """Evaluate any relation of :data:`BINARY` / :data:`TERNARY` for target t.

    Args:
        rel: relation name.
        t: the target object.
        anchors: one anchor (two for ``between``).
        candidates: the objects matching the target's description (for superlatives).
        th: thresholds.
        strict: strict (stated truth) or lenient (could a person accept it) reading.
    """
    if rel in DIRECTIONAL:
        return directional(rel, t, anchors[0], th, strict)
    if rel == 'next_to':
        return next_to(t, anchors[0], th, strict)
    if rel == 'on_top_of':
        return on_top_of(t, anchors[0])
    if rel == 'under':
        return on_top_of(anchors[0], t)
    if rel in ('nearest_to', 'farthest_from'):
        return superlative(rel, t, anchors[0], candidates, th)
    if rel == 'between':
        return between(t, anchors[0], anchors[1], th, strict)
    raise ValueError(f'unknown relation {rel!r}')
