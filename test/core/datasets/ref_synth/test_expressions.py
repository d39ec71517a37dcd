"""Ref-Synth relations and expressions: truth in the geometry, uniqueness, held-out wording."""
import collections
import re

import numpy as np
import pytest

from refersplat_ros.core.datasets.ref_synth import expressions as ex
from refersplat_ros.core.datasets.ref_synth.generator import generate_scene, preset_config
from refersplat_ros.core.datasets.ref_synth.relations import (between, Description, directional,
                                                              footprint_gap, next_to, on_top_of,
                                                              ordinal_position, RelationThresholds,
                                                              superlative)
from refersplat_ros.core.datasets.ref_synth.scene import identical
from helpers.synth_objects import obj

TH = RelationThresholds()


def test_directional_relations_in_the_table_frame():
    a, b = obj(1, 'mug', -0.2, 0.0), obj(2, 'bowl', 0.1, 0.02)
    assert directional('left_of', a, b, TH) and directional('right_of', b, a, TH)
    assert not directional('right_of', a, b, TH) and not directional('behind', a, b, TH)
    front, back = obj(3, 'ball', 0.0, -0.25), obj(4, 'cone', 0.03, 0.1)
    assert directional('in_front_of', front, back, TH) and directional('behind', back, front, TH)
    # A diagonal placement: no strict truth, but leniently plausible for both axes.
    c, d = obj(5, 'ball', 0.0, 0.0), obj(6, 'ball', 0.1, 0.11)
    assert not directional('right_of', d, c, TH)
    assert directional('right_of', d, c, TH, strict=False)
    assert directional('behind', d, c, TH, strict=False)


def test_next_to_between_on_top_and_superlatives():
    a, b = obj(1, 'ball', 0.0, 0.0), obj(2, 'ball', 0.14, 0.0)
    far = obj(3, 'ball', 0.4, 0.0)
    assert next_to(a, b, TH) and not next_to(a, far, TH)
    mid = obj(4, 'cone', 0.27, 0.01)
    assert between(mid, a, far, TH) and not between(b, mid, far, TH)
    box = obj(5, 'box', -0.3, 0.2)
    top = obj(6, 'ball', -0.3, 0.2, size='small', base_z=box.top_z, support=5)
    assert on_top_of(top, box) and not on_top_of(box, top) and not on_top_of(a, box)
    assert not next_to(top, box, TH) and not directional('left_of', top, box, TH)
    balls = [a, b, far]
    assert superlative('nearest_to', b, mid, balls, TH) is False  # b and far tie around mid
    assert superlative('farthest_from', a, mid, balls, TH)
    assert ordinal_position(b, 'left', balls, TH) == 2
    assert ordinal_position(far, 'right', balls, TH) == 1
    close = obj(7, 'ball', 0.16, 0.3)  # 2 cm from b along x: ambiguous order
    assert ordinal_position(b, 'left', balls + [close], TH) is None


def test_relations_take_a_long_object_by_its_outline():
    shelf = obj(1, 'shelf', 0.0, 0.3)  # 0.84 m along x, 0.14 m deep: x in [-0.42, 0.42]
    assert shelf.elongated and not obj(9, 'mug', 0.0, 0.0).elongated
    # In front of the shelf's left end: its centre rule would say "left of the shelf".
    front_left = obj(2, 'ball', -0.35, 0.05)
    assert directional('in_front_of', front_left, shelf, TH)
    assert not directional('left_of', front_left, shelf, TH)
    assert not directional('left_of', front_left, shelf, TH, strict=False)
    beyond = obj(3, 'ball', -0.52, 0.3)  # past the left end, level with the shelf
    assert directional('left_of', beyond, shelf, TH) and directional('right_of', shelf, beyond, TH)
    assert not directional('in_front_of', beyond, shelf, TH, strict=False)
    # next_to: the gap to the outline (2 cm), not to the 0.43 m bounding disc.
    near = obj(4, 'ball', 0.3, 0.3 - 0.07 - 0.05 - 0.02)
    assert footprint_gap(near, shelf) == pytest.approx(0.02)
    assert next_to(near, shelf, TH) and not next_to(obj(5, 'ball', 0.0, -0.2), shelf, TH)
    # Standing on the shelf near its end counts as on top of it.
    top = obj(6, 'mug', 0.3, 0.3, size='small', base_z=shelf.top_z, support=1)
    assert on_top_of(top, shelf) and not on_top_of(top, beyond)
    assert not directional('right_of', top, shelf, TH, strict=False)
    # between: the shelf counts by its point nearest the other anchor.
    bowl = obj(7, 'bowl', -0.3, -0.3)
    assert between(obj(8, 'ball', -0.3, -0.02), bowl, shelf, TH)
    assert not between(obj(8, 'ball', 0.3, -0.02), bowl, shelf, TH, strict=False)
    assert not between(shelf, bowl, beyond, TH, strict=False)  # a long target is never between
    # Superlatives use the distance to the outline: the ball under the shelf's end is nearest.
    balls = [obj(10, 'ball', -0.35, 0.12), obj(11, 'ball', 0.0, 0.0)]
    assert superlative('nearest_to', balls[0], shelf, balls, TH)
    assert superlative('farthest_from', balls[1], shelf, balls, TH)


