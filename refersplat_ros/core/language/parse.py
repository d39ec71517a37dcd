"""Read a referring expression into target / attributes / relations / ordinal (``ParsedQuery``).

A small rule-based reader over the word classes of ``lexicon.py``, no statistical tagger: it
never raises on any text, and what it read is one line (``ParsedQuery.describe``, the start of
every answer's interpretation). Steps (docs/LANGUAGE.md#parser):

1. Normalise: lower case, contractions ("isn't" -> "is not"), hyphenated forms ("left-most",
   "left-hand"), punctuation kept only as clause boundaries; request prefixes ("could you pick
   up", "please find") are dropped.
2. Mark phrases, longest first: side relations "(to|on|at) the [far] left [hand] [side] of",
   side markers "on the left" / "from the back" / "the front ..." (no "of": an ordinal or an
   extreme), the relation phrases of the lexicon, exclusions ("other than"), negations, ordinals,
   superlatives, "only".
3. Split at the relation phrases: the words before the first are the target's noun phrase, the
   words after each are its anchor(s) ("between A and B" has two). A relative clause ("that is
   ...", "which ...") or a clause boundary (",", "and" before a new relation) ends a noun phrase;
   what a clause says about colour, size or negation still applies to the target.
4. A noun phrase's head is its last content word before any clause (plural folded to singular);
   colour and size words are attributes; other modifiers are kept for lexical matching.
"""
import colorsys
from dataclasses import dataclass, field
import math
import re
from typing import List, Optional, Sequence, Tuple

from refersplat_ros.core.language import lexicon as lx

#: Words that end a noun phrase and open a clause about it.
CLAUSE_MARKERS = frozenset({'that', 'which', 'who', 'whose', 'where', 'while', 'whilst',
                            'being', 'having', 'when'})
SIDE_INTRO = frozenset({'to', 'on', 'at', 'towards', 'toward', 'from', 'in', 'nearer', 'near',
                        'closer', 'closest', 'nearest', 'farthest', 'furthest', 'most', 'by',
                        'off', 'over', 'out', 'more', 'further', 'farther', 'most'})
#: Words that stand for a noun phrase said before ("the plate in front of it").
PRONOUNS = frozenset({'it', 'them', 'this', 'that', 'these', 'those', 'itself'})
#: Words after which a target's own phrase names a second object that a relation with a pronoun
#: anchor is about: "the box with the mug on its right" = the box left of the mug.
HAVING = frozenset({'with', 'has', 'have', 'having', 'got'})
#: After a HAVING word: nothing of that kind ("with nothing on it", "with no lid on top of it").
_NONE = frozenset({'nothing', 'no', 'none', 'nobody'})
#: A relation seen from its anchor: "B is right of A" = "A is left of B".
INVERSE = {'left_of': 'right_of', 'right_of': 'left_of', 'in_front_of': 'behind',
           'behind': 'in_front_of', 'on_top_of': 'under', 'above': 'under', 'under': 'on_top_of',
           'next_to': 'next_to'}
SIDE_FILLER = frozenset({'the', 'far', 'very', 'extreme', 'hand', 'handed', 'side', 'edge',
                         'end', 'most', 'part', 'corner'})
MAX_WORDS = 80


@dataclass
class NounPhrase:
    """One noun phrase: head noun, attributes and the words it was read from."""

    head: Optional[str] = None          # singular head noun; None when only generic/no noun
    compound: Optional[str] = None      # modifier + head when both are content words
    generic: bool = False               # 'thing', 'object', 'one', ...
    colours: List[str] = field(default_factory=list)       # basic colours
    not_colours: List[str] = field(default_factory=list)   # "not red"
    sizes: List[Tuple[str, int]] = field(default_factory=list)  # (dimension, +1 / -1)
    modifiers: List[str] = field(default_factory=list)     # other content words
    not_nouns: List[str] = field(default_factory=list)     # "that is not a mug"
    pronoun: bool = False               # only "it" / "that": refers to a phrase said before
    one: bool = False                   # "the red one": the kind is the one spoken of
    plural: bool = False                # head said in the plural ("cans", "the red ones")

    @property
    def empty(self) -> bool:
        return self.head is None and not self.generic and not self.colours and not self.sizes

    def describe(self) -> str:
        """Short text of what was read, e.g. 'small red can'."""
        sizes = [w for w, v in lx.SIZE_WORDS.items() if v in self.sizes][:1]
        parts = sizes + self.colours + [f'not {c}' for c in self.not_colours]
        parts.append(self.compound or self.head or 'object')
        return ' '.join(parts)


@dataclass
class Relation:
    """A relation of the target to one or two anchor phrases."""

    op: str                             # lexicon operator, e.g. 'left_of', 'between'
    anchors: List[NounPhrase]
    negated: bool = False
    phrase: str = ''                    # the words that named the relation
    #: said right after another relation's anchor ("in front of the can on the shelf"): it may
    #: be about that anchor rather than the target
    after_anchor: bool = False


@dataclass
class ParsedQuery:
    """What a query asks for (see the module docstring)."""

    text: str
    target: NounPhrase
    relations: List[Relation] = field(default_factory=list)
    ordinal: Optional[int] = None       # 1-based position counted from ``side``
    side: Optional[str] = None          # 'left' | 'right' | 'front' | 'back' (ordinal/extreme)
    corner: Optional[str] = None        # a second side on the other axis ("the back right one")
    middle: bool = False
    not_position: bool = False          # "the can that is not on the left": all but that one
    superlative: Optional[Tuple[str, int]] = None  # (dimension, direction)
    unique: bool = False                # "the only ..."
    exclusions: List[NounPhrase] = field(default_factory=list)
    #: "of the two cans on the left, the right one": the side that narrows the group down
    #: (the other side on the axis of ``side`` picks in it), and how many it holds if said.
    group_side: Optional[str] = None
    group_count: Optional[int] = None
    #: The target is several objects: a plural head ("the red cans"), a quantifier ("all",
    #: "every", "each", "both", "all of the") or a count ("the two red cans"); only the
    #: target's number counts ("the can between the two bowls" is one can), and a pick in a
    #: group is one object ("one of the cans", "the left one of the two cans").
    plural: bool = False
    #: How many were asked for when said ("both" = 2, "the three cans" = 3), else None.
    count: Optional[int] = None

    @property
    def places(self) -> bool:
        """Whether the query places or picks its target (a relation, side, order, extreme)."""
        return bool(self.relations or self.side or self.ordinal is not None or self.middle
                    or self.superlative or self.corner or self.exclusions)

    def describe(self) -> str:
        """One line of what was read (for logs and the interpretation)."""
        parts = [f'target: {self.target.describe()}']
        if self.plural:
            parts.append('all' if self.count is None else f'count: {self.count}')
        for rel in self.relations:
            anchors = ' and '.join(a.describe() for a in rel.anchors)
            parts.append(f"{'not ' if rel.negated else ''}{rel.op.replace('_', ' ')}: {anchors}")
        if self.group_side:
            count = f'{self.group_count} ' if self.group_count else ''
            parts.append(f'of the {count}on the {self.group_side}')
        if self.ordinal:
            side = f'{self.side} {self.corner}' if self.corner else self.side
            parts.append(f"{'not ' if self.not_position else ''}#{self.ordinal} from the "
                         f'{side}')
        if self.middle:
            parts.append('middle')
        if self.superlative:
            parts.append(f"{'most' if self.superlative[1] > 0 else 'least'} "
                         f'{self.superlative[0]}')
        if self.unique:
            parts.append('only')
        for ex in self.exclusions:
            parts.append(f'except: {ex.describe()}')
        return '; '.join(parts)


