"""The parser's reading of spoken forms, one line each (``ParsedQuery.describe``)."""
import pytest

from refersplat_ros.core.language.parse import parse_query, tokenize


@pytest.mark.parametrize('text, reading', [
    ("the ball to the cone's right", 'target: ball; right of: cone'),
    ("the mug on the red bowl's far left-hand side", 'target: mug; left of: red bowl'),
    ('the box with the mug on its right-hand side', 'target: box; left of: mug'),
    ('the box that has a ball in back of it', 'target: box; in front of: ball'),
    ('the plate with the mug on it', 'target: plate; under: mug'),
    ('look at the box. the plate in front of it', 'target: plate; in front of: box'),
    ('there is a mug; I want the ball left of it', 'target: ball; left of: mug'),
    ('there are two mugs. I want the one on the left', 'target: mug; #1 from the left'),
    ('the furthest forward cup', 'target: cup; #1 from the front'),
    ('the next-to-last can from the left', 'target: can; #2 from the right'),
    ('the last but one ball', 'target: ball; #2 from the right'),
    ('the third to last ball', 'target: ball; #3 from the right'),
    ('the least tall box', 'target: box; least height'),
    ('the most massive box', 'target: box; most volume'),
    ('the can you can see on the left', 'target: can; #1 from the left'),
    ('can I have the red mug', 'target: red mug'),
    ('the object that is not a mug', 'target: object; except: mug'),
    ("the plate that isn't the leftmost one", 'target: plate; not #1 from the left'),
    ('not the frontmost box, the other one', 'target: box; not #1 from the front'),
    ('the cup that is not the second from the left', 'target: cup; not #2 from the left'),
    ('not the leftmost red can', 'target: red can; not #1 from the left'),
    ('the cup that is not the blue one', 'target: not blue cup'),
    ('neither the red nor the blue ball', 'target: not red not blue ball'),
    ('the mug right in front of the box', 'target: mug; in front of: box'),
    ('the cup over to the right of the bowl', 'target: cup; right of: bowl'),
    ('the mug on this side of the box', 'target: mug; in front of: box'),
    ('the cone somewhere in the gap between the box and the ball',
     'target: cone; between: box and ball'),
    # soft grounding's inputs: parts, surfaces, reduced clauses, missing apostrophes
    ('the cup with a chipped rim', 'target: cup'),
    ('the mug on the table', 'target: mug; on top of: table'),
    ('the box at the end of the counter', 'target: box; at edge of: counter'),
    ('the tray the cup is standing on', 'target: tray; under: cup'),
    ('what the lamp sits on', 'target: object; under: lamp'),
    ('the can that isnt red', 'target: not red can'),
    ('the cup near the white plate and the black box',
     'target: cup; next to: black box; next to: white plate'),
    ('a blue mug standing between two white plates', 'target: blue mug; between: white plate'),
    ('the green ball that sits on the table, not the one on top of the yellow box',
     'target: green ball; on top of: table; not on top of: yellow box'),
    # self-corrections, question forms, comparatives, '-ish', clauses of use, sides by "one"
    ('the pink bowl - sorry, the orange bowl', 'target: orange bowl'),
    ('the red \u2014 no, the blue one', 'target: blue object'),
    ('the cup, I mean the mug', 'target: mug'),
    ('the purple ball on the box - no, the one on the right, behind the cone',
     'target: purple ball; behind: cone; #1 from the right'),
    ('sorry, could you grab the mug', 'target: mug'),
    ('isnt there a can at the back left? get that', 'target: can; #1 from the back left'),
    ('the bottle. the blue-ish one on the shelf', 'target: blue bottle; on top of: shelf'),
    ('the taller of the two items standing on the shelf',
     'target: object; on top of: shelf; most height'),
    ("something you'd eat cereal out of, orange, left of the red ball",
     'target: orange object; left of: red ball'),
    ('what I would pour milk into', 'target: object'),
    ('the cup you gave me', 'target: cup'),
    ('of the pair of green cans on the left, the one further to the right',
     'target: green can; of the 2 on the left; #1 from the right'),
    ('theres two green cans on the left, i want the right one',
     'target: green can; of the 2 on the left; #1 from the right'),
    ('the left one of the two red cans on the right',
     'target: red can; of the 2 on the right; #1 from the left'),
    ('the flat round one', 'target: plate'),
    ('the pink can off the shelf', 'target: pink can; on top of: shelf'),
])
def test_spoken_forms(text, reading):
    assert parse_query(text).describe() == reading


