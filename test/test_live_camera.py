"""The node's camera pairing (refersplat_ros/live_camera.py), with messages in memory."""
import re

import pytest

from helpers.ros_harness import require_ros


@pytest.fixture(autouse=True)
def _needs_ros():
    require_ros()


def _info(sec=0, nanosec=0, width=64, frame='cam'):
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=width, height=48)
    info.header.frame_id = frame
    info.header.stamp.sec, info.header.stamp.nanosec = sec, nanosec
    return info


def _pose(sec, nanosec=0, x=0.0):
    from geometry_msgs.msg import PoseStamped
    pose = PoseStamped()
    pose.header.stamp.sec, pose.header.stamp.nanosec = sec, nanosec
    pose.pose.position.x = x
    return pose


def test_the_pose_nearest_the_image_stamp_is_paired_the_newest_on_a_tie():
    from refersplat_ros.live_camera import LiveCamera

    camera = LiveCamera()
    assert camera.pair() == (None, None) and camera.describe() == 'none'
    camera.add_info(_info(10, 500_000_000))
    assert camera.pair() == (None, None) and camera.describe() == 'waiting for camera pose'
    for x, stamp in enumerate([(9, 0), (10, 400_000_000), (10, 600_000_000), (11, 0)]):
        camera.add_pose(_pose(*stamp, x=float(x)))
    info, pose = camera.pair()
    assert info.header.stamp.sec == 10
    assert pose.pose.position.x == 2.0  # 10.4 s and 10.6 s are as near: the newer
    camera.add_info(_info(10, 420_000_000))
    assert camera.pair()[1].pose.position.x == 1.0
    assert camera.describe() == '64x48 in cam'


def test_an_unstamped_image_takes_the_newest_pose_and_the_history_is_bounded():
    from refersplat_ros.live_camera import LiveCamera

    camera = LiveCamera(history=3)
    camera.add_info(_info(frame=''))
    for x in range(5):
        camera.add_pose(_pose(x, x=float(x)))
    assert camera.pair()[1].pose.position.x == 4.0
    assert camera.describe() == '64x48 in (no frame)'
    camera.add_info(_info(0, 1))  # 1 ns: nearest of the 3 kept (2, 3, 4 s) is 2 s
    assert camera.pair()[1].pose.position.x == 2.0


def test_changed_is_set_by_every_message():
    from refersplat_ros.live_camera import LiveCamera

    camera = LiveCamera()
    assert not camera.changed
    camera.add_pose(_pose(1))
    assert camera.changed and camera.describe() == 'waiting for camera_info'
    camera.changed = False
    camera.add_info(_info(1))
    assert camera.changed


def test_goal_camera_is_both_messages_or_neither():
    from sensor_msgs.msg import CameraInfo

    from refersplat_ros.core.scene.frames import FrameError
    from refersplat_ros.live_camera import goal_camera

    assert goal_camera(CameraInfo(), _pose(0)) is None  # an empty goal camera: none given
    assert goal_camera(None, None) is None
    with pytest.raises(FrameError, match='camera_pose is not'):
        goal_camera(_info(), _pose(0))
    info, pose = _info(), _pose(0, x=1.0)
    assert goal_camera(info, pose) == (info, pose)
    stamped = _pose(3)
    assert goal_camera(info, stamped) == (info, stamped)


@pytest.mark.parametrize('edit, reason', [
    (lambda m: setattr(m.header.stamp, 'sec', -1), 'negative stamp'),
    (lambda m: setattr(m.header.stamp, 'nanosec', 1_000_000_000), 'nanosec'),
    (lambda m: setattr(m, 'width', 0), 'image size 0x48'),
    (lambda m: setattr(m, 'height', 20000), 'image size 64x20000'),
    (lambda m: m.k.__setitem__(0, float('nan')), r'camera_info\.k holds NaN'),
    (lambda m: m.p.__setitem__(2, float('inf')), r'camera_info\.p holds NaN'),
])
def test_an_invalid_camera_info_is_dropped_counted_and_never_stored(edit, reason):
    from refersplat_ros.live_camera import LiveCamera

    camera = LiveCamera()
    camera.add_pose(_pose(10))
    good = _info(10)
    assert camera.add_info(good) is None
    camera.changed = False
    bad = _info(11)
    edit(bad)
    dropped = camera.add_info(bad)
    assert dropped is not None and re.search(reason, dropped), dropped
    assert camera.dropped == 1 and not camera.changed
    assert camera.pair()[0] is good  # the valid one is kept


@pytest.mark.parametrize('edit, reason', [
    (lambda m: setattr(m.header.stamp, 'sec', -2**31), 'negative stamp'),
    (lambda m: setattr(m.pose.position, 'z', float('inf')), 'translation holds NaN or inf'),
    (lambda m: setattr(m.pose.orientation, 'x', float('nan')), 'rotation holds NaN or inf'),
    (lambda m: setattr(m.pose.orientation, 'w', 0.0), 'not a unit quaternion'),
])
def test_an_invalid_camera_pose_is_dropped_and_never_paired(edit, reason):
    from refersplat_ros.live_camera import LiveCamera

    camera = LiveCamera()
    camera.add_info(_info(5))
    camera.add_pose(_pose(1, x=1.0))
    bad = _pose(5, x=2.0)
    edit(bad)
    dropped = camera.add_pose(bad)
    assert dropped is not None and re.search(reason, dropped), dropped
    assert camera.dropped == 1
    assert camera.pair()[1].pose.position.x == 1.0  # the nearer, invalid pose is not there


def test_stamps_are_compared_as_integer_nanoseconds_far_future_included():
    from refersplat_ros.live_camera import checked_stamp_ns, LiveCamera, stamp_ns

    latest = _info(2**31 - 1, 999_999_999).header.stamp
    assert checked_stamp_ns(latest, 'x') == stamp_ns(latest) == (2**31 - 1) * 10**9 + 999_999_999
    camera = LiveCamera()
    camera.add_info(_info(2**31 - 1, 999_999_998))
    # 1 ns apart at the far end of the range: a float (53-bit) comparison could not tell these
    camera.add_pose(_pose(2**31 - 1, 999_999_996, x=1.0))
    camera.add_pose(_pose(2**31 - 1, 999_999_999, x=2.0))
    camera.add_pose(_pose(0, 5, x=3.0))  # far in the past of the image
    assert camera.pair()[1].pose.position.x == 2.0
    assert camera.dropped == 0


def test_a_goal_camera_with_a_negative_stamp_is_refused():
    from refersplat_ros.core.scene.frames import FrameError
    from refersplat_ros.live_camera import goal_camera

    with pytest.raises(FrameError, match='camera in the goal: camera_info has a negative stamp'):
        goal_camera(_info(-3), _pose(3))
    with pytest.raises(FrameError, match='camera_pose has a negative stamp'):
        goal_camera(_info(3), _pose(-3))
