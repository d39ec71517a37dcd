"""Ground a parsed query in the object graph: which object, how sure, and how it was read.

Soft grounding (docs/LANGUAGE.md#grounding). Every object gets a score from independent pieces of
evidence, and no unknown word or unresolved anchor vetoes the answer:

- the **program**: the reading of ``parse.py`` run over the object graph, each fact a factor in
  (0, 1] per object: the target's noun (lexicon, then the sentence vector of the word; a word
  outside the lexicon that names nothing here carries no evidence), its colours and sizes,
  exclusions, relations to anchors, ordinals and superlatives. An object that fails a fact is
  multiplied by ``miss``; it is not removed. An anchor that names no annotated object is a
  **surface** when it is one ("on the table", "against the wall", "at the end of the counter":
  the support plane under the objects, the back of the scene) and is otherwise dropped, said in
  the interpretation, at a cost in confidence;
- the **known sentences**: the cosine of the query with each object's training sentences (the
  nearest-training-sentence lookup), weighted by ``sentence_weight``;
- the **referring field** (the paper's learned signal, when the caller gives it): the mean
  response probability of a sample of each object's Gaussians, weighted by ``field_weight``.

``logit(o) = sum of log(factor) + sentence_weight * cosine(o) + field_weight * field(o)``; the
answer is the object with the highest logit; its **confidence** is its softmax probability over the
objects at ``temperature`` times ``dropped_penalty`` per phrase said but not used. NO_MATCH only
when what was asked is clearly absent: a known kind that no object is, a stated colour no such
object has, an ordinal beyond the count, a relation to a resolved anchor that holds for no
candidate, an anchor of a known kind that is not here. AMBIGUOUS when the best two logits are
closer than ``-log(1 - ambiguity_margin)``. Shortcuts first: a query equal in meaning to a known
training sentence (cosine >= ``verbatim_similarity``) or exactly one object's own name names that
object.

**Plural targets** (``ParsedQuery.plural``: "all the cans", "every book on the shelf", "both
cans", "the two red cans", "the red cans"): the answer is a set, ``Grounding.targets``. The same
program runs (the noun, colour, size, exclusion and relation factors, each per object, so "the
cans left of the bowl" is every can left of the bowl); an object is a member when its evidence
is nearer the best object's than one failed fact below it, in log terms: ``score >= sqrt(miss)
* best`` (0.22 with ``miss`` 0.05). A failed fact (a factor of ``miss``) puts an object out, a
weaker fit (a synonym, a measured colour, a relation near its limit) does not; the known
sentences and the field, which name one object, only order the members. A stated count ("both",
"the three cans") that differs from the members' number is NO_MATCH ("asked for 3 red cans, 2
here"); a plural with one member answers it; "the two leftmost cans" / "the two biggest balls"
take the count in that order, "the bottles on the left" (no count) those on that side of the
middle of the members' span. Status OK, never AMBIGUOUS; the confidence is one minus the best
non-member's relative evidence (times ``dropped_penalty`` per phrase not used). The shortcuts
never answer a plural.
"""
from dataclasses import dataclass, field
import logging
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.language import lexicon as lx
from refersplat_ros.core.language.graph import (between_score, distance, GraphObject,
                                                ObjectGraph, order_key, Placed, relation_score,
                                                surface_factors)
from refersplat_ros.core.language.parse import (conjuncts, NounPhrase, one_edit, parse_query,
                                                ParsedQuery, plural, PRONOUNS, spoken_name,
                                                tokenize)
from refersplat_ros.core.scene.cameras import Camera

logger = logging.getLogger(__name__)

#: Values of ``GroundingConfig.grounding``.
GROUNDINGS = ('graph', 'field')
OK, AMBIGUOUS, NO_MATCH = 'ok', 'ambiguous', 'no_match'
#: Confidence of the shortcuts (a known sentence, an object's own name): their answers were
#: right on every training sentence of the language benchmark.
SHORTCUT_CONFIDENCE = 0.97
#: Confidence of a NO_MATCH because a relation to a present anchor holds for no object of the
#: kind (an absent kind or colour: 0.9): on blind set 3 most confident wrong answers were these.
RELATION_VETO_CONFIDENCE = 0.7


