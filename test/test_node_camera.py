"""The node with a robot camera: mask in that camera, stamps, output frame, tracking, bad input.

The hand-built field always answers object A (node_scenes.py); the expected masks are rendered
independently from the scene's ground-truth object ids (``render_ground_truth``).
"""
import time

import numpy as np
import pytest

from helpers.node_scenes import A_CENTER, B_CENTER, make_handmade_scene
from helpers.ros_harness import require_ros
from test_node import _start, Listener

# The scene frame's pose in base_link: 1 m forward, 2 m left, 0.5 m up, turned 90 deg about z.
TRANSLATION = (1.0, 2.0, 0.5)
ROTATION = (0.0, 0.0, float(np.sqrt(0.5)), float(np.sqrt(0.5)))
PARAMS = {'output_frame': 'base_link', 'output_transform.translation': list(TRANSLATION),
          'output_transform.rotation': list(ROTATION)}
WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope='module')
def handmade(tmp_path_factory):
    require_ros()
    return make_handmade_scene(tmp_path_factory.mktemp('handmade'))


def _camera(eye, target=A_CENTER):
    from refersplat_ros.core.scene.cameras import Camera
    return Camera.look_at(eye, target, width=WIDTH, height=HEIGHT, fov_y_deg=45.0)


def _msgs(camera, stamp_sec, frame='scene', tf=None, optical='camera_optical'):
    """Return CameraInfo + PoseStamped of a core camera (pose in ``frame``, moved by ``tf``)."""
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Header

    from refersplat_ros.conversions import camera_info, pose_msg
    from refersplat_ros.core.scene.frames import RigidTransform, rotation_to_quaternion_xyzw
    c2w = camera.camera_to_world.double().numpy()
    position, quaternion = c2w[:3, 3], rotation_to_quaternion_xyzw(c2w[:3, :3])
    if tf is not None:
        position, quaternion = RigidTransform.create(*tf).apply_pose(position, quaternion)
    stamp = Header(stamp=_stamp(stamp_sec), frame_id=optical)
    info = camera_info(camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy,
                       stamp)
    pose = PoseStamped(header=Header(stamp=_stamp(stamp_sec), frame_id=frame),
                       pose=pose_msg(position, quaternion))
    return info, pose


def _stamp(seconds):
    from builtin_interfaces.msg import Time
    return Time(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))


def _truth(handmade, camera, only_a=False):
    import torch

    from refersplat_ros.core.datasets.ref_synth.ground_truth import render_ground_truth
    from refersplat_ros.core.scene.gaussian_io import load_scene
    scene = load_scene(handmade.scene_path)
    ids = torch.from_numpy(handmade.object_ids)
    keep = ids == 1 if only_a else torch.ones_like(ids, dtype=torch.bool)
    _, labels = render_ground_truth(scene.means[keep], scene.quats[keep], scene.scales[keep],
                                    scene.opacities[keep], scene.colors[keep], ids[keep], 2,
                                    camera, backend='cpu')
    return labels.numpy() == 1


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


class CameraFeed:
    """Publishes a camera's info and pose like a driver + TF bridge would."""

    def __init__(self, listener):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo
        self.info = listener.node.create_publisher(CameraInfo, '/camera/camera_info', 10)
        self.pose = listener.node.create_publisher(PoseStamped, '/camera/pose', 10)
        self.listener = listener

    def wait(self):
        assert self.listener.spin(lambda: self.info.get_subscription_count() > 0
                                  and self.pose.get_subscription_count() > 0, 20)

    def publish(self, info, pose):
        self.info.publish(info)
        self.pose.publish(pose)

    def until_node_has_it(self, info, pose, timeout=20.0):
        """Publish until the node's diagnostics show this camera (best effort may drop one)."""
        deadline = time.monotonic() + timeout
        size = f'{info.width}x{info.height}'
        while time.monotonic() < deadline:
            self.publish(info, pose)
            if self.listener.spin(lambda: size in str(self.listener.got['diagnostics'][-1:]),
                                  0.5):
                return True
        return False


def _tf():
    from refersplat_ros.core.scene.frames import RigidTransform
    return RigidTransform.create(TRANSLATION, ROTATION)


