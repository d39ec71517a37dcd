"""Scene edits on a ReferringModel: an edited scene answers as the regenerated scene would."""
import numpy as np
import pytest
import torch

from helpers.fixed_answer_field import fixed_answer_field
from helpers.synth_objects import obj
from refersplat_ros.core.datasets.ref_synth.scene import build_gaussians, TableSpec
from refersplat_ros.core.inference.editing import edit_scene, EditRequest
from refersplat_ros.core.inference.model import ReferringModel
from refersplat_ros.core.inference.queries import QueryStatus
from refersplat_ros.core.language.ground import GroundingConfig
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.edits import EditError, edits_path, load_edits, SceneEdits
from refersplat_ros.core.scene.frames import RigidTransform
from refersplat_ros.core.scene.gaussians import GaussianScene
from refersplat_ros.core.scene.objects import SceneObjects
from refersplat_ros.core.text.encoder import TextEncoder

CAMERA = Camera.look_at(eye=(0.0, -0.9, 0.7), target=(0.0, 0.05, 0.0), width=64, height=48,
                        fx=55.0, fy=55.0, name='reference')
#: The mug moves from the right of the bowl to its left (and turns a quarter).
MUG_AT, MUG_TO, TURN = (0.22, 0.0), (-0.30, -0.12), np.pi / 2
QUERIES = ['the mug left of the bowl', 'the object right of the bowl', 'the leftmost object',
           'the rightmost object', 'the mug', 'the object nearest to the can',
           'the bowl right of the mug', 'the can behind the bowl']


def _layout(mug_xy, mug_yaw=0.0):
    mug = obj(1, 'mug', *mug_xy)
    mug.yaw = mug_yaw
    return [mug, obj(2, 'bowl', 0.0, 0.0, 'blue'), obj(3, 'can', 0.02, 0.2, 'green')]


def _model(layout, encoder):
    g = build_gaussians(np.random.default_rng(0), layout, TableSpec())
    scene = GaussianScene.from_colors(torch.from_numpy(g.means), torch.from_numpy(g.colors),
                                      torch.from_numpy(g.scales), torch.from_numpy(g.opacities),
                                      quats=torch.from_numpy(g.quats))
    field = fixed_answer_field(scene.means, torch.from_numpy(g.object_ids == 1),
                               encoder.hidden_size)
    objects = SceneObjects(g.object_ids - 1, [o.category for o in layout],
                           [[] for _ in layout], CAMERA, (0.0, 0.0, 1.0))
    return ReferringModel(scene, field, encoder, objects=objects,
                          grounding=GroundingConfig(field_weight=0.0)), g


@pytest.fixture(scope='module')
def encoder():
    return TextEncoder()


@pytest.fixture(scope='module')
def regenerated(encoder):
    return _model(_layout(MUG_TO, TURN), encoder)


def _moved(encoder):
    model, g = _model(_layout(MUG_AT), encoder)
    # the generator turns an object about its own base point, then places it
    centre = np.array([*MUG_AT, 0.0])
    c, s = np.cos(TURN / 2), np.sin(TURN / 2)
    turn = RigidTransform(np.zeros(3), np.array([0.0, 0.0, s, c]))
    to = np.array([*MUG_TO, 0.0]) - turn.rotation @ centre
    model.apply_edits(SceneEdits().move('red-mug-1', RigidTransform(to, turn.quaternion_xyzw)))
    return model, g


def _flat_axes(q):  # [P, 4] wxyz -> [P, 3]: third column of the rotation matrix
    w, x, y, z = q.T
    return np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], 1)


def _answer(model, text):
    out = model.query(text)
    return out.status, [c.label for c in out.candidates]


def test_a_moved_object_answers_as_the_regenerated_scene(encoder, regenerated):
    model, _ = _moved(encoder)
    other, g = regenerated
    mug = np.flatnonzero(g.object_ids == 1)
    np.testing.assert_allclose(model.host_points[0], other.host_points[0], atol=2e-6)
    # the same flat axes (the generator's surfels are round: their twist is free)
    flat = [_flat_axes(m.scene.rotations[mug].numpy()) for m in (model, other)]
    assert np.abs(np.abs((flat[0] * flat[1]).sum(1)) - 1).max() < 1e-5
    captured, _ = _model(_layout(MUG_AT), encoder)
    differ = 0
    for text in QUERIES:
        assert _answer(model, text) == _answer(other, text), text
        differ += _answer(captured, text) != _answer(other, text)
    assert differ >= 4  # the move changes what the relations answer
    camera = Camera.look_at(eye=(0.3, -0.8, 0.6), target=(-0.2, 0.0, 0.0), width=80,
                            height=60, fx=70.0, fy=70.0)
    for members in (mug, np.flatnonzero(g.object_ids == 2)):
        a = model.render_target(members, camera).mask
        b = other.render_target(members, camera).mask
        assert a.any() and (a != b).mean() < 1e-3
    box, true = model.object_box('red-mug-1'), other.object_box('red-mug-1')
    np.testing.assert_allclose(box.center, true.center, atol=1e-5)


