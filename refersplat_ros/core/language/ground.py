"""Ground a parsed query in the object graph: which object, how sure, and how it was read.

Order of the program a query becomes (docs/LANGUAGE.md#grounding):

1. A query equal in meaning to a known training sentence (sentence-vector cosine >=
   ``verbatim_similarity``) names that sentence's object; a query that is exactly one object's
   name ("the green ball" for 'green-ball', not for twins 'red-can' / 'red-can-2') names it.
2. Target candidates: objects whose name matches the target's noun (the same word, a synonym, a
   more general word such as "fruit", or, for words outside the lexicon, a close sentence-vector
   of the word), then those that have its colours and not its negated colours, minus exclusions
   ("other than the red one").
3. Relations filter the candidates geometrically in the view (``graph.relation_score``): a
   candidate stays when it stands in the relation to at least one object matching the anchor
   phrase; "not next to" keeps those that do not. "nearest to" / "farthest from" pick the
   extreme.
4. Size words compare the remaining candidates ("the small ball" = the smaller balls);
   ordinals ("second from the back"), extremes ("leftmost", "on the left"), "middle" and
   superlatives ("tallest") pick by position or size; "the only ..." requires one candidate.
5. One candidate left, or a best one ahead by ``ambiguity_margin``: OK. Several equally good:
   AMBIGUOUS with all of them. None: NO_MATCH with the step that removed the last one.

When the target's noun matches nothing the nearest known sentence still answers if it is close
(``fallback_similarity``); otherwise NO_MATCH says which word named nothing here.
"""
from dataclasses import dataclass, field
import logging
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.language import lexicon as lx
from refersplat_ros.core.language.graph import (between_score, distance, GraphObject,
                                                ObjectGraph, order_key, Placed, relation_score)
from refersplat_ros.core.language.parse import NounPhrase, parse_query, ParsedQuery, spoken_name
from refersplat_ros.core.scene.cameras import Camera

logger = logging.getLogger(__name__)

#: Values of ``GroundingConfig.grounding``.
GROUNDINGS = ('graph', 'field')
OK, AMBIGUOUS, NO_MATCH = 'ok', 'ambiguous', 'no_match'


@dataclass
class GroundingConfig:
    """How queries are grounded (node parameters ``language.*``, CLI ``--grounding``).

    Attributes:
        grounding: 'graph' (default): this module over the object graph; 'field': the referring
            field alone, as in the paper (its ablations; checkpoints without objects).
        noun_threshold: Smallest noun match for an object to be a candidate (1 = same word,
            0.9 synonym, 0.85 more general word, below: sentence-vector similarity of words).
        ambiguity_margin: A best candidate must lead the next by this fraction of its score to
            be chosen alone; else the answer is AMBIGUOUS.
        verbatim_similarity: Cosine from which a query counts as a known sentence.
        fallback_similarity: Cosine from which the nearest known sentence answers a query
            whose noun matched nothing.
        max_candidates: Most candidates reported.
    """

    grounding: str = 'graph'
    noun_threshold: float = 0.55
    ambiguity_margin: float = 0.15
    verbatim_similarity: float = 0.97
    fallback_similarity: float = 0.8
    max_candidates: int = 8

    def validate(self) -> None:
        if self.grounding not in GROUNDINGS:
            raise ValueError(f'grounding must be one of {GROUNDINGS}, got {self.grounding!r}')
        for name in ('noun_threshold', 'ambiguity_margin', 'verbatim_similarity',
                     'fallback_similarity'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f'{name} must be in [0, 1], got {value!r}')
        if self.max_candidates < 1:
            raise ValueError('max_candidates must be >= 1')


@dataclass
class Grounding:
    """The answer of :meth:`Grounder.ground`."""

    status: str                                   # OK | AMBIGUOUS | NO_MATCH
    candidates: List[Tuple[int, float]] = field(default_factory=list)  # (graph position, score)
    interpretation: str = ''
    message: str = ''
    parsed: Optional[ParsedQuery] = None
    unnamed: bool = False   # NO_MATCH because the target's noun names nothing here

    @property
    def chosen(self) -> Optional[int]:
        return self.candidates[0][0] if self.candidates else None