def test_multi_anchor_structures_need_both_clauses():
    # Four red cans: "left of the bowl" and "in front of the plate" each fit two of them, only
    # the target fits both.
    cans = [obj(1, 'can', -0.3, -0.2), obj(2, 'can', -0.3, 0.2), obj(3, 'can', 0.3, -0.2),
            obj(4, 'can', 0.3, 0.25)]
    bowl = obj(5, 'bowl', 0.0, 0.0, colour='blue')
    plate = obj(6, 'plate', 0.0, 0.3, colour='green', size='small')
    objects = cans + [bowl, plate]
    config = ex.ExpressionConfig(multi_anchor=ex.MultiAnchorConfig())
    multi = ex.multi_anchor_structures(cans[0], objects, config)
    assert multi
    pairs = {tuple(sorted((c.relation, c.anchors) for c in r.clauses)) for r in multi}
    assert (('in_front_of', (6,)), ('left_of', (5,))) in pairs
    for r in multi:
        assert len(r.all_anchors) in (2, 3) and len(r.clauses) == 2
        assert ex.is_valid(r, objects, TH)
        assert all(not ex.satisfies(r, o, objects, TH, strict=False) for o in cans[1:])
        assert ex.Referring.from_dict(r.target, r.to_dict()) == r
        sentence = ex.realise(r, ex.TRAIN, np.random.default_rng(0))
        assert 'blue bowl' in sentence or 'green plate' in sentence  # rich anchor names
    # Each clause alone is ambiguous, so a single-relation structure with it is invalid.
    for clause in multi[0].clauses:
        single = ex.Referring(1, multi[0].description, 'relation', clause.relation,
                              clause.anchors, clause.anchor_descriptions)
        assert not ex.is_valid(single, objects, TH)
    assert ex.multi_anchor_structures(cans[0], objects, ex.ExpressionConfig()) == []


def test_pair_wording_and_plurals():
    left, right = obj(1, 'can', -0.2, 0.0), obj(2, 'can', -0.1, 0.0)
    objects = [left, right, obj(3, 'plate', 0.2, 0.1, colour='blue')]
    config = ex.ExpressionConfig(multi_anchor=ex.MultiAnchorConfig())
    pairs = [r for r in ex.candidate_structures(left, objects, config) if r.pair]
    assert pairs and all(r.ordinal == 1 and r.side == 'left' for r in pairs)
    rng = np.random.default_rng(0)
    sentences = {ex.realise(r, ex.TRAIN, rng) for r in pairs}
    assert 'the left one of the two red cans' in sentences or \
        'the left one of the two red soda cans' in sentences
    assert 'pair of' in ex.realise(pairs[0], ex.TEST, rng)
    assert [ex.plural(w) for w in ('red box', 'dish', 'shelf', 'coffee mug')] == \
        ['red boxes', 'dishes', 'shelves', 'coffee mugs']
    # The classic wording keeps ordinals among two ("the first can from the left").
    assert not any(r.pair for r in ex.candidate_structures(left, objects, ex.ExpressionConfig()))


