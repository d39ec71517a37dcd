"""numpy <-> PointCloud2 converters: exhaustive round trips and errors, messages in memory."""
from dataclasses import replace

import numpy as np
import pytest

from helpers.ros_harness import require_ros


@pytest.fixture(autouse=True)
def _needs_ros():
    require_ros()


@pytest.fixture
def header():
    from std_msgs.msg import Header
    h = Header(frame_id='map')
    h.stamp.sec, h.stamp.nanosec = 12, 34
    return h


ALL_TYPES = ['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'f4', 'f8']


@pytest.mark.parametrize('kind', ALL_TYPES)
def test_every_field_type_round_trips(kind, header):
    from refersplat_ros.conversions import array_to_pointcloud2, pointcloud2_to_array
    rng = np.random.default_rng(0)
    points = np.zeros(37, dtype=[('x', 'f4'), ('v', kind)])
    points['x'] = rng.normal(size=37)
    points['v'] = (rng.random(37) * 100).astype(kind)
    msg = array_to_pointcloud2(points, header)
    assert (msg.height, msg.width, msg.point_step) == (1, 37, points.dtype.itemsize)
    assert msg.header == header
    back = pointcloud2_to_array(msg)
    assert back.dtype.names == ('x', 'v')
    np.testing.assert_array_equal(back['x'], points['x'])
    np.testing.assert_array_equal(back['v'], points['v'])


def test_xyz_rgb_score_layout(header):
    from refersplat_ros.conversions import (pointcloud2_to_array, pointcloud2_to_xyz,
                                            unpack_rgb, xyz_to_pointcloud2)
    xyz = np.array([[0, 1, 2], [3, 4, 5]], np.float32)
    rgb = np.array([[255, 0, 0], [1, 2, 3]], np.uint8)
    msg = xyz_to_pointcloud2(xyz, header, rgb=rgb, score=[0.5, 0.25])
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb', 'score']
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12, 16]
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), xyz)
    points = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(unpack_rgb(points['rgb']), rgb)
    np.testing.assert_array_equal(points['score'], [0.5, 0.25])
    # Float colours in [0, 1] are rounded to the same bytes.
    again = xyz_to_pointcloud2(xyz, header, rgb=rgb / 255.0)
    np.testing.assert_array_equal(unpack_rgb(pointcloud2_to_array(again)['rgb']), rgb)


def test_padded_and_empty_clouds(header):
    from refersplat_ros.conversions import array_to_pointcloud2, pointcloud2_to_array
    padded = np.zeros(3, dtype={'names': ['x'], 'formats': ['f4'], 'offsets': [4],
                                'itemsize': 16})
    padded['x'] = [1, 2, 3]
    msg = array_to_pointcloud2(padded, header)
    assert msg.point_step == 16 and msg.fields[0].offset == 4
    np.testing.assert_array_equal(pointcloud2_to_array(msg)['x'], [1, 2, 3])
    empty = array_to_pointcloud2(np.zeros(0, dtype=[('x', 'f4')]), header)
    assert empty.width == 0 and len(pointcloud2_to_array(empty)) == 0


def test_is_dense_reflects_nan(header):
    from refersplat_ros.conversions import xyz_to_pointcloud2
    assert xyz_to_pointcloud2(np.zeros((2, 3)), header).is_dense
    assert not xyz_to_pointcloud2(np.array([[0, 0, np.nan]]), header).is_dense


