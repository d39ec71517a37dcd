"""Held-out language probes for Ref-Synth scenes: other words, other sentence structures.

The training and test sentences of a scene (``expressions.py``) come from one small grammar. A
probe is a referring expression phrased the way other people would phrase a request to a robot,
with its ground truth, to benchmark how well a system understands English as people speak it.
Probes are grouped in five kinds (:data:`PROBE_KINDS`):

``paraphrase``
    A structure the grammar has (attribute, relation, ordinal, leftmost, two relations) in other
    words: other nouns ("teacup", "crate", "orb", "saucer", "pylon", "tin", "shelving unit"),
    other colour words ("crimson", "navy", "teal", "violet"), size words ("tiny", "huge"), other
    relation and side phrases ("off to the left of", "on the near side of", "from the rear").
``structure``
    New sentence structures: imperatives and requests ("could you grab the ...?", "hand me
    ..."), relative clauses ("the cup which sits ...", "the box that has the ball on it"),
    fronted phrases ("to the left of the bowl, the red cup"), fillers ("um, I think I want the
    ... please"), anaphora ("see the blue bowl? get me the cup behind it"), telegraphic and
    question forms ("red cup left of blue bowl", "which cup is by the plate?").
``spatial``
    Relations and ordinals in new wording: counting from either side ("the second bottle from
    the back", "the second-to-last can from the left"), extremes in words ("the cup furthest to
    the left", "the last bowl on the right", "the ball closest to me" = frontmost), the middle
    one of three, "between" reworded, size and height superlatives ("the biggest box", "the
    taller of the two bottles"), "the closest cup to X", "the can furthest away from X", two
    relations at once, ordinals among the things on the shelf.
``negative``
    Nothing in the scene fits (``target`` None): an object kind Ref-Synth never has ("the
    laptop", "the purple elephant", "the cup next to the stapler"), an existing kind in a colour
    none of them has ("the green bowl"), an ordinal beyond the count ("the third red can from
    the left" with two red cans), a relation that holds for none ("the mug on the plate").
``negation``
    Negation and uniqueness: "the can that is not red", "the non-red can", "the bowl other than
    the blue one", "the ball that isn't next to the box", "the red thing that isn't a cup", "the
    bottle that's neither pink nor white", "the box with nothing on it", "the only green thing".

Truth. Every probe is first built as a :class:`Meaning` (what is asked of the object: a
:class:`Head` with shape, colour and size, possibly negated; relation conditions
(:class:`Cond`, possibly negated, possibly inverted: "the box with the cup on it"); an ordinal,
the middle one, or a size/height superlative among the matching objects; facts the wording
presupposes, e.g. "the other one" = exactly two of them) and only then worded. The relations
are those of ``relations.py``, in the table frame (x right, y away from the front viewer at -y,
who is the scene's first camera; "closest to me" = frontmost), with its strict and lenient
readings. A probe is kept only when

- positive kinds: its target satisfies the meaning under the **strict** reading and no other
  object satisfies it under the strict or the **lenient** reading;
- ``negative``: no object satisfies it under either reading;
- every anchor it names ("the blue bowl") matches that anchor alone, strictly and leniently.

The lenient reading also widens the words: a colour synonym covers its neighbours ("teal" may be
cyan, green or blue), "dish" may be a plate or a bowl, a negated relation is read the other way
round (strictly "not next to" = not even leniently next to). Negatives use an even wider colour
reading ("the green bowl" is a negative only when no bowl is green, yellow or cyan). Sizes are
the objects' size attribute ("little", "tiny" = small) as in the training grammar; superlatives
("the biggest") compare bounding volume and longest dimension, "tallest" own height and top
height, and need a clear margin (factor :data:`SUPERLATIVE_RATIO`). No probe repeats one of the
scene's training or test sentences (compared without case and punctuation) or another probe.

Everything is a deterministic function of the scene and the seed; only ``numpy`` is needed.
"""
from dataclasses import dataclass, field, replace
import itertools
import re
from typing import (Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple,
                    TYPE_CHECKING)

import numpy as np

from refersplat_ros.core.datasets.ref_synth.expressions import (NOUNS, plural, RELATION_PHRASES,
                                                                SIZE_WORDS)
from refersplat_ros.core.datasets.ref_synth.relations import (between, DIRECTIONAL,
                                                              ordinal_position, relation_holds,
                                                              RelationThresholds)
from refersplat_ros.core.datasets.ref_synth.scene import PALETTE, SceneObject

if TYPE_CHECKING:  # the scene type only; importing ref_synth would load torch
    from refersplat_ros.core.datasets.ref_synth.generator import RefSynthScene

PROBE_KINDS = ('paraphrase', 'structure', 'spatial', 'negative', 'negation')
#: A superlative ("the biggest", "the tallest") must win by this factor on every measure ...
SUPERLATIVE_RATIO = 1.3
#: ... and another object counts as leniently "the biggest" when nothing beats it by this factor.
LENIENT_SUPERLATIVE_RATIO = 1.1
#: Anchor id of an object the probe names but the scene does not have ("next to the laptop").
MISSING = -1

# ------------------------------------------------------------------------------- vocabulary
# shape -> [(word, shapes a listener could take the word for)]; the first word is the grammar's.
NOUN_WORDS: Dict[Optional[str], List[Tuple[str, Optional[Tuple[str, ...]]]]] = {
    'mug': [('mug', ('mug',)), ('cup', ('mug',)), ('coffee cup', ('mug',)),
            ('teacup', ('mug',))],
    'box': [('box', ('box',)), ('carton', ('box',)), ('crate', ('box',)),
            ('package', ('box',))],
    'ball': [('ball', ('ball',)), ('sphere', ('ball',)), ('orb', ('ball',))],
    'bowl': [('bowl', ('bowl',)), ('basin', ('bowl',)), ('soup bowl', ('bowl',)),
             ('cereal bowl', ('bowl',))],
    'plate': [('plate', ('plate',)), ('dish', ('plate', 'bowl')), ('saucer', ('plate',)),
              ('dinner plate', ('plate',))],
    'bottle': [('bottle', ('bottle',)), ('flask', ('bottle',)), ('jug', ('bottle',)),
               ('water bottle', ('bottle',))],
    'cone': [('cone', ('cone',)), ('pylon', ('cone',)), ('traffic cone', ('cone',)),
             ('safety cone', ('cone',))],
    'can': [('can', ('can',)), ('tin', ('can',)), ('tin can', ('can',)),
            ('drink can', ('can',))],
    'shelf': [('shelf', ('shelf',)), ('rack', ('shelf',)), ('shelving unit', ('shelf',)),
              ('bookshelf', ('shelf',))],
    None: [('thing', None), ('object', None), ('item', None)],
}
# colour -> [(synonym, colours a listener could take it for)]
COLOUR_WORDS: Dict[str, List[Tuple[str, Tuple[str, ...]]]] = {
    'red': [('crimson', ('red', 'pink')), ('scarlet', ('red', 'orange')),
            ('cherry-red', ('red', 'pink'))],
    'green': [('lime green', ('green', 'yellow')), ('emerald', ('green', 'cyan')),
              ('grass-green', ('green',))],
    'blue': [('navy', ('blue', 'purple', 'black')), ('royal blue', ('blue', 'purple')),
             ('cobalt', ('blue', 'cyan'))],
    'yellow': [('lemon-yellow', ('yellow',)), ('golden', ('yellow', 'orange')),
               ('mustard', ('yellow', 'orange'))],
    'orange': [('tangerine', ('orange', 'red')), ('amber', ('orange', 'yellow'))],
    'purple': [('violet', ('purple', 'pink', 'blue')), ('lilac', ('purple', 'pink')),
               ('plum', ('purple', 'red'))],
    'pink': [('rose', ('pink', 'red')), ('hot pink', ('pink', 'purple')),
             ('magenta', ('pink', 'purple'))],
    'white': [('snow-white', ('white',)), ('off-white', ('white', 'yellow')),
              ('ivory', ('white', 'yellow'))],
    'black': [('jet-black', ('black',)), ('charcoal', ('black',)), ('ebony', ('black',))],
    'cyan': [('teal', ('cyan', 'green', 'blue')), ('turquoise', ('cyan', 'green', 'blue')),
             ('aqua', ('cyan', 'blue')), ('light blue', ('cyan', 'blue'))],
}
# Neighbouring colours: the wide reading of a colour word in negatives.
NEAR_COLOURS: Dict[str, Tuple[str, ...]] = {
    'red': ('orange', 'pink'), 'orange': ('red', 'yellow'), 'yellow': ('orange', 'green'),
    'green': ('yellow', 'cyan'), 'cyan': ('green', 'blue'), 'blue': ('cyan', 'purple'),
    'purple': ('blue', 'pink'), 'pink': ('red', 'purple'), 'white': (), 'black': (),
    # colour words no Ref-Synth object has, and what they could be taken for
    'grey': ('white', 'black'), 'brown': ('orange', 'red', 'black'), 'silver': ('white',),
    'gold': ('yellow', 'orange'), 'beige': ('white', 'yellow', 'orange'),
}
ABSENT_COLOURS = ('grey', 'brown', 'silver', 'gold', 'beige')
SIZE_CHOICES = {'small': ['small', 'little', 'tiny', 'mini'], 'large': ['large', 'big', 'huge']}
# Kinds of objects Ref-Synth never has.
ALIEN_NOUNS = ('laptop', 'stapler', 'keyboard', 'phone', 'remote control', 'toaster',
               'teddy bear', 'elephant', 'pair of scissors', 'book', 'pencil', 'spoon', 'fork',
               'umbrella', 'shoe', 'wallet', 'houseplant', 'lamp', 'banana',
               'pair of headphones')
