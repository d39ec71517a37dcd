"""Ref-Synth relations and expressions: truth in the geometry, uniqueness, held-out wording."""
import collections
import re

import numpy as np
import pytest

from refersplat_ros.core.datasets import expressions as ex
from refersplat_ros.core.datasets.ref_synth import generate_scene, preset_config
from refersplat_ros.core.datasets.relations import (between, Description, directional, next_to,
                                                    on_top_of, ordinal_position,
                                                    RelationThresholds, superlative)
from refersplat_ros.core.datasets.shapes import shape_extent
from refersplat_ros.core.datasets.synth_scene import SceneObject

TH = RelationThresholds()


def obj(i, shape, x, y, colour='red', size='large', base_z=0.0, support=0):
    return SceneObject(i, shape, colour, size, x, y, base_z, 0.0,
                       shape_extent(shape, 1.0 if size == 'large' else 0.7), support,
                       f'{colour}-{shape}-{i}')


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


def _check_in_gaussians(scene, expr):
    """Independent check of a stated relation on the objects' Gaussians (not the layout)."""
    form = expr.form
    by_id = {o.id: o for o in scene.objects}
    cent = _centroids(scene)
    g = scene.gaussians
    t = cent[expr.object_id]
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
    rel, anchors = form['relation'], form['anchors']
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
        assert np.hypot(*(t[:2] - a[:2])) < by_id[expr.object_id].radius + \
            by_id[anchors[0]].radius + 0.1
    elif rel == 'between':
        b = cent[anchors[1]]
        u = np.dot(t[:2] - a[:2], b[:2] - a[:2]) / np.dot(b[:2] - a[:2], b[:2] - a[:2])
        assert 0.1 < u < 0.9
    elif rel in ('nearest_to', 'farthest_from'):
        d = {i: np.hypot(*(cent[i][:2] - a[:2])) for i in members if i != anchors[0]}
        best = min(d, key=d.get) if rel == 'nearest_to' else max(d, key=d.get)
        assert best == expr.object_id
    else:
        pytest.fail(f'unknown relation {rel}')


@pytest.mark.parametrize('seed', range(4))
def test_generated_expressions_hold_and_are_unique(seed):
    scene = generate_scene(preset_config('tiny', seed=seed, num_objects=7))
    objects = scene.objects
    counts = collections.Counter((e.object_id, e.split) for e in scene.expressions)
    for o in objects:
        assert counts[(o.id, 'train')] == 4 and counts[(o.id, 'test')] == 1
    sentences = [e.sentence for e in scene.expressions]
    assert len(set(sentences)) == len(sentences)
    for e in scene.expressions:
        form = e.form
        ref = ex.Referring(
            e.object_id, Description(**form['description']), form['family'], form['relation'],
            tuple(form['anchors']), tuple(Description(**d) for d in form['anchor_descriptions']),
            form['ordinal'], form['side'])
        assert ex.is_valid(ref, objects, TH), e.sentence
        for other in objects:  # nobody else satisfies it, even leniently
            if other.id != e.object_id:
                assert not ex.satisfies(ref, other, objects, TH, strict=False), e.sentence
        _check_in_gaussians(scene, e)
        same_shape = sum(o.shape == objects[e.object_id - 1].shape for o in objects) > 1
        expected = 'distractor' if same_shape else (
            'attribute' if form['family'] == 'attribute' else 'spatial')
        assert e.kind == expected


def _words(vocab_index):
    out = set()
    for table in (ex.NOUNS, ex.SIZE_WORDS, ex.RELATION_PHRASES):
        for pair in table.values():
            out.update(w.split('{')[0].strip() for w in pair[vocab_index])
    for frames in ex.FRAMES.values():
        for f in frames[vocab_index]:
            out.update(p.strip() for p in re.split(r'\{\w+\}', f) if p.strip())
    return out


def test_test_wording_is_never_seen_in_training():
    train_words, test_words = _words(0), _words(1)
    assert train_words & test_words <= {'the'}
    test_only = {w for w in test_words if not any(
        re.search(rf'\b{re.escape(w)}\b', t) for t in train_words)}
    scene = generate_scene(preset_config('tiny', seed=5, num_objects=7))
    train = [e.sentence for e in scene.expressions if e.split == 'train']
    test = [e.sentence for e in scene.expressions if e.split == 'test']
    for s in test:  # every test sentence uses held-out nouns/phrases
        assert any(re.search(rf'\b{re.escape(w)}\b', s) for w in test_only), s
    for s in train:
        hits = [w for w in test_only if re.search(rf'\b{re.escape(w)}\b', s)]
        assert not hits, (s, hits)
    assert any('cup' in s or 'carton' in s or 'sphere' in s or 'dish' in s or 'basin' in s
               or 'flask' in s or 'pylon' in s or 'item' in s for s in test)
