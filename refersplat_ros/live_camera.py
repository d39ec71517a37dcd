"""The node's camera: the newest ``CameraInfo`` paired with the camera pose nearest its stamp.

The robot's camera driver and its localisation publish intrinsics and poses on their own
topics and clocks (docs/ROBOT.md); a mask rendered with a pose from another moment would be
drawn where the object was not. The pose whose stamp is nearest the image's is used, the newest
on a tie (poses without stamps: the newest). An action goal may bring its own camera instead
(:func:`goal_camera`). Holds messages only: turning them into a renderer's camera is
``conversions.camera_from_msgs``.
"""
from collections import deque
import threading
from typing import Optional, Tuple

from geometry_msgs.msg import Pose

from refersplat_ros.core.scene.frames import FrameError

#: Camera poses kept to pair each CameraInfo with the pose nearest its stamp (1 s at 64 Hz).
CAMERA_POSE_HISTORY = 64


def stamp_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` in nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class LiveCamera:
    """The newest CameraInfo and the recent camera poses, fed by two subscriptions.

    Thread-safe: the executor adds messages while the worker thread pairs them.
    """

    def __init__(self, history: int = CAMERA_POSE_HISTORY):
        self._lock = threading.Lock()
        self._info = None
        self._poses = deque(maxlen=history)   # PoseStamped, newest last
        #: Set by every new message; tracking clears it when it renders.
        self.changed = False

    def add_info(self, msg) -> None:
        """Keep ``msg`` (a ``sensor_msgs/CameraInfo``) as the camera's intrinsics."""
        with self._lock:
            self._info = msg
        self.changed = True

    def add_pose(self, msg) -> None:
        """Add ``msg`` (a ``geometry_msgs/PoseStamped`` of the optical frame) to the history."""
        with self._lock:
            self._poses.append(msg)
        self.changed = True

    def pair(self) -> Tuple[Optional[object], Optional[object]]:
        """Return the newest CameraInfo and the pose nearest its stamp, or (None, None)."""
        with self._lock:
            info, poses = self._info, list(self._poses)
        if info is None or not poses:
            return None, None
        stamp = stamp_ns(info.header.stamp)
        if stamp == 0:
            return info, poses[-1]
        return info, min(reversed(poses), key=lambda p: abs(stamp_ns(p.header.stamp) - stamp))

    def describe(self) -> str:
        """Say what the camera has had, for diagnostics: none, waiting for one, or its size."""
        with self._lock:
            info, pose = self._info, (self._poses[-1] if self._poses else None)
        if info is None and pose is None:
            return 'none'
        if info is None or pose is None:
            return 'waiting for ' + ('camera_info' if info is None else 'camera pose')
        return f'{info.width}x{info.height} in {info.header.frame_id or "(no frame)"}'


def goal_camera(info, pose) -> Optional[Tuple[object, object]]:
    """Return an action goal's (camera_info, camera_pose), or None when it gives no camera.

    A goal gives a camera when its ``camera_info`` has a size or intrinsics; its pose must then
    be set too (a default ``PoseStamped`` is not a pose), else ``FrameError`` says so.
    """
    if info is None or not (info.width or info.height or any(info.k) or any(info.p)):
        return None
    unset = pose is None or (not pose.header.frame_id and stamp_ns(pose.header.stamp) == 0
                             and pose.pose == Pose())
    if unset:
        raise FrameError('camera in the goal: camera_info is set but camera_pose is not (give '
                         'both, or neither)')
    return info, pose