ORDINALS = {1: 'first', 2: 'second', 3: 'third', 4: 'fourth', 5: 'fifth', 6: 'sixth'}
ORDINAL_NUMBERS = {1: '1st', 2: '2nd', 3: '3rd', 4: '4th', 5: '5th', 6: '6th'}
COUNT_WORDS = {2: 'two', 3: 'three', 4: 'four', 5: 'five'}
OPPOSITE = {'left': 'right', 'right': 'left', 'front': 'back', 'back': 'front'}
SIDE_WORDS = {'left': ['left', 'left-hand side', 'left end', 'left edge'],
              'right': ['right', 'right-hand side', 'right end', 'right edge'],
              'front': ['front', 'front edge', 'near side', 'near edge'],
              'back': ['back', 'rear', 'far end', 'back edge', 'far side']}
# Extremes (ordinal 1) before the noun and after it.
EXTREME_PRE = {'left': ['far-left', 'leftmost'], 'right': ['far-right', 'rightmost'],
               'front': ['foremost', 'frontmost'], 'back': ['backmost', 'hindmost', 'rearmost']}
EXTREME_POST = {
    'left': ['furthest to the left', 'farthest to the left', 'on the far left',
             'all the way on the left', 'at the left end'],
    'right': ['furthest to the right', 'farthest to the right', 'on the far right',
              'all the way on the right', 'at the right end'],
    'front': ['closest to the front', 'nearest the front edge', 'furthest forward',
              'at the very front', 'closest to me'],
    'back': ['furthest back', 'at the very back', 'closest to the back', 'farthest from me',
             'nearest the back edge'],
}
# Relation phrases: (template, slot tag). {a}, {b}: anchors with article; {a_pos}: possessive.
# Tags: 'p' a plain prepositional phrase (fits everywhere), 'v' a participle ("standing on"),
# 'w' only right after the noun ("with X on one side and Y on the other").
REL_WORDS: Dict[str, List[Tuple[str, str]]] = {
    'left_of': [('to the left of {a}', 'p'), ('left of {a}', 'p'), ('on the left of {a}', 'p'),
                ('off to the left of {a}', 'p'), ('on the left-hand side of {a}', 'p'),
                ('to {a_pos} left', 'p'), ('over to the left of {a}', 'p')],
    'right_of': [('to the right of {a}', 'p'), ('right of {a}', 'p'),
                 ('on the right of {a}', 'p'), ('off to the right of {a}', 'p'),
                 ('on the right-hand side of {a}', 'p'), ('to {a_pos} right', 'p'),
                 ('over to the right of {a}', 'p')],
    'in_front_of': [('in front of {a}', 'p'), ('out in front of {a}', 'p'),
                    ('on the near side of {a}', 'p'), ('on this side of {a}', 'p')],
    'behind': [('behind {a}', 'p'), ('in back of {a}', 'p'), ('back behind {a}', 'p'),
               ('beyond {a}', 'p'), ('on the other side of {a}', 'p')],
    'next_to': [('next to {a}', 'p'), ('beside {a}', 'p'), ('right next to {a}', 'p'),
                ('right beside {a}', 'p'), ('by {a}', 'p'), ('alongside {a}', 'p'),
                ('close beside {a}', 'p')],
    'on_top_of': [('on top of {a}', 'p'), ('sitting on {a}', 'v'), ('on {a}', 'p'),
                  ('up on {a}', 'p'), ('standing on {a}', 'v'), ('perched on {a}', 'v'),
                  ('resting on {a}', 'v'), ('placed on {a}', 'v')],
    'under': [('under {a}', 'p'), ('below {a}', 'p'), ('underneath {a}', 'p'),
              ('holding up {a}', 'v'), ('supporting {a}', 'v'), ('carrying {a}', 'v')],
    'between': [('between {a} and {b}', 'p'), ('in between {a} and {b}', 'p'),
                ('sandwiched between {a} and {b}', 'v'), ('in the gap between {a} and {b}', 'p'),
                ('somewhere between {a} and {b}', 'p'),
                ('with {a} on one side and {b} on the other', 'w')],
}
# Inverse relations said of the anchor: "the box that has the cup on it" = on_top_of(cup, box).
INVERSE_WORDS = {
    'left_of': ['to its left', 'on its left', 'on its left-hand side'],
    'right_of': ['to its right', 'on its right', 'on its right-hand side'],
    'in_front_of': ['in front of it', 'out in front of it'],
    'behind': ['behind it', 'in back of it', 'right behind it'],
    'next_to': ['next to it', 'beside it', 'right beside it'],
    'on_top_of': ['on it', 'on top of it', 'sitting on it'],
}
_SLOTS = {'noun': 'pvw', 'copula': 'pv', 'verb': 'p', 'front': 'p', 'tele': 'p', 'it': 'pv'}
_SEEN_NOUNS = {w for train, _ in NOUNS.values() for w in train}
_SEEN_SIZES = {w for train, _ in SIZE_WORDS.values() for w in train}
_SEEN_RELS = {p if rel == 'between' else p + ' {a}'
              for rel, (train, test) in RELATION_PHRASES.items() for p in train + test}
_SEEN_SIDES = {'left', 'right', 'front', 'back'}
_SEEN_EXTREMES = {'leftmost', 'rightmost', 'frontmost', 'rearmost'}


# ------------------------------------------------------------------------------- meaning
def _fs(values: Optional[Iterable[str]]) -> Optional[FrozenSet[str]]:
    return None if values is None else frozenset(values)


@dataclass(frozen=True)
class Head:
    """What a noun phrase asks of an object, under the strict and the lenient reading.

    ``shapes`` / ``colours`` None = any. The lenient sets are the wider readings of the words
    ("teal" may be cyan, green or blue); the negated attributes hold in both readings.
    """

    shapes: Optional[FrozenSet[str]] = None
    colours: Optional[FrozenSet[str]] = None
    size: Optional[str] = None
    lenient_shapes: Optional[FrozenSet[str]] = None
    lenient_colours: Optional[FrozenSet[str]] = None
    not_shapes: FrozenSet[str] = frozenset()
    not_colours: FrozenSet[str] = frozenset()
    not_size: Optional[str] = None

    @staticmethod
    def of(shape: Optional[str] = None, colour: Optional[str] = None, size: Optional[str] = None,
           lenient_shapes: Optional[Iterable[str]] = None,
           lenient_colours: Optional[Iterable[str]] = None, **negated) -> 'Head':
        """Build a head from one shape, colour and size (lenient sets default to the same)."""
        shapes = None if shape is None else frozenset({shape})
        colours = None if colour is None else frozenset({colour})
        lshapes = None if shapes is None else shapes | _fs(lenient_shapes or ())
        lcolours = None if colours is None else colours | _fs(lenient_colours or ())
        return Head(shapes, colours, size, lshapes, lcolours, **negated)

    def matches(self, obj: SceneObject, strict: bool = True) -> bool:
        """Tell whether ``obj`` fits the noun phrase under the strict or lenient reading."""
        shapes = self.shapes if strict else self.lenient_shapes
        colours = self.colours if strict else self.lenient_colours
        return ((shapes is None or obj.shape in shapes)
                and (colours is None or obj.colour in colours)
                and (self.size is None or obj.size == self.size)
                and obj.shape not in self.not_shapes and obj.colour not in self.not_colours
                and (self.not_size is None or obj.size != self.not_size))

    def members(self, objects: Sequence[SceneObject], strict: bool = True) -> List[SceneObject]:
        return [o for o in objects if self.matches(o, strict)]

    def describe(self) -> str:
        """Return a short text form, e.g. 'small red mug' or 'mug !red'."""
        parts = [self.size or '', '|'.join(sorted(self.colours or ())),
                 '|'.join(sorted(self.shapes)) if self.shapes else 'thing']
        parts += ['!' + s for s in sorted(self.not_shapes)]
        parts += ['!' + c for c in sorted(self.not_colours)]
        parts += ['!' + self.not_size] if self.not_size else []
        return ' '.join(p for p in parts if p)


