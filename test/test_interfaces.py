"""The generated interfaces: import, definitions, and round trips across processes over DDS."""
from pathlib import Path

import numpy as np
import pytest

from helpers.ros_harness import require_ros, spin_until

PROGRAMS = Path(__file__).parent / 'ros_programs'


@pytest.fixture(autouse=True)
def _needs_ros():
    require_ros()


def test_interfaces_import_together_with_core():
    import refersplat_ros.core
    from refersplat_ros.action import Refer
    from refersplat_ros.core.inference.queries import QueryStatus
    from refersplat_ros.msg import ReferCandidate, ReferResult
    from refersplat_ros.srv import LoadScene

    assert refersplat_ros.core.__name__ == 'refersplat_ros.core'
    codes = [ReferResult.OK, ReferResult.NO_MATCH, ReferResult.INVALID_QUERY,
             ReferResult.NOT_READY, ReferResult.DROPPED, ReferResult.ERROR,
             ReferResult.AMBIGUOUS]
    assert codes == list(range(7))
    # Every status of the core is a constant of the message, with the same value, and the
    # message has no constant the core lacks (rosidl's metaclass lists them in __prepare__).
    constants = type(ReferResult).__prepare__('ReferResult', ())
    assert constants == {status.name: int(status) for status in QueryStatus}
    fields = ReferResult.get_fields_and_field_types()
    expected = {
        'header': 'std_msgs/Header', 'query_id': 'uint64', 'text': 'string', 'status': 'uint8',
        'message': 'string', 'interpretation': 'string', 'confidence': 'float',
        'score': 'float',
        'pose': 'geometry_msgs/Pose', 'bbox_size': 'geometry_msgs/Vector3',
        'num_gaussians': 'uint32', 'cloud': 'sensor_msgs/PointCloud2',
        'latency': 'builtin_interfaces/Duration', 'encode_ms': 'float', 'field_ms': 'float',
        'select_ms': 'float', 'render_ms': 'float',
        'candidates': 'sequence<refersplat_ros/ReferCandidate>',
        'targets': 'sequence<refersplat_ros/ReferCandidate>'}
    assert fields == expected
    assert ReferCandidate.get_fields_and_field_types() == {
        'label': 'string', 'score': 'float', 'pose': 'geometry_msgs/Pose',
        'bbox_size': 'geometry_msgs/Vector3', 'centroid': 'geometry_msgs/Point'}
    assert Refer.Goal.get_fields_and_field_types() == {
        'text': 'string', 'top_k': 'uint32', 'score_threshold': 'float',
        'camera_info': 'sensor_msgs/CameraInfo', 'camera_pose': 'geometry_msgs/PoseStamped'}
    assert Refer.Result.get_fields_and_field_types() == {'result': 'refersplat_ros/ReferResult'}
    assert Refer.Feedback.get_fields_and_field_types() == {
        'stage': 'string', 'elapsed': 'builtin_interfaces/Duration'}
    assert LoadScene.Request.get_fields_and_field_types() == {
        'scene_path': 'string', 'checkpoint_path': 'string'}
    assert LoadScene.Response.get_fields_and_field_types() == {
        'success': 'boolean', 'message': 'string', 'num_gaussians': 'uint32'}
    from refersplat_ros.srv import EditScene
    assert EditScene.Request.get_fields_and_field_types() == {
        'operation': 'uint8', 'label': 'string', 'frame_id': 'string',
        'transform': 'geometry_msgs/Transform', 'pose': 'geometry_msgs/Pose'}
    assert EditScene.Response.get_fields_and_field_types() == {
        'success': 'boolean', 'message': 'string', 'label': 'string',
        'removed': 'sequence<string>', 'moved': 'sequence<string>'}
    assert (EditScene.Request.MOVE, EditScene.Request.MOVE_TO, EditScene.Request.REMOVE,
            EditScene.Request.RESTORE, EditScene.Request.RESET) == (1, 2, 3, 4, 5)


