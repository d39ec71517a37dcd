"""Lists of objects ("the blue cup and the yellow bowl"): every phrase's object is a target."""
import pytest

from core.language.test_ground import ROW
from core.language.test_plural import targets
from helpers.object_graphs import grounder
from refersplat_ros.core.language.ground import AMBIGUOUS, NO_MATCH, OK
from refersplat_ros.core.language.parse import conjuncts


@pytest.fixture(scope='module')
def row():
    return grounder(ROW)


@pytest.mark.parametrize('text, parts', [
    ('the blue cup and the yellow bowl', ['the blue cup', 'the yellow bowl']),
    ('grab the cups, the bowl and the box', ['grab the cups', 'the bowl', 'the box']),
    ('the red ball as well as the black box', ['the red ball', 'the black box']),
    ('both cups, the blue one and the white one', ['both cups', 'the blue cup',
                                                   'the white cup']),
    ('both cans, the left one and the right one', None),  # picks among them
    ('the two cups (the blue ones and the white one)',
     ['the two cups', 'the blue cups', 'the white cup']),
    ('the can between the bowl and the box', None), ('the cup and saucer', None),
    ('the red and white mug', None), ('the cans, grab those', None),
    ('of the two cans on the left, the right one', None), ('the cans, the left one', None),
    ('the mug | no, the bowl and the cup', None),
    ('both the blue cup and the yellow bowl', ['the blue cup', 'the yellow bowl']),
    ('the white and the green cup', ['the white cup', 'the green cup']),
    ('both of the balls, the red one and the blue one',
     ['both of the balls', 'the red ball', 'the blue ball']),
    # a comma alone describes one object; "and" after a placed phrase joins its anchors
    ('the red mug, the one on the left', None), ('not the red cup, the other one', None),
    ('the can left of the bowl and the plate', None),
    ('the shelf with a bowl and a mug on it', None),
    ('behind the stack of the box and the bowl, the cone', None),
    # ... unless the phrase after the "and" points back at it
    ('the box in the middle and the ball on top of it',
     ['the box middle', 'the ball on top of it']),  # (the reader's own tokens)
    ('the box holding the ball and the green box beside it',
     ['the box holding the ball', 'the green box beside it']),
    ('the shelf with a bowl and a mug on it', None),
])
def test_a_list_is_split_at_coordinated_noun_phrases(text, parts):
    assert conjuncts(text) == (parts or [text])


@pytest.mark.parametrize('text, expected', [
    ('the blue cup and the yellow bowl', ['blue-cup', 'yellow-bowl']),
    ('the white cup, the green cup and the black box', ['white-cup', 'green-cup', 'black-box']),
    ('grab the red cans and the bowl', ['red-can', 'red-can-2', 'yellow-bowl']),
    ('the black box and the ball on top of it', ['black-box', 'red-ball']),  # "it": the box
    ('the red things, all of them', ['red-ball', 'red-can', 'red-can-2']),
    ('both the blue cup and the yellow bowl', ['blue-cup', 'yellow-bowl']),
    ('the white and the green cup', ['white-cup', 'green-cup']),
    # an ambiguous part ("the can") is settled by the plural before it
    ('the red things, the ball and the can', ['red-ball', 'red-can', 'red-can-2']),
])
def test_every_listed_object_is_a_target(row, text, expected):
    result = row.ground(text)
    assert result.status == OK, result.interpretation
    assert sorted(targets(row, result)) == sorted(expected), result.interpretation


def test_a_listed_object_that_is_absent_is_no_list(row):
    # "the purple box" names nothing: the sentence is read as one phrase, which finds nothing
    assert row.ground('the blue cup and the purple box').status == NO_MATCH
    # a part that fits two objects equally, settled by nothing listed: ask again
    result = row.ground('the blue cup and the red can')
    assert result.status == AMBIGUOUS and "'the red can' fits 2 objects" in result.message
    names = {row.graph.objects[k].name for k, _ in result.candidates[:2]}
    assert names == {'red-can', 'red-can-2'}