@dataclass(frozen=True)
class Cond:
    """A relation condition on the candidate object.

    ``anchors``: ids (two for ``between``); () = any object ("has something on it");
    :data:`MISSING` = an object the scene does not have. ``inverse``: the anchor is the
    relation's subject (``relation(anchor, candidate)``). ``negated``: the condition must not
    hold; strictly that means not even leniently, leniently not strictly.
    """

    relation: str
    anchors: Tuple[int, ...]
    negated: bool = False
    inverse: bool = False

    def describe(self) -> str:
        anchors = ','.join('#' + str(i) for i in self.anchors) or 'any'
        text = f'{self.relation}({anchors})' if not self.inverse else \
            f'{self.relation}^-1({anchors})'
        return ('not ' if self.negated else '') + text


@dataclass(frozen=True)
class Meaning:
    """The structure of a probe: what the one meant object satisfies (see the docstring)."""

    head: Head
    conds: Tuple[Cond, ...] = ()
    ordinal: Optional[Tuple[int, str]] = None      # (k, side) among the members
    negated_ordinal: bool = False                   # "the one that isn't the leftmost"
    middle: bool = False                            # the middle one of three (along x)
    extreme: Optional[Tuple[str, str]] = None       # ('size' | 'height', 'max' | 'min')
    scope: Tuple[Cond, ...] = ()                    # members: head and these ("on the shelf")
    counts: Tuple[Tuple[Head, int], ...] = ()       # "of the two cups": exactly 2 cups
    presupposed: Tuple['Meaning', ...] = ()         # "other than the blue one": a blue one exists
    anchors: Tuple[Tuple[int, Head], ...] = ()      # every named anchor and its noun phrase

    @property
    def named(self) -> Set[int]:
        """Ids of the objects the probe names besides its target."""
        clauses = self.conds + self.scope
        return {a for a, _ in self.anchors} | {i for c in clauses for i in c.anchors}

    def describe(self) -> str:
        """Return a one-line text form of the structure (for ``Probe.note``)."""
        parts = [self.head.describe()]
        parts += [c.describe() for c in self.conds]
        if self.scope:
            parts.append('among ' + ' '.join(c.describe() for c in self.scope))
        if self.ordinal:
            parts.append(('not ' if self.negated_ordinal else '') +
                         f'ordinal {self.ordinal[0]} from {self.ordinal[1]}')
        if self.middle:
            parts.append('middle of 3')
        if self.extreme:
            parts.append(f'{self.extreme[1]} {self.extreme[0]}')
        parts += [f'count({h.describe()})={n}' for h, n in self.counts]
        parts += [f'exists({p.describe()})' for p in self.presupposed]
        return '; '.join(parts)


def _cond_holds(c: Cond, obj: SceneObject, members: Sequence[SceneObject],
                by_id: Dict[int, SceneObject], th: RelationThresholds, strict: bool) -> bool:
    if c.negated:
        return not _cond_holds(replace(c, negated=False), obj, members, by_id, th, not strict)
    if not c.anchors:  # any other object
        others = [o for o in by_id.values() if o.id != obj.id]
        if c.inverse:
            return any(relation_holds(c.relation, o, [obj], (), th, strict) for o in others)
        return any(relation_holds(c.relation, obj, [o], (), th, strict) for o in others)
    if obj.id in c.anchors or any(i not in by_id for i in c.anchors):
        return False
    anchors = [by_id[i] for i in c.anchors]
    if c.inverse:
        return relation_holds(c.relation, anchors[0], [obj], (), th, strict)
    return relation_holds(c.relation, obj, anchors, members, th, strict)


def _members(m: Meaning, by_id: Dict[int, SceneObject], th: RelationThresholds,
             strict: bool) -> List[SceneObject]:
    return [o for o in by_id.values() if m.head.matches(o, strict)
            and all(_cond_holds(c, o, (), by_id, th, strict) for c in m.scope)]


def _facts_hold(m: Meaning, objects: Sequence[SceneObject], th: RelationThresholds) -> bool:
    """Presuppositions: counts in both readings, presupposed meanings (strictly) true of some."""
    for head, n in m.counts:
        if len(head.members(objects, True)) != n or len(head.members(objects, False)) != n:
            return False
    return all(any(satisfies(p, o, objects, th, strict=True) for o in objects)
               for p in m.presupposed)


def _measures(kind: str) -> Tuple[Callable[[SceneObject], float], ...]:
    if kind == 'size':
        def volume(o: SceneObject) -> float:
            x0, x1, y0, y1 = o.footprint_bounds()
            return (x1 - x0) * (y1 - y0) * o.extent.height

        def longest(o: SceneObject) -> float:
            x0, x1, y0, y1 = o.footprint_bounds()
            return max(x1 - x0, y1 - y0, o.extent.height)
        return volume, longest
    return (lambda o: o.extent.height), (lambda o: o.top_z)


def _extreme_holds(kind: str, sense: str, obj: SceneObject, members: Sequence[SceneObject],
                   strict: bool) -> bool:
    others = [o for o in members if o.id != obj.id]
    if not others or obj.id not in {o.id for o in members}:
        return False
    measures = _measures(kind)

    def beats(f, a, b, ratio):  # a beats b on f by the factor
        return f(a) >= ratio * f(b) if sense == 'max' else f(a) * ratio <= f(b)
    if strict:
        return all(beats(f, obj, o, SUPERLATIVE_RATIO) for f in measures for o in others)
    return any(not any(beats(f, o, obj, LENIENT_SUPERLATIVE_RATIO) for o in others)
               for f in measures)


def _middle_holds(obj: SceneObject, members: Sequence[SceneObject], th: RelationThresholds,
                  strict: bool) -> bool:
    if len(members) != 3:
        return False
    xs = sorted(members, key=lambda o: o.x)
    ys = sorted(members, key=lambda o: o.y)
    row = (ys[-1].y - ys[0].y) <= 0.5 * (xs[-1].x - xs[0].x)  # a row along x
    if strict:
        return ordinal_position(obj, 'left', members, th) == 2 and (row or ys[1].id == obj.id)
    return xs[1].id == obj.id or (not row and ys[1].id == obj.id)


def satisfies(m: Meaning, obj: SceneObject, objects: Sequence[SceneObject],
              th: RelationThresholds, strict: bool = True) -> bool:
    """Tell whether ``obj`` satisfies the meaning under the strict or the lenient reading.

    An object the probe names as an anchor never satisfies it.
    """
    if obj.id in m.named or not m.head.matches(obj, strict):
        return False
    if not _facts_hold(m, objects, th):
        return False
    by_id = {o.id: o for o in objects}
    members = _members(m, by_id, th, strict)
    if obj.id not in {o.id for o in members}:
        return False
    if not all(_cond_holds(c, obj, members, by_id, th, strict) for c in m.conds):
        return False
    if m.ordinal is not None:
        k, side = m.ordinal
        pos = ordinal_position(obj, side, members, th)
        if m.negated_ordinal:
            if not (pos != k and (pos is not None or not strict)):
                return False
        elif pos != k:
            return False
    if m.middle and not _middle_holds(obj, members, th, strict):
        return False
    if m.extreme is not None and not _extreme_holds(*m.extreme, obj, members, strict):
        return False
    return True


def satisfiers(m: Meaning, objects: Sequence[SceneObject], th: RelationThresholds,
               strict: bool = True) -> List[int]:
    """Return the ids of the objects that satisfy ``m`` under one reading."""
    return [o.id for o in objects if satisfies(m, o, objects, th, strict)]


def anchors_named(m: Meaning, objects: Sequence[SceneObject]) -> bool:
    """Check that each anchor's noun phrase fits that anchor alone, strictly and leniently.

    A :data:`MISSING` anchor must fit no object at all.
    """
    for anchor_id, head in m.anchors:
        strict = [o.id for o in head.members(objects, True)]
        lenient = {o.id for o in head.members(objects, False)}
        if anchor_id == MISSING:
            if strict or lenient:
                return False
        elif strict != [anchor_id] or lenient - {anchor_id}:
            return False
    return True