# ------------------------------------------------------------------------------ tokens
_CONTRACTIONS = ((r'\b(is|are|was|were|does|do|did|has|have|had|should|would|could)nt\b',
                  r'\1 not'), (r'\bthats\b', 'that is'), (r'\btheres\b', 'there is'),
                 (r'\bwhats\b', 'what is'),
                 (r"n't\b", ' not'), (r"'s\b", " 's"), (r"'re\b", ' are'), (r"'m\b", ' am'),
                 (r"'d\b", ' would'), (r"'ll\b", ' will'), (r'\bcannot\b', 'can not'))
_HYPHEN_JOIN = re.compile(r'\b(left|right|front|rear|back|far|top|bottom)-(most|hand|handed)\b')
#: Counting from the end in several words ("next-to-last", "last but one") -> one word.
_FROM_END_FORMS = (
    (re.compile(r'\b(?:next|second)[\s-]+(?:to|from)[\s-]+(?:the\s+)?last\b'), 'penultimate'),
    (re.compile(r'\blast\s+but\s+one\b|\bone\s+before\s+(?:the\s+)?last\b'), 'penultimate'),
    (re.compile(r'\bthird[\s-]+(?:to|from)[\s-]+(?:the\s+)?last\b'), 'antepenultimate'))
#: Words a possessive side phrase may use after the owner: "the cone's far left-hand side".
_POSSESSIVE_SIDE = frozenset({'far', 'very', 'immediate', 'hand', 'handed', 'side'})
#: Words that end an owner's phrase when read backwards from "'s".
_OWNER_STOP = frozenset({'to', 'on', 'at', 'of', 'from', 'in', 'by', 'the', 'a', 'an', ',',
                         'towards', 'toward', 'off', 'over', 'is', 'are', 'that', 'which'})
#: Modal verbs after a pronoun ("the can you can see"): not a noun.
_MODALS = frozenset({'can', 'could', 'may', 'might', 'will', 'would', 'should'})
_SUBJECTS = frozenset({'i', 'you', 'we', 'they'})


def tokenize(text: str) -> List[str]:
    """Lower-case words, ',' (clause) and '.' (sentence) boundaries; at most ``MAX_WORDS``.

    Possessive sides become side relations ("to the cone's right" -> "to the right of the
    cone", "on its left" -> "on the left of it"); other "'s" are "is".
    """
    text = str(text).lower().replace('\u2019', "'").replace('\u2018', "'")
    text = _HYPHEN_JOIN.sub(lambda m: m.group(1) + m.group(2), text)
    for pattern, repl in _FROM_END_FORMS:
        text = pattern.sub(repl, text)
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    text = _compound_colours(text)
    for pattern, repl in _PHRASE_FORMS:
        text = pattern.sub(repl, text)
    text = re.sub(r'\b([a-z]+)-ish\b', r'\1ish', text)  # "blue-ish"
    # "isn't there a can at the back?": a question, not a negation
    text = re.sub(r'(^|[.?!]\s*)(is|are|was|were) not there\b', r'\1there is', text)
    # a self-correction ends what was said before it: "the red - no, the blue one"
    text = _CORRECTION.sub(' | ', text)
    text = re.sub(r'[,:()\[\]{}"/]|--', ' , ', text)
    text = re.sub(r'[;!?]|\.(?=\s|$)', ' . ', text)
    tokens = re.findall(r"'s\b|[a-z0-9]+(?:'[a-z]+)?|[,.|]", text.replace('-', ' '))
    tokens = _possessive_sides(tokens)
    tokens = _reduced_support_clause(tokens)
    tokens = [w for k, w in enumerate(tokens)
              if not (w in _MODALS and k > 0 and tokens[k - 1] in _SUBJECTS)]
    return tokens[:MAX_WORDS]


