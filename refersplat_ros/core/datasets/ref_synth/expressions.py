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

Multi-anchor sentences (``ExpressionConfig.multi_anchor``, the ``hard`` presets only): a relation
structure may carry further clauses (:class:`Clause`, ``Referring.more``) that must hold as well,
naming 2-3 other objects in one sentence, e.g. "the red can between the blue bowl and the white
shelf, left of the green mug". Such a conjunction is true when every clause is strictly true
for the target and unique when no other object satisfies all clauses, even leniently. With
``multi_anchor`` set, anchors are also named by their colour where that keeps them unique ("the
blue bowl" rather than "the bowl") and an ordinal between exactly two objects is worded as a pair
("the left one of the two red cans"). Without it the output is what it always was.
"""
from dataclasses import dataclass, field
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.datasets.ref_synth.relations import (BINARY, Description, DIRECTIONAL,
                                                              ordinal_position, relation_holds,
                                                              RelationThresholds, SIDES)
from refersplat_ros.core.datasets.ref_synth.scene import SceneObject

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
    'can': (['can', 'soda can'], ['tin']),
    'shelf': (['shelf', 'wall shelf'], ['rack']),
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
    # multi_anchor only: {rel2} = the second relation clause; {nouns} = plural noun phrase
    'compound': (['the {np} {rel}, {rel2}', 'the {np} that is {rel} and {rel2}',
                  'find the {np} {rel} and {rel2}'],
                 ['locate the {np} {rel} while also {rel2}',
                  'the {np} which is {rel} as well as {rel2}']),
    'pair': (['the {side} one of the two {nouns}'],
             ['the {noun} nearer the {side} within the pair of {nouns}']),
}


@dataclass(frozen=True)
class Clause:
    """One relation of a structure: its name, anchor ids and the anchors' descriptions."""

    relation: str
    anchors: Tuple[int, ...]
    anchor_descriptions: Tuple[Description, ...]

    def to_dict(self) -> dict:
        return {'relation': self.relation, 'anchors': list(self.anchors),
                'anchor_descriptions': [d.to_dict() for d in self.anchor_descriptions]}


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
    more: Tuple[Clause, ...] = ()       # further relations that hold too (multi-anchor)
    pair: bool = False                  # ordinal 1 of exactly two matching objects

    @property
    def clauses(self) -> Tuple[Clause, ...]:
        """Every relation clause (none for attribute and ordinal structures)."""
        if self.family != 'relation':
            return ()
        return (Clause(self.relation, self.anchors, self.anchor_descriptions),) + self.more

    @property
    def all_anchors(self) -> Tuple[int, ...]:
        """Ids of every object the expression names besides the target."""
        return tuple(i for c in self.clauses for i in c.anchors)

    def to_dict(self) -> dict:
        out = {'family': self.family, 'description': self.description.to_dict(),
               'relation': self.relation, 'anchors': list(self.anchors),
               'anchor_descriptions': [d.to_dict() for d in self.anchor_descriptions],
               'ordinal': self.ordinal, 'side': self.side}
        if self.more:  # keys of the multi-anchor forms only where used
            out['more'] = [c.to_dict() for c in self.more]
        if self.pair:
            out['pair'] = True
        return out

    @staticmethod
    def from_dict(target: int, form: dict) -> 'Referring':
        """Rebuild a structure from ``to_dict`` output (a manifest expression's ``form``)."""
        more = tuple(Clause(c['relation'], tuple(c['anchors']),
                            tuple(Description(**d) for d in c['anchor_descriptions']))
                     for c in form.get('more', ()))
        return Referring(target, Description(**form['description']), form['family'],
                         form['relation'], tuple(form['anchors']),
                         tuple(Description(**d) for d in form['anchor_descriptions']),
                         form['ordinal'], form['side'], more, bool(form.get('pair', False)))


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
class MultiAnchorConfig:
    """Multi-anchor sentences of the ``hard`` presets (see the module docstring)."""

    train: int = 2                # multi-anchor sentences among each object's training ones
    test_fraction: float = 0.5    # chance that an object's test sentence is a multi-anchor one
    relations: Tuple[str, ...] = DIRECTIONAL + ('next_to', 'on_top_of', 'between')
    max_anchors: int = 3          # objects named besides the target


@dataclass
class ExpressionConfig:
    """How many expressions per object, and the relation margins."""

    train_per_object: int = 4
    test_per_object: int = 1
    thresholds: RelationThresholds = field(default_factory=RelationThresholds)
    max_ordinal: int = 3
    multi_anchor: Optional[MultiAnchorConfig] = None  # hard presets: multi-anchor sentences


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


def anchor_description(obj: SceneObject, objects: Sequence[SceneObject],
                       rich: bool = False) -> Optional[Description]:
    """Return the description that names ``obj`` as an anchor, or None (an identical twin).

    ``rich``: the unique one with noun and colour (plus size where needed) when there is one,
    else the simplest with a noun; otherwise :func:`unique_description`.
    """
    if not rich:
        return unique_description(obj, objects)
    for d in sorted(_descriptions_of(obj, with_shapeless=False),
                    key=lambda d: (d.colour is None, d.size is not None)):
        if d.members(objects) == [obj]:
            return d
    return None


def satisfies(ref: Referring, obj: SceneObject, objects: Sequence[SceneObject],
              th: RelationThresholds, strict: bool) -> bool:
    """Tell whether ``obj`` satisfies the structure ``ref`` (strict or lenient reading).

    A multi-anchor structure is satisfied when every clause is.
    """
    if not ref.description.matches(obj):
        return False
    by_id = {o.id: o for o in objects}
    members = ref.description.members(objects)
    if ref.family == 'attribute':
        return True
    if ref.family == 'ordinal':
        return ordinal_position(obj, ref.side, members, th) == ref.ordinal
    if obj.id in ref.all_anchors:
        return False
    return all(relation_holds(c.relation, obj, [by_id[i] for i in c.anchors], members, th,
                              strict) for c in ref.clauses)


def is_valid(ref: Referring, objects: Sequence[SceneObject], th: RelationThresholds) -> bool:
    """Check: true for the target (strict), for no other object (lenient), anchors unique."""
    by_id = {o.id: o for o in objects}
    for clause in ref.clauses:
        for anchor_id, desc in zip(clause.anchors, clause.anchor_descriptions):
            if desc.members(objects) != [by_id[anchor_id]]:
                return False
    if len(set(ref.all_anchors)) < len(ref.all_anchors):
        return False
    if not satisfies(ref, by_id[ref.target], objects, th, strict=True):
        return False
    return not any(satisfies(ref, o, objects, th, strict=False)
                   for o in objects if o.id != ref.target)


def candidate_structures(target: SceneObject, objects: Sequence[SceneObject],
                         config: ExpressionConfig) -> List[Referring]:
    """Every valid structure for ``target`` (attribute, relation, ordinal), deterministic order."""
    th = config.thresholds
    multi = config.multi_anchor
    out: List[Referring] = []
    for d in sorted(_descriptions_of(target), key=_complexity):
        out.append(Referring(target.id, d, 'attribute'))
    anchors = [(o, anchor_description(o, objects, rich=multi is not None))
               for o in objects if o.id != target.id]
    anchors = [(o, d) for o, d in anchors if d is not None]
    target_descs = [Description(target.shape), Description(target.shape, target.colour)]
    for d in target_descs:
        for (a, da), rel in itertools.product(anchors, BINARY):
            out.append(Referring(target.id, d, 'relation', rel, (a.id,), (da,)))
        for (a, da), (b, db) in itertools.combinations(anchors, 2):
            out.append(Referring(target.id, d, 'relation', 'between', (a.id, b.id), (da, db)))
        members = d.members(objects)
        if len(members) >= 2:
            for side in SIDES:
                pos = ordinal_position(target, side, members, th)
                if pos is None or pos > config.max_ordinal:
                    continue
                if multi is not None and len(members) == 2:
                    if pos == 1:  # "the left one of the two red cans"
                        out.append(Referring(target.id, d, 'ordinal', ordinal=1, side=side,
                                             pair=True))
                    continue
                out.append(Referring(target.id, d, 'ordinal', ordinal=pos, side=side))
    seen, valid = set(), []
    for ref in out:
        if ref not in seen and is_valid(ref, objects, th):
            seen.add(ref)
            valid.append(ref)
    return valid


def multi_anchor_structures(target: SceneObject, objects: Sequence[SceneObject],
                            config: ExpressionConfig) -> List[Referring]:
    """Return the valid two-clause structures naming 2..``max_anchors`` other objects.

    Essential ones first (neither clause alone singles out the target), each group in a
    deterministic order. Empty when ``config.multi_anchor`` is None.

    Raises:
        ValueError: a superlative among ``multi_anchor.relations`` (its reading inside a
            conjunction is ambiguous).
    """
    multi, th = config.multi_anchor, config.thresholds
    if multi is None:
        return []
    if {'nearest_to', 'farthest_from'} & set(multi.relations):
        raise ValueError('multi-anchor clauses cannot use superlatives')
    by_id = {o.id: o for o in objects}
    anchors = [(o, anchor_description(o, objects, rich=True))
               for o in objects if o.id != target.id]
    anchors = [(o, d) for o, d in anchors if d is not None]
    essential, other = [], []
    for d in (Description(target.shape), Description(target.shape, target.colour)):
        members = [o for o in d.members(objects) if o.id != target.id]
        clauses = [Clause(rel, (a.id,), (da,)) for (a, da), rel in itertools.product(
            anchors, [r for r in multi.relations if r != 'between'])]
        if 'between' in multi.relations:
            clauses += [Clause('between', (a.id, b.id), (da, db))
                        for (a, da), (b, db) in itertools.combinations(anchors, 2)]
        # Keep the clauses true for the target; note who else satisfies each, leniently.
        lenient = {}
        for c in clauses:
            anchor_objs = [by_id[i] for i in c.anchors]
            if relation_holds(c.relation, target, anchor_objs, (), th, strict=True):
                lenient[c] = frozenset(o.id for o in members if relation_holds(
                    c.relation, o, anchor_objs, (), th, strict=False))
        for c1, c2 in itertools.combinations(lenient, 2):
            ids = c1.anchors + c2.anchors
            if c1.relation == c2.relation or len(set(ids)) < len(ids) or \
                    len(ids) > multi.max_anchors or (lenient[c1] & lenient[c2]) - set(ids):
                continue
            first, second = (c2, c1) if c2.relation == 'between' else (c1, c2)
            ref = Referring(target.id, d, 'relation', first.relation, first.anchors,
                            first.anchor_descriptions, more=(second,))
            alone = [lenient[c] - set(c.anchors) for c in (c1, c2)]
            (essential if all(alone) else other).append(ref)
    return [r for r in essential + other if is_valid(r, objects, th)]


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


def plural(phrase: str) -> str:
    """Plural of a noun phrase (its last word): 'red box' -> 'red boxes'."""
    head, _, last = phrase.rpartition(' ')
    if last.endswith('f'):
        last = last[:-1] + 'ves'
    elif last.endswith(('x', 's', 'sh', 'ch')):
        last += 'es'
    else:
        last += 's'
    return f'{head} {last}' if head else last


def _clause_text(clause: Clause, split: str, rng: np.random.Generator) -> str:
    """Relation phrase with its anchor(s), e.g. 'to the left of the blue bowl'."""
    idx = 0 if split == TRAIN else 1
    anchor_nps = ['the ' + noun_phrase(d, split, rng) for d in clause.anchor_descriptions]
    phrase = _pick(rng, RELATION_PHRASES[clause.relation][idx])
    if clause.relation == 'between':
        return phrase.format(a=anchor_nps[0], b=anchor_nps[1])
    return f'{phrase} {anchor_nps[0]}'


def realise(ref: Referring, split: str, rng: np.random.Generator) -> str:
    """Turn a structure into a sentence using only the ``split`` half of the vocabulary."""
    idx = 0 if split == TRAIN else 1
    np_t = noun_phrase(ref.description, split, rng)
    if ref.family == 'attribute':
        return _pick(rng, FRAMES['attribute'][idx]).format(np=np_t)
    if ref.family == 'ordinal':
        noun = noun_phrase(Description(ref.description.shape, ref.description.colour), split,
                           rng)
        if ref.pair:
            frame = _pick(rng, FRAMES['pair'][idx])
            return frame.format(side=ref.side, noun=noun, nouns=plural(noun))
        if ref.ordinal == 1 and (split == TEST or rng.uniform() < 0.5):
            frame = _pick(rng, FRAMES['extreme'][idx])
            return frame.format(ext=EXTREME_WORDS[ref.side], noun=noun, side=ref.side)
        frame = _pick(rng, FRAMES['ordinal'][idx])
        return frame.format(ord=ORDINAL_WORDS[ref.ordinal], noun=noun, side=ref.side)
    rels = [_clause_text(c, split, rng) for c in ref.clauses]
    if len(rels) == 1:
        return _pick(rng, FRAMES['relation'][idx]).format(np=np_t, rel=rels[0])
    return _pick(rng, FRAMES['compound'][idx]).format(np=np_t, rel=rels[0], rel2=rels[1])


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


def _choose_multi(rng: np.random.Generator, multi: List[Referring], count: int,
                  exclude: Sequence[Referring]) -> List[Referring]:
    """Pick ``count`` multi-anchor structures: essential ones first, varied relations."""
    left = [r for r in multi if r not in exclude]
    chosen: List[Referring] = []
    for _ in range(count):
        if not left:
            break
        used = {c.relation for r in chosen + list(exclude) for c in r.clauses}
        fresh = [r for r in left if not {c.relation for c in r.clauses} & used] or left
        pick = fresh[int(rng.integers(min(len(fresh), 4)))]  # among the first (essential)
        chosen.append(pick)
        left.remove(pick)
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
        if config.multi_anchor is None:
            if len(pool) < need:
                return None
            test = _choose(rng, pool, config.test_per_object, ())
            train = _choose(rng, pool, config.train_per_object, test)
        else:
            multi = multi_anchor_structures(obj, objects, config)
            if len(pool) + len(multi) < need:
                return None
            n_test = config.test_per_object if \
                rng.uniform() < config.multi_anchor.test_fraction else 0
            test = _choose_multi(rng, multi, n_test, ())
            test += _choose(rng, pool, config.test_per_object - len(test), ())
            train = _choose_multi(rng, multi, config.multi_anchor.train, test)
            train += _choose(rng, pool, config.train_per_object - len(train), test)
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