def meaning_is_valid(m: Meaning, target: Optional[int], objects: Sequence[SceneObject],
                     th: RelationThresholds) -> bool:
    """Check a probe's truth (see the module docstring); ``target`` None for a negative."""
    if not anchors_named(m, objects):
        return False
    if target is None:
        return not any(satisfies(m, o, objects, th, True) or satisfies(m, o, objects, th, False)
                       for o in objects)
    by_id = {o.id: o for o in objects}
    if target not in by_id or not satisfies(m, by_id[target], objects, th, strict=True):
        return False
    return not any(satisfies(m, o, objects, th, True) or satisfies(m, o, objects, th, False)
                   for o in objects if o.id != target)


# ------------------------------------------------------------------------------- probes
@dataclass
class Probe:
    """One held-out language probe with its ground truth."""

    text: str
    kind: str                      # one of PROBE_KINDS
    target: Optional[str]          # category of the one object meant; None = nothing fits
    object_id: Optional[int]
    note: str                      # frame and structure, for debugging
    meaning: Optional[Meaning] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {'text': self.text, 'kind': self.kind, 'target': self.target,
                'object_id': self.object_id, 'note': self.note}


def check_probe(probe: Probe, objects: Sequence[SceneObject],
                th: Optional[RelationThresholds] = None) -> bool:
    """Re-check a probe's ground truth against the scene's objects."""
    if probe.meaning is None:
        return False
    return meaning_is_valid(probe.meaning, probe.object_id, objects, th or RelationThresholds())


@dataclass
class _Phrase:
    text: str       # without article: 'little red cup'
    plural: str     # 'little red cups'
    head: Head


@dataclass
class _Draft:
    text: str
    meaning: Meaning
    target: Optional[int]
    frame: str


def normalise(text: str) -> str:
    """Lower case, letters, digits and single spaces: how probes and sentences are compared."""
    return ' '.join(re.sub(r"[^a-z0-9' ]+", ' ', text.lower()).replace("'", '').split())


def _article(text: str) -> str:
    return ('an ' if text[:1] in 'aeio' or text.startswith('u') and
            not text.startswith('uni') else 'a ') + text


def _possessive(text: str) -> str:
    return 'its' if text == 'it' else text + "'s"


class _Ctx:
    """A scene's objects, thresholds and random generator, with wording helpers."""

    def __init__(self, objects: Sequence[SceneObject], th: RelationThresholds,
                 rng: np.random.Generator):
        self.objects = list(objects)
        self.by_id = {o.id: o for o in self.objects}
        self.th = th
        self.rng = rng
        self._relations: Dict[int, List[Tuple[str, Tuple[int, ...]]]] = {}

    # -- random choices
    def pick(self, seq: Sequence):
        return seq[int(self.rng.integers(len(seq)))]

    def shuffled(self, seq: Sequence) -> list:
        return [seq[int(i)] for i in self.rng.permutation(len(seq))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.uniform() < p)

    # -- truth
    def valid(self, m: Meaning, target: Optional[int]) -> bool:
        return meaning_is_valid(m, target, self.objects, self.th)

    def others(self, obj: SceneObject) -> List[SceneObject]:
        return [o for o in self.objects if o.id != obj.id]

    def true_relations(self, t: SceneObject) -> List[Tuple[str, Tuple[int, ...]]]:
        """Strictly true (relation, anchors) of ``t``: binary ones, then ``between``."""
        if t.id not in self._relations:
            out = []
            for a in self.others(t):
                for rel in DIRECTIONAL + ('next_to', 'on_top_of', 'under'):
                    if relation_holds(rel, t, [a], (), self.th, strict=True):
                        out.append((rel, (a.id,)))
            for a, b in itertools.combinations(self.others(t), 2):
                if between(t, a, b, self.th, strict=True):
                    out.append(('between', (a.id, b.id)))
            self._relations[t.id] = out
        return self._relations[t.id]

    # -- wording
    def noun(self, shape: Optional[str], novel: bool) -> Tuple[str, Optional[Tuple[str, ...]]]:
        words = NOUN_WORDS[shape]
        if novel:
            words = [w for w in words if w[0] not in _SEEN_NOUNS]
        elif self.chance(0.45):
            words = [w for w in words if w[0] in _SEEN_NOUNS]
        return self.pick(words)

    def phrase(self, shape: Optional[str], colour: Optional[str] = None,
               size: Optional[str] = None, novel: bool = False, wide: bool = False,
               synonyms: bool = True) -> _Phrase:
        """Noun phrase '[size] [colour] noun' and its head.

        ``novel``: no noun or size word of the training grammar. ``wide``: the colour read with
        its neighbours (negatives). ``synonyms``: colour synonyms allowed.
        """
        noun, lshapes = self.noun(shape, novel)
        words = []
        if size is not None:
            choices = SIZE_CHOICES[size]
            if novel:
                choices = [w for w in choices if w not in _SEEN_SIZES]
            words.append(self.pick(choices))
        lcolours: Tuple[str, ...] = ()
        if colour is not None:
            if wide:
                word, lcolours = colour, NEAR_COLOURS.get(colour, ())
            elif synonyms and colour in COLOUR_WORDS and self.chance(0.5 if novel else 0.3):
                word, lcolours = self.pick(COLOUR_WORDS[colour])
            else:
                word = colour
            words.append(word)
        head = Head.of(shape, colour, size, lshapes, lcolours)
        return _Phrase(' '.join(words + [noun]), ' '.join(words + [plural(noun)]), head)

    def unique_phrase(self, obj: SceneObject, novel: bool = False,
                      generic: bool = True) -> Optional[_Phrase]:
        """Noun phrase that fits ``obj`` alone (strictly and leniently), or None."""
        combos = [(obj.shape, None, None), (obj.shape, obj.colour, None),
                  (obj.shape, None, obj.size), (obj.shape, obj.colour, obj.size)]
        if generic:
            combos += [(None, obj.colour, None), (None, obj.colour, obj.size)]
        order = combos if self.chance(0.6) else self.shuffled(combos)
        for shape, colour, size in order:
            p = self.phrase(shape, colour, size, novel)
            if [o.id for o in p.head.members(self.objects, True)] == [obj.id] and \
                    {o.id for o in p.head.members(self.objects, False)} <= {obj.id}:
                return p
        return None

    def rel_text(self, rel: str, anchors: Sequence[str], slot: str, novel: bool = False) -> str:
        """Relation phrase with its anchors (texts with article, or 'it') for a frame slot."""
        options = [t for t, tag in REL_WORDS[rel] if tag in _SLOTS[slot]]
        if novel:
            options = [t for t in options if t not in _SEEN_RELS] or options
        if slot == 'tele':
            options = [t for t in options if '{a_pos}' not in t] or options
        if anchors[0] == 'it':  # "holding it up", not "holding up it"
            options = [t for t in options if 'holding up' not in t] or options
        template = self.pick(options)
        return template.format(a=anchors[0], b=anchors[-1], a_pos=_possessive(anchors[0]))


# ------------------------------------------------------------------------------- drafting
@dataclass
class _Rel:
    """A relation draft: target phrase, clauses (relation, anchor texts), meaning."""

    target: _Phrase
    clauses: List[Tuple[str, List[str]]]
    meaning: Meaning


def _relation_draft(ctx: _Ctx, t: SceneObject, novel: bool = False,
                    rels: Optional[Sequence[str]] = None, clauses: int = 1,
                    article: str = 'the ') -> Optional[_Rel]:
    """Find a valid one- or two-clause relation structure for ``t`` and name its parts."""
    options = [(r, a) for r, a in ctx.true_relations(t) if rels is None or r in rels]
    if not options:
        return None
    if clauses == 1:
        tries = [[o] for o in ctx.shuffled(options)[:10]]
    else:
        pairs = [(p, q) for p, q in itertools.combinations(options, 2)
                 if p[0] != q[0] and not set(p[1]) & set(q[1])]
        tries = [list(pq) for pq in ctx.shuffled(pairs)[:25]]
    for chosen in tries:
        names: Dict[int, _Phrase] = {}
        for _, anchors in chosen:
            for a in anchors:
                names.setdefault(a, ctx.unique_phrase(ctx.by_id[a], novel))
        if any(p is None for p in names.values()):
            continue
        for use_colour in ctx.shuffled([False, True]):
            tp = ctx.phrase(t.shape, t.colour if use_colour else None, novel=novel)
            m = Meaning(tp.head, tuple(Cond(r, a) for r, a in chosen),
                        anchors=tuple((a, p.head) for a, p in names.items()))
            if ctx.valid(m, t.id):
                texts = [(r, [article + names[i].text for i in ctx.shuffled(list(a))])
                         for r, a in chosen]
                return _Rel(tp, texts, m)
    return None