def _views(listener, stamp_sec):
    """Mask, depth and info the node published for the camera stamp ``stamp_sec``."""
    stamp = _stamp(stamp_sec)
    return [[m for m in listener.got[k] if m.header.stamp == stamp]
            for k in ('mask', 'depth', 'info')]


def test_live_camera_mask_stamps_and_output_frame(rclpy_context, ros_processes, handmade):
    from refersplat_ros.conversions import (image_to_depth, image_to_mono8,
                                            pointcloud2_to_xyz)
    from refersplat_ros.msg import ReferResult

    node = _start(ros_processes, handmade, **PARAMS)
    listener = Listener(rclpy_context)
    feed = CameraFeed(listener)
    listener.wait_for_node()
    feed.wait()
    camera = _camera((0.9, -0.7, 0.6))
    assert feed.until_node_has_it(*_msgs(camera, 100.25)), node.output()
    listener.send('the red mug')
    assert listener.spin(lambda: listener.results() and all(_views(listener, 100.25)), 20), \
        node.output()
    result = listener.results()[-1]
    assert (result.status, result.message) == (ReferResult.OK, ''), result.message
    masks, depths, infos = _views(listener, 100.25)
    mask, depth = image_to_mono8(masks[-1]), image_to_depth(depths[-1])
    assert masks[-1].header.frame_id == depths[-1].header.frame_id == 'camera_optical'
    assert infos[-1].width == WIDTH and infos[-1].k[0] == pytest.approx(camera.fx)
    assert mask.shape == depth.shape == (HEIGHT, WIDTH)
    truth = _truth(handmade, camera)
    assert truth.sum() > 100 and _iou(mask > 0, truth) >= 0.9
    distance = np.linalg.norm(np.subtract((0.9, -0.7, 0.6), A_CENTER))
    assert abs(float(np.nanmedian(depth)) - distance) < 0.1
    assert np.isnan(depth[mask == 0]).all()
    # every pose, cloud, box and marker in base_link
    tf = _tf()
    assert result.header.frame_id == 'base_link'
    expected = tf.apply_points(np.asarray([A_CENTER]))[0]
    p = result.pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], expected, atol=0.01)
    cloud = pointcloud2_to_xyz(result.cloud)
    np.testing.assert_allclose(cloud.mean(axis=0), expected, atol=0.02)
    assert listener.spin(lambda: listener.got['markers'] and listener.got['pose'], 10)
    box = listener.got['markers'][-1].markers[1]
    assert box.header.frame_id == 'base_link'
    np.testing.assert_allclose([box.pose.position.x, box.pose.position.y, box.pose.position.z],
                               expected, atol=0.01)
    pose = listener.got['pose'][-1]
    assert pose.header.frame_id == 'base_link'
    assert listener.spin(lambda: listener.got['scene'], 10)
    scene_cloud = pointcloud2_to_xyz(listener.got['scene'][-1])
    np.testing.assert_allclose(scene_cloud.mean(axis=0),
                               tf.apply_points(handmade.means.astype(np.float64)).mean(axis=0),
                               atol=1e-3)
    assert node.stop() == 0, node.output()