def test_conversion_errors(header):
    from sensor_msgs.msg import PointField

    from refersplat_ros.conversions import (array_to_pointcloud2, ConversionError,
                                            pointcloud2_to_array, pointcloud2_to_xyz,
                                            xyz_to_pointcloud2)
    with pytest.raises(ConversionError, match='structured'):
        array_to_pointcloud2(np.zeros((4, 3), np.float32), header)
    with pytest.raises(ConversionError, match="field 'c'"):
        array_to_pointcloud2(np.zeros(2, dtype=[('c', 'c16')]), header)
    with pytest.raises(ConversionError, match=r'shape \[P, 3\]'):
        xyz_to_pointcloud2(np.zeros((4, 2)), header)
    with pytest.raises(ConversionError, match='score has 1 rows'):
        xyz_to_pointcloud2(np.zeros((4, 3)), header, score=[1.0])
    msg = xyz_to_pointcloud2(np.zeros((4, 3)), header)
    msg.data = msg.data[:-1]
    with pytest.raises(ConversionError, match='bytes'):
        pointcloud2_to_array(msg)
    msg = xyz_to_pointcloud2(np.zeros((4, 3)), header)
    msg.fields[0].datatype = 42
    with pytest.raises(ConversionError, match='unknown datatype 42'):
        pointcloud2_to_array(msg)
    msg = xyz_to_pointcloud2(np.zeros((4, 3)), header)
    msg.fields = [PointField(name='x', offset=0, datatype=PointField.FLOAT32, count=1)]
    with pytest.raises(ConversionError, match=r"\['y', 'z'\]"):
        pointcloud2_to_xyz(msg)