def _content(ctx: _Ctx, t: SceneObject, novel: bool = False,
             attribute: float = 0.35) -> Optional[Tuple[_Phrase, Optional[_Rel], Meaning]]:
    """Either a unique noun phrase for ``t`` alone or a relation structure."""
    if ctx.chance(attribute):
        p = ctx.unique_phrase(t, novel, generic=False)
        if p is not None:
            return p, None, Meaning(p.head)
    r = _relation_draft(ctx, t, novel)
    if r is not None:
        return r.target, r, r.meaning
    p = ctx.unique_phrase(t, novel, generic=False)
    return (p, None, Meaning(p.head)) if p is not None else None


def _ordinal_options(ctx: _Ctx, t: SceneObject, novel: bool, max_k: int = 4,
                     min_members: int = 2) -> List[Tuple[_Phrase, int, str, int]]:
    """Return the valid (phrase, k, side, member count) ordinals of ``t``, any side."""
    out = []
    for use_colour in (False, True):
        p = ctx.phrase(t.shape, t.colour if use_colour else None, novel=novel)
        n = len(p.head.members(ctx.objects))
        if n < min_members:
            continue
        for side in ctx.shuffled(list(OPPOSITE)):
            pos = ordinal_position(t, side, p.head.members(ctx.objects), ctx.th)
            if pos is None or pos > max_k:
                continue
            if ctx.valid(Meaning(p.head, ordinal=(pos, side)), t.id):
                out.append((p, pos, side, n))
    return ctx.shuffled(out)


def _side_word(ctx: _Ctx, side: str, novel: bool) -> str:
    words = SIDE_WORDS[side]
    if novel:
        words = [w for w in words if w not in _SEEN_SIDES]
    return ctx.pick(words)


# ---- paraphrase -------------------------------------------------------------------------
P_ATTRIBUTE = ('the {np}', 'show me the {np}', 'where is the {np}?', 'point to the {np}',
               'select the {np}', 'the {np}, please', 'highlight the {np}')
P_RELATION = (('the {np} {rel}', 'noun'), ('the {np} that is {rel}', 'copula'),
              ('the {np} which is {rel}', 'copula'), ('find the {np} {rel}', 'noun'),
              ('the {np} located {rel}', 'verb'), ('the {np} positioned {rel}', 'verb'),
              ('the {np} sitting {rel}', 'verb'), ('locate the {np} {rel}', 'noun'))
P_ORDINAL = ('the {ord} {noun} from the {side}', 'the {ord} {noun} counting from the {side}',
             'the {noun} that comes {ord} from the {side}')
P_EXTREME = ('the {ext} {noun}', 'find the {ext} {noun}')
P_COMPOUND = (('the {np} {rel}, {rel2}', 'noun'), ('the {np} that is {rel} and {rel2}', 'copula'),
              ('the {np} {rel} and also {rel2}', 'noun'))


def _p_attribute(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    p = ctx.unique_phrase(t, novel=True)
    if p is None:
        return None
    frame = ctx.pick(P_ATTRIBUTE)
    return _Draft(frame.format(np=p.text), Meaning(p.head), t.id, frame)


def _one_relation(ctx: _Ctx, t: SceneObject, frames, **kwargs) -> Optional[_Draft]:
    """Return a one-clause relation draft of ``t`` in one of ``frames`` (novel wording)."""
    r = _relation_draft(ctx, t, **kwargs)
    if r is None:
        return None
    frame, slot = ctx.pick(frames)
    rel, anchors = r.clauses[0]
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel, anchors, slot, novel=True))
    return _Draft(text, r.meaning, t.id, frame)


def _p_relation(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    return _one_relation(ctx, t, P_RELATION, novel=True)


def _p_ordinal(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, k, side, _ in _ordinal_options(ctx, t, novel=True):
        if k == 1:
            continue
        frame = ctx.pick(P_ORDINAL)
        text = frame.format(ord=ORDINALS[k], noun=p.text, side=_side_word(ctx, side, True))
        return _Draft(text, Meaning(p.head, ordinal=(k, side)), t.id, frame)
    return None


def _p_extreme(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, k, side, _ in _ordinal_options(ctx, t, novel=True, max_k=1):
        frame = ctx.pick(P_EXTREME)
        ext = ctx.pick([w for w in EXTREME_PRE[side] if w not in _SEEN_EXTREMES])
        return _Draft(frame.format(ext=ext, noun=p.text), Meaning(p.head, ordinal=(1, side)),
                      t.id, frame)
    return None


def _p_compound(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t, novel=True, clauses=2)
    if r is None:
        return None
    frame, slot = ctx.pick(P_COMPOUND)
    (rel1, a1), (rel2, a2) = r.clauses
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel1, a1, slot, novel=True),
                        rel2=ctx.rel_text(rel2, a2, 'copula', novel=True))
    return _Draft(text, r.meaning, t.id, frame)


# ---- structure --------------------------------------------------------------------------
S_IMPERATIVE = ('pick up the {np}{rel}', 'could you grab the {np}{rel}?', 'hand me the {np}{rel}',
                'please bring me the {np}{rel}', 'go get the {np}{rel}',
                'would you mind passing me the {np}{rel}?', 'can I have the {np}{rel}?',
                'fetch the {np}{rel} for me', 'I need the {np}{rel}',
                "I'm looking for the {np}{rel}")
S_FILLER = ('um, I think I want the {np}{rel}, please', 'so, like, the {np}{rel}?',
            'okay, I need the {np}{rel}', 'hmm, maybe the {np}{rel}? yeah, that one',
            "the {np}{rel}, if you don't mind", 'uh, could you get me the {np}{rel}?')
S_RELATIVE = (('the {np} that sits {rel}', 'verb'), ('the {np} which stands {rel}', 'verb'),
              ("the {np} that's {rel}", 'copula'), ('the {np}, the one {rel}', 'noun'),
              ('the {np} that you can see {rel}', 'verb'),
              ('uh, the {np}... the one {rel}', 'noun'))
S_FRONTED = ('{rel}, the {np}', '{rel} there is {np_indef}, that one', '{rel}: the {np}, please',
             'the one {rel}, the {np}')
S_ANAPHORA = ('see {a}? grab the {np} {rel}', 'there is {a_indef}; I want the {np} {rel}',
              'find {a} first, then take the {np} {rel}',
              'look at {a}. the {np} {rel}, please')
S_INVERSE = ('the {np} that has {a} {inv}', 'the {np} with {a} {inv}',
             'get me the {np} that has {a} {inv}')
S_QUESTION = (('which {np} is {rel}?', 'copula'), ("where's the {np} {rel}?", 'noun'),
              ('is there {np_indef} {rel}? get it', 'noun'))
S_TELEGRAPHIC = ('{np} {rel}', '{np}, {rel}', '{np} {rel} please')
S_ORDINAL = ('counting from the {side}, the {ord} {noun}',
             'of the {n} {nouns}, the one {ord} from the {side}',
             'the {noun} that is {ord} from the {side}',
             'starting from the {side}, grab the {ord} {noun}')


def _rel_suffix(ctx: _Ctx, r: Optional[_Rel], slot: str = 'noun') -> str:
    if r is None:
        return ''
    rel, anchors = r.clauses[0]
    return ' ' + ctx.rel_text(rel, anchors, slot)


def _framed_content(ctx: _Ctx, t: SceneObject, frames) -> Optional[_Draft]:
    """Put the target's content (noun phrase and optional relation) into one of ``frames``."""
    c = _content(ctx, t)
    if c is None:
        return None
    p, r, m = c
    frame = ctx.pick(frames)
    return _Draft(frame.format(np=p.text, rel=_rel_suffix(ctx, r)), m, t.id, frame)


def _s_imperative(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    return _framed_content(ctx, t, S_IMPERATIVE)


def _s_filler(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    return _framed_content(ctx, t, S_FILLER)


def _s_relative(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t)
    if r is None:
        return None
    frame, slot = ctx.pick(S_RELATIVE)
    return _Draft(frame.format(np=r.target.text, rel=_rel_suffix(ctx, r, slot).strip()),
                  r.meaning, t.id, frame)


def _s_fronted(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t)
    if r is None:
        return None
    frame = ctx.pick(S_FRONTED)
    rel, anchors = r.clauses[0]
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel, anchors, 'front'),
                        np_indef=_article(r.target.text))
    return _Draft(text, r.meaning, t.id, frame)


def _s_anaphora(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t, rels=DIRECTIONAL + ('next_to', 'on_top_of', 'under'))
    if r is None:
        return None
    frame = ctx.pick(S_ANAPHORA)
    rel, anchors = r.clauses[0]
    anchor = anchors[0]
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel, ['it'], 'it'), a=anchor,
                        a_indef=_article(anchor[len('the '):]))
    return _Draft(text, r.meaning, t.id, frame)