@dataclass
class GroundingConfig:
    """How queries are grounded (node parameters ``language.*``, CLI ``--grounding``).

    Attributes:
        grounding: 'graph' (default): this module over the object graph; 'field': the referring
            field alone, as in the paper (its ablations; checkpoints without objects).
        noun_threshold: Smallest noun match for an object to be named by the target's noun (1 =
            same word, 0.9 synonym, 0.85 more general word, below: sentence-vector similarity).
        ambiguity_margin: The best object's score must lead the next by this fraction (in
            probability) to be chosen alone; else the answer is AMBIGUOUS.
        verbatim_similarity: Cosine from which a query counts as a known sentence.
        fallback_similarity: Cosine from which the nearest known sentence answers a query
            whose target is clearly absent otherwise.
        max_candidates: Most candidates reported.
        sentence_weight: Weight of the known sentences' cosine in an object's logit.
        miss: Factor of an object that fails one fact of the query (a colour, a relation).
        temperature: Softmax temperature of the confidence.
        dropped_penalty: Confidence factor per phrase said but not used (an unknown word, an
            anchor that names nothing here).
        field_weight: Weight of the referring field's mean response probability per object
            (0: the field is not asked, no field pass per query).
    """

    grounding: str = 'graph'
    noun_threshold: float = 0.55
    ambiguity_margin: float = 0.15
    verbatim_similarity: float = 0.97
    fallback_similarity: float = 0.8
    max_candidates: int = 8
    sentence_weight: float = 2.0
    miss: float = 0.05
    temperature: float = 0.5
    dropped_penalty: float = 0.7
    field_weight: float = 1.0

    def validate(self) -> None:
        if self.grounding not in GROUNDINGS:
            raise ValueError(f'grounding must be one of {GROUNDINGS}, got {self.grounding!r}')
        for name in ('noun_threshold', 'ambiguity_margin', 'verbatim_similarity',
                     'fallback_similarity', 'miss', 'dropped_penalty'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f'{name} must be in [0, 1], got {value!r}')
        if self.ambiguity_margin >= 1.0:
            raise ValueError('ambiguity_margin must be < 1')
        if not (isinstance(self.sentence_weight, (int, float))
                and 0.0 <= self.sentence_weight <= 100.0):
            raise ValueError(f'sentence_weight must be in [0, 100], got {self.sentence_weight!r}')
        if not (isinstance(self.field_weight, (int, float)) and 0.0 <= self.field_weight <= 100.0):
            raise ValueError(f'field_weight must be in [0, 100], got {self.field_weight!r}')
        if not (isinstance(self.temperature, (int, float)) and 0.01 <= self.temperature <= 100):
            raise ValueError(f'temperature must be in [0.01, 100], got {self.temperature!r}')
        if self.miss <= 0.0:
            raise ValueError('miss must be > 0 (a failed fact lowers a score, never removes it)')
        if self.max_candidates < 1:
            raise ValueError('max_candidates must be >= 1')


@dataclass
class Grounding:
    """The answer of :meth:`Grounder.ground`."""

    status: str                                   # OK | AMBIGUOUS | NO_MATCH
    candidates: List[Tuple[int, float]] = field(default_factory=list)  # (graph position, prob.)
    interpretation: str = ''
    message: str = ''
    parsed: Optional[ParsedQuery] = None
    unnamed: bool = False   # NO_MATCH because the target's noun names nothing here
    confidence: float = 0.0  # OK/AMBIGUOUS: of the chosen object; NO_MATCH: that none fits
    dropped: List[str] = field(default_factory=list)  # phrases said but not used
    #: A plural target ("all the cans", "the two red cans", ``ParsedQuery.plural``): every
    #: object it denotes, (graph position, evidence relative to the best member in (0, 1]),
    #: best first; empty for a query about one object.
    targets: List[Tuple[int, float]] = field(default_factory=list)

    @property
    def chosen(self) -> Optional[int]:
        return self.candidates[0][0] if self.candidates else None


