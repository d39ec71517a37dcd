"""ReferringModel: several targets, pointing at an object, and "it" for the object pointed at."""
import numpy as np
import pytest

from core.inference.test_model_edits import _model, MUG_AT
from helpers.synth_objects import obj
from refersplat_ros.core.inference.queries import QueryStatus
from refersplat_ros.core.scene.edits import SceneEdits
from refersplat_ros.core.text.encoder import TextEncoder


@pytest.fixture(scope='module')
def scene():
    layout = [obj(1, 'mug', *MUG_AT), obj(2, 'bowl', 0.0, 0.0, 'blue'),
              obj(3, 'can', 0.02, 0.2, 'green'), obj(4, 'can', -0.25, 0.15, 'green'),
              obj(5, 'can', -0.3, -0.15, 'red')]
    return _model(layout, TextEncoder())


def test_a_plural_answers_every_object_it_denotes(scene):
    model, g = scene
    out = model.query('all the cans')
    assert out.status == QueryStatus.OK
    assert sorted(t.label for t in out.targets) == ['green-can-3', 'green-can-4', 'red-can-5']
    assert [i.score for i in out.selection.instances] and len(out.selection.instances) == 3
    # the selection holds each target's Gaussians, in the targets' order
    start = 0
    for target, instance in zip(out.targets, out.selection.instances):
        members = np.flatnonzero(g.object_ids == int(target.label[-1]))
        assert set(instance.indices) == set(members)
        np.testing.assert_array_equal(out.selection.indices[start:start + len(members)],
                                      instance.indices)
        start += len(members)
    assert start == len(out.selection.indices) == len(out.selection.normals)
    two = model.query('the two green cans')
    assert two.status == QueryStatus.OK and len(two.targets) == 2
    wrong = model.query('the three green cans')
    assert wrong.status == QueryStatus.NO_MATCH and 'asked for 3' in wrong.message
    single = model.query('the red can')
    assert single.status == QueryStatus.OK and [t.label for t in single.targets] == ['red-can-5']


def test_pointing_finds_the_object_under_the_point(scene):
    model, g = scene
    mug = g.means[g.object_ids == 1]
    out = model.point(mug[0], 'clicked')
    assert out.status == QueryStatus.OK and out.interpretation == 'clicked: red-mug-1'
    assert [t.label for t in out.targets] == ['red-mug-1'] and out.confidence == 1.0
    assert set(out.selection.indices) <= set(np.flatnonzero(g.object_ids == 1))
    table = g.means[(g.object_ids == 0) & (np.abs(g.means[:, 2]) < 0.01)
                    & (np.abs(g.means[:, 0]) > 0.4)][0]
    out = model.point(table, 'clicked')
    assert out.status == QueryStatus.NO_MATCH and 'on no annotated object' in out.message
    out = model.point(np.array([0.0, 0.0, 2.0]), 'clicked')
    assert out.status == QueryStatus.NO_MATCH and 'nothing within 0.050 m' in out.message
    out = model.point(np.array([np.nan, 0.0, 0.0]), 'clicked')
    assert out.status == QueryStatus.INVALID_QUERY


@pytest.mark.parametrize('text, label', [
    ('it', 'red-mug-1'), ('that one', 'red-mug-1'), ('grab that', 'red-mug-1'),
    ('pick it up', 'red-mug-1'), ('the bowl left of it', 'blue-bowl-2'),
    ('the can nearest to that one', 'green-can-3'),
    ('the green can behind the bowl', 'green-can-3'),
])
def test_it_is_the_object_pointed_at(scene, text, label):
    model, _ = scene
    out = model.query(text, referent='red-mug-1')
    assert out.status == QueryStatus.OK and out.targets[0].label == label, out.interpretation


@pytest.mark.parametrize('text', ['the other one', 'another one', 'the rest', 'something',
                                  'the object', 'no, the other one'])
def test_words_that_do_not_point_back_are_not_the_referent(scene, text):
    model, _ = scene
    out = model.query(text, referent='red-mug-1')
    assert 'it = red-mug-1' not in out.interpretation


def test_it_after_the_object_was_removed(scene):
    model, _ = scene
    model.apply_edits(SceneEdits().remove('red-mug-1'))
    try:
        out = model.query('it', referent='red-mug-1')
        assert out.status == QueryStatus.NO_MATCH and 'red-mug-1 was removed' in out.message
        out = model.point(model.object_box('red-mug-1').centroid, 'clicked')
        assert out.status == QueryStatus.NO_MATCH  # a removed object is not drawn
    finally:
        model.apply_edits(SceneEdits())


def test_the_plate_that_was_under_the_removed_mug():
    plate = obj(1, 'plate', 0.2, 0.0, 'white')
    layout = [plate, obj(2, 'plate', -0.2, 0.0, 'white'),
              obj(3, 'mug', 0.2, 0.0, 'red', base_z=plate.top_z, support=1)]
    model, _ = _model(layout, TextEncoder())
    model.apply_edits(SceneEdits().remove('red-mug-3'))  # in the gripper
    for text, referent in [('the plate that was under the mug', ''),
                           ('the plate that was under it', 'red-mug-3')]:
        out = model.query(text, referent=referent)
        assert out.status == QueryStatus.OK and out.targets[0].label == 'white-plate-1', text
        assert 'removed objects at their last place: red-mug-3' in out.interpretation
    assert model.query('the red mug').status == QueryStatus.NO_MATCH