# ------------------------------------------------------------------------------ words
_GROUPS: Dict[str, List[frozenset]] = {}
for _group in lx.SYNONYM_GROUPS:
    for _word in _group:
        _GROUPS.setdefault(_word, []).append(_group)


def _forms(phrase: str) -> List[str]:
    """Return a name and its last word ('cereal box' -> ['cereal box', 'box'])."""
    parts = phrase.split()
    return [phrase] if len(parts) == 1 else [phrase, parts[-1]]


def lexical_match(query: str, name: str) -> float:
    """1 same word, 0.95 a kind of it ('box' for 'cereal box'), 0.9 synonym, 0.85 hypernym."""
    if query == name:
        return 1.0
    q_forms, n_forms = _forms(query), _forms(name)
    if query == n_forms[-1]:
        return 0.95
    if name == q_forms[-1]:
        return 0.9
    for q in q_forms:
        for group in _GROUPS.get(q, ()):
            if any(n in group for n in n_forms):
                return 0.9
    for q in q_forms:
        kinds = lx.HYPERNYMS.get(q)
        if kinds and any(n in kinds for n in n_forms):
            return 0.85
    return 0.0


class Grounder:
    """Grounds queries in an :class:`ObjectGraph` (see the module docstring).

    Args:
        graph: The scene's objects.
        embed: Function from a list of texts to unit sentence vectors ``[S, D]`` (the text
            encoder's ``sentence_embeddings``), used for known sentences and unknown words.
        config: Thresholds.
    """

    def __init__(self, graph: ObjectGraph, embed, config: Optional[GroundingConfig] = None):
        self.graph = graph
        self.embed = embed
        self.config = config or GroundingConfig()
        self.config.validate()
        texts, owners = [], []
        for position, obj in enumerate(graph.objects):
            for text in obj.sentences:
                texts.append(text)
                owners.append(position)
        self._owners = np.asarray(owners, np.int64)
        self._known = (np.asarray(embed(texts), np.float32) if texts
                       else np.zeros((0, 1), np.float32))
        self._word_cache: Dict[str, Dict[str, float]] = {}
        # object names as spoken: 'red-can-2' -> 'red can' (the twin number is not said)
        self._spoken_names = [re.sub(r'(\s\d+)+$', '', obj.name.replace('-', ' ').replace(
            '_', ' ').lower()).strip() for obj in graph.objects]
        names = sorted({h for obj in graph.objects for h in obj.heads})
        self._names = names
        self._name_vectors = (np.asarray(embed(names), np.float32) if names
                              else np.zeros((0, 1), np.float32))

    # ---------------------------------------------------------------- scores
    def sentence_similarity(self, text: str) -> np.ndarray:  # [M] max cosine per object
        """Largest cosine between ``text`` and each object's known sentences (0 without)."""
        best = np.zeros(len(self.graph), np.float32)
        if len(self._owners) == 0:
            return best
        vector = np.asarray(self.embed([text]), np.float32)[0]
        cos = self._known @ vector
        np.maximum.at(best, self._owners, cos)
        return best

    def _name_similarity(self, word: str) -> Dict[str, float]:
        """Return the cosine of a word with each object name of the scene (cached per word)."""
        cached = self._word_cache.get(word)
        if cached is None:
            vector = np.asarray(self.embed([word]), np.float32)[0]
            cached = dict(zip(self._names, (self._name_vectors @ vector).tolist()))
            if len(self._word_cache) < 4096:
                self._word_cache[word] = cached
        return cached

    def noun_score(self, phrase: NounPhrase, obj: GraphObject) -> float:
        """How well the phrase's noun names ``obj`` (0 = not at all; generic = 0.6)."""
        if phrase.head is None:
            return 0.6 if (phrase.generic or phrase.colours or phrase.sizes) else 0.0
        queries = [q for q in (phrase.compound, phrase.head) if q]
        best = 0.0
        for name in obj.heads:
            for q in queries:
                best = max(best, lexical_match(q, name) * (1.0 if q == queries[0] else 0.97))
        if best > 0.0 or not obj.heads:
            return best
        # outside the lexicon: compare the word with the object's names by sentence vectors
        sims = self._name_similarity(phrase.head)
        near = max((sims.get(h, 0.0) for h in obj.heads), default=0.0)
        top = max(sims.values(), default=0.0)
        # only the names that the word is clearly closest to, and close enough
        return 0.9 * near if near >= 0.5 and near >= top - 0.05 else 0.0

    @staticmethod
    def colour_score(colour: str, obj: GraphObject) -> float:
        """1 when its sentences give it this colour; else from its measured colour."""
        if colour in obj.colours:
            return 1.0
        names = [n for n, _ in obj.measured]
        distances = [d for _, d in obj.measured]
        if obj.colours and not any(frozenset((colour, c)) in lx.COLOUR_NEIGHBOURS
                                   for c in obj.colours) and names[0] != colour:
            return 0.0  # its own sentences call it something else
        if names[0] == colour:
            return 0.9
        if names[1] == colour and distances[1] - distances[0] < 15.0:
            return 0.6
        if frozenset((colour, names[0])) in lx.COLOUR_NEIGHBOURS:
            return 0.45
        return 0.0

    def match_phrase(self, phrase: NounPhrase) -> Dict[int, float]:
        """Return the objects (graph positions) a noun phrase names, with scores."""
        out = {}
        threshold = self.config.noun_threshold
        for position, obj in enumerate(self.graph.objects):
            score = self.noun_score(phrase, obj)
            if score < threshold:
                continue
            for colour in phrase.colours:
                score *= self.colour_score(colour, obj)
            for colour in phrase.not_colours:
                if self.colour_score(colour, obj) >= 0.6:
                    score = 0.0
            if score >= 0.4 * threshold:
                out[position] = score
        return _sizes(phrase.sizes, out, self.graph.objects)

    # ---------------------------------------------------------------- the program
    def ground(self, text: str, camera: Optional[Camera] = None) -> Grounding:
        """Ground one query (never raises on any text: unreadable text is a NO_MATCH)."""
        parsed = parse_query(text)
        frame = self.graph.frame(camera)
        placed = self.graph.placed(frame)
        view = f'view: {frame.name}'
        sims = self.sentence_similarity(text)
        names = [o.label for o in self.graph.objects]
        cfg = self.config
        if len(sims) and sims.max() >= cfg.verbatim_similarity:
            winners = [int(i) for i in np.flatnonzero(sims >= sims.max() - 0.005)]
            if len(winners) == 1:
                return Grounding(OK, [(winners[0], float(sims[winners[0]]))],
                                 f'known sentence of {names[winners[0]]}; {view}', parsed=parsed)
        said = spoken_name(text)
        named = [k for k, name in enumerate(self._spoken_names) if name == said]
        if len(named) == 1:  # exactly an object's own name ("green ball" for 'green-ball')
            return Grounding(OK, [(named[0], 1.0)], f'name of {names[named[0]]}; {view}',
                             parsed=parsed)
        result = self._program(parsed, placed)
        if result.unnamed:
            best = int(np.argmax(sims)) if len(sims) else -1
            second = float(np.partition(sims, -2)[-2]) if len(sims) > 1 else 0.0
            if best >= 0 and sims[best] >= cfg.fallback_similarity and sims[best] - second >= 0.05:
                return Grounding(OK, [(best, float(sims[best]))],
                                 f'nearest known sentence: {names[best]}; {view}', parsed=parsed)
        if result.status == AMBIGUOUS and len(sims):
            top = [c for c, _ in result.candidates]
            ranked = sorted(top, key=lambda c: -sims[c])
            if sims[ranked[0]] - sims[ranked[1]] >= 0.08 and not parsed.unique:
                # the words the program did not use (a material, a label) tell them apart
                chosen = ranked[0]
                result = Grounding(OK, [(chosen, dict(result.candidates)[chosen])],
                                   result.interpretation + '; closest known sentence decides',
                                   parsed=parsed)
        chosen = f' -> {names[result.chosen]}' if result.chosen is not None else ''
        if result.status == AMBIGUOUS:
            chosen = ' -> ambiguous: ' + ', '.join(names[c] for c, _ in result.candidates)
        result.interpretation = f'{result.interpretation}; {view}{chosen}'
        result.candidates = result.candidates[:cfg.max_candidates]
        result.parsed = parsed
        return result

    def _program(self, parsed: ParsedQuery, placed: List[Placed]) -> Grounding:
        objs = self.graph.objects
        target = parsed.target
        said = target.describe()
        steps = [f'target: {said}']
        if target.head is None and not target.generic and not target.colours \
                and not target.sizes:
            return Grounding(NO_MATCH, interpretation='; '.join(steps),
                             message='nothing here matches: the query names no object',
                             unnamed=True)
        cands = self.match_phrase(target)
        if not cands:
            named = target.head is not None and any(
                self.noun_score(target, o) >= self.config.noun_threshold for o in objs)
            message = (f'nothing here is a {said}' if named
                       else f"nothing here matches '{target.head or said}'")
            return Grounding(NO_MATCH, interpretation='; '.join(steps), message=message,
                             unnamed=not named)
        for exclusion in parsed.exclusions:
            for position in self.match_phrase(exclusion):
                cands.pop(position, None)
            steps.append(f'except: {exclusion.describe()}')
            if not cands:
                return Grounding(NO_MATCH, interpretation='; '.join(steps),
                                 message=f'every {said} is excluded')
        for rel in parsed.relations:
            cands, note = self._relation(rel, cands, placed)
            steps.append(note)
            if not cands:
                return Grounding(NO_MATCH, interpretation='; '.join(steps),
                                 message=f'no {said} is {note}')
        cands, pick_note = self._pick(parsed, cands, placed)
        if pick_note:
            steps.append(pick_note)
        if not cands:
            return Grounding(NO_MATCH, interpretation='; '.join(steps),
                             message=f'no {said} fits: {pick_note}')
        ranked = sorted(cands.items(), key=lambda kv: -kv[1])
        floor = (1.0 - self.config.ambiguity_margin) * ranked[0][1]
        if len(ranked) > 1 and ranked[1][1] > floor:
            close = [kv for kv in ranked if kv[1] > floor]
            message = (f"'only' but {len(close)} objects are a {said}" if parsed.unique
                       else f'{len(close)} objects fit equally well')
            return Grounding(AMBIGUOUS, close + [kv for kv in ranked if kv not in close],
                             '; '.join(steps), message)
        return Grounding(OK, ranked, '; '.join(steps))

    def _relation(self, rel, cands: Dict[int, float], placed: List[Placed]):
        objs = self.graph.objects
        name = rel.op.replace('_', ' ')
        anchor_sets = [self.match_phrase(a) for a in rel.anchors]
        if rel.op == 'between' and len(anchor_sets) == 1:
            anchor_sets = anchor_sets * 2  # "between the two bowls"
        described = ' and '.join(a.describe() for a in rel.anchors)
        if any(not s for s in anchor_sets):
            return {}, f'{name} {described} (no {described} here)'
        kept: Dict[int, float] = {}
        if rel.op in lx.SUPERLATIVE_RELATIONS:
            anchors = anchor_sets[0]
            dist = {}
            for c in cands:
                options = [distance(placed[c], placed[a]) for a in anchors if a != c]
                if options:
                    dist[c] = min(options)
            if not dist:
                return {}, f'{name} {described}'
            sign = 1.0 if rel.op == 'nearest_to' else -1.0
            order = sorted(dist, key=lambda c: sign * dist[c])
            if rel.negated:
                kept = {c: cands[c] for c in order[1:]}
            else:
                best = order[0]
                kept = {best: cands[best]}
                if len(order) > 1:
                    gap = abs(dist[order[1]] - dist[best])
                    scale = 0.1 * max(placed[best].radius, 1e-9)
                    if gap < scale:  # equally near: both stay, the answer is ambiguous
                        kept[order[1]] = cands[order[1]]
            anchor_names = ', '.join(objs[a].label for a in anchors)
            return kept, f"{'not ' if rel.negated else ''}{name}: {anchor_names}"
        used = set()
        for c, score in cands.items():
            if rel.op == 'between':
                best = 0.0
                for a in anchor_sets[0]:
                    for b in anchor_sets[1]:
                        if len({a, b, c}) == 3:
                            s = between_score(placed[c], placed[a], placed[b])
                            if s > best:
                                best, pair = s, (a, b)
                if best > 0:
                    used.update(pair)
            else:
                best = 0.0
                for a, a_score in anchor_sets[0].items():
                    if a == c:
                        continue
                    s = relation_score(rel.op, placed[c], placed[a]) * min(1.0, a_score + 0.1)
                    if s > best:
                        best, anchor = s, a
                if best > 0:
                    used.add(anchor)
            if rel.negated:
                if best == 0.0:
                    kept[c] = score
            elif best > 0.0:
                kept[c] = score * best
        anchor_names = ', '.join(objs[a].label for a in sorted(used)) or described
        return kept, f"{'not ' if rel.negated else ''}{name}: {anchor_names}"

    def _pick(self, parsed: ParsedQuery, cands: Dict[int, float], placed: List[Placed]):
        objs = self.graph.objects
        if parsed.corner is not None and parsed.ordinal == 1 and len(cands) > 1:
            # "the back right one": the best in both orders (sum of ranks)
            rank = {c: 0 for c in cands}
            for side in (parsed.side, parsed.corner):
                for k, c in enumerate(sorted(cands, key=lambda c: order_key(side, placed[c]))):
                    rank[c] += k
            best = min(rank.values())
            return ({c: cands[c] for c in cands if rank[c] == best},
                    f'#1 from the {parsed.side} {parsed.corner}')
        if parsed.ordinal is not None and parsed.side is not None:
            order = sorted(cands, key=lambda c: order_key(parsed.side, placed[c]))
            note = f'#{parsed.ordinal} from the {parsed.side}'
            if parsed.ordinal > len(order):
                return {}, f'{note}, but only {len(order)} here'
            k = parsed.ordinal - 1
            if parsed.not_position:
                return {c: cands[c] for c in order if c != order[k]}, 'not ' + note
            chosen = {order[k]: cands[order[k]]}
            keys = [order_key(parsed.side, placed[c]) for c in order]
            tie = 0.25 * placed[order[k]].radius
            for j in (k - 1, k + 1):
                if 0 <= j < len(order) and abs(keys[j] - keys[k]) < tie:
                    chosen[order[j]] = cands[order[k]]
            return chosen, note
        if parsed.middle and len(cands) >= 3:
            axis = 'left'
            order = sorted(cands, key=lambda c: order_key(axis, placed[c]))
            mid = len(order) // 2
            picks = order[mid:mid + 1] if len(order) % 2 else order[mid - 1:mid + 1]
            return {c: cands[c] for c in picks}, 'middle'
        if parsed.superlative is not None:
            dim, sign = parsed.superlative
            key = {c: _dimension(dim, objs[c]) for c in cands}
            best = max(cands, key=lambda c: sign * key[c])
            return {best: cands[best]}, f"{'most' if sign > 0 else 'least'} {dim}"
        return cands, ''


def _dimension(dim: str, obj: GraphObject) -> float:
    """Return an object's size along a dimension of ``lexicon.SIZE_WORDS`` / ``SUPERLATIVES``."""
    return {'height': obj.height, 'length': obj.length, 'top': obj.top}.get(dim, obj.volume)


def _sizes(sizes: Sequence[Tuple[str, int]], cands: Dict[int, float],
           objs: List[GraphObject]) -> Dict[int, float]:
    """Keep the candidates a size word fits ("small" = the smaller ones of a mixed set)."""
    for dim, sign in sizes:
        said = [c for c in cands if (dim, sign) in objs[c].sizes]
        contra = [c for c in cands if (dim, -sign) in objs[c].sizes]
        if said and len(said) < len(cands):
            cands = {c: cands[c] for c in cands if c not in contra or c in said}
        if len(cands) < 2:
            continue
        values = {c: _dimension(dim, objs[c]) for c in cands}
        low, high = min(values.values()), max(values.values())
        if high <= 1.3 * max(low, 1e-12):
            continue  # all alike: the word does not separate them
        split = math.sqrt(max(low, 1e-12) * high)
        cands = {c: s for c, s in cands.items() if (values[c] < split) == (sign < 0)}
    return cands
