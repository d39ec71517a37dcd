"""Plural and counted targets: "all the cans", "both cups", "the two red cans" (issue 26)."""
import pytest

from core.language.test_ground import ROW, SMALL
from helpers.object_graphs import grounder
from refersplat_ros.core.language.ground import AMBIGUOUS, NO_MATCH, OK, plural_text
from refersplat_ros.core.language.parse import parse_query

# ROW: three cups in a row, a bowl behind the middle one, a red ball on a black box, two
# identical red cans side by side on the right (test_ground.py).


@pytest.fixture(scope='module')
def row():
    return grounder(ROW)


def targets(g, result):
    return [g.graph.objects[k].name for k, _ in result.targets]


@pytest.mark.parametrize('text, count', [
    ('all the oranges', None), ('every book on the shelf', None), ('each bowl', None),
    ('all of the cans', None), ('both cans', 2), ('both of the mugs', 2), ('the two red cans', 2),
    ('the 3 bowls', 3), ('a pair of cans', 2), ('the red cans', None), ('the red ones', None),
    ('grab all the oranges', None), ('pick up both cans', 2), ('the bottles on the left', None),
    ('the cans left of the bowl', None), ('the two leftmost cans', 2),
    ('every one of the cans', None), ('all the things on the box', None),
])
def test_plural_targets_and_counts(text, count):
    parsed = parse_query(text)
    assert (parsed.plural, parsed.count) == (True, count), parsed.describe()


@pytest.mark.parametrize('text', [
    'of the two cans on the left, the right one', 'the second can from the left',
    'the can between the two bowls', 'the scissors', 'the glasses', 'one of the cans',
    'the left one of the two red cans', 'the taller of the two', 'the can',
    'the can all the way to the left', 'a pair of scissors', 'the cup next to the plates',
    'There are two mugs. I want the one on the left', 'of all the mugs, the leftmost one',
    'Counting the bottles from the left side of the table, the third one.',
])
def test_singular_constructs_stay_singular(text):
    parsed = parse_query(text)
    assert (parsed.plural, parsed.count) == (False, None), parsed.describe()


def test_group_count_and_ordinal_unchanged():
    parsed = parse_query('of the two cans on the left, the right one')
    assert (parsed.group_side, parsed.group_count, parsed.side) == ('left', 2, 'right')
    parsed = parse_query('the second can from the left')
    assert (parsed.ordinal, parsed.side) == (2, 'left')
    assert parse_query('the can between the two bowls').relations[0].op == 'between'


def test_quantifier_is_not_a_modifier():
    assert parse_query('all the red cans').target.describe() == 'red can'


@pytest.mark.parametrize('text, expected', [
    ('all the cups', ['blue-cup', 'white-cup', 'green-cup']),
    ('every cup', ['blue-cup', 'white-cup', 'green-cup']),
    ('grab all the cups', ['blue-cup', 'white-cup', 'green-cup']),
    ('both cans', ['red-can', 'red-can-2']),
    ('pick up both of the red cans', ['red-can', 'red-can-2']),
    ('the two red cans', ['red-can', 'red-can-2']),
    ('the 3 cups', ['blue-cup', 'white-cup', 'green-cup']),
    ('the red cans', ['red-can', 'red-can-2']),
    ('the red things', ['red-ball', 'red-can', 'red-can-2']),
    ('the cups that are not white', ['blue-cup', 'green-cup']),
    ('all the cups except the blue one', ['white-cup', 'green-cup']),
])
def test_plural_answers_every_member(row, text, expected):
    result = row.ground(text)
    assert result.status == OK, result
    assert sorted(targets(row, result)) == sorted(expected), result.interpretation
    assert result.candidates and result.chosen == result.targets[0][0]
    assert result.targets[0][1] == pytest.approx(1.0)
    assert all(0.0 < score <= 1.0 for _, score in result.targets)
    assert f'targets: {len(expected)} x ' in result.interpretation


def test_relations_apply_per_object(row):
    result = row.ground('the cups left of the green cup')
    assert (result.status, sorted(targets(row, result))) == (OK, ['blue-cup', 'white-cup'])
    result = row.ground('the cups to the right of the blue cup')
    assert sorted(targets(row, result)) == ['green-cup', 'white-cup']


def test_counted_sides_and_superlatives_pick_in_order(row):
    result = row.ground('the two leftmost cups')
    assert (result.status, targets(row, result)) == (OK, ['blue-cup', 'white-cup'])
    result = row.ground('the cups on the left')
    assert targets(row, result) == ['blue-cup']
    result = row.ground('the two rightmost cups')
    assert sorted(targets(row, result)) == ['green-cup', 'white-cup']


@pytest.mark.parametrize('text, message', [
    ('the three red cans', 'asked for 3 red cans, 2 here'),
    ('both cups', 'asked for 2 cups, 3 here'),
    ('the two bowls', 'asked for 2 bowls, 1 here'),
])
def test_count_mismatch_is_no_match(row, text, message):
    result = row.ground(text)
    assert (result.status, result.message) == (NO_MATCH, message), result
    assert result.targets == [] and message in result.interpretation


def test_plural_without_a_match_is_no_match(row):
    assert row.ground('all the pears').status == NO_MATCH
    assert row.ground('the red cups').status == NO_MATCH


def test_plural_with_one_match_answers_it(row):
    result = row.ground('all the bowls')
    assert (result.status, targets(row, result)) == (OK, ['yellow-bowl'])
    result = row.ground('the blue cups')
    assert (result.status, targets(row, result)) == (OK, ['blue-cup'])


def test_singular_queries_have_no_targets(row):
    result = row.ground('the blue cup')
    assert result.status == OK and result.targets == []
    result = row.ground('the red can')  # two identical cans: one asked, so ambiguous
    assert result.status == AMBIGUOUS and result.targets == []


def test_shortcuts_do_not_hijack_plurals():
    g = grounder([('red-can', 'red', (0.0, 0.0, 0.0), SMALL),
                  ('red-cans', 'red', (0.3, 0.0, 0.0), SMALL),
                  ('blue-can', 'blue', (0.6, 0.0, 0.0), SMALL)],
                 sentences={'red-can': ['all the red cans']})
    # a known sentence and an object's own name, said as plurals: every red can
    result = g.ground('all the red cans')
    assert result.status == OK and sorted(targets(g, result)) == ['red-can', 'red-cans']
    result = g.ground('red cans')
    assert result.status == OK and sorted(targets(g, result)) == ['red-can', 'red-cans']


def test_plural_text():
    assert [plural_text(p) for p in ('red can', 'box', 'shelf', 'cherry', 'cup')] == [
        'red cans', 'boxes', 'shelves', 'cherries', 'cups']