def _s_inverse(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    options = []
    for a in ctx.others(t):
        for rel in INVERSE_WORDS:
            if relation_holds(rel, a, [t], (), ctx.th, strict=True):
                options.append((rel, a))
    for rel, a in ctx.shuffled(options)[:8]:
        name = ctx.unique_phrase(a)
        if name is None:
            continue
        for use_colour in ctx.shuffled([False, True]):
            p = ctx.phrase(t.shape, t.colour if use_colour else None)
            m = Meaning(p.head, (Cond(rel, (a.id,), inverse=True),), anchors=((a.id, name.head),))
            if ctx.valid(m, t.id):
                frame = ctx.pick(S_INVERSE)
                text = frame.format(np=p.text, a='the ' + name.text,
                                    inv=ctx.pick(INVERSE_WORDS[rel]))
                return _Draft(text, m, t.id, frame)
    return None


def _s_question(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t)
    if r is None:
        return None
    frame, slot = ctx.pick(S_QUESTION)
    text = frame.format(np=r.target.text, rel=_rel_suffix(ctx, r, slot).strip(),
                        np_indef=_article(r.target.text))
    return _Draft(text, r.meaning, t.id, frame)


def _s_telegraphic(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t, rels=DIRECTIONAL + ('next_to', 'on_top_of', 'under', 'between'),
                        article='')
    if r is None:
        return None
    frame = ctx.pick(S_TELEGRAPHIC)
    rel, anchors = r.clauses[0]
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel, anchors, 'tele'))
    return _Draft(text, r.meaning, t.id, frame)