def test_twins_are_only_separated_by_relations():
    left, right = obj(1, 'mug', -0.2, 0.0), obj(2, 'mug', 0.2, 0.0)
    plate = obj(3, 'plate', 0.0, 0.1, colour='blue')
    objects = [left, right, plate]
    pool = ex.candidate_structures(left, objects, ex.ExpressionConfig())
    assert pool and all(r.family != 'attribute' for r in pool)
    rels = {(r.family, r.relation, r.side) for r in pool}
    assert ('relation', 'left_of', None) in rels and ('ordinal', None, 'left') in rels
    for r in pool:
        assert ex.is_valid(r, objects, TH)
        assert not ex.satisfies(r, right, objects, TH, strict=False)


def _centroids(scene):
    g = scene.gaussians
    return {o.id: g.means[g.object_ids == o.id].mean(0) for o in scene.objects}


def _nearest_xy(scene, obj_id, point):
    """Horizontal point of an object's Gaussians nearest to ``point`` (long objects' outline)."""
    g = scene.gaussians
    pts = g.means[g.object_ids == obj_id][:, :2]
    return pts[np.argmin(np.hypot(*(pts - point[:2]).T))]


def _check_clause_in_gaussians(scene, expr, rel, anchors, members):
    by_id = {o.id: o for o in scene.objects}
    cent = _centroids(scene)
    g = scene.gaussians
    t = cent[expr.object_id]
    a = cent[anchors[0]]
    if rel == 'left_of':
        assert t[0] < a[0] - 0.03
    elif rel == 'right_of':
        assert t[0] > a[0] + 0.03
    elif rel == 'in_front_of':
        assert t[1] < a[1] - 0.03
    elif rel == 'behind':
        assert t[1] > a[1] + 0.03
    elif rel in ('on_top_of', 'under'):
        top, base = (expr.object_id, anchors[0]) if rel == 'on_top_of' else \
            (anchors[0], expr.object_id)
        z_top = g.means[g.object_ids == top][:, 2].min()
        z_base = g.means[g.object_ids == base][:, 2].max()
        assert abs(z_top - z_base) < 0.01
    elif rel == 'next_to':
        if by_id[anchors[0]].elongated:
            gap = np.hypot(*(t[:2] - _nearest_xy(scene, anchors[0], t)))
            assert gap < by_id[expr.object_id].radius + 0.1
        else:
            assert np.hypot(*(t[:2] - a[:2])) < by_id[expr.object_id].radius + \
                by_id[anchors[0]].radius + 0.1
    elif rel == 'between':
        b = cent[anchors[1]]
        a2 = _nearest_xy(scene, anchors[0], b) if by_id[anchors[0]].elongated else a[:2]
        b2 = _nearest_xy(scene, anchors[1], a) if by_id[anchors[1]].elongated else b[:2]
        u = np.dot(t[:2] - a2, b2 - a2) / np.dot(b2 - a2, b2 - a2)
        assert 0.1 < u < 0.9
    elif rel in ('nearest_to', 'farthest_from'):
        if by_id[anchors[0]].elongated:
            d = {i: np.hypot(*(cent[i][:2] - _nearest_xy(scene, anchors[0], cent[i])))
                 for i in members if i != anchors[0]}
        else:
            d = {i: np.hypot(*(cent[i][:2] - a[:2])) for i in members if i != anchors[0]}
        best = min(d, key=d.get) if rel == 'nearest_to' else max(d, key=d.get)
        assert best == expr.object_id
    else:
        pytest.fail(f'unknown relation {rel}')


def _check_in_gaussians(scene, expr):
    """Independent check of a stated relation on the objects' Gaussians (not the layout)."""
    form = expr.form
    cent = _centroids(scene)
    desc = Description(**form['description'])
    members = [o.id for o in scene.objects if desc.matches(o)]
    assert expr.object_id in members
    if form['family'] == 'ordinal':
        axis, sign = {'left': (0, 1), 'right': (0, -1), 'front': (1, 1), 'back': (1, -1)}[
            form['side']]
        ranked = sorted(members, key=lambda i: sign * cent[i][axis])
        assert ranked.index(expr.object_id) + 1 == form['ordinal']
        return
    if form['family'] == 'attribute':
        assert members == [expr.object_id]
        return
    for clause in [form] + form.get('more', []):  # every clause of a multi-anchor sentence
        _check_clause_in_gaussians(scene, expr, clause['relation'], clause['anchors'], members)


@pytest.mark.parametrize('preset,seed', [('tiny', s) for s in range(4)] +
                         [('hard', s) for s in range(3)])