@pytest.mark.parametrize('text, reading', [
    # counted from the first side said
    ('Counting the balls from left to right, the second one.', 'target: ball; #2 from the left'),
    ('the third box going from right to left', 'target: box; #3 from the right'),
    # an edge of the surface: the extreme on that side
    ('The ball closest to the left edge of the table.', 'target: ball; #1 from the left'),
    ('the cup nearest to the front edge', 'target: cup; #1 from the front'),
    # the middle however it is said
    ('Look at the two black balls. Give me the one nearer the middle.',
     'target: black ball; middle'),
    ('the teal ball in the middle, the blue-green one', 'target: cyan ball; middle'),
    # a part of the anchor is the anchor
    ('the mug in front of the right end of the shelf', 'target: mug; in front of: shelf'),
    ('the can behind the left half of the box', 'target: can; behind: box'),
    # fillers that relate to nothing
    ('The only yellow object in the scene, a small round ball.',
     'target: small yellow ball; only'),
    ('The mug that is raised up off the table on a box.', 'target: mug; on top of: box'),
    ('A wide bowl in the centre, good for holding soup.', 'target: long bowl; middle'),
    ('the box with the mug on top? yeah that one', 'target: box; under: mug'),
    ('the box with the mug on it, yeah that one', 'target: box; under: mug'),
    # what it has not on it
    ('uh, the white box, the one without anything on it', 'target: white box; not under: object'),
    ('the plate that has nothing on it', 'target: plate; not under: object'),
    ('the box without a mug on top of it', 'target: box; not under: mug'),
    ('The mug that sits directly on the tabletop rather than being stacked on something.',
     'target: mug; on top of: tabletop; not on top of: object'),
    # colours of two words, nouns that are plural in the singular
    ('the greenish blue cup', 'target: cyan cup'),
    ('the reddish-brown mug', 'target: brown mug'),
    ('get me the scissors off the table', 'target: scissors'),
    ('the magenta dish', 'target: purple|pink dish'),
    # a sequence of steps; the sides of a gap
    ('find the shelf first, then take the bottle standing on it',
     'target: bottle; on top of: shelf'),
    ('the box with the shelf on one side and the jug on the other',
     'target: box; between: shelf and jug'),
    # parts of a support: on it; halves of the table: a side
    ('The purple can standing on the right-hand part of the pink shelf.',
     'target: purple can; on top of: pink shelf'),
    ('The small orange cone sitting on the left end of the shelf.',
     'target: small orange cone; on top of: shelf'),
    ('it is the furthest back cup on the right half of the table',
     'target: cup; #1 from the back right'),
    ('pick up the yellow mug in the middle of the table', 'target: yellow mug; middle'),
    ('A pink box a little left of the centre of the table', 'target: pink box; #1 from the left'),
    # what stands on it, said after a clause or an anchor; its colours are not the target's
    ('The long pink shelf running along the back of the table, with a green can and a purple '
     'can standing on top of it.', 'target: long pink shelf; behind: table; under: green can'),
    ('A squarish pink box, with a small teal ball resting on its lid.',
     'target: pink squarish box; under: small cyan ball'),
    ('The large green box on the left side of the table with a black bowl resting on it.',
     'target: large green box; under: black bowl; #1 from the left'),
    # the group said first, the pick after the comma; "not A but B"; ", no the blue one"
    ('In the row of three large balls along the front of the table, the one in the middle.',
     'target: large ball; in front of: table; middle'),
    ('The pink object near the front, not the long shelf but the box with the cyan ball on it.',
     'target: box; under: cyan ball'),
    ('uh the bottle, the purple one, no the blue one, the light blue bottle',
     'target: blue bottle'),
    ('The bottle on the table that is neither purple nor up on the shelf; it is light blue.',
     'target: blue not purple bottle; on top of: table; not on top of: shelf'),
    ('The can that sits directly on the table rather than being raised up on something.',
     'target: can; on top of: table; not on top of: object'),
    ('The taller green can standing on its own in the middle of the table.',
     'target: green can; middle; most height'),
])
def test_more_spoken_forms(text, reading):
    assert parse_query(text).describe() == reading


def test_a_typo_keeps_its_first_letter():
    assert parse_query('the red mug nearer the sink').target.colours == ['red']  # not 'pink'
    assert parse_query('the yelow cup').target.colours == ['yellow']


def test_possessive_without_a_side_is_is():
    assert tokenize("it's the mug's handle") == ['it', 'is', 'the', 'mug', 'is', 'handle']


@pytest.mark.parametrize('text', ['', '.', "'s", 'its left', "the 's right", '. . the', ';;'])
def test_fragments_never_raise(text):
    parse_query(text).describe()


@pytest.mark.parametrize('text, reading', [
    ('the thing closest to me', 'target: object; #1 from the front'),
    ('the green ball farther away from me', 'target: green ball; #1 from the back'),
    ('please, the big ball nearest to me, the green one',
     'target: large green ball; #1 from the front'),
    ('second one from the right', 'target: object; #2 from the right'),
    ('I want the ball in the back right', 'target: ball; #1 from the back right'),
    ("See the pink box? Get me what's on top of it.", 'target: object; on top of: pink box'),
    ('the bowl behind the other pink one', 'target: bowl; behind: pink bowl'),
    ('the thing on the shelf more to the left',
     'target: object; on top of: shelf; #1 from the left'),
    ('um, the little red pointy thing', 'target: small red cone'),
    ('the yelow bowl', 'target: yellow bowl'),
    ('the white botle, the left one', 'target: white bottle; #1 from the left'),
    ('pass me the bleu can', 'target: blue can'),
    ('the cap on the box', 'target: cap; on top of: box'),
    ('the tin on the tray', 'target: tin; on top of: tray'),  # known words stay, even short
])
def test_viewer_anchors_corners_one_shapes_and_typos(text, reading):
    assert parse_query(text).describe() == reading


def test_a_relation_right_after_an_anchor_is_marked():
    parsed = parse_query('the ball in front of the can on the shelf')
    assert [r.after_anchor for r in parsed.relations] == [False, True]
    parsed = parse_query('the ball in front of the can, on the shelf')
    assert [r.after_anchor for r in parsed.relations] == [False, False]