def _s_ordinal(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, k, side, n in _ordinal_options(ctx, t, novel=False):
        frame = ctx.pick(S_ORDINAL)
        m = Meaning(p.head, ordinal=(k, side))
        if '{n}' in frame:
            if n not in COUNT_WORDS:
                continue
            m = replace(m, counts=((p.head, n),))
            if not ctx.valid(m, t.id):
                continue
        text = frame.format(side=side, ord=ORDINALS[k], noun=p.text, nouns=p.plural,
                            n=COUNT_WORDS.get(n, ''))
        return _Draft(text, m, t.id, frame)
    return None


# ---- spatial ----------------------------------------------------------------------------
C_ORDINAL = ('the {noun} {ord} from the {side}', 'the {ord} {noun} if you count from the {side}',
             'the {noun} in {ord} place from the {side}', 'the {num} {noun} from the {side}',
             'the {noun} that is {ord} when you count from the {side}')
C_SECOND_LAST = ('the second-to-last {noun} from the {side}',
                 'the next-to-last {noun} counting from the {side}')
C_EXTREME = ('the {noun} {post}', 'the last {noun} on the {side}',
             'of all the {nouns}, the one {post}', 'the {ext} of the {nouns}',
             'the {noun} that is {post}')
C_MIDDLE = ('the middle {noun}', 'the {noun} in the middle', 'the middle one of the three {nouns}',
            'the {noun} in the middle of the row')
C_BETWEEN = (('the {np} {rel}', 'noun'), ('the {np} that sits {rel}', 'verb'),
             ("the {np} that's {rel}", 'copula'))
C_SIZE = {('size', 'max'): ('the biggest {noun}', 'the largest {noun}',
                            'the {noun} that is the biggest', 'the larger of the two {nouns}',
                            'the bigger {noun}'),
          ('size', 'min'): ('the smallest {noun}', 'the tiniest {noun}',
                            'the {noun} that is the smallest', 'the smaller of the two {nouns}',
                            'the smaller {noun}'),
          ('height', 'max'): ('the tallest {noun}', 'the taller of the two {nouns}',
                              'the {noun} that stands the tallest'),
          ('height', 'min'): ('the shortest {noun}', 'the shorter of the two {nouns}',
                              'the least tall {noun}')}
C_NEAREST = {'nearest_to': ('the {noun} nearest {a}', 'the closest {noun} to {a}',
                            'whichever {noun} is closest to {a}',
                            'the {noun} that is the closest to {a}'),
             'farthest_from': ('the farthest {noun} from {a}', 'the {noun} furthest away from {a}',
                               'whichever {noun} is farthest from {a}',
                               'the {noun} at the greatest distance from {a}')}
C_DIRECTIONAL = (('the {np} {rel}', 'noun'), ('the {np} you can see {rel}', 'verb'),
                 ('the {np} that is {rel}', 'copula'))
C_COMPOUND = ('the {np} {rel} and {rel2}', "the {np} that's {rel} but {rel2}",
              'the {np} {rel}, and {rel2}')
C_SCOPED = ('of the {things} on {a}, the one {post}', 'the {noun} on {a} {post}',
            'on {a}, the {noun} {post}')


def _c_ordinal(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, k, side, _ in _ordinal_options(ctx, t, novel=False):
        if k == 1:
            continue
        frame = ctx.pick(C_ORDINAL)
        text = frame.format(noun=p.text, ord=ORDINALS[k], num=ORDINAL_NUMBERS[k], side=side)
        return _Draft(text, Meaning(p.head, ordinal=(k, side)), t.id, frame)
    return None


def _c_second_last(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, k, side, n in _ordinal_options(ctx, t, novel=False):
        if k != 2 or n < 3:
            continue
        frame = ctx.pick(C_SECOND_LAST)
        return _Draft(frame.format(noun=p.text, side=OPPOSITE[side]),
                      Meaning(p.head, ordinal=(2, side)), t.id, frame)
    return None


def _c_extreme(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for p, _, side, _ in _ordinal_options(ctx, t, novel=False, max_k=1):
        frame = ctx.pick(C_EXTREME)
        if 'last' in frame and side not in ('left', 'right'):
            frame = 'the {noun} {post}'
        text = frame.format(noun=p.text, nouns=p.plural, post=ctx.pick(EXTREME_POST[side]),
                            side=side, ext=ctx.pick(EXTREME_PRE[side]))
        return _Draft(text, Meaning(p.head, ordinal=(1, side)), t.id, frame)
    return None


def _c_middle(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    for use_colour in ctx.shuffled([False, True]):
        p = ctx.phrase(t.shape, t.colour if use_colour else None)
        m = Meaning(p.head, middle=True)
        frame = ctx.pick(C_MIDDLE)
        if 'three' in frame:
            m = replace(m, counts=((p.head, 3),))
        if ctx.valid(m, t.id):
            return _Draft(frame.format(noun=p.text, nouns=p.plural), m, t.id, frame)
    return None


def _c_between(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    return _one_relation(ctx, t, C_BETWEEN, rels=('between',))


def _c_size(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    heads = [(t.shape, None), (t.shape, t.colour), (None, t.colour)]
    for (shape, colour), key in itertools.product(ctx.shuffled(heads), ctx.shuffled(list(C_SIZE))):
        p = ctx.phrase(shape, colour)
        frame = ctx.pick(C_SIZE[key])
        m = Meaning(p.head, extreme=key)
        if 'two' in frame or frame.startswith(('the bigger', 'the smaller')):
            m = replace(m, counts=((p.head, 2),))
        if ctx.valid(m, t.id):
            return _Draft(frame.format(noun=p.text, nouns=p.plural), m, t.id, frame)
    return None


def _c_nearest(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    anchors = ctx.shuffled(ctx.others(t))
    for rel, a in itertools.product(ctx.shuffled(list(C_NEAREST)), anchors[:8]):
        for use_colour in ctx.shuffled([False, True]):
            p = ctx.phrase(t.shape, t.colour if use_colour else None)
            if len(p.head.members(ctx.objects)) < 2:
                continue
            name = ctx.unique_phrase(a)
            if name is None:
                break
            m = Meaning(p.head, (Cond(rel, (a.id,)),), anchors=((a.id, name.head),))
            if ctx.valid(m, t.id):
                frame = ctx.pick(C_NEAREST[rel])
                return _Draft(frame.format(noun=p.text, a='the ' + name.text), m, t.id, frame)
    return None


def _c_directional(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    return _one_relation(ctx, t, C_DIRECTIONAL, rels=DIRECTIONAL)


def _c_compound(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    r = _relation_draft(ctx, t, clauses=2)
    if r is None:
        return None
    frame = ctx.pick(C_COMPOUND)
    (rel1, a1), (rel2, a2) = r.clauses
    slot = 'copula' if "that's" in frame else 'noun'
    text = frame.format(np=r.target.text, rel=ctx.rel_text(rel1, a1, slot),
                        rel2=ctx.rel_text(rel2, a2, 'copula'))
    return _Draft(text, r.meaning, t.id, frame)


def _c_scoped(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    if not t.support:
        return None
    base = ctx.by_id[t.support]
    name = ctx.unique_phrase(base)
    if name is None:
        return None
    scope = (Cond('on_top_of', (base.id,)),)
    for shape, side in itertools.product(ctx.shuffled([None, t.shape]),
                                         ctx.shuffled(['left', 'right', 'front', 'back'])):
        p = ctx.phrase(shape)
        m = Meaning(p.head, ordinal=(1, side), scope=scope, anchors=((base.id, name.head),))
        if len(_members(m, ctx.by_id, ctx.th, strict=True)) >= 2 and ctx.valid(m, t.id):
            frame = ctx.pick(C_SCOPED)
            text = frame.format(things=p.plural, noun=p.text, a='the ' + name.text,
                                post=ctx.pick(EXTREME_POST[side]))
            return _Draft(text, m, t.id, frame)
    return None


# ---- negative ---------------------------------------------------------------------------
N_FRAMES = ('the {x}', 'pick up the {x}', 'could you hand me the {x}?', 'where is the {x}?',
            'bring me the {x}', 'grab the {x}, please', 'I need the {x}', 'find the {x}',
            'show me the {x}', 'is there {x_indef} here? get it for me', 'um, the {x}?',
            'the {x}, can you get it?')


def _negative(ctx: _Ctx, x: str, m: Meaning, note: str) -> Optional[_Draft]:
    if not ctx.valid(m, None):
        return None
    frame = ctx.pick(N_FRAMES)
    return _Draft(frame.format(x=x, x_indef=_article(x)), m, None, f'{note} | {frame}')


def _n_alien(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    noun = ctx.pick(ALIEN_NOUNS)
    colour = ctx.pick(list(PALETTE)) if ctx.chance(0.4) else None
    x = f'{colour} {noun}' if colour else noun
    return _negative(ctx, x, Meaning(Head.of(noun, colour)), 'alien noun')


def _n_alien_anchor(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    noun = ctx.pick(ALIEN_NOUNS)
    rel = ctx.pick(['next_to', 'left_of', 'right_of', 'behind', 'in_front_of', 'on_top_of'])
    p = ctx.phrase(t.shape, t.colour if ctx.chance(0.4) else None)
    m = Meaning(p.head, (Cond(rel, (MISSING,)),), anchors=((MISSING, Head.of(noun)),))
    x = f'{p.text} {ctx.rel_text(rel, ["the " + noun], "noun")}'
    return _negative(ctx, x, m, 'relation to an alien noun')


def _n_colour(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    generic = ctx.chance(0.2)
    shape = None if generic else t.shape
    for colour in ctx.shuffled(list(PALETTE) + list(ABSENT_COLOURS)):
        p = ctx.phrase(shape, colour, wide=True)
        if p.head.members(ctx.objects, False):
            continue
        return _negative(ctx, p.text, Meaning(p.head), 'absent colour')
    return None


def _n_ordinal(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    use_colour = ctx.chance(0.5)
    p = ctx.phrase(t.shape, t.colour if use_colour else None)
    n = max(len(p.head.members(ctx.objects, True)), len(p.head.members(ctx.objects, False)))
    k = n + 1 + int(ctx.chance(0.3))
    if k not in ORDINALS:
        return None
    side = ctx.pick(list(OPPOSITE))
    m = Meaning(p.head, ordinal=(k, side))
    frame = ctx.pick(('{ord} {noun} from the {side}', '{ord} {noun} counting from the {side}',
                      '{noun} {ord} from the {side}'))
    x = frame.format(ord=ORDINALS[k], noun=p.text, side=side)
    return _negative(ctx, x, m, f'ordinal beyond the count ({n})')


def _n_relation(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    rels = ['on_top_of', 'under', 'next_to', 'between'] + list(DIRECTIONAL)
    for rel in ctx.shuffled(rels)[:4]:
        count = 2 if rel == 'between' else 1
        anchors = ctx.shuffled(ctx.others(t))[:count]
        names = [ctx.unique_phrase(a) for a in anchors]
        if any(n is None for n in names) or len(anchors) < count:
            continue
        p = ctx.phrase(t.shape, t.colour if ctx.chance(0.3) else None)
        ids = tuple(a.id for a in anchors)
        m = Meaning(p.head, (Cond(rel, ids),),
                    anchors=tuple((a.id, n.head) for a, n in zip(anchors, names)))
        if not ctx.valid(m, None):
            continue
        x = f'{p.text} {ctx.rel_text(rel, ["the " + n.text for n in names], "noun")}'
        return _negative(ctx, x, m, 'relation that holds for none')
    return None


# ---- negation ---------------------------------------------------------------------------
G_NOT_COLOUR = ('the {noun} that is not {c}', "the {noun} that isn't {c}",
                "the {noun} that's not {c}", 'the non-{c} {noun}', 'the {noun} which is not {c}')
G_OTHER_THAN = ('the {noun} other than the {c} one', 'the {noun} besides the {c} one',
                'any {noun} except the {c} one')
G_OTHER_OF_TWO = ('not the {c} {noun}, the other one', 'the other {noun}, not the {c} one')
G_NOT_RELATION = (("the {noun} that isn't {rel}", 'copula'), ('the {noun} not {rel}', 'verb'),
                  ('the {noun} that is not {rel}', 'copula'))
G_ONLY = ('the only {np}', 'the one and only {np}', 'the only {np} here', 'the lone {np}')
G_NOT_SHAPE = ("the {c} thing that isn't a {noun}", 'the {c} object that is not a {noun}',
               "the {c} one that's not a {noun}")
G_NEITHER = ("the {noun} that's neither {c1} nor {c2}", 'the {noun} that is neither {c1} nor {c2}')
G_NOT_EXTREME = ("the {noun} that isn't the {ext} one", 'not the {ext} {noun}, the other one')
G_NOTHING_ON = ('the {noun} with nothing on it', 'the {noun} that has nothing on top',
                "the {noun} that doesn't have anything on it")
G_NOT_SIZE = ("the {noun} that isn't {z}", "the {noun} that's not the {z} one")


def _plain(ctx: _Ctx, shape: Optional[str]) -> _Phrase:
    """Noun phrase of a shape whose lenient reading is the shape itself (safe to negate)."""
    for _ in range(6):
        p = ctx.phrase(shape)
        if p.head.lenient_shapes == p.head.shapes:
            return p
    return _Phrase(NOUN_WORDS[shape][0][0], plural(NOUN_WORDS[shape][0][0]), Head.of(shape))


def _g_not_colour(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    same = [o for o in ctx.others(t) if o.shape == t.shape and o.colour != t.colour]
    for o in ctx.shuffled(same):
        p = _plain(ctx, t.shape)
        head = replace(p.head, not_colours=frozenset({o.colour}))
        m = Meaning(head, presupposed=(Meaning(Head.of(t.shape, o.colour)),))
        pair = replace(m, counts=((p.head, 2),))
        choices = [(f, m) for f in G_NOT_COLOUR + G_OTHER_THAN]
        if ctx.valid(pair, t.id):
            choices += [(f, pair) for f in G_OTHER_OF_TWO]
        frame, meaning = ctx.pick(choices)
        if ctx.valid(meaning, t.id):
            return _Draft(frame.format(noun=p.text, c=o.colour), meaning, t.id, frame)
    return None


def _g_not_relation(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    p = _plain(ctx, t.shape)
    members = [o for o in p.head.members(ctx.objects) if o.id != t.id]
    if not members:
        return None
    rels = DIRECTIONAL + ('next_to', 'on_top_of')
    options = [(rel, a) for a in ctx.objects if not p.head.matches(a, False)
               for rel in rels if any(relation_holds(rel, o, [a], (), ctx.th) for o in members)]
    for rel, a in ctx.shuffled(options)[:12]:
        name = ctx.unique_phrase(a)
        if name is None:
            continue
        cond = Cond(rel, (a.id,))
        m = Meaning(p.head, (replace(cond, negated=True),), anchors=((a.id, name.head),),
                    presupposed=(Meaning(p.head, (cond,), anchors=((a.id, name.head),)),))
        if not ctx.valid(m, t.id):
            continue
        frame, slot = ctx.pick(G_NOT_RELATION)
        anchor = 'the ' + name.text
        if rel == 'next_to' and ctx.chance(0.4):
            frame, rel_text = 'the {noun} nowhere near {a}', ''
        else:
            rel_text = ctx.rel_text(rel, [anchor], slot)
        return _Draft(frame.format(noun=p.text, rel=rel_text, a=anchor), m, t.id, frame)
    return None


def _g_only(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    combos = [(None, t.colour), (t.shape, None), (t.shape, t.colour)]
    for shape, colour in ctx.shuffled(combos):
        p = ctx.phrase(shape, colour, synonyms=False)
        m = Meaning(p.head)
        if ctx.valid(m, t.id):
            frame = ctx.pick(G_ONLY)
            if shape is not None and colour is not None and \
                    len(Head.of(shape).members(ctx.objects)) < 2:
                continue  # "the only red cup" says something only when other cups exist
            return _Draft(frame.format(np=p.text), m, t.id, frame)
    r = _relation_draft(ctx, t, rels=('on_top_of', 'next_to', 'under'))
    if r is None:
        return None
    rel, anchors = r.clauses[0]
    frame = 'the only {np} {rel}'
    return _Draft(frame.format(np=r.target.text, rel=ctx.rel_text(rel, anchors, 'noun')),
                  r.meaning, t.id, frame)


def _g_not_shape(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    same = [o for o in ctx.others(t) if o.colour == t.colour and o.shape != t.shape]
    for o in ctx.shuffled(same):
        head = Head.of(None, t.colour, not_shapes=frozenset({o.shape}))
        m = Meaning(head, presupposed=(Meaning(Head.of(o.shape, t.colour)),))
        if ctx.valid(m, t.id):
            frame = ctx.pick(G_NOT_SHAPE)
            return _Draft(frame.format(c=t.colour, noun=_plain(ctx, o.shape).text), m, t.id,
                          frame)
    return None


def _g_neither(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    colours = sorted({o.colour for o in ctx.others(t) if o.shape == t.shape} - {t.colour})
    if len(colours) < 2:
        return None
    c1, c2 = ctx.shuffled(colours)[:2]
    p = _plain(ctx, t.shape)
    m = Meaning(replace(p.head, not_colours=frozenset({c1, c2})),
                presupposed=(Meaning(Head.of(t.shape, c1)), Meaning(Head.of(t.shape, c2))))
    if not ctx.valid(m, t.id):
        return None
    frame = ctx.pick(G_NEITHER)
    return _Draft(frame.format(noun=p.text, c1=c1, c2=c2), m, t.id, frame)


def _g_not_extreme(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    p = _plain(ctx, t.shape)
    if len(p.head.members(ctx.objects)) != 2:
        return None
    for side in ctx.shuffled(list(OPPOSITE)):
        m = Meaning(p.head, ordinal=(1, side), negated_ordinal=True, counts=((p.head, 2),))
        if ctx.valid(m, t.id):
            frame = ctx.pick(G_NOT_EXTREME)
            return _Draft(frame.format(noun=p.text, ext=ctx.pick(EXTREME_PRE[side])), m,
                          t.id, frame)
    return None


def _g_nothing_on(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    p = _plain(ctx, t.shape)
    carries = Cond('on_top_of', (), inverse=True)
    m = Meaning(p.head, (replace(carries, negated=True),),
                presupposed=(Meaning(p.head, (carries,)),))
    if not ctx.valid(m, t.id):
        return None
    frame = ctx.pick(G_NOTHING_ON)
    return _Draft(frame.format(noun=p.text), m, t.id, frame)


def _g_not_size(ctx: _Ctx, t: SceneObject) -> Optional[_Draft]:
    other = 'small' if t.size == 'large' else 'large'
    p = _plain(ctx, t.shape)
    m = Meaning(replace(p.head, not_size=other), presupposed=(Meaning(Head.of(t.shape, None,
                                                                              other)),))
    if not ctx.valid(m, t.id):
        return None
    frame = ctx.pick(G_NOT_SIZE)
    word = ctx.pick({'small': ['small', 'little'], 'large': ['big', 'large']}[other])
    return _Draft(frame.format(noun=p.text, z=word), m, t.id, frame)


Builder = Callable[[_Ctx, SceneObject], Optional[_Draft]]
BUILDERS: Dict[str, Tuple[Builder, ...]] = {
    'paraphrase': (_p_attribute, _p_relation, _p_ordinal, _p_extreme, _p_compound,
                   _p_relation, _p_attribute),
    'structure': (_s_imperative, _s_filler, _s_relative, _s_fronted, _s_anaphora, _s_inverse,
                  _s_question, _s_telegraphic, _s_ordinal),
    'spatial': (_c_ordinal, _c_second_last, _c_extreme, _c_middle, _c_between, _c_size,
                _c_nearest, _c_directional, _c_compound, _c_scoped),
    'negative': (_n_alien, _n_alien_anchor, _n_colour, _n_ordinal, _n_relation, _n_colour,
                 _n_relation),
    'negation': (_g_not_colour, _g_not_relation, _g_only, _g_not_shape, _g_neither,
                 _g_not_extreme, _g_nothing_on, _g_not_size),
}


# ------------------------------------------------------------------------------- generation
def _finish(text: str) -> str:
    text = ' '.join(text.split())
    return text.replace(' ,', ',').replace(' ?', '?')


def _generate_kind(ctx: _Ctx, kind: str, per_kind: int, banned: Set[str]) -> List[Probe]:
    """Up to ``per_kind`` probes of one kind: builders in turn, least used targets first."""
    out: List[Probe] = []
    uses: Dict[int, int] = {o.id: 0 for o in ctx.objects}
    builders = ctx.shuffled(BUILDERS[kind])
    for round_ in range(6):
        progressed = False
        for builder in builders:
            if len(out) >= per_kind:
                break
            targets = sorted(ctx.shuffled(ctx.objects), key=lambda o: uses[o.id])
            for t in targets[:8] if round_ == 0 else targets:  # later rounds: every target
                draft = builder(ctx, t)
                if draft is None:
                    continue
                text = _finish(draft.text)
                key = normalise(text)
                if key in banned or not ctx.valid(draft.meaning, draft.target):
                    continue
                banned.add(key)
                target = ctx.by_id[draft.target] if draft.target is not None else None
                out.append(Probe(text, kind, target.category if target else None,
                                 draft.target, f'{builder.__name__[1:]}: "{draft.frame}" | '
                                 f'{draft.meaning.describe()}', draft.meaning))
                uses[t.id] += 1
                progressed = True
                break
        if len(out) >= per_kind or not progressed:
            break
    return out


def probes_for_objects(objects: Sequence[SceneObject], seed: int, per_kind: int = 8,
                       thresholds: Optional[RelationThresholds] = None,
                       avoid: Iterable[str] = ()) -> List[Probe]:
    """Generate probes for a list of objects (see :func:`generate_probes`).

    Args:
        objects: the scene's objects (table frame).
        seed: random seed (the same seed gives the same probes).
        per_kind: the most probes of each kind.
        thresholds: relation margins (the scene's expression thresholds).
        avoid: sentences no probe may equal (compared by :func:`normalise`).
    """
    th = thresholds or RelationThresholds()
    banned = {normalise(s) for s in avoid}
    out: List[Probe] = []
    for index, kind in enumerate(PROBE_KINDS):
        ctx = _Ctx(objects, th, np.random.default_rng([seed, index]))
        out += _generate_kind(ctx, kind, per_kind, banned)
    return out


def generate_probes(scene: 'RefSynthScene', seed: int, per_kind: int = 8) -> List[Probe]:
    """Generate up to ``per_kind`` held-out probes of each kind for a Ref-Synth scene.

    Positive probes are strictly true for their target and satisfied by no other object even
    leniently; negatives by no object at all; no probe equals a sentence of the scene.
    """
    return probes_for_objects(scene.objects, seed, per_kind,
                              scene.config.expressions.thresholds,
                              [e.sentence for e in scene.expressions])


def probe_suite(scenes: Sequence['RefSynthScene'], seed: int = 0,
                per_kind: int = 8) -> List[Tuple[int, Probe]]:
    """Probes of several scenes as (scene index, probe); scene i uses seed ``seed + i``."""
    return [(i, p) for i, scene in enumerate(scenes)
            for p in generate_probes(scene, seed + i, per_kind)]


def probe_counts(probes: Iterable[Probe]) -> Dict[str, int]:
    """Count probes per kind (every kind listed)."""
    counts = {k: 0 for k in PROBE_KINDS}
    for p in probes:
        counts[p.kind] += 1
    return counts