def test_generated_expressions_hold_and_are_unique(preset, seed):
    overrides = {'num_objects': 7} if preset == 'tiny' else {}
    scene = generate_scene(preset_config(preset, seed=seed, **overrides))
    objects = scene.objects
    counts = collections.Counter((e.object_id, e.split) for e in scene.expressions)
    for o in objects:
        assert counts[(o.id, 'train')] == 4 and counts[(o.id, 'test')] == 1
    sentences = [e.sentence for e in scene.expressions]
    assert len(set(sentences)) == len(sentences)
    for e in scene.expressions:
        form = e.form
        ref = ex.Referring.from_dict(e.object_id, form)
        assert ref.to_dict() == form
        assert ex.is_valid(ref, objects, TH), e.sentence
        for other in objects:  # nobody else satisfies it, even leniently
            if other.id != e.object_id:
                assert not ex.satisfies(ref, other, objects, TH, strict=False), e.sentence
        _check_in_gaussians(scene, e)
        same_shape = sum(o.shape == objects[e.object_id - 1].shape for o in objects) > 1
        expected = 'distractor' if same_shape else (
            'attribute' if form['family'] == 'attribute' else 'spatial')
        assert e.kind == expected
    # Identical twins: every sentence of one is false for the other, even leniently.
    twins = [(a, b) for a in objects for b in objects if identical(a, b)]
    assert twins or preset == 'tiny'
    for a, b in twins:
        for e in scene.expressions:
            if e.object_id == a.id:
                ref = ex.Referring.from_dict(a.id, e.form)
                assert not ex.satisfies(ref, b, objects, TH, strict=False), e.sentence


def _word_count(sentence):
    return len(sentence.replace(',', ' ').split())


def test_hard_preset_sentences_are_long_and_name_several_objects():
    scene = generate_scene(preset_config('hard'))
    train = [e for e in scene.expressions if e.split == 'train']
    test = [e for e in scene.expressions if e.split == 'test']
    assert np.mean([_word_count(e.sentence) for e in train]) >= 10.0
    named = {e.sentence: len(set(ex.Referring.from_dict(e.object_id, e.form).all_anchors))
             for e in scene.expressions}
    for split in (train, test):  # multi-anchor sentences in both splits
        assert any(named[e.sentence] >= 2 and e.form.get('more') for e in split)
    assert max(named.values()) == 3
    assert any(e.form.get('pair') for e in scene.expressions)
    # The classic presets never use the multi-anchor forms.
    for e in generate_scene(preset_config('tiny', num_objects=7)).expressions:
        assert 'more' not in e.form and 'pair' not in e.form


def _words(vocab_index):
    out = set()
    for table in (ex.NOUNS, ex.SIZE_WORDS, ex.RELATION_PHRASES):
        for pair in table.values():
            out.update(w.split('{')[0].strip() for w in pair[vocab_index])
    for frames in ex.FRAMES.values():
        for f in frames[vocab_index]:
            out.update(p.strip() for p in re.split(r'\{\w+\}', f) if p.strip())
    return out


@pytest.mark.parametrize('preset', ['tiny', 'hard'])
def test_test_wording_is_never_seen_in_training(preset):
    train_words, test_words = _words(0), _words(1)
    assert train_words & test_words <= {'the'}
    test_only = {w for w in test_words if not any(
        re.search(rf'\b{re.escape(w)}\b', t) for t in train_words)}
    overrides = {'num_objects': 7} if preset == 'tiny' else {}
    scene = generate_scene(preset_config(preset, seed=5, **overrides))
    train = [e.sentence for e in scene.expressions if e.split == 'train']
    test = [e.sentence for e in scene.expressions if e.split == 'test']
    for s in test:  # every test sentence uses held-out nouns/phrases
        assert any(re.search(rf'\b{re.escape(w)}\b', s) for w in test_only), s
    for s in train:
        hits = [w for w in test_only if re.search(rf'\b{re.escape(w)}\b', s)]
        assert not hits, (s, hits)
    assert any('cup' in s or 'carton' in s or 'sphere' in s or 'dish' in s or 'basin' in s
               or 'flask' in s or 'pylon' in s or 'item' in s or 'tin' in s or 'rack' in s
               for s in test)