def test_remove_restore_and_the_captured_place(encoder, tmp_path):
    model, g = _model(_layout(MUG_AT), encoder)
    captured = model.host_points[0].copy()
    mug = np.flatnonzero(g.object_ids == 1)
    assert model.query('the red mug').status == QueryStatus.OK
    path = edits_path(tmp_path / 'last.safetensors')
    reply = edit_scene(model, EditRequest('remove', 'red-mug-1'), path)
    assert reply.message == 'removed red-mug-1' and path.exists()
    assert load_edits(path, model.object_labels).removed == ['red-mug-1']
    out = model.query('the red mug')
    assert out.status == QueryStatus.NO_MATCH and 'red-mug-1 was removed' in out.message
    assert model.query('the blue bowl').status == QueryStatus.OK
    # an anchor that was removed: the remembered world answers for a present target
    out = model.query('the bowl left of the mug')
    assert out.status == QueryStatus.OK and out.candidates[0].label == 'blue-bowl-2'
    assert 'removed objects at their last place' in out.interpretation
    assert not model.render_target(mug, CAMERA).mask.any()  # never drawn
    assert model.scene.opacities[mug].max() < 1e-12
    edit_scene(model, EditRequest('restore', 'red-mug-1'), path)
    assert not path.exists() and not model.edits
    np.testing.assert_array_equal(model.host_points[0], captured)
    assert model.query('the red mug').status == QueryStatus.OK
    assert model.render_target(mug, CAMERA).mask.any()


def test_move_to_a_pose_puts_the_published_box_there(encoder, tmp_path):
    model, _ = _model(_layout(MUG_AT), encoder)
    frame = RigidTransform.create((1.0, 2.0, 0.5), (0.0, 0.0, np.sin(0.3), np.cos(0.3)))
    target = RigidTransform.create((0.9, 1.8, 0.55), (0.0, 0.0, np.sin(0.6), np.cos(0.6)))
    edit_scene(model, EditRequest('move_to', 'red-mug-1', target.translation,
                                  target.quaternion_xyzw, frame), tmp_path / 'e.json')
    box = model.object_box('red-mug-1')
    in_frame = frame.apply_points(box.center[None])[0]
    np.testing.assert_allclose(in_frame, target.translation, atol=1e-5)
    # a move by a motion in the same frame composes
    edit_scene(model, EditRequest('move', 'red-mug-1', (0.0, 0.1, 0.0), frame=frame),
               tmp_path / 'e.json')
    moved = frame.apply_points(model.object_box('red-mug-1').center[None])[0]
    np.testing.assert_allclose(moved - in_frame, (0.0, 0.1, 0.0), atol=1e-5)


@pytest.mark.parametrize('request_, reason', [
    (EditRequest('remove', 'teapot'), "no object 'teapot'"),
    (EditRequest('fly', 'red-mug-1'), "unknown edit operation 'fly'"),
    (EditRequest('move', 'red-mug-1', (float('nan'), 0, 0)), 'NaN'),
    (EditRequest('move', 'red-mug-1', rotation_xyzw=(0, 0, 0, 0)), 'not a unit quaternion'),
    (EditRequest('move', 'red-mug-1', rotation_xyzw=(0, 0, 1, 1)), 'not a unit quaternion'),
    (EditRequest('move_to', 'red-mug-1', (1e6, 0, 0)), 'at most 1000'),
])
def test_bad_edits_change_nothing(encoder, tmp_path, request_, reason):
    model, _ = _model(_layout(MUG_AT), encoder)
    before = model.host_points[0].copy()
    path = tmp_path / 'e.json'
    with pytest.raises(EditError, match=reason):
        edit_scene(model, request_, path)
    assert not path.exists() and not model.edits
    np.testing.assert_array_equal(model.host_points[0], before)


def test_an_unwritable_file_changes_nothing(encoder, tmp_path):
    model, _ = _model(_layout(MUG_AT), encoder)
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(EditError, match='cannot write the edits file'):
        edit_scene(model, EditRequest('remove', 'red-mug-1'), blocker / 'e.json')
    assert not model.edits and model.query('the red mug').status == QueryStatus.OK


def test_the_same_move_to_twice_leaves_the_object_where_it_is(encoder, tmp_path):
    model, g = _model(_layout(MUG_AT), encoder)
    mug = np.flatnonzero(g.object_ids == 1)
    turn = (0.0, 0.0, np.sin(np.radians(85)), np.cos(np.radians(85)))  # yaw 170 deg
    request = EditRequest('move_to', 'red-mug-1', (-0.3, 0.1, 0.0), turn)
    edit_scene(model, request, tmp_path / 'e.json')
    once = model.host_points[0][mug].copy()
    box = model.object_box('red-mug-1')
    np.testing.assert_allclose(box.center[:2], (-0.3, 0.1), atol=1e-5)
    reply = edit_scene(model, request, tmp_path / 'e.json')
    assert 'turned 0.0 deg' in reply.message  # a box's axes have no sign: no half turn
    np.testing.assert_allclose(model.host_points[0][mug], once, atol=1e-5)
