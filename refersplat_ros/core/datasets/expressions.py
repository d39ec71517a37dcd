"""Referring-expression grammar of Ref-Synth, with geometric truth and uniqueness checks.

Each expression is first built as a structure (:class:`Referring`): an attribute description of
the target (noun = shape, optional colour and size) and optionally a relation to one or two
anchors (each named by its own unique description) or an ordinal along a table side. A structure is
kept only if it is **strictly true** for its target and **no other object satisfies it**, not even
under the lenient reading of ``relations.py``. It is then realised as text.

Held-out wording (Ref-LERF protocol, docs/METHOD.md#scenes: 4 training and 1 test expression
per object): the vocabulary is split in two disjoint halves. Training sentences use only the
``train`` nouns, size words, relation phrases and sentence frames; the test sentence of every
object uses only the ``test`` ones (e.g. "mug" vs "cup", "to the left of" vs "on the left side
of"). Colour words are shared.

Expression types (for per-subset metrics): ``distractor`` when the scene holds another object of
the target's shape (the noun alone is ambiguous, an attribute or relation must separate them);
otherwise ``spatial`` when the expression uses a relation or an ordinal, else ``attribute``.
"""
from dataclasses import dataclass, field
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.datasets.relations import (BINARY, Description, ordinal_position,
                                                    relation_holds, RelationThresholds, SIDES)
from refersplat_ros.core.datasets.synth_scene import SceneObject

TRAIN, TEST = 'train', 'test'
KINDS = ('attribute', 'spatial', 'distractor')

# (train words, test words); the two lists never share an entry.
NOUNS: Dict[Optional[str], Tuple[List[str], List[str]]] = {
    'mug': (['mug', 'coffee mug'], ['cup']),
    'box': (['box', 'block'], ['carton']),
    'ball': (['ball'], ['sphere']),
    'bowl': (['bowl'], ['basin']),
    'plate': (['plate'], ['dish']),
    'bottle': (['bottle'], ['flask']),
    'cone': (['cone'], ['pylon']),
    None: (['object', 'thing'], ['item']),
}
SIZE_WORDS = {'small': (['small'], ['little']), 'large': (['large'], ['big'])}
RELATION_PHRASES = {
    'left_of': (['to the left of', 'left of'], ['on the left side of']),
    'right_of': (['to the right of', 'right of'], ['on the right side of']),
    'in_front_of': (['in front of'], ['on the front side of']),
    'behind': (['behind', 'in back of'], ['on the far side of']),
    'next_to': (['next to', 'beside'], ['adjacent to']),
    'on_top_of': (['on top of', 'sitting on'], ['resting upon']),
    'under': (['under', 'below'], ['beneath']),
    'nearest_to': (['closest to', 'nearest to'], ['at the shortest distance from']),
    'farthest_from': (['farthest from', 'furthest from'], ['most distant from']),
    'between': (['between {a} and {b}'], ['flanked by {a} and {b}']),
}
ORDINAL_WORDS = {1: 'first', 2: 'second', 3: 'third', 4: 'fourth'}
EXTREME_WORDS = {'left': 'leftmost', 'right': 'rightmost', 'front': 'frontmost',
                 'back': 'rearmost'}
# Sentence frames; {np} = target noun phrase, {rel} = relation phrase with its anchor(s).
FRAMES = {
    'attribute': (['the {np}', 'find the {np}', 'the {np} in the scene'],
                  ['locate the {np}', 'look for the {np}']),
    'relation': (['the {np} {rel}', 'the {np} that is {rel}', 'find the {np} {rel}'],
                 ['locate the {np} {rel}', 'the {np} which is {rel}']),
    'ordinal': (['the {ord} {noun} from the {side}', 'the {ord} {noun} counting from the {side}'],
                ['the {noun} that comes {ord} when counting from the {side}']),
    'extreme': (['the {ext} {noun}'], ['the {noun} farthest toward the {side} edge']),
}


@dataclass(frozen=True)
class Referring:
    """Structure of one expression (before wording)."""

    target: int
    description: Description
    family: str                         # 'attribute' | 'relation' | 'ordinal'
    relation: Optional[str] = None
    anchors: Tuple[int, ...] = ()
    anchor_descriptions: Tuple[Description, ...] = ()
    ordinal: Optional[int] = None
    side: Optional[str] = None

    def to_dict(self) -> dict:
        return {'family': self.family, 'description': self.description.to_dict(),
                'relation': self.relation, 'anchors': list(self.anchors),
                'anchor_descriptions': [d.to_dict() for d in self.anchor_descriptions],
                'ordinal': self.ordinal, 'side': self.side}