_SURFACE = r'(?:table|tabletop|counter|countertop|desk|worktop|surface|bench|workbench)'
_SIDE = r'(?:left|right|front|back|rear)'
_HAND = r'(?:[- ]?hand(?:ed)?)?'
#: Phrasings rewritten to the form the reader knows (each: what people say -> what it means).
_PHRASE_FORMS = tuple((re.compile(a), b) for a, b in (
    # "in the middle of the table", "a little left of the centre of the table": a position
    (r'\b(?:in|at) the (?:very )?(middle|centre|center) of (?:the|this) ' + _SURFACE + r'\b',
     r'in the \1'),
    (r'\b(?:(?:a )?(?:little|bit|slightly) )?(?:to the |on the )?(left|right) of (?:the )?'
     r'(?:centre|center|middle)(?: of (?:the|this) ' + _SURFACE + r')?\b', r'on the \1'),
    # "on the right half of the table": on the right; "on the left end of the shelf": on it
    (r'\b(?:on|in|at) the (?:far |very )?(left|right|front|back|rear)' + _HAND + r' (?:half|side|'
     r'part|end|portion|section|corner|edge) of (?:the|this) ' + _SURFACE + r'\b', r'on the \1'),
    (r'\bon the (?:far |very )?' + _SIDE + _HAND + r' (?:end|part|half|portion|section|'
     r'corner) of\b', 'on'),
    # "all the way to the left": to the left (not "all" of them)
    (r'\ball the way\b', ''),
    # "standing on its own": alone, not on anything
    (r'\b(?:(?:standing|sitting|all) )?(?:on|by) (?:its|their) own\b', ''),
    # "resting on its lid": on it
    (r'\bon (?:its|their) (?:lid|top|surface|cover|upper side|upper surface)\b', 'on top of it'),
    # "running along the back of the table": at the back
    (r'\b(?:(?:that|which) )?(?:runs|running|stretching|stretches|extending|extends|lying|lies|'
     r'lined up|lining) along\b', 'along'),
    (r'\balong the\b', 'at the'),
    # "in the row of three large balls along the front, the one in the middle": the group is
    # said first, the pick after the comma (read as two sentences, the pick about the group)
    (r'^\s*(?:in|of|among|from|out of) the (?:row|line|group|set|bunch|cluster|pile|stack) of '
     r'([^,.;!?|]+),', r'the \1 .'),
    # "not the long shelf but the box": what comes after "but" is meant
    (r'(?:^|,|\s)\s*not (?:the |a |an )?[a-z ]+? but (?=(?:the|a|an)\b)', ' | '),
    # "counting from left to right, the second": counted from the first side
    (r'\bfrom (?:the )?(left|right|front|back)(?: side)? (?:to|towards) (?:the )?'
     + _SIDE + r'\b', r'from the \1'),
    # "the ball closest to the left edge of the table": the extreme on that side
    (r'\b(?:closest|nearest) to the (?:far |very )?(left|right|front|back|rear) '
     r'(?:edge|side|end|corner|border)(?: of (?:the|this) ' + _SURFACE + r')?\b', r'\1most'),
    # "nearer the middle", "closest to the centre", "in the middle, ...": the middle one
    (r'\b(?:nearer|closer|nearest|closest|near|towards?|in|at)(?: to)? the (?:very )?'
     r'(middle|centre|center)\b(?! of)', r'\1'),
    # "in front of the right end of the shelf": the anchor is the shelf
    (r'\b(of|behind|beside|by|near|above|below|under|underneath|against) the (?:far |very )?'
     + _SIDE + _HAND + r' (?:end|side|edge|corner|half|part) of\b', r'\1'),
    # "in the scene", "in this picture": nothing to relate to
    (r'\b(?:in|of|from) (?:the|this) (?:scene|picture|image|photo|view|frame|setup|'
     r'layout)\b', ''),
    # "raised up off the table": says no more than that it stands somewhere
    (r'\boff (?:of )?(?:the|this) ' + _SURFACE + r'\b', ''),
    # "good for holding soup", "used for storing pens": what it is for, not a relation
    (r'\b(?:(?:good|great|perfect|ideal|handy|useful|suitable|used|meant|made) )?for '
     r'[a-z]+ing\b[^,.;!?|]*', ''),
    # "the box without anything on it", "without a mug on top": nothing / no mug stands on it
    (r'\bwithout (?:any(?:thing)?|something|stuff|objects?|things?)? ?(?=on\b)',
     'with nothing '),
    (r'\bwithout (?:a|an|the|any) ', 'with no '),
    # "rather than (being) stacked on something": not on it
    (r'\b(?:rather than|instead of) (?:(?:being|is|sitting|standing|placed|stacked|resting|'
     r'lying|put|sat|stood|raised|lifted|propped|perched|set|up|high) )*(?=on\b|in\b|'
     r'under\b|inside\b|behind\b|beside\b|next to\b|near\b|atop\b|above\b|below\b)',
     'and not '),
    # "the box with the shelf on one side and the jug on the other": between them
    (r'\bwith ([^,.;!?|]+?) on (?:one|either) side,? and ([^,.;!?|]+?) on the other(?: side)?\b',
     r'between \1 and \2'),
    # "find the shelf first, then take the bottle on it": two sentences, "it" the first's
    (r'(?:\bfirst)?\s*,\s*(?:and )?then\b', ' . '),
    # "the box with the mug on top": on top of the box
    (r'\b(with|without|has|having|got) ([^,.;!?|]*?)\bon top\b(?! of)', r'\1 \2on top of it'),
    # "..., yeah that one" / ". that one": a confirmation, nothing more
    (r'(?:[,.;!?]|\byeah|\byes|\byep)\s*(?:yeah|yes|yep|ok|okay)?[\s,]*\b(?:that|this) one'
     r'\s*[.!?]*\s*$', ''),
))
_CHROMATIC = ('red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'purple', 'pink')
_COLOUR_FORM = '|'.join(sorted((w for w in lx.COLOUR_WORDS if w.isalpha()), key=len,
                               reverse=True))
_COLOUR_PAIR = re.compile(r'\b(' + _COLOUR_FORM + r')(?:ish|y)?[- ](' + _COLOUR_FORM + r')\b')


def _hue(colour: str) -> float:
    return colorsys.rgb_to_hsv(*lx.COLOUR_PROTOTYPES[colour])[0]


def _compound_colours(text: str) -> str:
    """Read "blue-green", "greenish blue", "red-orange" as one basic colour.

    Two hues mix (blue-green -> cyan); with a colour that has no hue of its own the last word,
    the head, is the colour ("reddish brown" -> brown).
    """
    def mix(match):
        a, b = lx.COLOUR_WORDS[match.group(1)], lx.COLOUR_WORDS[match.group(2)]
        if a == b or a not in _CHROMATIC or b not in _CHROMATIC:
            return b
        x, y = _hue(a) * 2 * math.pi, _hue(b) * 2 * math.pi
        mean = math.atan2(math.sin(x) + math.sin(y), math.cos(x) + math.cos(y)) / (2 * math.pi)

        def gap(c):
            d = abs(_hue(c) - mean % 1.0)
            return min(d, 1.0 - d)
        return min((c for c in _CHROMATIC if c not in ('pink',)), key=gap)
    return _COLOUR_PAIR.sub(mix, text)


#: Self-corrections ("the red - no, the blue one", "the pink bowl, sorry, the orange bowl",
#: "the cup, I mean the mug"): what follows replaces what was said before.
_CORRECTION = re.compile(
    r'(?:\s[-\u2013\u2014]+\s*|,\s*|\s)(?:no,|no wait|sorry|i mean|i meant|scratch that|'
    r'or rather|make that|correction|no(?=\s+(?:the|a|an|that|this)\b))(?=[\s,.]|$)[,]?')
_SUPPORT_VERBS = frozenset({'standing', 'sitting', 'resting', 'lying', 'laying', 'placed',
                            'stands', 'sits', 'rests', 'lies', 'stand', 'sit', 'rest', 'lie',
                            'is', 'are', 'was', 'put', 'kept', 'perched', 'stacked'})


def _reduced_support_clause(tokens: List[str]) -> List[str]:
    """Turn a final "X the Y is standing on" / "what the Y sits on" into "X under the Y".

    The object of "on" is the target itself (a relative clause without "that"), so the anchor Y
    stands on the target.
    """
    end = len(tokens)
    while end and tokens[end - 1] in ('.', ','):
        end -= 1
    if end < 4 or tokens[end - 1] not in ('on', 'upon', 'atop'):
        return tokens
    k = end - 2
    while k > 0 and tokens[k] in _SUPPORT_VERBS:
        k -= 1
    if k == end - 2:
        return tokens  # no verb before "on": an ordinary phrase
    article = max((j for j in range(k + 1) if tokens[j] in ('the', 'a', 'an')), default=None)
    if article is None or article == 0:
        return tokens
    head = tokens[:article]
    if head and head[-1] in ('that', 'which'):
        return tokens
    return head + ['under'] + tokens[article:k + 1] + tokens[end:]


def _possessive_sides(tokens: List[str]) -> List[str]:
    """Rewrite "X's [far] SIDE [hand] [side]" and "its SIDE" as "the SIDE ... of X"."""
    out: List[str] = []
    k = 0
    while k < len(tokens):
        w = tokens[k]
        if w in ("'s", 'its', 'their'):
            j = k + 1
            while j < len(tokens) and tokens[j] in ('far', 'very', 'immediate'):
                j += 1
            side = tokens[j] if j < len(tokens) else ''
            if side in lx.SIDE_WORDS and side not in ('near', 'far'):
                j += 1
                while j < len(tokens) and tokens[j] in _POSSESSIVE_SIDE:
                    j += 1
                if w == "'s":
                    start = len(out)
                    while start > 0 and len(out) - start < 3 and out[start - 1] not in \
                            _OWNER_STOP:
                        start -= 1
                    owner = out[start:] or ['it']
                    if start > 0 and out[start - 1] in ('the', 'a', 'an'):
                        start -= 1
                    del out[start:]
                else:
                    owner = ['it']
                out += ['the'] + tokens[k + 1:j] + ['of', 'the'] + owner
                k = j
                continue
        out.append('is' if w == "'s" else w)
        k += 1
    return out


#: Nouns whose plural is the thing itself ("the scissors").
PLURALIA = frozenset({'scissors', 'glasses', 'pliers', 'tongs', 'shears', 'tweezers',
                      'binoculars', 'headphones', 'earphones', 'earbuds', 'goggles',
                      'trousers', 'jeans', 'shorts', 'clippers', 'chopsticks'})


def plural(word: str) -> str:
    """Return the plural of a noun, the inverse of :func:`singular` ("box" -> "boxes")."""
    if word.endswith(('s', 'x', 'z', 'ch', 'sh')):
        return word + 'es'
    if word.endswith('y') and word[-2:-1] not in ('a', 'e', 'i', 'o', 'u'):
        return word[:-1] + 'ies'
    if word.endswith('f'):
        return word[:-1] + 'ves'
    return word + 's'


def singular(word: str) -> str:
    """Return the singular of a plural noun: cans -> can, boxes -> box, shelves -> shelf."""
    if len(word) <= 3 or word.endswith(('ss', 'us', 'is')) or word in PLURALIA:
        return word
    for suffix, repl in (('ves', 'f'), ('ies', 'y'), ('ches', 'ch'), ('shes', 'sh'),
                         ('xes', 'x'), ('sses', 'ss'), ('oes', 'o')):
        if word.endswith(suffix):
            return word[:-len(suffix)] + repl
    return word[:-1] if word.endswith('s') else word


# ------------------------------------------------------------------------------ marking
@dataclass
class _Mark:
    kind: str        # 'rel' | 'side' | 'word' | 'neg' | 'excl' | 'ord' | 'end' | 'mid' | ...
    value: object
    words: Tuple[str, ...]


def _strip_requests(tokens: List[str]) -> List[str]:
    changed = True
    while changed and tokens:
        changed = False
        while tokens and tokens[0] in (',', '.', 'please', 'hey', 'ok', 'okay', 'robot', 'now',
                                       'so', 'and', 'then', 'um', 'uh', 'sorry', 'right',
                                       'alright', 'well', 'erm', 'hmm', 'yeah'):
            tokens, changed = tokens[1:], True
        for prefix in sorted(lx.REQUEST_PREFIXES, key=len, reverse=True):
            n = len(prefix)
            if tuple(tokens[:n]) == prefix and len(tokens) > n:
                tokens, changed = tokens[n:], True
                break
    return tokens


def _side_at(tokens: Sequence[str], i: int):
    """Match a side phrase at i: (kind, side, length) with kind 'rel' (... of) or 'side'."""
    j = i
    while j < len(tokens) and j < i + 3 and tokens[j] in SIDE_INTRO:
        j += 1
    while j < len(tokens) and tokens[j] in SIDE_FILLER and tokens[j] not in ('side', 'hand'):
        j += 1
    if j >= len(tokens) or tokens[j] not in lx.SIDE_WORDS:
        return None
    side = lx.SIDE_WORDS[tokens[j]]
    if tokens[j] in ('near', 'far') and tokens[j + 1:j + 2] not in (['side'], ['end'],
                                                                    ['edge']):
        return None  # "near" / "far" alone are relations ("far left": 'far' is a filler)
    j += 1
    while j < len(tokens) and tokens[j] in ('hand', 'handed', 'side', 'edge', 'end', 'most',
                                            'part', 'corner'):
        j += 1
    if j < len(tokens) and tokens[j] == 'of':
        return 'rel', lx.SIDE_RELATION[side], j + 1 - i
    return 'side', side, j - i


# Relation phrases by first word, longest first.
_PHRASES_BY_FIRST: dict = {}
for _phrase, _op in sorted(lx.RELATION_PHRASES.items(), key=lambda kv: -len(kv[0])):
    _PHRASES_BY_FIRST.setdefault(_phrase[0], []).append((_phrase, _op))


def _relation_at(tokens: Sequence[str], i: int):
    """Return (operator, length) of the longest relation phrase starting at i, or None."""
    for phrase, op in _PHRASES_BY_FIRST.get(tokens[i], ()):
        if tuple(tokens[i:i + len(phrase)]) == phrase:
            return op, len(phrase)
    return None


def _mark(tokens: List[str]) -> List[_Mark]:
    marks: List[_Mark] = []
    i = 0
    while i < len(tokens):
        w = tokens[i]
        if w == 'right' and i + 1 < len(tokens) and (
                _relation_at(tokens, i + 1) or (_side_at(tokens, i + 1) or ('',))[0] == 'rel'):
            i += 1  # "right in front of", "right to the left of": an adverb
            continue
        if w in ('least', 'most') and i + 1 < len(tokens) and tokens[i + 1] in lx.SIZE_WORDS:
            dim, sign = lx.SIZE_WORDS[tokens[i + 1]]
            marks.append(_Mark('sup', (dim, sign if w == 'most' else -sign), (w, tokens[i + 1])))
            i += 2
            continue
        side = _side_at(tokens, i)
        rel = _relation_at(tokens, i)
        if side is not None and side[0] == 'rel' and (rel is None or side[2] >= rel[1]):
            marks.append(_Mark('rel', side[1], tuple(tokens[i:i + side[2]])))
            i += side[2]
            continue
        if side is not None and side[0] == 'side' and (rel is None or side[2] > rel[1]
                                                       or rel[0] in ('on_top_of', 'next_to')
                                                       and side[2] >= rel[1]):
            marks.append(_Mark('side', side[1], tuple(tokens[i:i + side[2]])))
            i += side[2]
            continue
        excl = next((e for e in lx.EXCLUSIONS if tuple(tokens[i:i + len(e)]) == e), None)
        if excl is not None:
            marks.append(_Mark('excl', None, excl))
            i += len(excl) - (1 if excl[-1] == 'the' else 0)
            continue
        if rel is not None:
            length = rel[1]
            following = tokens[i + length:i + length + 2]
            if tokens[i + length - 1] == 'on' and following == ['top', 'of']:
                length += 2  # "standing on top of it": one relation
            marks.append(_Mark('rel', rel[0], tuple(tokens[i:i + length])))
            i += length
            continue
        if w in (',', '.'):
            marks.append(_Mark('end', None, (w,)))
        elif w in lx.NEGATIONS:
            marks.append(_Mark('neg', None, (w,)))
        elif w in lx.EXTREMES:
            marks.append(_Mark('side', lx.EXTREMES[w], (w,)))
        elif w in lx.ORDINALS:
            marks.append(_Mark('ord', lx.ORDINALS[w], (w,)))
        elif w in lx.FROM_END:
            marks.append(_Mark('from_end', lx.FROM_END[w], (w,)))
        elif w in lx.MIDDLE_WORDS:
            marks.append(_Mark('mid', None, (w,)))
        elif w in lx.SUPERLATIVES:
            marks.append(_Mark('sup', lx.SUPERLATIVES[w], (w,)))
        elif w in lx.UNIQUENESS:
            marks.append(_Mark('only', None, (w,)))
        elif w in CLAUSE_MARKERS:
            marks.append(_Mark('clause', None, (w,)))
        else:
            marks.append(_Mark('word', w, (w,)))
        i += 1
    return marks


# ------------------------------------------------------------------------------ phrases
def _noun_phrase(words: Sequence[str], negate_next: Sequence[bool] = ()) -> NounPhrase:
    """Read plain words (no relation marks) into a noun phrase."""
    np_ = NounPhrase()
    words, negate_next = _without_function_clause(words, negate_next)
    content: List[str] = []
    shapes: List[str] = []
    negated = list(negate_next) + [False] * (len(words) - len(negate_next))
    for w, neg in zip(words, negated):
        if neg and w not in lx.COLOUR_WORDS and w not in lx.SIZE_WORDS and w not in \
                lx.STOPWORDS and w not in lx.GENERIC_NOUNS and w not in lx.NUMBERS:
            np_.not_nouns.append(singular(w))  # "that is not a mug"
        elif w in lx.COLOUR_WORDS:
            (np_.not_colours if neg else np_.colours).append(lx.colour_of(w))
        elif w in lx.SIZE_WORDS:
            dim, sign = lx.SIZE_WORDS[w]
            np_.sizes.append((dim, -sign if neg else sign))
        elif w in lx.GENERIC_NOUNS:  # before the numbers: "one" is mostly "the red one"
            np_.generic = True
            np_.one = np_.one or w in ('one', 'ones')
            content.append(w)
        elif w in lx.NUMBERS or w in lx.QUANTIFIERS or w.isdigit():
            continue
        elif w in lx.SHAPE_WORDS:
            shapes.append(lx.SHAPE_WORDS[w])
        elif w in lx.STOPWORDS or w == ',' or w == 'dark' or w == 'light' or w == 'bright':
            continue
        else:
            content.append(w)
    # the head: the last content word that is not a generic noun, else generic; a final colour
    # word that names a thing is the head when there is no other ("the orange by the kettle")
    nouns = [w for w in content if w not in lx.GENERIC_NOUNS]
    last = next((w for w in reversed(words) if w not in lx.STOPWORDS and w != ','), None)
    if not nouns and last in lx.COLOUR_NOUNS and np_.colours and not np_.generic:
        np_.colours.remove(lx.colour_of(last))
        nouns = [last]
    if not nouns and shapes:  # "the pointy thing"; "flat round" is a plate, not a ball
        nouns = ['plate'] if 'plate' in shapes else shapes[-1:]
    if nouns:
        single = singular(nouns[-1])
        np_.plural = single != nouns[-1]
        np_.head, np_.one = single, False
        if len(nouns) >= 2:
            np_.compound = f'{nouns[-2]} {single}'
        np_.modifiers = [w for w in nouns[:-1]]
        np_.generic = False
    elif content or any(w in PRONOUNS for w in words):
        np_.generic = True
        np_.plural = any(w in lx.GENERIC_NOUNS and singular(w) in lx.GENERIC_NOUNS
                         and singular(w) != w for w in content)  # "the red ones", "things"
        np_.pronoun = (not np_.colours and not np_.sizes and all(w in PRONOUNS for w in content)
                       and any(w in PRONOUNS for w in words))
    return np_


_CLAUSE_SUBJECTS = frozenset({'you', 'i', 'we', 'they', 'people', 'someone'})


def _without_function_clause(words: Sequence[str], negate_next: Sequence[bool]):
    """Drop a relative clause without "that": "something you'd eat cereal out of".

    "something you would pour milk into", "what I'd put flowers in", "the cup you gave me",
    "something to drink from": a subject pronoun after the noun (or "to" after "something" /
    "what") opens a clause, up to the next comma, that says what the object is for or what
    happened to it; its nouns are not the target's.
    """
    words, negate_next = list(words), list(negate_next)
    for k, w in enumerate(words[1:], start=1):
        before = words[:k]
        opens = w in _CLAUSE_SUBJECTS and any(
            x not in lx.STOPWORDS or x in ('what', 'something') for x in before if x != ',')
        opens = opens or (w == 'to' and before[-1] in ('what', 'something')
                          or w == 'to' and before[-1] in lx.GENERIC_NOUNS)
        if opens:
            end = next((j for j in range(k, len(words)) if words[j] == ','), len(words))
            return words[:k] + words[end:], negate_next[:k] + negate_next[end:]
    return words, negate_next


def _split_clause(items: List[_Mark]) -> Tuple[List[_Mark], List[_Mark]]:
    """Split an anchor's marks at the first clause boundary after its noun."""
    seen_word = False
    for k, m in enumerate(items):
        if m.kind == 'word' and m.value not in lx.STOPWORDS and m.value not in lx.COLOUR_WORDS \
                and m.value not in lx.SIZE_WORDS:
            seen_word = True
        elif seen_word and (m.kind in ('clause', 'end') or (m.kind == 'word' and m.value in (
                'and', 'but', 'is', 'are', 'was'))):
            return items[:k], items[k:]
    return items, []


def _words_of(items: Sequence[_Mark]) -> Tuple[List[str], List[bool]]:
    """Plain words of marks with a negation flag for each (neg applies to the next word)."""
    words, negs, pending = [], [], False
    for m in items:
        if m.kind == 'neg':
            pending = True
            continue
        if m.kind in ('side', 'ord'):  # "not the leftmost box": the position is negated
            pending = False
        if m.kind == 'word':
            words.append(str(m.value))
            negs.append(pending)
            if m.value not in lx.STOPWORDS:
                pending = False
    return words, negs


def conjuncts(text: str) -> List[str]:
    """Split a list of objects into its noun phrases: "the cyan mug and the cyan bowl" -> two.

    A list joins bare noun phrases with "and" (or "as well as", "plus", "together with":
    ``lexicon.COORDINATORS``), commas before the last one ("the box, the can and the ball"). A
    split is made there when a determiner or quantifier follows (``COORDINATED_STARTS``) and
    the phrase before it places nothing: a phrase with a relation, a side, an order or "with"
    ("the can left of the bowl and the plate", "the shelf with a bowl and a mug on it",
    "between the bowl and the plate") keeps its "and" for its anchors. No "and", no list: a
    comma alone is an apposition about one object ("the red mug, the one on the left", "not
    the red cup, the other one"). Never in a self-correction, never before a word that is not a
    determiner ("the cup and saucer", "red and white"), never when the last phrase picks among
    the others ("the cans, the left one"). A phrase whose noun is "one" / "ones" takes the noun
    of the phrase before it ("both balls, the red one and the orange one"). Returns ``[text]``
    when nothing is split.
    """
    tokens = tokenize(text)
    if '|' in tokens or '.' in tokens[:-1] or len(tokens) < 4 or tokens[0] in _PARTITIVE_STARTS:
        return [str(text)]  # a correction, several sentences, "of the two cans, the left one"
    cuts, start, k, listed = [], 0, 0, False
    while k < len(tokens):
        joined = next((c for c in sorted(lx.COORDINATORS, key=len, reverse=True)
                       if tuple(tokens[k:k + len(c)]) == c), None)
        if joined is None or k + len(joined) >= len(tokens) or \
                tokens[k + len(joined)] not in lx.COORDINATED_STARTS:
            k += 1
            continue
        segment = [w for w in tokens[start:k] if w not in (',', '.')]
        after = tokens[k + len(joined):]
        after = after[:next((j for j, w in enumerate(after) if w in ('and', ',')), len(after))]
        back = joined != (',',) and bool({'it', 'itself', 'them'} & set(after))
        if segment and _bare(segment, back):
            cuts.append((k, k + len(joined)))
            listed = listed or joined != (',',)
            start = k + len(joined)
        k += len(joined)
    return _cuts_to_parts(tokens, cuts, text, listed)


def _bare(words: List[str], pointed_back: bool = False) -> bool:
    """Tell whether a phrase can be a list's member: it names objects without placing them.

    ``pointed_back``: the phrase after the "and" says "it" / "them" ("the big box in the middle
    and the ball on top of it"): that phrase is another object placed against this one, so a
    placed phrase is a member too (not after "with" / "between" / "has", whose "and" joins
    what they hold).
    """
    for k, w in enumerate(words[1:], start=1):
        quantity = words[k - 1] in lx.QUANTIFIERS or words[k - 1] in lx.NUMBERS
        if w in ('with', 'between', 'having', 'has', 'have', 'carrying'):
            return False
        if not pointed_back and (w == 'holding' or (w == 'of' and not quantity)):
            return False  # "the stack of the box and ...", not "both of"
    if pointed_back:
        return True
    return not parse_query(' '.join(words)).places


def _cuts_to_parts(tokens: List[str], cuts, text: str, listed: bool) -> List[str]:
    """Return the phrases between ``cuts`` (a list needs one "and"; else ``[text]``)."""
    if not listed or not cuts:
        return [str(text)]
    while cuts and tuple(tokens[cuts[-1][0]:cuts[-1][1]]) == (',',):
        cuts = cuts[:-1]  # a comma after the last "and" lists nothing more
    if not cuts:
        return [str(text)]
    bounds = [0] + [b for cut in cuts for b in cut] + [len(tokens)]
    parts = [[w for w in tokens[bounds[i]:bounds[i + 1]] if w not in (',', '.')]
             for i in range(0, len(bounds), 2)]
    last = parse_query(' '.join(parts[-1]))
    if 'one' in parts[-1] and (last.ordinal is not None or last.side is not None
                               or last.superlative is not None or last.middle):
        return [str(text)]  # "the cans, the left one": a pick among them, not another object
    if len(parts) == 2:  # "both the cup and the bowl": "both" says there are two phrases
        words = parts[0]
        at = next((k for k, w in enumerate(words) if w in ('both', 'either')), None)
        if at is not None and at + 1 < len(words) and words[at + 1] in ('the', 'a', 'an', 'my'):
            parts[0] = words[:at] + words[at + 1:]
    targets = [parse_query(' '.join(words)).target for words in parts]
    for k in range(len(parts) - 1):  # "the red and the blue cup": the red cup
        if targets[k].head is None and not targets[k].generic and \
                targets[k + 1].head is not None:
            parts[k] = parts[k] + [targets[k + 1].head]
    out, previous = [], None
    for words in parts:
        head = parse_query(' '.join(words)).target
        if head.head is None and previous is not None and ('one' in words or 'ones' in words):
            words = [previous if w == 'one' else plural(previous) if w == 'ones' else w
                     for w in words]
        else:
            previous = head.head or previous
        out.append(' '.join(words))
    return out


def spoken_name(text: str) -> str:
    """Return the query without requests, articles and punctuation, as object names are said.

    "grab the green ball" -> "green ball".
    """
    words = _strip_requests(correct_spelling(tokenize(text)))
    return ' '.join(w for w in words if w not in (',', '.', 'the', 'a', 'an', 'please'))


def parse_query(text: str) -> ParsedQuery:
    """Parse a referring expression (never raises; an unreadable text gives an empty target).

    Several sentences ("There is a mug. I want the ball left of it.") are read one by one; the
    last that says something is the query, "it" / "that" in it stands for the first object named
    before, and a query without a noun of its own ("the one on the left") is about that object.
    """
    tokens = correct_spelling(tokenize(text))
    corrected = None
    if '|' in tokens:  # a self-correction: what comes after it is the query
        cut = len(tokens) - tokens[::-1].index('|')
        before = [w for w in tokens[:cut - 1] if w != '|']
        tokens = tokens[cut:]
        corrected = parse_query(' '.join(before)) if before else None
    sentences: List[List[str]] = [[]]
    for w in tokens:
        if w == '.':
            if sentences[-1]:
                sentences.append([])
        else:
            sentences[-1].append(w)
    parses = [_parse_sentence(text, _strip_requests(words)) for words in sentences if words]
    parses = [p for p in parses if not _says_nothing(p)] or parses or [
        ParsedQuery(text=str(text), target=NounPhrase())]
    parsed = parses[-1]
    if corrected is not None and parsed.target.head is None and not any(
            a.pronoun for r in parsed.relations for a in r.anchors):
        # "the purple ball on the box - no, the one on the right": the kind stays, the rest
        # of what was corrected goes
        target = parsed.target
        target.head, target.compound = corrected.target.head, corrected.target.compound
        target.generic = target.generic and target.head is None
        target.pronoun = False
        if not target.colours:
            target.colours = list(corrected.target.colours)
    earlier = next((p for p in parses[:-1] if p.target.head is not None), None)
    if earlier is None:
        return parsed
    referred = False
    for rel in parsed.relations:
        referred = referred or any(a.pronoun for a in rel.anchors)
        rel.anchors = [earlier.target if a.pronoun else a for a in rel.anchors]
    target = parsed.target
    if target.head is None and not referred:  # "the one on the left", "it is red"
        target.head, target.compound = earlier.target.head, earlier.target.compound
        target.generic, target.pronoun = False, False
        target.colours += [c for c in earlier.target.colours if c not in target.colours]
        target.not_colours += earlier.target.not_colours
        target.sizes += earlier.target.sizes
        target.modifiers += earlier.target.modifiers
        parsed.relations = earlier.relations + parsed.relations
        parsed.exclusions = earlier.exclusions + parsed.exclusions
        for name in ('ordinal', 'side', 'superlative'):
            if getattr(parsed, name) is None:
                setattr(parsed, name, getattr(earlier, name))
        parsed.middle = parsed.middle or earlier.middle
        parsed.unique = parsed.unique or earlier.unique
    return parsed


def _says_nothing(parsed: ParsedQuery) -> bool:
    return (parsed.target.empty and not parsed.relations and parsed.ordinal is None
            and not parsed.middle and parsed.superlative is None)


def _second_anchor(rest: Sequence[_Mark]) -> Optional[NounPhrase]:
    """Read "and the black box" after an anchor as a second anchor, not the target's words.

    Only "and" + a noun phrase with a noun of its own; "and is red", "that is ..." stay clauses
    about the target.
    """
    if len(rest) < 2 or rest[0].kind != 'word' or rest[0].value != 'and':
        return None
    words = []
    for m in rest[1:]:
        if m.kind != 'word' or m.value in ('is', 'are', 'was', 'and', 'but'):
            break
        words.append(str(m.value))
    if not words or words[0] not in ('the', 'a', 'an', 'that', 'this'):
        return None
    phrase = _noun_phrase(words)
    return phrase if phrase.head is not None and not phrase.pronoun else None


@dataclass
class _Sentence:
    """One sentence while it is read: its marks, the query so far and the parts still open."""

    marks: List[_Mark]
    parsed: ParsedQuery
    side_marks: List[_Mark] = field(default_factory=list)      # sides, in the order said
    target_items: List[_Mark] = field(default_factory=list)    # the target's own marks
    #: each relation or exclusion mark (value: (operator, negated)) with the marks after it
    segments: List[Tuple[_Mark, List[_Mark]]] = field(default_factory=list)
    clause_extra: List[_Mark] = field(default_factory=list)    # clauses about the target


def _parse_sentence(text: str, tokens: List[str]) -> ParsedQuery:
    """Parse one sentence's tokens (see :func:`parse_query`): the steps in the order they run."""
    sentence = _Sentence(_mark(tokens), ParsedQuery(text=str(text), target=NounPhrase()))
    _read_sequence_marks(sentence)
    _split_segments(sentence)
    previous: Optional[List[_Mark]] = None
    for marker, items in sentence.segments:
        before = len(sentence.parsed.relations)
        _read_segment(sentence, marker, items)
        if previous is not None and marker.kind == 'rel' and not any(
                m.kind in ('end', 'clause') for m in previous):
            for rel in sentence.parsed.relations[before:]:
                rel.after_anchor = True
        previous = items if marker.kind == 'rel' else None
    _read_having(sentence)
    _read_target(sentence)
    _read_position(sentence)
    _complete_generic(sentence)
    _read_number(sentence)
    return sentence.parsed


def _read_sequence_marks(s: _Sentence) -> None:
    """Sides said anywhere, and whether a side or ordinal is negated ("not on the left")."""
    s.side_marks = [m for m in s.marks if m.kind == 'side']
    s.parsed.not_position = any(_negated_before(s.marks[:k]) for k, m in enumerate(s.marks)
                                if m.kind in ('side', 'ord'))


def _split_segments(s: _Sentence) -> None:
    """Cut the marks at relations and exclusions: the target's marks, then one segment each."""
    for m in s.marks:
        if m.kind in ('rel', 'excl'):
            before = s.target_items if not s.segments else s.segments[-1][1]
            negated = m.kind == 'rel' and _negated_before(before)
            s.segments.append((_Mark(m.kind, (m.value, negated), m.words), []))
        elif s.segments:
            s.segments[-1][1].append(m)
        else:
            s.target_items.append(m)


def _read_segment(s: _Sentence, marker: _Mark, items: List[_Mark]) -> None:
    """Read one relation or exclusion with its anchor(s); a clause after them is the target's."""
    op, negated = marker.value
    anchor_items, rest = _split_clause(items) if op != 'between' else _between_split(items)
    having = next((k for k, m in enumerate(anchor_items) if k > 0 and m.kind == 'word'
                   and m.value in HAVING), None)
    if having is not None:  # "on the left of the table with a bowl on it": the target has it
        anchor_items, rest = anchor_items[:having], anchor_items[having:] + rest
    second = _second_anchor(rest) if marker.kind == 'rel' and op != 'between' else None
    if second is not None:  # "near the white plate and the black box": near both
        s.parsed.relations.append(Relation(op, [second], negated, ' '.join(marker.words)))
    else:
        s.clause_extra.extend(rest)
    if marker.kind == 'excl':
        s.parsed.exclusions.append(_noun_phrase(*_words_of(anchor_items)))
        return
    if _viewer_anchor(s, op, marker, anchor_items):
        return
    if op == 'between':
        anchors = [_noun_phrase(*_words_of(part)) for part in _and_parts(anchor_items)]
    else:
        anchors = [_noun_phrase(*_words_of(anchor_items))]
    anchors = [a for a in anchors if not a.empty]
    if op in ('nearest_to', 'farthest_from') and marker.words in (
            ('nearest',), ('closest',), ('farthest',), ('furthest',)) and _no_head(
            s.target_items) and anchors:
        # "the nearest ball": closest to the viewer, not a relation
        s.parsed.side = 'front' if op == 'nearest_to' else 'back'
        s.parsed.ordinal = 1
        s.target_items.extend(anchor_items)
        return
    if not anchors:
        if op in lx.SIDE_RELATION.values():
            side = {v: k for k, v in lx.SIDE_RELATION.items()}[op]
            s.side_marks.append(_Mark('side', side, marker.words))
        return  # "the mug in the scene": nothing to relate to
    s.parsed.relations.append(Relation(op, anchors, negated, ' '.join(marker.words)))


def _viewer_anchor(s: _Sentence, op: str, marker: _Mark, anchor_items: List[_Mark]) -> bool:
    """Read "closest to me", "farther away from the camera" as a side; tell whether it was."""
    if op not in ('nearest_to', 'farthest_from', 'in_front_of') or not any(
            m.kind == 'word' and m.value in lx.VIEWER_WORDS for m in anchor_items):
        return False
    s.side_marks.append(_Mark('side', 'back' if op == 'farthest_from' else 'front',
                              marker.words))
    viewer = next(k for k, m in enumerate(anchor_items)
                  if m.kind == 'word' and m.value in lx.VIEWER_WORDS)
    s.clause_extra.extend(anchor_items[viewer + 1:])  # ", the green one"
    return True


def _read_having(s: _Sentence) -> None:
    """Read "the box with the mug on its right": the relation is the mug's, seen from the box.

    The "with ..." may also follow a clause or an anchor ("the shelf at the back of the table,
    with two cans on it"): it is moved to the target's words first.
    """
    if not any(m.kind in ('word', 'clause') and m.words[0] in HAVING for m in s.target_items):
        moved = next((k for k, m in enumerate(s.clause_extra)
                      if m.kind in ('word', 'clause') and m.words[0] in HAVING), None)
        if moved is not None and any(r.anchors and r.anchors[0].pronoun
                                     for r in s.parsed.relations):
            s.target_items = s.target_items + s.clause_extra[moved:]
            s.clause_extra = s.clause_extra[:moved]
    having = next((k for k, m in enumerate(s.target_items)
                   if m.kind in ('word', 'clause') and m.words[0] in HAVING), None)
    if having is None:
        return
    after = s.target_items[having + 1:]
    # "with nothing on it", "with no mug on top of it": the relation is negated
    none = next((k for k, m in enumerate(after) if m.words[0] in _NONE), None)
    if none is not None:
        after = after[none + 1:]
    conjunct = next((k for k, m in enumerate(after) if k > 0 and m.kind == 'word'
                     and m.value in ('and', 'or')), None)
    if conjunct is not None:  # "with a green can and a purple can on it": the first says it
        after = after[:conjunct]
    second = _noun_phrase(*_words_of([m for m in after if m.kind != 'neg']))
    if none is not None and second.empty:
        second = NounPhrase(generic=True)
    turned = [r for r in s.parsed.relations if r.op in INVERSE and len(r.anchors) == 1
              and r.anchors[0].pronoun]
    if not second.empty and turned:
        for rel in turned:
            rel.op, rel.anchors = INVERSE[rel.op], [second]
            rel.negated = rel.negated or none is not None
            rel.phrase = f'{rel.phrase} (seen from {second.describe()})'
        s.target_items = s.target_items[:having]
    elif _words_of(s.target_items[:having])[0] and _noun_phrase(
            *_words_of(s.target_items[:having])).head is not None:
        # "the cup with a chipped rim": a part or material, not the target's noun
        s.target_items = s.target_items[:having]


def _read_target(s: _Sentence) -> None:
    """Read the target: its own words up to a clause, plus what the clauses say about it."""
    parsed = s.parsed
    head_items, clause_items = _target_split(s.target_items)
    parsed.target = target = _noun_phrase(*_words_of(head_items))
    extra = _noun_phrase(*_words_of(clause_items + s.clause_extra))
    if extra.head is not None and target.head is not None and extra.head != target.head \
            and singular(extra.head) not in lx.COLOUR_NOUNS:
        # "..., with a green can standing on it": the clause's colours are the can's
        extra = NounPhrase(not_nouns=extra.not_nouns)
    target.colours += [c for c in extra.colours if c not in target.colours]
    target.not_colours += extra.not_colours
    target.sizes += extra.sizes
    if target.generic and extra.head in lx.COLOUR_NOUNS and extra.compound is None:
        # "something to eat cereal from, orange, ...": a colour said of a thing, not a fruit
        colour = lx.colour_of(extra.head)
        target.colours += [colour] if colour not in target.colours else []
        extra.head = None
    if target.head is None and extra.head is not None and not target.colours:
        target.head, target.compound = extra.head, extra.compound
        target.generic = False
    elif target.head is None and extra.head is not None:
        target.head, target.generic = extra.head, False
    target.modifiers += extra.modifiers
    for word in target.not_nouns + extra.not_nouns:  # "the thing that is not a box"
        parsed.exclusions.append(NounPhrase(head=word))
    target.not_nouns = []


def _read_position(s: _Sentence) -> None:
    """Read ordinals, sides, the middle, superlatives and "only" from the sentence's marks."""
    parsed, side_marks = s.parsed, s.side_marks
    ordinal = next((m for m in s.marks if m.kind == 'ord'), None)
    from_end = next((m for m in s.marks if m.kind == 'from_end'), None)
    if side_marks or ordinal is not None or from_end is not None:
        side = _picking_side(s) if side_marks else None
        group = next((m.value for m in side_marks if m.value == lx.OPPOSITE.get(side)), None)
        if group is not None:
            parsed.group_side = group
            parsed.group_count = next((_COUNTS[m.value] for m in s.marks
                                       if m.kind == 'word' and m.value in _COUNTS), None)
        if from_end is not None:
            side = lx.OPPOSITE[side] if side else 'right'
            parsed.ordinal, parsed.side = int(from_end.value), side
        elif ordinal is not None:
            parsed.ordinal, parsed.side = int(ordinal.value), side or 'left'
        elif parsed.ordinal is None:
            parsed.ordinal, parsed.side = 1, side
    if parsed.side is not None:
        axis = _AXIS[parsed.side]
        parsed.corner = next((m.value for m in side_marks if _AXIS[m.value] != axis), None)
    parsed.middle = any(m.kind == 'mid' for m in s.marks) and parsed.ordinal is None
    sup = next((m for m in s.marks if m.kind == 'sup'), None)
    if sup is not None:
        parsed.superlative = sup.value
    else:  # "the taller of the two", "the bigger one": the extreme, not a size class
        words = [m.value for m in s.target_items if m.kind == 'word']
        comparative = next((w for k, w in enumerate(words) if w in lx.COMPARATIVES
                            and 'than' not in words[k + 1:k + 2]), None)
        if comparative is not None:
            parsed.superlative = lx.SIZE_WORDS[comparative]
            if parsed.superlative in parsed.target.sizes:
                parsed.target.sizes.remove(parsed.superlative)
    parsed.unique = any(m.kind == 'only' for m in s.marks)


def _picking_side(s: _Sentence) -> str:
    """Return the side that picks: the first, or of two on one axis the one said by "one".

    "the left one of the cans on the right", "of the pair on the left, the one further to the
    right", "there are two cans on the left, I want the right one": the side next to "one"
    picks among the objects the other side narrowed down.
    """
    first = s.side_marks[0].value
    same_axis = [m for m in s.side_marks if _AXIS[m.value] == _AXIS[first]]
    if len({m.value for m in same_axis}) < 2:
        return first
    ones = [k for k, m in enumerate(s.marks) if m.kind == 'word' and m.value in ('one', 'ones')]
    placed = [(k, m) for k, m in enumerate(s.marks) if any(m is x for x in same_axis)]
    if not ones or not placed:
        return first
    return min(placed, key=lambda km: min(abs(km[0] - o) for o in ones))[1].value


def _complete_generic(s: _Sentence) -> None:
    """Make a target without words generic, and give "the red one" of an anchor its kind."""
    parsed = s.parsed
    if parsed.target.empty and (parsed.relations or parsed.ordinal or parsed.middle
                                or parsed.superlative):
        parsed.target.generic = True  # "second from the right", "what is on the box"
    for rel in parsed.relations:  # "the cup left of the red one": one = a cup
        for anchor in rel.anchors:
            if anchor.one and anchor.head is None and parsed.target.head is not None:
                anchor.head, anchor.compound = parsed.target.head, parsed.target.compound
                anchor.generic = False


#: Words before "of" that pick one object of a group ("one of the cans", "the taller of").
_PARTITIVE_STARTS = frozenset({'of', 'among', 'amongst', 'from', 'out'})


def _read_number(s: _Sentence) -> None:
    """Read whether the target is several objects and how many (``ParsedQuery.plural``).

    A quantifier ("all", "every", "each", "both", "all of the"), a count ("the two cans", "2
    cans", "a pair of cans") or a plural head ("the red cans", "the red ones") makes it plural;
    a pick in a group stays one object: "one of the cans", "the left one of the two cans", "the
    taller of the two", "the second of the cans", "of the two cans on the left, the right one",
    "counting the bottles from the left, the third"; "a pair of scissors" is one thing.
    """
    parsed = s.parsed
    if parsed.group_side is not None:
        return
    head_items, _ = _target_split(s.target_items)
    words = [str(m.value) for m in s.target_items + s.clause_extra if m.kind == 'word']
    if any(w in ('one', 'single') and (k == 0 or words[k - 1] not in ('every', 'each'))
           for k, w in enumerate(words)):
        return  # "one of the cans", "the cans, the left one"
    of = next((k for k, m in enumerate(head_items) if m.kind == 'word' and m.value == 'of'),
              None)
    if of is not None:
        before = [m for m in head_items[:of] if not (m.kind == 'word'
                                                     and m.value in ('the', 'a', 'an'))]
        if not before or (before[0].kind == 'word' and before[0].value in _PARTITIVE_STARTS):
            return  # "of the two cans, the left one": the group first, then a pick
        if not all(m.kind == 'word' and (m.value in lx.QUANTIFIERS or m.value in lx.COUNT_WORDS
                                         or m.value.isdigit() or m.value == 'one')
                   for m in before):  # ("every one of the cans")
            return  # "the taller of the two", "the second of the cans"
    said = [str(m.value) for m in head_items if m.kind == 'word']
    count = next((lx.COUNT_WORDS[w] if w in lx.COUNT_WORDS else int(w) for w in said
                  if w in lx.COUNT_WORDS or (w.isdigit() and 2 <= int(w) <= 99)), None)
    quantified = any(w in lx.QUANTIFIERS for w in said)
    if 'pair' in said and parsed.target.head in PLURALIA:
        return  # "a pair of scissors": one thing
    if count is None and any(m.kind in ('ord', 'from_end') for m in s.marks):
        return  # "counting the bottles from the left, the third one"
    if quantified or count is not None or parsed.target.plural:
        parsed.plural, parsed.count = True, count


_AXIS = {'left': 'x', 'right': 'x', 'front': 'y', 'back': 'y'}
#: Count words that say how many a group holds ("the two cans on the left").
_COUNTS = {'two': 2, 'both': 2, 'pair': 2, 'couple': 2, 'three': 3, 'four': 4, 'five': 5}


def _vocabulary() -> Tuple[frozenset, frozenset]:
    """Return (words a misspelling may be corrected to, every word the parser knows)."""
    targets = set(lx.COLOUR_WORDS) | set(lx.SIZE_WORDS) | set(lx.SUPERLATIVES) | \
        set(lx.SIDE_WORDS) | set(lx.EXTREMES) | set(lx.ORDINALS) | set(lx.SHAPE_WORDS) | \
        set(lx.HYPERNYMS) | set(lx.GENERIC_NOUNS) | set(lx.FROM_END) | set(lx.MIDDLE_WORDS) | \
        lx.QUANTIFIERS | set(lx.COUNT_WORDS)
    for group in lx.SYNONYM_GROUPS:
        targets |= {w for w in group if ' ' not in w}
    for kinds in lx.HYPERNYMS.values():
        targets |= {w for w in kinds if ' ' not in w}
    known = {w for w in targets if ' ' not in w}
    targets = {w for w in known if w.isalpha() and len(w) >= 4}
    known |= set(lx.STOPWORDS) | set(lx.NEGATIONS) | set(lx.UNIQUENESS) | \
        set(lx.NUMBERS) | lx.QUANTIFIERS | set(lx.VIEWER_WORDS) | CLAUSE_MARKERS | SIDE_INTRO | \
        SIDE_FILLER
    for phrase in list(lx.RELATION_PHRASES) + list(lx.REQUEST_PREFIXES) + list(lx.EXCLUSIONS):
        known |= set(phrase)
    return frozenset(targets), frozenset(known)


_TARGETS, _KNOWN = _vocabulary()
_TARGETS_BY_LENGTH: dict = {}
for _word in _TARGETS:
    _TARGETS_BY_LENGTH.setdefault(len(_word), []).append(_word)


def one_edit(a: str, b: str) -> bool:
    """Tell whether b is a with one letter inserted, dropped, changed or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    k = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[k:] == long_[k + 1:]


def correct_spelling(tokens: List[str]) -> List[str]:
    """Replace an unknown word one typing slip away from exactly one known word.

    Known words: colours, sizes, sides, ordinals, object names ("yelow" -> "yellow", "botle" ->
    "bottle", "pnk" -> "pink"). Words of three letters are only lengthened ("pnk", not "cap"
    -> "can"); a word close to two known words is kept (the grounding compares it by meaning).
    """
    out = []
    for w in tokens:
        if len(w) < 3 or not w.isalpha() or w in _KNOWN or singular(w) in _KNOWN:
            out.append(w)
            continue
        lengths = (len(w) + 1,) if len(w) == 3 else (len(w) - 1, len(w), len(w) + 1)
        # a slip rarely changes the first letter ("sink" is not "pink"), except by a swap
        near = [t for n in lengths for t in _TARGETS_BY_LENGTH.get(n, ())
                if (t[0] == w[0] or t[:2] == w[1::-1]) and one_edit(w, t)]
        out.append(near[0] if len(near) == 1 else w)
    return out


def _negated_before(items: Sequence[_Mark]) -> bool:
    """Tell whether 'not' precedes the next mark with only copulas between.

    "not the one on top of the box" too: "one" stands for the target.
    """
    for m in reversed(items):
        if m.kind == 'neg':
            return True
        if m.kind == 'word' and m.value in ('is', 'are', 'was', 'be', 'that', 'which', 'the',
                                            'a', 'an', 'placed', 'located', 'sitting',
                                            'standing', 'one', 'ones', 'up', 'down', 'directly',
                                            'also', 'even', 'resting', 'lying', 'kept'):
            continue
        if m.kind == 'clause':
            continue
        return False
    return False


def _no_head(items: Sequence[_Mark]) -> bool:
    words, _ = _words_of(items)
    np_ = _noun_phrase(words)
    return np_.head is None


def _target_split(items: List[_Mark]) -> Tuple[List[_Mark], List[_Mark]]:
    """Split the target's own phrase at its first clause marker (or boundary after a noun)."""
    for k, m in enumerate(items):
        if m.kind == 'clause':
            return items[:k], items[k:]
        if m.kind == 'end' and _words_of(items[:k])[0]:
            return items[:k], items[k:]
    return items, []


def _and_parts(items: List[_Mark]) -> List[List[_Mark]]:
    parts: List[List[_Mark]] = [[]]
    for m in items:
        if m.kind == 'word' and m.value in ('and', '&', 'or') and parts[-1] and len(parts) < 2:
            parts.append([])
        else:
            parts[-1].append(m)
    return parts


def _between_split(items: List[_Mark]) -> Tuple[List[_Mark], List[_Mark]]:
    """'between A and B, ...': both anchors, then the rest (a clause after B)."""
    first, rest = _split_clause(items)
    if rest and rest[0].kind == 'word' and rest[0].value in ('and', 'or'):
        second, tail = _split_clause(rest[1:])
        return first + [rest[0]] + second, tail
    return first, rest