def test_mono8_image_round_trip_and_errors(header):
    from sensor_msgs.msg import Image

    from refersplat_ros.conversions import ConversionError, image_to_mono8, mono8_to_image
    mask = (np.arange(12 * 7).reshape(7, 12) % 255).astype(np.uint8)
    msg = mono8_to_image(mask, header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (7, 12, 12, 'mono8')
    assert msg.header == header
    np.testing.assert_array_equal(image_to_mono8(msg), mask)
    padded = Image(height=2, width=3, step=4, encoding='mono8', data=bytes(range(8)))
    np.testing.assert_array_equal(image_to_mono8(padded), [[0, 1, 2], [4, 5, 6]])
    with pytest.raises(ConversionError, match='uint8'):
        mono8_to_image(mask.astype(np.float32), header)
    with pytest.raises(ConversionError, match="encoding 'rgb8'"):
        image_to_mono8(Image(height=1, width=1, step=3, encoding='rgb8', data=bytes(3)))
    with pytest.raises(ConversionError, match='bytes'):
        image_to_mono8(Image(height=2, width=3, step=3, encoding='mono8', data=bytes(5)))


def test_depth_image_round_trip_and_errors(header):
    from sensor_msgs.msg import Image

    from refersplat_ros.conversions import ConversionError, depth_to_image, image_to_depth
    depth = np.full((5, 7), np.nan, np.float32)
    depth[1:3, 2:5] = np.linspace(0.3, 2.5, 6, dtype=np.float32).reshape(2, 3)
    msg = depth_to_image(depth, header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 28, '32FC1')
    np.testing.assert_array_equal(image_to_depth(msg), depth)
    big = Image(height=1, width=2, step=8, encoding='32FC1', is_bigendian=1,
                data=np.array([1.5, np.nan], '>f4').tobytes())
    np.testing.assert_array_equal(image_to_depth(big), [[1.5, np.nan]])
    with pytest.raises(ConversionError, match='float32'):
        depth_to_image(depth.astype(np.float64), header)
    with pytest.raises(ConversionError, match="encoding 'mono8'"):
        image_to_depth(Image(height=1, width=1, step=1, encoding='mono8', data=bytes(1)))


def test_camera_from_msgs_uses_the_rectified_projection_and_checks_frames(header):
    from geometry_msgs.msg import PoseStamped

    from refersplat_ros.conversions import camera_from_msgs, camera_info
    from refersplat_ros.core.scene.frames import FrameError, RigidTransform
    info = camera_info(64, 48, 50.0, 52.0, 31.0, 23.0, header)
    pose = PoseStamped()
    pose.header.frame_id = 'scene'
    pose.pose.position.z = -2.0
    tf = RigidTransform.create((0, 0, 0), (0, 0, 0, 1))
    camera = camera_from_msgs(info, pose, 'scene', '', tf, 2.0)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (50.0, 52.0, 31.0, 23.0)
    np.testing.assert_allclose(camera.center.numpy(), [0, 0, -1.0])  # metres / metric_scale
    info.p = [40.0, 0.0, 30.0, 0.0, 0.0, 41.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.k = [55.0, 0.0, 32.0, 0.0, 56.0, 24.0, 0.0, 0.0, 1.0]  # distorted: K differs from P
    camera = camera_from_msgs(info, pose, 'scene', '', tf, 1.0)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (40.0, 41.0, 30.0, 22.0)
    pose.header.frame_id = 'map'
    with pytest.raises(FrameError, match="frame 'map'; give it in 'scene' or 'base_link'"):
        camera_from_msgs(info, pose, 'scene', 'base_link', tf, 1.0)
    pose.header.frame_id = ''
    info.width = 100000
    info.height = 100000
    with pytest.raises(FrameError, match='larger than'):
        camera_from_msgs(info, pose, 'scene', '', tf, 1.0)


def test_camera_info_pose_and_markers(header):
    from visualization_msgs.msg import Marker

    from refersplat_ros.conversions import camera_info, pose_msg, target_markers
    info = camera_info(64, 48, 60.0, 61.0, 32.0, 24.0, header)
    assert (info.width, info.height) == (64, 48) and list(info.d) == [0.0] * 5
    assert list(info.k) == [60.0, 0.0, 32.0, 0.0, 61.0, 24.0, 0.0, 0.0, 1.0]
    assert list(info.p)[:3] == [60.0, 0.0, 32.0] and info.header == header
    pose = pose_msg([1, 2, 3], [0, 0, 0.6, 0.8])
    assert (pose.position.z, pose.orientation.z, pose.orientation.w) == (3.0, 0.6, 0.8)
    markers = target_markers(header, [(pose, [0.1, 0.2, 0.3], (0, 1, 0, 0.5))], 'mug (0.90)')
    kinds = [(m.action, m.type) for m in markers.markers]
    assert kinds == [(Marker.DELETEALL, Marker.ARROW), (Marker.ADD, Marker.CUBE),
                     (Marker.ADD, Marker.TEXT_VIEW_FACING)]
    box, text = markers.markers[1], markers.markers[2]
    assert (box.scale.x, box.scale.y, box.scale.z) == pytest.approx((0.1, 0.2, 0.3))
    assert box.pose == pose and text.text == 'mug (0.90)'
    assert text.pose.position.z == pytest.approx(3 + 0.15 + 0.05)
    assert len({(m.ns, m.id) for m in markers.markers[1:]}) == 2
    empty = target_markers(header, [], 'nothing (no match)')
    assert [m.type for m in empty.markers[1:]] == [Marker.TEXT_VIEW_FACING]


def test_status_codes_match_the_core():
    from refersplat_ros.core.inference.queries import QueryStatus
    from refersplat_ros.msg import ReferResult
    assert {s.name: int(s) for s in QueryStatus} == {
        name: getattr(ReferResult, name) for name in QueryStatus.__members__}


def test_candidate_becomes_refer_candidate_without_rescaling():
    from refersplat_ros.conversions import candidate_msg
    from refersplat_ros.core.inference.model import Candidate
    from refersplat_ros.core.inference.selection import Instance
    from refersplat_ros.msg import ReferCandidate

    # Box axes: x and y swapped about z (a quarter turn), in metres of the scene frame.
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    instance = Instance(indices=np.arange(3), score=0.8, mass=2.0,
                        centroid=np.array([1.0, 2.0, 3.5]), center=np.array([1.5, 2.5, 3.0]),
                        rotation=rotation, extent=np.array([0.25, 0.5, 0.75]))
    msg = candidate_msg(Candidate(label='red can #2', score=np.float32(0.625),
                                  instance=instance))
    assert isinstance(msg, ReferCandidate)
    assert (msg.label, msg.score) == ('red can #2', 0.625)
    p, q = msg.pose.position, msg.pose.orientation
    assert (p.x, p.y, p.z) == (1.5, 2.5, 3.0)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], instance.quaternion_xyzw)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0, 0, np.sqrt(0.5), np.sqrt(0.5)],
                               atol=1e-12)
    assert (msg.bbox_size.x, msg.bbox_size.y, msg.bbox_size.z) == (0.25, 0.5, 0.75)
    assert (msg.centroid.x, msg.centroid.y, msg.centroid.z) == (1.0, 2.0, 3.5)


