"""The manipulation loop through the node: edits, pointing, "it", several targets."""
import numpy as np
import pytest

from helpers.node_scenes import A_CENTER, make_handmade_scene
from helpers.ros_harness import require_ros
from test_node import _node_args, Listener, NODE

PLACE = (0.0, -0.3, 0.05)  # where the robot puts the mug down


@pytest.fixture()
def objects_scene(tmp_path):
    require_ros()
    return make_handmade_scene(tmp_path / 'scene', objects=True)


def _pose(position):
    from geometry_msgs.msg import Pose
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = position
    pose.orientation.w = 1.0
    return pose


def _at(result):
    p = result.pose.position
    return np.array([p.x, p.y, p.z])


def test_edit_round_trip_through_the_node(rclpy_context, ros_processes, objects_scene):
    from refersplat_ros.client import ReferClient
    from refersplat_ros.conversions import pointcloud2_to_array
    from refersplat_ros.msg import ReferResult
    from refersplat_ros.srv import EditScene

    node = ros_processes(NODE, *_node_args(objects_scene), name='refersplat')
    listener = Listener(rclpy_context)
    client = ReferClient(listener.node)
    assert client.wait_for_server(30), node.output()
    first = client.refer('the red mug', timeout=20)
    assert first.status == ReferResult.OK and [t.label for t in first.targets] == ['red-mug']
    np.testing.assert_allclose(_at(first), A_CENTER, atol=0.01)
    cloud = pointcloud2_to_array(first.cloud)
    assert {'normal_x', 'normal_y', 'normal_z', 'curvature', 'target'} <= set(cloud.dtype.names)
    normals = np.stack([cloud[f'normal_{a}'] for a in 'xyz'], 1)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert (cloud['target'] == 0).all()

    reply = client.remove()  # the last target: the red mug
    assert reply.success and reply.label == 'red-mug' and list(reply.removed) == ['red-mug']
    edits_file = objects_scene.checkpoint_path.with_name('field.edits.json')
    assert edits_file.exists()
    gone = client.refer('the red mug', timeout=20)
    assert gone.status == ReferResult.NO_MATCH and 'red-mug was removed' in gone.message
    assert client.refer('the blue bowl', timeout=20).status == ReferResult.OK
    scene_points = len(objects_scene.means) - 600
    assert listener.spin(lambda: listener.got['scene'] and
                         listener.got['scene'][-1].width == scene_points, 20)

    reply = client.move_to('red-mug', _pose(PLACE))
    assert reply.success and list(reply.moved) == ['red-mug'] and not reply.removed
    back = client.refer('the red mug', timeout=20)
    assert back.status == ReferResult.OK
    np.testing.assert_allclose(_at(back), PLACE, atol=1e-3)

    # hostile requests: a clear reason, nothing changed
    for bad, reason in [(dict(operation=EditScene.Request.REMOVE, label='teapot'),
                         "no object 'teapot'"),
                        (dict(operation=9, label='red-mug'), 'unknown edit operation 9'),
                        (dict(operation=EditScene.Request.MOVE, label='red-mug',
                              frame_id='elsewhere'), "frame_id 'elsewhere'"),
                        ]:
        reply = client.edit_scene(**bad)
        assert not reply.success and reason in reply.message, reply.message
        assert list(reply.moved) == ['red-mug'], reply.message
    reply = client.move('red-mug', (float('nan'), 0.0, 0.0))
    assert not reply.success and 'NaN' in reply.message
    reply = client.move('red-mug', rotation_xyzw=(0.0, 0.0, 1.0, 1.0))
    assert not reply.success and 'not a unit quaternion' in reply.message
    np.testing.assert_allclose(_at(client.refer('the red mug', timeout=20)), PLACE, atol=1e-3)

    # a restart re-applies the edits kept beside the checkpoint
    assert node.stop() == 0, node.output()
    node = ros_processes(NODE, *_node_args(objects_scene), name='refersplat')
    assert client.wait_for_server(30), node.output()
    assert node.wait_for_output('1 moved', 30), node.output()
    np.testing.assert_allclose(_at(client.refer('the red mug', timeout=20)), PLACE, atol=1e-3)

    # queries sent while edits come in: every one answered once, in one world or the other
    listener.got['result'].clear()
    places = [np.asarray(PLACE), np.asarray(PLACE) + (0.2, 0.0, 0.0)]
    for k in range(12):
        listener.send('the red mug')
        reply = client.move('red-mug', (0.2 if k % 2 == 0 else -0.2, 0.0, 0.0))
        assert reply.success, reply.message
    assert listener.spin(lambda: len(listener.results()) >= 12, 30)
    assert listener.spin(lambda: False, 0.5) is False and len(listener.results()) == 12
    ids = [r.query_id for r in listener.results()]
    assert sorted(ids) == ids
    for result in listener.results():
        assert result.status == ReferResult.OK
        at = _at(result)
        near = [np.abs(at - p).max() < 1e-3 for p in places]
        assert any(near), at
        xyz = np.stack([pointcloud2_to_array(result.cloud)[a] for a in 'xyz'], 1)
        assert np.abs(xyz.mean(0) - at).max() < 0.02  # the cloud is where the pose is

    reply = client.reset()
    assert reply.success and not reply.moved and not edits_file.exists()
    np.testing.assert_allclose(_at(client.refer('the red mug', timeout=20)), A_CENTER,
                               atol=0.01)
    client.destroy()
    assert node.stop() == 0, node.output()