@dataclass
class Expression:
    """One referring expression of a Ref-Synth scene."""

    object_id: int
    category: str
    sentence: str
    kind: str          # one of KINDS
    split: str         # 'train' or 'test'
    form: dict = field(default_factory=dict)  # Referring.to_dict()

    def to_dict(self) -> dict:
        return {'object_id': self.object_id, 'category': self.category,
                'sentence': self.sentence, 'kind': self.kind, 'split': self.split,
                'form': self.form}


@dataclass
class ExpressionConfig:
    """How many expressions per object, and the relation margins."""

    train_per_object: int = 4
    test_per_object: int = 1
    thresholds: RelationThresholds = field(default_factory=RelationThresholds)
    max_ordinal: int = 3


def _descriptions_of(obj: SceneObject, with_shapeless: bool = True) -> List[Description]:
    out = []
    for colour in (None, obj.colour):
        for size in (None, obj.size):
            out.append(Description(obj.shape, colour, size))
    if with_shapeless:
        out += [Description(None, obj.colour, None), Description(None, obj.colour, obj.size)]
    return out


def _complexity(d: Description) -> int:
    return (d.colour is not None) + (d.size is not None) + 2 * (d.shape is None)


def unique_description(obj: SceneObject, objects: Sequence[SceneObject]) -> Optional[Description]:
    """Simplest attribute description that matches ``obj`` alone, or None (an identical twin)."""
    for d in sorted(_descriptions_of(obj), key=_complexity):
        if d.members(objects) == [obj]:
            return d
    return None


def satisfies(ref: Referring, obj: SceneObject, objects: Sequence[SceneObject],
              th: RelationThresholds, strict: bool) -> bool:
    """Tell whether ``obj`` satisfies the structure ``ref`` (strict or lenient reading)."""
    if not ref.description.matches(obj):
        return False
    by_id = {o.id: o for o in objects}
    members = ref.description.members(objects)
    if ref.family == 'attribute':
        return True
    if ref.family == 'ordinal':
        return ordinal_position(obj, ref.side, members, th) == ref.ordinal
    anchors = [by_id[i] for i in ref.anchors]
    if obj.id in ref.anchors:
        return False
    return relation_holds(ref.relation, obj, anchors, members, th, strict)


def is_valid(ref: Referring, objects: Sequence[SceneObject], th: RelationThresholds) -> bool:
    """Check: true for the target (strict), for no other object (lenient), anchors unique."""
    by_id = {o.id: o for o in objects}
    for anchor_id, desc in zip(ref.anchors, ref.anchor_descriptions):
        if desc.members(objects) != [by_id[anchor_id]]:
            return False
    if not satisfies(ref, by_id[ref.target], objects, th, strict=True):
        return False
    return not any(satisfies(ref, o, objects, th, strict=False)
                   for o in objects if o.id != ref.target)


def candidate_structures(target: SceneObject, objects: Sequence[SceneObject],
                         config: ExpressionConfig) -> List[Referring]:
    """Every valid structure for ``target`` (attribute, relation, ordinal), deterministic order."""
    th = config.thresholds
    out: List[Referring] = []
    for d in sorted(_descriptions_of(target), key=_complexity):
        out.append(Referring(target.id, d, 'attribute'))
    anchors = [(o, unique_description(o, objects)) for o in objects if o.id != target.id]
    anchors = [(o, d) for o, d in anchors if d is not None]
    target_descs = [Description(target.shape), Description(target.shape, target.colour)]
    for d in target_descs:
        for (a, da), rel in itertools.product(anchors, BINARY):
            out.append(Referring(target.id, d, 'relation', rel, (a.id,), (da,)))
        for (a, da), (b, db) in itertools.combinations(anchors, 2):
            out.append(Referring(target.id, d, 'relation', 'between', (a.id, b.id), (da, db)))
        if len(d.members(objects)) >= 2:
            for side in SIDES:
                pos = ordinal_position(target, side, d.members(objects), th)
                if pos is not None and pos <= config.max_ordinal:
                    out.append(Referring(target.id, d, 'ordinal', ordinal=pos, side=side))
    seen, valid = set(), []
    for ref in out:
        if ref not in seen and is_valid(ref, objects, th):
            seen.add(ref)
            valid.append(ref)
    return valid


# ------------------------------------------------------------------------------ wording
def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    return str(words[int(rng.integers(len(words)))])


