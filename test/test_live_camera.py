"""The node's camera pairing (refersplat_ros/live_camera.py), with messages in memory."""
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