@dataclass
class _Evidence:
    """The program's factors per object, its steps, and a NO_MATCH reason when one applies."""

    scores: np.ndarray                  # [M] product of factors in (0, 1]
    steps: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)
    veto: Optional[str] = None
    unnamed: bool = False
    veto_confidence: float = 0.9
    #: The objects of the asked kind (noun, colours, sizes), before relations weigh in: a
    #: relation is absent (NO_MATCH) only when it holds for none of them, so one misread fact
    #: cannot take the right object out and let a second, right one veto the answer.
    kind: List[int] = field(default_factory=list)
    #: How many a plural target asked for ("the two cans nearest to the bowl"), else None.
    count: Optional[int] = None

    def plausible(self, share: float = 0.5) -> List[int]:
        """Objects within ``share`` of the best score (the candidates a pick chooses among)."""
        top = float(self.scores.max()) if len(self.scores) else 0.0
        return [int(k) for k in np.flatnonzero(self.scores >= share * top)] if top > 0 else []

    def stop(self, message: str, unnamed: bool = False, confidence: float = 0.9) -> '_Evidence':
        self.veto, self.unnamed, self.veto_confidence = message, unnamed, confidence
        return self


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
    """1 same word, 0.95 a kind of it ('box' for 'cereal box'), 0.9 synonym, 0.75 hypernym.

    A hypernym is clearly below a synonym: "dish" names a plate (synonym) before a bowl (a kind
    of dish), which it still names when no plate fits.
    """
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
            return 0.75
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
        self._referent: Optional[int] = None  # during ``ground``: what "it" stands for
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
        self._spoken_names = [re.sub(r'(?=((\s\d+)+))\1(?!$)|(\s\d+)+$', r'\1', obj.name.replace(
            '-', ' ').replace('_', ' ').lower()).strip() for obj in graph.objects]
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
        if best > 0.0 or not obj.heads or phrase.head in lx.KNOWN_NOUNS:
            return best  # a kind the lexicon knows is compared by the lexicon only
        # outside the lexicon: compare the word with the object's names by sentence vectors
        sims = self._name_similarity(phrase.head)
        near = max((sims.get(h, 0.0) for h in obj.heads), default=0.0)
        top = max(sims.values(), default=0.0)
        # only the names that the word is clearly closest to, and close enough
        return 0.9 * near if near >= 0.5 and near >= top - 0.05 else 0.0

    @staticmethod
    def colour_score(colour: str, obj: GraphObject) -> float:
        """1 when its own words give it this colour; else from its measured colour.

        Its own words (name, training target phrases) decide when they name a colour: another
        basic colour term is not this one ("the red mug" is not the orange mug, "the purple
        can" not the pink one); a colour without a basic term of its own (cyan) answers to its
        neighbours ("the blue bowl" for the cyan one, 0.45).
        """
        wanted = colour.split('|')  # a shade between two ('pink|purple') answers to either
        own = {c for said in obj.colours for c in said.split('|')}
        if own.intersection(wanted):
            return 1.0
        if own:
            return 0.45 if any(_loose(w, c) for w in wanted for c in own) else 0.0
        names = [n for n, _ in obj.measured]
        distances = [d for _, d in obj.measured]
        if names[0] in wanted:
            return 0.9
        if names[1] in wanted and distances[1] - distances[0] < 15.0:
            return 0.6
        return 0.45 if any(_loose(w, names[0]) for w in wanted) else 0.0

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
    def ground(self, text: str, camera: Optional[Camera] = None,
               field: Optional[np.ndarray] = None, referent: Optional[int] = None,
               referent_note: str = 'the last target') -> Grounding:
        """Ground one query (never raises on any text: unreadable text is a NO_MATCH).

        ``field``: the referring field's mean response probability of each object [M] (the
        caller's: ``ReferringModel`` samples each object's Gaussians), or None. ``referent``:
        the graph position of the object "it" / "that one" / "this" stand for (the object last
        pointed at or answered; ``referent_note`` says which, for the interpretation): a query
        that names nothing but it is that object, and an anchor that names nothing but it
        ("the cup left of it", "next to that one") is that object. Without a referent those
        words keep their reading.
        """
        self._referent = referent
        try:
            whole = self._ground(text, camera, field, referent_note)
            parts = conjuncts(text)
            if len(parts) > 1:
                listed = self._ground_list(parts, camera, field, referent, referent_note, whole)
                if listed is not None:
                    return listed
            return whole
        finally:
            self._referent = None

    def _ground_list(self, parts: List[str], camera, field, referent, referent_note: str,
                     whole: Grounding) -> Optional[Grounding]:
        """Ground a list of noun phrases ("the mug and the bowl"); the union is the answer.

        Each part is grounded alone (one object or a plural); "it" in a part is the object of
        the part before it ("the box and the ball on top of it"). A part that fits several
        objects equally (AMBIGUOUS) counts when one of them is already in the list ("the two
        big boxes, the green one and the orange one"). None (the sentence read as one phrase
        answers) when a part finds nothing or the parts name fewer than two objects; AMBIGUOUS
        (that part's candidates) when an ambiguous part is settled by nothing in the list.
        """
        names = [o.label for o in self.graph.objects]
        chosen: List[int] = []
        open_parts, lines, confidence, previous = [], [], 1.0, referent
        for k, part in enumerate(parts):
            said = parse_query(part)
            if k > 0 and _deictic(said.target) and not said.places:
                continue  # "the cyan ones, all of them": the part before, again
            self._referent = previous
            grounded = self._ground(part, camera, field,
                                    referent_note if k == 0 else 'the object named before')
            if grounded.status == NO_MATCH or not grounded.candidates:
                return None
            if grounded.targets:
                members = [t for t, _ in grounded.targets]
            elif grounded.status == OK:
                members = [grounded.chosen]
            else:  # AMBIGUOUS: the objects that fit about equally
                top = grounded.candidates[0][1]
                members = []
                open_parts.append((part, grounded, [c for c, p in grounded.candidates
                                                    if p >= 0.5 * top]))
            chosen += [m for m in members if m not in chosen]
            previous = members[0] if members else grounded.chosen
            lines.append(grounded.interpretation)
            confidence = min(confidence, grounded.confidence)
        for part, grounded, options in open_parts:
            if not set(options) & set(chosen):  # nothing in the list settles it: ask again
                return Grounding(AMBIGUOUS, grounded.candidates, ' AND '.join(lines),
                                 f"'{part}' fits {len(options)} objects equally well",
                                 whole.parsed, confidence=grounded.confidence)
        if len(chosen) < 2:
            return None
        targets = [(k, 1.0) for k in chosen]
        said = (' AND '.join(lines) + f' -> targets: {len(chosen)} listed: '
                + ', '.join(names[k] for k in chosen) + f' (confidence {confidence:.2f})')
        return Grounding(OK, list(targets), said, '', whole.parsed, confidence=confidence,
                         targets=targets)

    def _ground(self, text: str, camera, field, referent_note: str) -> Grounding:
        if self._referent is not None and not _points_back(text):
            self._referent = None  # no "it" / "that" here, or "the other one": not the referent
        parsed = parse_query(text)
        frame = self.graph.frame(camera)
        placed = self.graph.placed(frame)
        view = f'view: {frame.name}'
        sims = self.sentence_similarity(text)
        names = [o.label for o in self.graph.objects]
        cfg = self.config
        if self._referent is not None and _deictic(parsed.target) and not parsed.plural and \
                not parsed.places:
            return Grounding(OK, [(self._referent, 1.0)],
                             f'it = {names[self._referent]} ({referent_note}); {view}',
                             parsed=parsed, confidence=SHORTCUT_CONFIDENCE)
        # the shortcuts name one object: a plural query is always read by the program
        if len(sims) and sims.max() >= cfg.verbatim_similarity and not parsed.plural:
            winners = [int(i) for i in np.flatnonzero(sims >= sims.max() - 0.005)]
            if len(winners) == 1:
                return Grounding(OK, [(winners[0], float(sims[winners[0]]))],
                                 f'known sentence of {names[winners[0]]}; {view}', parsed=parsed,
                                 confidence=SHORTCUT_CONFIDENCE)
        said = spoken_name(text)
        named = [k for k, name in enumerate(self._spoken_names) if name == said]
        if len(named) == 1 and not parsed.plural:
            # exactly an object's own name ("green ball" for 'green-ball')
            return Grounding(OK, [(named[0], 1.0)], f'name of {names[named[0]]}; {view}',
                             parsed=parsed, confidence=SHORTCUT_CONFIDENCE)
        if not len(self.graph):
            return Grounding(NO_MATCH, interpretation=view, message='the scene has no objects',
                             parsed=parsed, confidence=1.0)
        evidence = self._program(parsed, placed)
        steps = '; '.join(evidence.steps + [f'dropped: {d}' for d in evidence.dropped])
        if evidence.veto is not None:
            best = int(np.argmax(sims))
            second = float(np.partition(sims, -2)[-2]) if len(sims) > 1 else 0.0
            # a noun that names nothing here: a known sentence close in meaning still answers
            # (not when a stated colour, count or relation is what is absent)
            if evidence.unnamed and sims[best] >= cfg.fallback_similarity \
                    and sims[best] - second >= 0.05 and not parsed.plural:
                return Grounding(OK, [(best, float(sims[best]))],
                                 f'nearest known sentence: {names[best]}; {view}', parsed=parsed,
                                 confidence=float(sims[best]))
            return Grounding(NO_MATCH, interpretation=f'{steps}; {view}',
                             message=evidence.veto, parsed=parsed, unnamed=evidence.unnamed,
                             confidence=evidence.veto_confidence, dropped=evidence.dropped)
        logits = np.log(np.maximum(evidence.scores, 1e-30)) + cfg.sentence_weight * sims
        if field is not None and cfg.field_weight > 0:
            logits = logits + cfg.field_weight * np.nan_to_num(
                np.clip(np.asarray(field, np.float64), 0.0, 1.0))
        shifted = (logits - logits.max()) / cfg.temperature
        probs = np.exp(shifted) / np.exp(shifted).sum()
        order = [int(k) for k in np.argsort(-logits, kind='stable')]
        gap = -math.log(1.0 - cfg.ambiguity_margin)
        close = [k for k in order if logits[k] >= logits[order[0]] - gap]
        confidence = float(probs[order[0]]) * cfg.dropped_penalty ** len(evidence.dropped)
        # reported: the objects still in the running (a twentieth of the best's probability)
        ranked = [(k, float(probs[k])) for k in order
                  if probs[k] >= 0.05 * probs[order[0]]][:cfg.max_candidates]
        if parsed.plural:
            return self._plural(parsed, evidence, order, ranked, f'{steps}; {view}')
        if len(close) > 1:
            message = (f"'only' but {len(close)} objects are a {parsed.target.describe()}"
                       if parsed.unique else f'{len(close)} objects fit equally well')
            chosen = ' -> ambiguous: ' + ', '.join(names[c] for c in close)
            return Grounding(AMBIGUOUS, ranked, f'{steps}; {view}{chosen}', message, parsed,
                             confidence=confidence, dropped=evidence.dropped)
        said = f'{steps}; {view} -> {names[order[0]]} (confidence {confidence:.2f})'
        return Grounding(OK, ranked, said, '', parsed,
                         confidence=confidence, dropped=evidence.dropped)

    def _plural(self, parsed: ParsedQuery, evidence: _Evidence, order: List[int],
                ranked: List[Tuple[int, float]], said: str) -> Grounding:
        """Answer a plural target: every member of the program's plausible set (module doc)."""
        cfg = self.config
        share = math.sqrt(cfg.miss)
        top = float(evidence.scores.max())
        members = set(evidence.plausible(share))
        targets = [(k, float(evidence.scores[k]) / top) for k in order if k in members]
        names = [self.graph.objects[k].label for k, _ in targets]
        what = parsed.target.describe()
        if parsed.count is not None and len(targets) != parsed.count:
            message = f'asked for {parsed.count} {plural_text(what)}, {len(targets)} here'
            return Grounding(NO_MATCH, interpretation=f'{said} -> {message}', message=message,
                             parsed=parsed, confidence=0.9, dropped=evidence.dropped)
        outside = [float(evidence.scores[k]) / top for k in order if k not in members]
        confidence = (1.0 - max(outside, default=0.0)) * cfg.dropped_penalty ** len(
            evidence.dropped)
        quantity = 'all' if parsed.count is None else f'{parsed.count} asked'
        line = (f'{said} -> targets: {len(targets)} x {what} ({quantity}): '
                f"{', '.join(names)} (confidence {confidence:.2f})")
        return Grounding(OK, ranked, line, '', parsed, confidence=confidence,
                         dropped=evidence.dropped, targets=targets)

    def _program(self, parsed: ParsedQuery, placed: List[Placed]) -> _Evidence:
        """Run the parsed query over the objects as factors (see the module docstring)."""
        objs = self.graph.objects
        evidence = _Evidence(np.ones(len(objs)), count=parsed.count if parsed.plural else None)
        target = parsed.target
        said = target.describe()
        evidence.steps.append(f'target: {said}')
        structural = bool(parsed.relations or parsed.ordinal or parsed.middle
                          or parsed.superlative or parsed.corner)
        if target.empty and not structural:
            return evidence.stop('nothing here matches: the query names no object', True)
        if not self._noun(target, evidence, structural):
            return evidence
        if not self._attributes(target, said, evidence):
            return evidence
        evidence.kind = evidence.plausible()
        for exclusion in parsed.exclusions:
            evidence.steps.append(f'except: {exclusion.describe()}')
            before = set(evidence.plausible())
            excluded = self.match_phrase(exclusion)
            for position in excluded:
                evidence.scores[position] *= self.config.miss ** 2
            if before and not before - set(excluded):
                return evidence.stop(f'every {said} is excluded')
        for rel in parsed.relations:
            if not self._relation(rel, said, evidence, placed):
                return evidence
        share = math.sqrt(self.config.miss) if parsed.plural else 0.5
        cands = {k: float(evidence.scores[k]) for k in evidence.plausible(share)}
        picked, note = (self._pick_plural(parsed, cands, placed) if parsed.plural
                        else self._pick(parsed, cands, placed))
        if note:
            evidence.steps.append(note)
            if not picked:
                return evidence.stop(f'no {said} fits: {note}')
            for k in cands:
                if k not in picked:
                    evidence.scores[k] *= self.config.miss
        if parsed.unique:
            evidence.steps.append('only')
        return evidence

    def _noun(self, target: NounPhrase, evidence: _Evidence, structural: bool) -> bool:
        """Factor the target's noun in; False when the query stops (a kind clearly absent)."""
        if target.head is None:
            return True
        cfg = self.config
        nouns = np.array([self.noun_score(target, o) for o in self.graph.objects])
        if nouns.max() < cfg.noun_threshold and target.head not in lx.KNOWN_NOUNS:
            # "the plaet": one typing slip from exactly one name of this scene
            slips = {h for o in self.graph.objects for h in o.heads
                     if ' ' not in h and len(target.head) >= 4 and one_edit(target.head, h)}
            if len(slips) == 1:
                word = slips.pop()
                evidence.steps.append(f"'{target.head}' read as '{word}'")
                target.head, target.compound = word, None
                nouns = np.array([self.noun_score(target, o) for o in self.graph.objects])
        if nouns.max() < cfg.noun_threshold:  # "the cup with a chipped rim": a known noun before
            for word in reversed(target.modifiers):
                if word in lx.KNOWN_NOUNS:
                    other = NounPhrase(head=word)
                    nouns = np.array([self.noun_score(other, o) for o in self.graph.objects])
                    evidence.dropped.append(f"'{target.head}'")
                    break
        if nouns.max() >= cfg.noun_threshold:
            evidence.scores *= np.where(nouns >= cfg.noun_threshold, nouns, cfg.miss)
            return True
        if target.head in lx.KNOWN_NOUNS or target.compound in lx.KNOWN_NOUNS:
            evidence.stop(f'nothing here is a {target.describe()}')
            return False
        if structural:  # a word we do not know; the rest of the query still says which one
            evidence.dropped.append(f"'{target.head}'")
            return True
        evidence.stop(f"nothing here matches '{target.head}'", unnamed=True, confidence=0.6)
        return False

    def _attributes(self, target: NounPhrase, said: str, evidence: _Evidence) -> bool:
        """Factor colours, negated colours and size words in; False when a colour is absent."""
        objs, miss = self.graph.objects, self.config.miss
        for colour in target.colours:
            scores = np.array([self.colour_score(colour, o) for o in objs])
            plausible = evidence.plausible()
            if scores[plausible].max() <= 0.0:
                evidence.stop(f'nothing here is a {said}')
                return False
            evidence.scores *= np.where(scores > 0.0, scores, miss)
        for colour in target.not_colours:
            scores = np.array([self.colour_score(colour, o) for o in objs])
            evidence.scores *= np.where(scores >= 0.6, miss, 1.0)
        if target.sizes:
            cands = {k: float(evidence.scores[k]) for k in evidence.plausible()}
            kept = _sizes(target.sizes, cands, objs)
            for k in cands:
                if kept and k not in kept:
                    evidence.scores[k] *= miss
        return True

    def _relation(self, rel, said: str, evidence: _Evidence, placed: List[Placed]) -> bool:
        """Factor one relation in; False when it holds for no candidate of a present anchor."""
        objs, miss = self.graph.objects, self.config.miss
        name = rel.op.replace('_', ' ')
        described = ' and '.join(a.describe() for a in rel.anchors)
        anchor_sets = [{self._referent: 1.0} if self._referent is not None and _deictic(a)
                       else self.match_phrase(a) for a in rel.anchors]
        if rel.op == 'between' and len(anchor_sets) == 1:
            anchor_sets = anchor_sets * 2  # "between the two bowls"
        missing = [a for a, s in zip(rel.anchors, anchor_sets) if not s]
        if missing:
            return self._unresolved(rel, missing[0], f'{name} {described}', evidence, placed)
        plausible = evidence.plausible()
        scores = np.zeros(len(objs))
        used = set()
        if rel.op in lx.SUPERLATIVE_RELATIONS:
            anchors = anchor_sets[0]
            dist = {}
            for c in plausible:
                options = [distance(placed[c], placed[a]) for a in anchors if a != c]
                if options:
                    dist[c] = min(options)
            if not dist:
                evidence.stop(f'no {said} is {name} {described}')
                return False
            sign = 1.0 if rel.op == 'nearest_to' else -1.0
            order = sorted(dist, key=lambda c: sign * dist[c])
            best = order[0]
            keep = {best}
            if evidence.count:  # "the two cans nearest to the bowl"
                keep = set(order[:evidence.count])
            elif len(order) > 1 and abs(dist[order[1]] - dist[best]) < \
                    0.1 * max(placed[best].radius, 1e-9):
                keep.add(order[1])  # equally near: both stay, the answer is ambiguous
            for c in plausible:
                if (c in keep) == rel.negated:
                    evidence.scores[c] *= miss
            anchor_names = ', '.join(objs[a].label for a in anchors)
            evidence.steps.append(f"{'not ' if rel.negated else ''}{name}: {anchor_names}")
            return True
        for c in range(len(objs)):
            best, pair = 0.0, ()
            if rel.op == 'between':
                for a in anchor_sets[0]:
                    for b in anchor_sets[1]:
                        if len({a, b, c}) == 3:
                            s = between_score(placed[c], placed[a], placed[b])
                            if s > best:
                                best, pair = s, (a, b)
            else:
                for a, a_score in anchor_sets[0].items():
                    if a != c:
                        s = relation_score(rel.op, placed[c], placed[a]) * min(1.0, a_score + 0.1)
                        if s > best:
                            best, pair = s, (a,)
            scores[c] = best
            if best > 0 and c in plausible:
                used.update(pair)
        anchor_names = ', '.join(objs[a].label for a in sorted(used)) or described
        note = f"{'not ' if rel.negated else ''}{name}: {anchor_names}"
        evidence.steps.append(note)
        holds = scores[evidence.kind or plausible] > 0.0
        if (not rel.negated and not holds.any()) or (rel.negated and holds.all()):
            if rel.after_anchor:  # "in front of the can on the shelf": the can's, not ours
                evidence.steps.pop()
                evidence.dropped.append(f'{note} (read as about the anchor before it)')
                return True
            # less sure than an absent kind or colour: relations are the hardest part to read
            evidence.stop(f'no {said} is {note}', confidence=RELATION_VETO_CONFIDENCE)
            return False
        evidence.scores *= (np.where(scores > 0.0, miss, 1.0) if rel.negated
                            else np.where(scores > 0.0, scores, miss))
        return True

    def _unresolved(self, rel, anchor: NounPhrase, said: str, evidence: _Evidence,
                    placed: List[Placed]) -> bool:
        """Read an anchor no annotated object matches: a surface, an absent kind, or dropped."""
        word = anchor.head
        factors = surface_factors(rel.op, word, placed) if not rel.negated else None
        if factors is not None:
            evidence.scores *= factors
            evidence.steps.append(f'{said} (surface)')
            return True
        if word is not None and word not in lx.SURFACE_WORDS and (
                word in lx.KNOWN_NOUNS or anchor.compound in lx.KNOWN_NOUNS):
            evidence.steps.append(said)
            evidence.stop(f'no {anchor.describe()} here')
            return False
        evidence.dropped.append(f'{said} (no {anchor.describe()} here)')
        return True

    def _pick_plural(self, parsed: ParsedQuery, cands: Dict[int, float], placed: List[Placed]):
        """Pick among a plural's candidates: the N first from a side or the N most, or a side.

        "the two leftmost cans", "the first three bowls from the right", "the two biggest
        balls": the count in that order; "the bottles on the left" (no count): those on that
        side of the middle of the candidates' span along its axis.
        """
        count, objs = parsed.count, self.graph.objects
        if parsed.not_position or parsed.corner is not None or (
                parsed.middle and parsed.superlative is None):
            return self._pick_in(parsed, cands, placed)
        if parsed.ordinal is not None and parsed.side is not None:
            order = sorted(cands, key=lambda c: order_key(parsed.side, placed[c]))
            if count is not None:
                start = parsed.ordinal - 1
                picked = order[start:start + count]
                note = f'{count} from the {parsed.side}'
                if len(picked) < count:
                    return {}, f'{note}, but only {len(order)} here'
                return {c: cands[c] for c in picked}, note
            keys = {c: order_key(parsed.side, placed[c]) for c in order}
            low, high = min(keys.values()), max(keys.values())
            if high - low <= max(placed[c].radius for c in order):
                return dict(cands), f'on the {parsed.side}'  # side by side: all of them
            middle = 0.5 * (low + high)
            return ({c: cands[c] for c in order if keys[c] < middle},
                    f'on the {parsed.side}')
        if parsed.superlative is not None:
            dim, sign = parsed.superlative
            order = sorted(cands, key=lambda c: -sign * _dimension(dim, objs[c]))
            picked = order[:count or 1]
            return {c: cands[c] for c in picked}, f"{'most' if sign > 0 else 'least'} {dim}"
        return cands, ''

    def _pick(self, parsed: ParsedQuery, cands: Dict[int, float], placed: List[Placed]):
        if parsed.group_side is not None and len(cands) > 2:
            # "of the two cans on the left, the right one": the group first, then the pick
            order = sorted(cands, key=lambda c: order_key(parsed.group_side, placed[c]))
            size = min(parsed.group_count or (len(order) + 1) // 2, len(order))
            picked, note = self._pick_in(parsed, {c: cands[c] for c in order[:size]}, placed)
            return picked, f'of the {size} on the {parsed.group_side}: {note}'
        return self._pick_in(parsed, cands, placed)

    def _pick_in(self, parsed: ParsedQuery, cands: Dict[int, float], placed: List[Placed]):
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
        if parsed.middle and len(cands) >= 3 and parsed.superlative is None:
            # ("the taller can in the middle": the comparative is what tells them apart)
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


def plural_text(phrase: str) -> str:
    """Return a noun phrase with its last word in the plural ('red can' -> 'red cans')."""
    head, _, last = phrase.rpartition(' ')
    return f'{head} {plural(last)}'.strip()


def _points_back(text: str) -> bool:
    """Tell whether ``text`` points back at the referent ("pick it up", "next to that one").

    A pronoun ("it", "its", "that", ...) and no word that points away (``lexicon.OTHER_WORDS``:
    "the other one", "the rest").
    """
    words = set(tokenize(text))
    return bool(words & (PRONOUNS | {'its'})) and not words & lx.OTHER_WORDS


def _deictic(phrase: NounPhrase) -> bool:
    """Tell whether a phrase names nothing but a pointed-at thing ("it", "that one", "this").

    A bare "one" ("next to that one") counts: the parser gives it the kind spoken of, but
    nothing of its own.
    """
    return ((phrase.head is None or phrase.one) and not phrase.colours
            and not phrase.not_colours and not phrase.sizes and not phrase.modifiers
            and not phrase.not_nouns)


def _loose(a: str, b: str) -> bool:
    """Tell whether colours a and b are neighbours one of which has no basic term (cyan)."""
    return (frozenset((a, b)) in lx.COLOUR_NEIGHBOURS
            and not (a in lx.BASIC_COLOURS and b in lx.BASIC_COLOURS))


def _dimension(dim: str, obj: GraphObject) -> float:
    """Return an object's size along a dimension of ``lexicon.SIZE_WORDS`` / ``SUPERLATIVES``.

    'volume' ("big", "small") is the extent people see, the larger of the longer horizontal
    side and the height: a big plate is wide, not voluminous.
    """
    return {'height': obj.height, 'length': obj.length, 'top': obj.top}.get(
        dim, max(obj.length, obj.height))


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