def noun_phrase(d: Description, split: str, rng: np.random.Generator) -> str:
    """'[size] [colour] noun' in the vocabulary of ``split``."""
    idx = 0 if split == TRAIN else 1
    words = []
    if d.size is not None:
        words.append(_pick(rng, SIZE_WORDS[d.size][idx]))
    if d.colour is not None:
        words.append(d.colour)
    words.append(_pick(rng, NOUNS[d.shape][idx]))
    return ' '.join(words)


def realise(ref: Referring, split: str, rng: np.random.Generator) -> str:
    """Turn a structure into a sentence using only the ``split`` half of the vocabulary."""
    idx = 0 if split == TRAIN else 1
    np_t = noun_phrase(ref.description, split, rng)
    if ref.family == 'attribute':
        return _pick(rng, FRAMES['attribute'][idx]).format(np=np_t)
    if ref.family == 'ordinal':
        noun = noun_phrase(Description(ref.description.shape, ref.description.colour), split,
                           rng)
        if ref.ordinal == 1 and (split == TEST or rng.uniform() < 0.5):
            frame = _pick(rng, FRAMES['extreme'][idx])
            return frame.format(ext=EXTREME_WORDS[ref.side], noun=noun, side=ref.side)
        frame = _pick(rng, FRAMES['ordinal'][idx])
        return frame.format(ord=ORDINAL_WORDS[ref.ordinal], noun=noun, side=ref.side)
    anchor_nps = ['the ' + noun_phrase(d, split, rng) for d in ref.anchor_descriptions]
    phrase = _pick(rng, RELATION_PHRASES[ref.relation][idx])
    if ref.relation == 'between':
        rel = phrase.format(a=anchor_nps[0], b=anchor_nps[1])
    else:
        rel = f'{phrase} {anchor_nps[0]}'
    return _pick(rng, FRAMES['relation'][idx]).format(np=np_t, rel=rel)


def expression_kind(ref: Referring, objects: Sequence[SceneObject]) -> str:
    """'distractor' / 'spatial' / 'attribute', see the module docstring."""
    by_id = {o.id: o for o in objects}
    target = by_id[ref.target]
    if any(o.shape == target.shape for o in objects if o.id != target.id):
        return 'distractor'
    return 'attribute' if ref.family == 'attribute' else 'spatial'


def _choose(rng: np.random.Generator, pool: List[Referring], count: int,
            exclude: Sequence[Referring]) -> List[Referring]:
    """Pick ``count`` structures, spreading over families, relations and anchors."""
    chosen: List[Referring] = []
    left = [r for r in pool if r not in exclude]
    order = [int(i) for i in rng.permutation(len(left))]
    left = [left[i] for i in order]
    families = ['relation', 'ordinal', 'attribute']
    families = [families[i] for i in rng.permutation(3)]
    while len(chosen) < count and left:
        progressed = False
        for fam in families:
            if len(chosen) >= count:
                break
            used_rel = {r.relation for r in chosen}
            options = [r for r in left if r.family == fam]
            if not options:
                continue
            fresh = [r for r in options if r.relation not in used_rel]
            pick = (fresh or options)[0]
            chosen.append(pick)
            left.remove(pick)
            progressed = True
        if not progressed:
            break
    return chosen


def generate_expressions(objects: Sequence[SceneObject], rng: np.random.Generator,
                         config: Optional[ExpressionConfig] = None) -> Optional[List[Expression]]:
    """Generate train and test expressions for every object.

    Returns:
        ``train_per_object`` + ``test_per_object`` expressions per object (all sentences distinct
        in the scene), or None when some object lacks enough valid structures (the caller then
        re-samples the layout).
    """
    config = config or ExpressionConfig()
    need = config.train_per_object + config.test_per_object
    out: List[Expression] = []
    sentences = set()
    for obj in objects:
        pool = candidate_structures(obj, objects, config)
        if len(pool) < need:
            return None
        test = _choose(rng, pool, config.test_per_object, ())
        train = _choose(rng, pool, config.train_per_object, test)
        if len(train) < config.train_per_object or len(test) < config.test_per_object:
            return None
        for split, refs in ((TRAIN, train), (TEST, test)):
            for ref in refs:
                for _ in range(20):  # re-word on a clash with an existing sentence
                    sentence = realise(ref, split, rng)
                    if sentence not in sentences:
                        break
                else:
                    return None
                sentences.add(sentence)
                out.append(Expression(obj.id, obj.category, sentence,
                                      expression_kind(ref, objects), split, ref.to_dict()))
    return out