def test_goal_camera_with_occlusion_and_bad_cameras(rclpy_context, ros_processes, handmade):
    from geometry_msgs.msg import PoseStamped
    from rclpy.action import ActionClient

    from refersplat_ros.action import Refer
    from refersplat_ros.client import ReferClient, ReferClientError
    from refersplat_ros.conversions import image_to_mono8
    from refersplat_ros.msg import ReferResult

    node = _start(ros_processes, handmade, **PARAMS)
    listener = Listener(rclpy_context)
    feed = CameraFeed(listener)
    listener.wait_for_node()
    action = ActionClient(listener.node, Refer, '/refersplat/refer')
    assert listener.spin(action.server_is_ready, 30), node.output()

    def ask(info=None, pose=None, text='the red mug'):
        goal = Refer.Goal(text=text)
        if info is not None:
            goal.camera_info, goal.camera_pose = info, pose
        future = action.send_goal_async(goal)
        assert listener.spin(future.done, 20)
        result_future = future.result().get_result_async()
        assert listener.spin(result_future.done, 20), node.output()
        return result_future.result().result.result

    # B stands between this camera and A: the mask is the part of A that the camera sees.
    direction = np.subtract(B_CENTER, A_CENTER)
    eye = np.add(A_CENTER, 2.2 * direction) + (0.0, 0.0, 0.15)
    camera = _camera(eye)
    # the pose given in the output frame (base_link) is moved into the scene frame; through
    # the client facade
    info, pose = _msgs(camera, 7.5, frame='base_link', tf=(TRANSLATION, ROTATION))
    with pytest.raises(ReferClientError, match='together'):
        ReferClient(listener.node).refer('the red mug', camera_info=info)
    result = ReferClient(listener.node).refer('the red mug', timeout=20.0, camera_info=info,
                                              camera_pose=pose)
    assert result.status == ReferResult.OK, result.message
    assert listener.spin(lambda: all(_views(listener, 7.5)), 20), node.output()
    mask = image_to_mono8(_views(listener, 7.5)[0][-1]) > 0
    seen, alone = _truth(handmade, camera), _truth(handmade, camera, only_a=True)
    assert alone.sum() > 100 and seen.sum() < 0.8 * alone.sum()  # B hides part of A
    assert _iou(mask, seen) >= 0.9 and _iou(mask, alone) < 0.85

    # bad cameras in the goal: INVALID_QUERY with the reason, nothing published for them
    info, pose = _msgs(camera, 8.0)
    pose.pose.position.y = float('nan')
    result = ask(info, pose)
    assert result.status == ReferResult.INVALID_QUERY
    assert 'camera in the goal' in result.message and 'NaN' in result.message
    info, pose = _msgs(camera, 8.5)
    info.k[0] = info.k[4] = info.p[0] = info.p[5] = 0.0
    result = ask(info, pose)
    assert result.status == ReferResult.INVALID_QUERY and 'focal' in result.message
    info, pose = _msgs(camera, 9.0, frame='odom')
    result = ask(info, pose)
    assert result.status == ReferResult.INVALID_QUERY and "frame 'odom'" in result.message
    info, _ = _msgs(camera, 9.2)
    result = ask(info, PoseStamped())
    assert result.status == ReferResult.INVALID_QUERY and 'camera_pose is not' in result.message
    # looking away from the target: still answered (the 3D target is known), empty mask, why
    away = _camera(np.add(A_CENTER, (0.0, -1.0, 0.1)), target=np.add(A_CENTER, (0.0, -3.0, 0.1)))
    result = ask(*_msgs(away, 9.5))
    assert result.status == ReferResult.OK and 'behind the camera' in result.message
    assert listener.spin(lambda: all(_views(listener, 9.5)), 20), node.output()
    assert not image_to_mono8(_views(listener, 9.5)[0][-1]).any()
    # a broken live camera is left out with a note; the answer still comes
    feed.wait()
    info, pose = _msgs(camera, 10.0)
    info.k[0] = info.p[0] = info.p[5] = 0.0
    assert feed.until_node_has_it(info, pose), node.output()
    result = ask()
    assert result.status == ReferResult.OK
    assert 'live camera not used' in result.message and 'focal' in result.message
    assert not _views(listener, 10.0)[0]
    assert node.stop() == 0, node.output()


