"""Soft grounding: unknown words and anchors that are not annotated objects never veto an answer.

A hand-built counter (objects as point blobs; the counter itself, the floor and the wall are not
objects): fruit on a thin cutting board, two books stacked, twin red cans, a vase at the back.
Seen from the front camera at -y: x is right, y is away.
"""
import pytest

from helpers.object_graphs import answer, grounder
from refersplat_ros.core.language.ground import AMBIGUOUS, GroundingConfig, NO_MATCH, OK

COUNTER = [
    ('cutting-board', 'brown', (0.0, 0.0, 0.0), (0.38, 0.25, 0.015)),
    ('apple', 'red', (0.05, 0.02, 0.015), (0.07, 0.07, 0.07)),
    ('orange', 'orange', (0.4, -0.05, 0.0), (0.08, 0.08, 0.08)),
    ('blue-book', 'blue', (-0.45, 0.25, 0.0), (0.2, 0.15, 0.04)),
    ('green-book', 'green', (-0.45, 0.25, 0.04), (0.2, 0.15, 0.04)),
    ('red-can', 'red', (0.55, 0.3, 0.0), (0.06, 0.06, 0.12)),
    ('red-can-2', 'red', (0.65, 0.3, 0.0), (0.06, 0.06, 0.12)),
    ('white-vase', 'white', (-0.05, 0.5, 0.0), (0.1, 0.1, 0.25)),
]


@pytest.fixture(scope='module')
def counter():
    return grounder(COUNTER)


@pytest.mark.parametrize('text, expected', [
    # thin supports and stacks
    ('the fruit on the cutting board', 'apple'),
    ('the fruit resting on the wooden board', 'apple'),
    ('the book on top of the other book', 'green-book'),
    ('the book underneath the green one', 'blue-book'),
    ('the board the apple is sitting on', 'cutting-board'),
    ('what the apple sits on', 'cutting-board'),
    # surfaces that are not objects
    ('the vase standing on the counter', 'white-vase'),
    ('the thing against the wall', 'white-vase'),
    ('the red can at the end of the table', 'red-can-2'),
    # unknown words and parts carry no evidence
    ('the apple with a bruised skin', 'apple'),
    ('the hardback lying on the blue book', 'green-book'),
    ('the vase next to the sink', 'white-vase'),
    ('the can that isnt on the left', 'red-can-2'),
])
def test_answers_without_a_veto(counter, text, expected):
    status, name, result = answer(counter, text)
    assert (status, name) == (OK, expected), result


def test_surface_and_dropped_phrases_are_said(counter):
    result = counter.ground('the vase standing on the counter')
    assert '(surface)' in result.interpretation
    result = counter.ground('the vase next to the sink')
    assert 'dropped: next to sink' in result.interpretation and result.dropped
    assert result.confidence < counter.ground('the white vase by the red cans').confidence


@pytest.mark.parametrize('text, why', [
    ('a pear', 'pear'),                      # a known kind that is absent, not a similar fruit
    ('the yellow book', 'yellow'),           # a stated colour no book has
    ('the laptop', 'laptop'),
    ('the red book on the shelf', 'red'),
    ('the orange next to the toaster', 'toaster'),  # an anchor of a known kind that is absent
])
def test_clearly_absent_is_no_match(counter, text, why):
    status, _, result = answer(counter, text)
    assert status == NO_MATCH, result
    assert why in result.message or why in result.interpretation


def test_a_near_known_sentence_does_not_overrule_an_absent_count():
    g = grounder(COUNTER, sentences={'red-can': ['the first red can from the right please']})
    status, _, result = answer(g, 'the third red can from the right please')
    assert status == NO_MATCH and 'only 2' in result.message, result


def test_confidence_separates_clear_and_ambiguous(counter):
    clear = counter.ground('the orange')
    twins = counter.ground('the red can')
    assert clear.status == OK and clear.confidence >= 0.8
    assert twins.status == AMBIGUOUS and twins.confidence <= 0.6
    for text in ('the orange', 'the red can', 'the zxqv', 'the vase next to the sink'):
        assert 0.0 <= counter.ground(text).confidence <= 1.0


def test_failed_fact_lowers_a_score_but_keeps_the_object():
    # a relation that fails for one of two candidates moves the answer; nothing is removed
    from refersplat_ros.core.language.parse import parse_query
    g = grounder(COUNTER, config=GroundingConfig(miss=0.05))
    result = g.ground('the book on top of the other book')
    names = [g.graph.objects[k].name for k, _ in result.candidates]
    assert names[0] == 'green-book'
    assert result.candidates[0][1] > 0.9
    evidence = g._program(parse_query('the book on top of the other book'),
                          g.graph.placed(g.graph.reference))
    blue = names_of(g).index('blue-book')
    assert evidence.veto is None and evidence.scores[blue] == pytest.approx(0.05)  # one miss
    assert (evidence.scores > 0).all()  # every object keeps a (small) score


def names_of(g):
    return [o.name for o in g.graph.objects]


def test_sentence_evidence_decides_between_equal_programs():
    g = grounder(COUNTER, sentences={'red-can': ['the dented red can with the torn label'],
                                     'red-can-2': ['the red can nearest the wall']})
    status, name, result = answer(g, 'the red can with the torn label')
    assert (status, name) == (OK, 'red-can'), result


def test_config_ranges():
    for bad in (dict(miss=0.0), dict(temperature=0.0), dict(sentence_weight=-1.0),
                dict(dropped_penalty=1.5)):
        with pytest.raises(ValueError):
            GroundingConfig(**bad).validate()


def test_never_raises_on_rambling_typos_or_other_languages(counter):
    import random
    import string
    words = ('the a red can on table with not left of right behind second last only and , . '
             'it that one board apple sits is standing what under wall edge end counter zxq '
             'über 你好 ☃ isnt nearest to me between both um uh like').split()
    rng = random.Random(0)
    for i in range(300):
        if i % 3 == 0:
            text = ''.join(rng.choice(string.printable) for _ in range(rng.randint(0, 60)))
        else:
            text = ' '.join(rng.choice(words) for _ in range(rng.randint(0, 25)))
        result = counter.ground(text)
        assert result.status in (OK, AMBIGUOUS, NO_MATCH) and 0.0 <= result.confidence <= 1.0