def test_target_label_per_status():
    from refersplat_ros.conversions import ConversionError, target_label
    from refersplat_ros.core.inference.queries import QueryStatus

    assert target_label('the mug', QueryStatus.OK, 0.876) == 'the mug (0.88)'
    assert target_label('the mug', QueryStatus.OK, 0.876, 1, 'target: mug') == \
        'the mug (0.88)\ntarget: mug'
    assert target_label('the can', QueryStatus.AMBIGUOUS, 0.5, 2, "target: can <- 'can'") == \
        "the can (ambiguous: 2 candidates)\ntarget: can <- 'can'"
    assert target_label('the can', QueryStatus.AMBIGUOUS, 0.5) == 'the can (ambiguous)'
    assert target_label('x', QueryStatus.NO_MATCH, 0.0, 0, 'target: x') == \
        'x (no match)\ntarget: x'
    for status in (QueryStatus.INVALID_QUERY, QueryStatus.NOT_READY, QueryStatus.DROPPED,
                   QueryStatus.ERROR):
        with pytest.raises(ConversionError, match=status.name):
            target_label('x', status, 0.0)


def _instance(center, extent=(0.2, 0.1, 0.3)):
    from refersplat_ros.core.inference.selection import Instance
    center = np.asarray(center, np.float64)
    return Instance(indices=np.arange(2), score=0.9, mass=1.0, centroid=center, center=center,
                    rotation=np.eye(3), extent=np.asarray(extent, np.float64))


def _outcome(status, instances=(), message='', interpretation='target: mug'):
    """Build a core QueryOutcome by hand: two target points, the given instances."""
    from refersplat_ros.core.inference.model import Candidate, QueryOutcome
    from refersplat_ros.core.inference.selection import Selection

    selection = None
    if instances:  # the first instance holds both points, the others none
        instances = [instances[0]] + [replace(i, indices=i.indices[:0]) for i in instances[1:]]
        selection = Selection(ok=True, reason='', indices=np.array([4, 7]),
                              points=np.array([[1.0, 2.0, 3.0], [1.5, 2.0, 3.0]]),
                              colors=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
                              scores=np.array([0.8, 0.6]), instances=list(instances))
    return QueryOutcome(status=status, message=message, text='the mug', selection=selection,
                        timings_ms={'encode': 1.5, 'field': 2.0, 'select': 3.0},
                        interpretation=interpretation, confidence=0.875,
                        candidates=[Candidate(f'mug #{i + 1}', 0.9, inst)
                                    for i, inst in enumerate(instances)])


def test_refer_result_of_an_answer_moves_it_into_the_output_frame(header):
    from refersplat_ros.conversions import (pointcloud2_to_array, pointcloud2_to_xyz,
                                            refer_result)
    from refersplat_ros.core.inference.queries import QueryStatus
    from refersplat_ros.core.scene.frames import RigidTransform
    from refersplat_ros.msg import ReferResult

    tf = RigidTransform.create([10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], 'output_transform')
    outcome = _outcome(QueryStatus.AMBIGUOUS, [_instance([1.2, 2.0, 3.0]),
                                               _instance([5.0, 5.0, 3.0])])
    result = refer_result(header, 7, 'the mug', outcome.status, 'two mugs fit', outcome, tf)
    assert (result.query_id, result.text, result.status) == (7, 'the mug', ReferResult.AMBIGUOUS)
    assert result.message == 'two mugs fit' and result.header == header
    assert result.interpretation == 'target: mug' and result.confidence == 0.875
    assert [c.label for c in result.candidates] == ['mug #1', 'mug #2']
    assert result.candidates[1].pose.position.x == pytest.approx(15.0)
    assert (result.encode_ms, result.field_ms, result.select_ms, result.render_ms) == \
        (1.5, 2.0, 3.0, 0.0)
    assert result.pose.position.x == pytest.approx(11.2)  # the best candidate's box
    assert (result.bbox_size.x, result.bbox_size.y, result.bbox_size.z) == \
        pytest.approx((0.2, 0.1, 0.3))
    assert result.score == pytest.approx(0.7) and result.num_gaussians == 2
    np.testing.assert_allclose(pointcloud2_to_xyz(result.cloud),
                               [[11.0, 2.0, 3.0], [11.5, 2.0, 3.0]])
    assert [f.name for f in result.cloud.fields] == ['x', 'y', 'z', 'rgb', 'score', 'target']
    assert pointcloud2_to_array(result.cloud)['target'].tolist() == [0, 0]