def test_tracking_follows_the_camera_at_most_at_the_rate_until_clear(
        rclpy_context, ros_processes, handmade):
    from std_srvs.srv import Trigger

    from refersplat_ros.msg import ReferResult

    node = _start(ros_processes, handmade, **{'tracking.enabled': True,
                                              'tracking.max_rate_hz': 4.0})
    listener = Listener(rclpy_context)
    feed = CameraFeed(listener)
    listener.wait_for_node()
    feed.wait()
    assert feed.until_node_has_it(*_msgs(_camera((0.9, -0.7, 0.6)), 1.0)), node.output()
    listener.send('the red mug')
    assert listener.spin(lambda: listener.results(), 20), node.output()
    assert listener.results()[-1].status == ReferResult.OK
    arrivals = {}

    def record():
        for m in listener.got['mask']:
            arrivals.setdefault((m.header.stamp.sec, m.header.stamp.nanosec), time.monotonic())

    # a camera moving around the target at 40 Hz for 2 s
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < 2.0:
        angle = 0.3 * k / 40
        eye = (A_CENTER[0] + 1.1 * np.sin(angle), A_CENTER[1] - 1.1 * np.cos(angle), 0.6)
        feed.publish(*_msgs(_camera(eye), 2.0 + k / 40))
        k += 1
        listener.spin(lambda: False, 0.025)
        record()
    listener.spin(lambda: False, 0.3)
    record()
    tracked = sorted(t for (sec, _), t in arrivals.items() if sec >= 2)
    assert len(tracked) >= 2, node.output()           # it follows the camera
    assert len(tracked) <= 4.0 * 2.3 + 1               # at most the rate
    gaps = np.diff(tracked)
    assert gaps.min() > 0.5 / 4.0                      # spacing (delivery jitter allowed)
    client = listener.node.create_client(Trigger, '/refersplat/clear')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert listener.spin(future.done, 10)
    assert future.result().success and 'stopped tracking query 1' in future.result().message
    count = len(listener.got['mask'])
    for j in range(20):
        feed.publish(*_msgs(_camera((0.9, -0.7, 0.6 + j * 0.01)), 50.0 + j))
        listener.spin(lambda: False, 0.05)
    assert len(listener.got['mask']) == count   # cleared: nothing more
    assert node.stop() == 0, node.output()


def test_invalid_output_transform_is_a_clear_configure_error(
        rclpy_context, ros_processes, handmade):
    from refersplat_ros.msg import ReferResult

    # integers are numbers too ([1, 2, 0]); the all-zero quaternion is the error
    node = _start(ros_processes, handmade, **{**PARAMS, 'output_transform.translation': [1, 2, 0],
                                              'output_transform.rotation': [0, 0, 0, 0]})
    listener = Listener(rclpy_context)
    listener.wait_for_node()
    assert node.wait_for_output('not a unit quaternion', 20), node.output()
    listener.send('the red mug')
    assert listener.spin(lambda: listener.results(), 20)
    assert listener.results()[-1].status == ReferResult.NOT_READY
    assert node.stop() == 0, node.output()


def _diagnostic(listener, key):
    """Return the value of ``key`` in the node's newest diagnostics ('' before any)."""
    for array in reversed(listener.got['diagnostics']):
        for status in array.status:
            for value in status.values:
                if value.key == key:
                    return value.value
    return ''


def test_a_camera_with_a_negative_stamp_is_dropped_and_never_fails_a_query(
        rclpy_context, ros_processes, handmade):
    from refersplat_ros.msg import ReferResult

    node = _start(ros_processes, handmade)
    listener = Listener(rclpy_context)
    feed = CameraFeed(listener)
    listener.wait_for_node()
    feed.wait()
    camera = _camera((0.9, -0.7, 0.6))
    bad_info, bad_pose = _msgs(camera, 3.0)
    bad_info.header.stamp.sec = bad_pose.header.stamp.sec = -5
    # dropped on arrival, counted; best effort may lose some, so publish until both are counted
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and int(_diagnostic(listener, 'camera_dropped') or 0) < 2:
        feed.publish(bad_info, bad_pose)
        listener.spin(lambda: False, 0.3)
    assert int(_diagnostic(listener, 'camera_dropped')) >= 2, node.output()
    assert _diagnostic(listener, 'camera') == 'none'  # nothing was stored
    assert node.wait_for_output('negative stamp', 10), node.output()
    # then a valid camera: the next query is answered in it
    assert feed.until_node_has_it(*_msgs(camera, 4.0)), node.output()
    listener.send('the red mug')
    assert listener.spin(lambda: listener.results() and all(_views(listener, 4.0)), 20), \
        node.output()
    result = listener.results()[-1]
    assert (result.status, result.message) == (ReferResult.OK, ''), result.message
    # a bad pose after it changes nothing: the next query still uses the valid camera
    feed.pose.publish(bad_pose)
    listener.send('the red mug')
    assert listener.spin(lambda: len(listener.results()) == 2, 20), node.output()
    assert listener.results()[-1].status == ReferResult.OK, listener.results()[-1].message
    assert node.stop() == 0, node.output()