def test_a_corrupt_edits_file_fails_the_load_with_its_name(ros_processes, objects_scene):
    objects_scene.checkpoint_path.with_name('field.edits.json').write_text('{"format": 1}')
    node = ros_processes(NODE, *_node_args(objects_scene), name='refersplat')
    assert node.wait_for_output('configure failed', 30), node.output()
    assert 'field.edits.json' in node.output() and 'not a refersplat edits file' in \
        node.output()
    assert node.stop() == 0, node.output()


def test_pointing_and_it_through_the_node(rclpy_context, ros_processes, objects_scene):
    from geometry_msgs.msg import PointStamped
    from rclpy.qos import QoSProfile

    from refersplat_ros.conversions import pointcloud2_to_array
    from refersplat_ros.msg import ReferResult

    node = ros_processes(NODE, *_node_args(objects_scene, output_frame='base', **{
        'output_transform.translation': '[1.0, 0.0, 0.0]'}), name='refersplat')
    listener = Listener(rclpy_context)
    listener.wait_for_node()
    clicks = listener.node.create_publisher(PointStamped, '/clicked_point', QoSProfile(depth=10))
    assert listener.spin(lambda: clicks.get_subscription_count() > 0, 20), node.output()
    means, ids = objects_scene.means, objects_scene.object_ids

    def click(xyz, frame):
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        count = len(listener.results())
        clicks.publish(msg)
        assert listener.spin(lambda: len(listener.results()) > count, 20), node.output()
        return listener.results()[-1]

    on_mug = click(means[ids == 1][0], 'scene')
    assert on_mug.status == ReferResult.OK and on_mug.interpretation == 'clicked: red-mug'
    assert [t.label for t in on_mug.targets] == ['red-mug']
    np.testing.assert_allclose(_at(on_mug), np.add(A_CENTER, (1.0, 0.0, 0.0)), atol=0.01)
    listener.send('pick it up')
    assert listener.spin(lambda: listener.results()[-1].text == 'pick it up', 20)
    it = listener.results()[-1]
    assert it.status == ReferResult.OK and [t.label for t in it.targets] == ['red-mug']
    # the same in the output frame: the bowl, 1 m along x there
    on_bowl = click(means[ids == 2][0] + (1.0, 0.0, 0.0), 'base')
    assert on_bowl.status == ReferResult.OK and on_bowl.targets[0].label == 'blue-bowl'
    nothing = click((0.0, 0.0, 1.0), 'scene')
    assert nothing.status == ReferResult.NO_MATCH and 'nothing within 0.050 m' in \
        nothing.message
    table = means[(ids == 0) & (np.abs(means[:, 0]) > 0.45)][0]
    background = click(table, 'scene')
    assert background.status == ReferResult.NO_MATCH and 'no annotated object' in \
        background.message
    foreign = click((0.0, 0.0, 0.0), 'map')
    assert foreign.status == ReferResult.INVALID_QUERY and "frame 'map'" in foreign.message

    # several targets: every one in targets, the cloud's target field and the markers
    listener.send('both objects')
    assert listener.spin(lambda: listener.results()[-1].text == 'both objects', 20)
    both = listener.results()[-1]
    assert both.status == ReferResult.OK, both.message
    assert sorted(t.label for t in both.targets) == ['blue-bowl', 'red-mug']
    cloud = pointcloud2_to_array(both.cloud)
    assert sorted(np.unique(cloud['target'])) == [0, 1] and len(cloud) == 1200
    assert listener.spin(lambda: listener.got['markers'][-1].markers[0].header ==
                         both.header, 20)
    cubes = [m for m in listener.got['markers'][-1].markers if m.type == m.CUBE]
    assert len(cubes) == 2
    listener.send('the three objects')
    assert listener.spin(lambda: listener.results()[-1].text == 'the three objects', 20)
    three = listener.results()[-1]
    assert three.status == ReferResult.NO_MATCH and 'asked for 3' in three.message
    assert node.stop() == 0, node.output()