def test_refer_result_of_no_match_and_of_an_unserved_query(header):
    from refersplat_ros.conversions import refer_result
    from refersplat_ros.core.inference.queries import QueryStatus

    outcome = _outcome(QueryStatus.NO_MATCH, interpretation='')
    result = refer_result(header, 3, 'the mug', outcome.status, '', outcome)
    assert result.status == QueryStatus.NO_MATCH and result.num_gaussians == 0
    assert result.cloud.width == 0 and [f.name for f in result.cloud.fields][-1] == 'score'
    dropped = refer_result(header, 4, 'x', QueryStatus.DROPPED, 'query queue full (4 waiting)')
    assert (dropped.status, dropped.message) == (QueryStatus.DROPPED,
                                                 'query queue full (4 waiting)')
    assert dropped.cloud.width == 0 and not dropped.candidates and dropped.interpretation == ''


def test_result_message_joins_the_model_the_mask_and_the_camera_notes():
    from types import SimpleNamespace

    from refersplat_ros.conversions import result_message
    from refersplat_ros.core.inference.queries import QueryStatus

    outcome = _outcome(QueryStatus.OK, [_instance([0, 0, 0])], message='note A')
    assert result_message(outcome) == 'note A'
    outcome.view = SimpleNamespace(visible=False, reason='the target is behind the camera')
    assert result_message(outcome, 'live camera not used: x') == \
        'note A; no mask: the target is behind the camera; live camera not used: x'
    outcome.message, outcome.view = '', SimpleNamespace(visible=True, reason='', note='')
    assert result_message(outcome) == ''
    outcome.view.note = 'mask rendered at 0.50 of the camera resolution and upsampled'
    assert result_message(outcome) == outcome.view.note


def test_outcome_markers_per_status(header):
    from visualization_msgs.msg import Marker

    from refersplat_ros.conversions import ConversionError, outcome_markers
    from refersplat_ros.core.inference.queries import QueryStatus

    outcome = _outcome(QueryStatus.OK, [_instance([1.0, 2.0, 3.0]), _instance([4, 5, 6])])
    markers = outcome_markers(header, 'the mug', outcome).markers
    assert [m.type for m in markers[1:]] == [Marker.CUBE, Marker.CUBE, Marker.TEXT_VIEW_FACING]
    assert markers[1].pose.position.x == 1.0
    assert markers[-1].text == 'the mug (0.70)\ntarget: mug'
    no_match = outcome_markers(header, 'the mug', _outcome(QueryStatus.NO_MATCH)).markers
    assert [m.action for m in no_match] == [Marker.DELETEALL, Marker.ADD]
    assert no_match[-1].text == 'the mug (no match)\ntarget: mug'
    with pytest.raises(ConversionError):
        outcome_markers(header, 'the mug', _outcome(QueryStatus.ERROR))


def test_scene_cloud_is_scaled_moved_and_decimated_the_same_way_each_time(header):
    from refersplat_ros.conversions import pointcloud2_to_array, scene_cloud
    from refersplat_ros.core.scene.frames import RigidTransform

    means = np.arange(30, dtype=np.float32).reshape(10, 3)
    colors = np.full((10, 3), 0.5)
    tf = RigidTransform.create([0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], 'output_transform')
    whole = pointcloud2_to_array(scene_cloud(means, colors, header, 100, 2.0, tf))
    np.testing.assert_allclose(whole['z'], means[:, 2] * 2.0 + 1.0)
    few = pointcloud2_to_array(scene_cloud(means, colors, header, 4))
    again = pointcloud2_to_array(scene_cloud(means, colors, header, 4))
    assert len(few) == 4 and np.array_equal(few['x'], again['x'])
    assert np.all(np.diff(few['x']) > 0)  # in the scene's order