def _full_result(num_points):
    """Build a ReferResult with every field set to a distinctive value and a large cloud."""
    from std_msgs.msg import Header

    from refersplat_ros.conversions import xyz_to_pointcloud2
    from refersplat_ros.msg import ReferCandidate, ReferResult

    rng = np.random.default_rng(7)
    header = Header(frame_id='scene_frame')
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    msg = ReferResult(header=header, query_id=2**40 + 3, text='the red mug — left of the bowl',
                      status=ReferResult.AMBIGUOUS, message='two mugs fit',
                      interpretation="target: mug <- 'red mug'; left of: bowl <- 'bowl'",
                      score=0.625, num_gaussians=num_points, encode_ms=1.5, field_ms=2.25,
                      select_ms=3.125, render_ms=4.0)
    for index in range(2):
        candidate = ReferCandidate(label=f'red mug #{index + 1}', score=0.5 - 0.125 * index)
        candidate.pose.position.x, candidate.pose.orientation.w = 0.25 * index, 1.0
        candidate.bbox_size.z, candidate.centroid.y = 0.1, -0.5 * index
        msg.candidates.append(candidate)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.1, -0.2, 0.3
    msg.pose.orientation.x, msg.pose.orientation.w = np.sqrt(0.5), np.sqrt(0.5)
    msg.bbox_size.x, msg.bbox_size.y, msg.bbox_size.z = 0.05, 0.06, 0.07
    msg.latency.sec, msg.latency.nanosec = 0, 12_000_000
    xyz = rng.normal(size=(num_points, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(num_points, 3), dtype=np.uint8)
    msg.cloud = xyz_to_pointcloud2(xyz, header, rgb=rgb, score=rng.random(num_points))
    return msg


def test_refer_result_with_100k_cloud_round_trips_between_processes(
        rclpy_context, ros_processes):
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from refersplat_ros.conversions import pointcloud2_to_array
    from refersplat_ros.msg import ReferResult

    echo = ros_processes(PROGRAMS / 'echo_results.py')
    assert echo.wait_for_output('READY'), echo.output()
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node = rclpy.create_node('sender', context=rclpy_context)
    received = []
    node.create_subscription(ReferResult, 'out_results', received.append, latched)
    publisher = node.create_publisher(ReferResult, 'in_results', latched)
    sent = _full_result(100_000)
    publisher.publish(sent)
    assert spin_until(rclpy_context, node, lambda: received, timeout=20), echo.output()
    got = received[0]
    for field in ReferResult.get_fields_and_field_types():
        if field != 'cloud':
            assert getattr(got, field) == getattr(sent, field), field
    assert got.cloud.header == sent.cloud.header
    assert got.cloud.fields == sent.cloud.fields
    assert (got.cloud.width, got.cloud.point_step) == (100_000, 20)
    np.testing.assert_array_equal(pointcloud2_to_array(got.cloud),
                                  pointcloud2_to_array(sent.cloud))
    node.destroy_node()
    assert echo.stop() == 0, echo.output()


def test_refer_action_and_load_scene_service_round_trip(rclpy_context, ros_processes, tmp_path):
    import rclpy
    from rclpy.action import ActionClient

    from refersplat_ros.action import Refer
    from refersplat_ros.msg import ReferResult
    from refersplat_ros.srv import LoadScene

    server = ros_processes(PROGRAMS / 'refer_server.py')
    assert server.wait_for_output('READY'), server.output()
    node = rclpy.create_node('client', context=rclpy_context)

    action = ActionClient(node, Refer, 'refer')
    assert spin_until(rclpy_context, node, lambda: action.server_is_ready(), 20)
    feedback = []
    goal_future = action.send_goal_async(
        Refer.Goal(text='the blue bowl behind the red box', top_k=2, score_threshold=0.25),
        feedback_callback=lambda fb: feedback.append(fb.feedback))
    assert spin_until(rclpy_context, node, goal_future.done, 20)
    goal_handle = goal_future.result()
    assert goal_handle.accepted
    result_future = goal_handle.get_result_async()
    assert spin_until(rclpy_context, node, result_future.done, 20)
    result = result_future.result().result.result
    assert result.text == 'the blue bowl behind the red box'
    assert (result.status, result.num_gaussians) == (ReferResult.OK, 2)
    assert result.score == pytest.approx(0.25)
    assert result.header.frame_id == 'scene' and result.header.stamp.sec > 0
    assert [f.stage for f in feedback] == [
        'queued', 'encoding', 'field', 'selecting', 'publishing']
    elapsed = [f.elapsed.sec + f.elapsed.nanosec * 1e-9 for f in feedback]
    assert elapsed == sorted(elapsed)

    client = node.create_client(LoadScene, 'load_scene')
    assert spin_until(rclpy_context, node, client.service_is_ready, 20)
    scene = tmp_path / 'scene.ply'
    scene.write_bytes(b'x' * 1234)
    ckpt = tmp_path / 'field.safetensors'
    ckpt.write_bytes(b'y')
    for request, expect in [
            (LoadScene.Request(scene_path=str(scene), checkpoint_path=str(ckpt)),
             (True, 'loaded', 1234)),
            (LoadScene.Request(scene_path=str(scene), checkpoint_path='/nonexistent.ckpt'),
             (False, "missing: ['/nonexistent.ckpt']", 0))]:
        future = client.call_async(request)
        assert spin_until(rclpy_context, node, future.done, 20)
        response = future.result()
        assert (response.success, response.message, response.num_gaussians) == expect
    action.destroy()
    node.destroy_node()
    assert server.stop() == 0, server.output()
