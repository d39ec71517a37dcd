"""The lexicon is one consistent set of word lists (no word or set defined twice)."""
from collections import Counter
from itertools import combinations

from refersplat_ros.core.language import lexicon as lx
from refersplat_ros.core.language.graph import PAIRWISE

#: Operators the grounding evaluates: the pairwise table and the three it ranks itself.
GROUNDED_OPERATORS = set(PAIRWISE) | {'between', 'nearest_to', 'farthest_from'}


def _nouns():
    """Words named as kinds by the synonym groups and the hypernyms (not by SHAPE_WORDS)."""
    return ({w for group in lx.SYNONYM_GROUPS for w in group} | set(lx.HYPERNYMS)
            | {w for kinds in lx.HYPERNYMS.values() for w in kinds})


def test_no_word_in_two_synonym_groups():
    counts = Counter(w for group in lx.SYNONYM_GROUPS for w in group)
    assert {w for w, n in counts.items() if n > 1} == set()


def test_no_synonym_group_twice():
    assert len(set(lx.SYNONYM_GROUPS)) == len(lx.SYNONYM_GROUPS)


def test_no_hypernym_set_defined_twice():
    for a, b in combinations(lx.HYPERNYMS, 2):
        if lx.HYPERNYMS[a] == lx.HYPERNYMS[b]:
            assert lx.HYPERNYMS[a] is lx.HYPERNYMS[b], (a, b)  # one refers to the other
            assert lx.HYPERNYM_ALIASES.get(a) == b or lx.HYPERNYM_ALIASES.get(b) == a, (a, b)


def test_hypernym_aliases_refer_to_hypernyms():
    for alias, word in lx.HYPERNYM_ALIASES.items():
        assert word in lx.HYPERNYMS and word not in lx.HYPERNYM_ALIASES
        assert lx.HYPERNYMS[alias] is lx.HYPERNYMS[word]


def test_no_word_both_colour_and_size():
    sizes = set(lx.SIZE_WORDS) | set(lx.SUPERLATIVES)
    assert set(lx.COLOUR_WORDS) & sizes == set()


def test_colour_words_name_basic_colours():
    assert set(lx.COLOUR_WORDS.values()) <= set(lx.COLOUR_PROTOTYPES)
    assert lx.COLOUR_NOUNS <= set(lx.COLOUR_WORDS)
    for pair in lx.COLOUR_NEIGHBOURS:
        assert len(pair) == 2 and pair <= set(lx.COLOUR_PROTOTYPES)


def test_relation_phrases_map_to_grounded_operators():
    assert set(lx.RELATION_PHRASES.values()) <= GROUNDED_OPERATORS
    assert set(lx.RELATION_WORDS) <= GROUNDED_OPERATORS
    assert set(lx.SIDE_RELATION.values()) <= GROUNDED_OPERATORS
    assert lx.SUPERLATIVE_RELATIONS <= GROUNDED_OPERATORS


def test_no_relation_phrase_listed_twice():
    phrases = [p for listed in lx.RELATION_WORDS.values() for p in listed]
    assert [p for p, n in Counter(phrases).items() if n > 1] == []
    assert len(lx.RELATION_PHRASES) == len(phrases)


def test_shape_words_name_known_nouns():
    nouns = _nouns()
    assert {w: kind for w, kind in lx.SHAPE_WORDS.items() if kind not in nouns} == {}
    assert set(lx.SHAPE_WORDS.values()) <= lx.KNOWN_NOUNS


def test_other_kinds_defined_once():
    """A kind with synonyms or a hypernym is listed there, not again among the other kinds."""
    assert lx.OTHER_KINDS & (_nouns() | set(lx.COLOUR_WORDS) | lx.SURFACE_WORDS
                             | lx.GENERIC_NOUNS | lx.STOPWORDS) == frozenset()
    assert lx.OTHER_KINDS <= lx.KNOWN_NOUNS


def test_surface_words_are_not_generic():
    assert lx.SURFACE_WORDS & lx.GENERIC_NOUNS == frozenset()
    assert lx.SURFACE_WORDS == lx.SUPPORT_WORDS | lx.WALL_WORDS | lx.SHELF_WORDS


def test_sides_are_canonical():
    sides = set(lx.OPPOSITE)
    assert set(lx.SIDE_WORDS.values()) <= sides and set(lx.EXTREMES.values()) <= sides
    assert set(lx.SIDE_RELATION) == sides