def test_a_camera_size_image_becomes_a_message_without_a_copy(header):
    import numpy as np

    from refersplat_ros.conversions import depth_to_image, image_to_depth, image_to_mono8, \
        mono8_to_image
    from refersplat_ros.core.inference.target_view import image_buffer

    depth = image_buffer(48, 64, np.float32, np.nan)
    depth[10:20, 5:9] = 1.25
    msg = depth_to_image(depth, header)
    assert np.shares_memory(np.frombuffer(msg.data, np.uint8), depth)  # the same buffer
    back = image_to_depth(msg)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(depth))
    assert (back[10:20, 5:9] == 1.25).all()
    mask = image_buffer(48, 64, np.uint8, 0)
    mask[1, 2] = 255
    np.testing.assert_array_equal(image_to_mono8(mono8_to_image(mask, header)), mask)
    # any other array (a view, a slice) is copied once, never aliased
    part = depth[:, :32]
    other = depth_to_image(part, header)
    assert not np.shares_memory(np.frombuffer(other.data, np.uint8), depth)
    np.testing.assert_array_equal(np.isnan(image_to_depth(other)), np.isnan(part))


def test_normals_follow_the_score_and_are_checked(header):
    from refersplat_ros.conversions import (ConversionError, pointcloud2_to_array,
                                            xyz_to_pointcloud2)
    xyz = np.array([[0, 1, 2], [3, 4, 5]], np.float32)
    normals = np.array([[0, 0, 1], [0.6, 0.8, 0]], np.float32)
    msg = xyz_to_pointcloud2(xyz, header, rgb=np.zeros((2, 3)), score=[0.5, 0.25],
                             normals=normals)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z', 'rgb', 'score', 'normal_x',
                                            'normal_y', 'normal_z']
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12, 16, 20, 24, 28]
    points = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(
        np.stack([points['normal_x'], points['normal_y'], points['normal_z']], 1), normals)
    with pytest.raises(ConversionError, match='normals have 1 rows'):
        xyz_to_pointcloud2(xyz, header, normals=normals[:1])
    with pytest.raises(ConversionError, match=r'normals must have shape \[P, 3\]'):
        xyz_to_pointcloud2(xyz, header, normals=np.zeros((2, 2)))


def _normals_of(points):
    return np.stack([points['normal_x'], points['normal_y'], points['normal_z']], 1)


def test_refer_result_rotates_the_selection_normals_into_the_output_frame(header):
    from refersplat_ros.conversions import pointcloud2_to_array, refer_result
    from refersplat_ros.core.inference.queries import QueryStatus
    from refersplat_ros.core.scene.frames import RigidTransform

    # 90 degrees about z, and a translation that must not move the normals.
    tf = RigidTransform.create([10.0, 0.0, 0.0], [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)],
                               'output_transform')
    outcome = _outcome(QueryStatus.OK, [_instance([1.2, 2.0, 3.0])])
    outcome.selection.normals = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    result = refer_result(header, 7, 'the mug', outcome.status, '', outcome, tf)
    points = pointcloud2_to_array(result.cloud)
    np.testing.assert_allclose(_normals_of(points), [[0, 1, 0], [0, 0, -1]], atol=1e-6)
    outcome.selection.normals = None
    plain = refer_result(header, 7, 'the mug', outcome.status, '', outcome, tf)
    assert 'normal_x' not in [f.name for f in plain.cloud.fields]


def test_scene_cloud_normals_are_decimated_and_rotated_only(header):
    from refersplat_ros.conversions import ConversionError, pointcloud2_to_array, scene_cloud
    from refersplat_ros.core.scene.frames import RigidTransform

    means = np.arange(30, dtype=np.float32).reshape(10, 3)
    colors = np.full((10, 3), 0.5)
    normals = np.zeros((10, 3), np.float32)
    normals[:, 0] = 1.0
    normals[:, 2] = np.arange(10)  # a tag per row, to check decimation keeps rows together
    tf = RigidTransform.create([0.0, 0.0, 1.0], [0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)],
                               'output_transform')
    few = pointcloud2_to_array(scene_cloud(means, colors, header, 4, 2.0, tf, normals=normals))
    assert len(few) == 4
    rows = np.rint(few['normal_z']).astype(int)
    np.testing.assert_allclose(few['z'], means[rows, 2] * 2.0 + 1.0)
    np.testing.assert_allclose(few['normal_x'], 0.0, atol=1e-6)
    np.testing.assert_allclose(few['normal_y'], 1.0)  # x rotated onto y, not scaled or moved
    with pytest.raises(ConversionError, match='normals have 3 rows'):
        scene_cloud(means, colors, header, 4, normals=normals[:3])
