"""The node's camera: the newest ``CameraInfo`` paired with the camera pose nearest its stamp.

The robot's camera driver and its localisation publish intrinsics and poses on their own
topics and clocks (docs/ROBOT.md); a mask rendered with a pose from another moment would be
drawn where the object was not. The pose whose stamp is nearest the image's is used, the newest
on a tie (poses without stamps: the newest). An action goal may bring its own camera instead
(:func:`goal_camera`). Holds messages only: turning them into a renderer's camera is
``conversions.camera_from_msgs``.

Every message is validated once, on arrival (:func:`checked_info`, :func:`checked_pose`), into
a :class:`StampedInfo` / :class:`StampedPose` that carries its stamp as integer nanoseconds. An
invalid one (a negative stamp, ``nanosec`` of a second or more, non-finite intrinsics or pose,
a zero or oversized image, a rotation that is not a unit quaternion) is dropped and counted
(:attr:`LiveCamera.dropped`), never stored: it cannot fail a later query. Stamps are compared
as integers, so a far-future stamp is only far, never a float overflow. Focal lengths are not
checked here (an uncalibrated camera is left out at query time, with a note that says so).
"""
from collections import deque
from dataclasses import dataclass
import math
import threading
from typing import Optional, Tuple

from geometry_msgs.msg import Pose

from refersplat_ros.core.scene.frames import FrameError, MAX_CAMERA_PIXELS, RigidTransform

#: Camera poses kept to pair each CameraInfo with the pose nearest its stamp (1 s at 64 Hz).
CAMERA_POSE_HISTORY = 64
#: Largest camera image side accepted (pixels); the image must also fit ``MAX_CAMERA_PIXELS``.
MAX_CAMERA_SIDE = 16384
_NS_PER_S = 1_000_000_000


class CameraInputError(FrameError):
    """A CameraInfo or camera pose that cannot be used (the reason is the message)."""


def stamp_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` in nanoseconds (an int: no rounding, no overflow)."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def checked_stamp_ns(stamp, what: str) -> int:
    """Return a stamp in nanoseconds; CameraInputError if it is negative or not canonical."""
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec < 0:
        raise CameraInputError(f'{what} has a negative stamp ({sec} s)')
    if not 0 <= nanosec < _NS_PER_S:
        raise CameraInputError(f'{what} stamp has nanosec {nanosec} (not below 1e9)')
    return sec * _NS_PER_S + nanosec


@dataclass(frozen=True)
class StampedInfo:
    """A CameraInfo that passed :func:`checked_info`, with its stamp in nanoseconds."""

    stamp_ns: int
    msg: object   # sensor_msgs/CameraInfo


@dataclass(frozen=True)
class StampedPose:
    """A camera PoseStamped that passed :func:`checked_pose`, with its stamp in nanoseconds."""

    stamp_ns: int
    msg: object   # geometry_msgs/PoseStamped


def checked_info(msg, what: str = 'camera_info') -> StampedInfo:
    """Validate a ``sensor_msgs/CameraInfo``; raise CameraInputError saying what is wrong."""
    stamp = checked_stamp_ns(msg.header.stamp, what)
    width, height = int(msg.width), int(msg.height)
    if not (0 < width <= MAX_CAMERA_SIDE and 0 < height <= MAX_CAMERA_SIDE) or \
            width * height > MAX_CAMERA_PIXELS:
        raise CameraInputError(f'{what} has image size {width}x{height} (each side 1 to '
                               f'{MAX_CAMERA_SIDE}, at most {MAX_CAMERA_PIXELS} pixels)')
    for name in ('k', 'p', 'r', 'd'):
        values = [float(v) for v in getattr(msg, name)]
        if not all(math.isfinite(v) for v in values):
            raise CameraInputError(f'{what}.{name} holds NaN or inf: {values}')
    return StampedInfo(stamp, msg)


def checked_pose(msg, what: str = 'camera pose') -> StampedPose:
    """Validate a camera ``geometry_msgs/PoseStamped``; raise CameraInputError if unusable."""
    stamp = checked_stamp_ns(msg.header.stamp, what)
    t, q = msg.pose.position, msg.pose.orientation
    try:
        RigidTransform.create((t.x, t.y, t.z), (q.x, q.y, q.z, q.w), what)
    except FrameError as exc:
        raise CameraInputError(str(exc)) from None
    return StampedPose(stamp, msg)


class LiveCamera:
    """The newest valid CameraInfo and the recent valid camera poses, fed by two subscriptions.

    Thread-safe: the executor adds messages while the worker thread pairs them. ``add_info`` and
    ``add_pose`` validate each message; an invalid one is counted in :attr:`dropped` and its
    reason returned (the caller logs it), and nothing stored changes.
    """

    def __init__(self, history: int = CAMERA_POSE_HISTORY):
        self._lock = threading.Lock()
        self._info: Optional[StampedInfo] = None
        self._poses = deque(maxlen=history)   # StampedPose, newest last
        #: Set by every new valid message; tracking clears it when it renders.
        self.changed = False
        #: Messages dropped as invalid, over the camera's lifetime.
        self.dropped = 0

    def add_info(self, msg) -> Optional[str]:
        """Keep ``msg`` (a ``sensor_msgs/CameraInfo``) as the camera's intrinsics if valid.

        Returns None when it is kept, else why it was dropped.
        """
        return self._add(msg, checked_info, lambda info: setattr(self, '_info', info))

    def add_pose(self, msg) -> Optional[str]:
        """Add ``msg`` (a ``PoseStamped`` of the optical frame) to the history if valid.

        Returns None when it is kept, else why it was dropped.
        """
        return self._add(msg, checked_pose, self._poses.append)

    def _add(self, msg, check, keep) -> Optional[str]:
        """Validate ``msg`` with ``check``; keep the result under the lock, or count the drop."""
        try:
            checked = check(msg)
        except CameraInputError as exc:
            return self._drop(exc)
        with self._lock:
            keep(checked)
        self.changed = True
        return None

    def _drop(self, exc: CameraInputError) -> str:
        with self._lock:
            self.dropped += 1
        return f'camera input dropped: {exc}'

    def pair(self) -> Tuple[Optional[object], Optional[object]]:
        """Return the newest CameraInfo and the pose nearest its stamp, or (None, None)."""
        with self._lock:
            info, poses = self._info, list(self._poses)
        if info is None or not poses:
            return None, None
        stamp = info.stamp_ns
        if stamp == 0:
            return info.msg, poses[-1].msg
        return info.msg, min(reversed(poses), key=lambda p: abs(p.stamp_ns - stamp)).msg

    def describe(self) -> str:
        """Say what the camera has had, for diagnostics: none, waiting for one, or its size."""
        with self._lock:
            info = self._info.msg if self._info is not None else None
            pose = self._poses[-1] if self._poses else None
        if info is None and pose is None:
            return 'none'
        if info is None or pose is None:
            return 'waiting for ' + ('camera_info' if info is None else 'camera pose')
        return f'{info.width}x{info.height} in {info.header.frame_id or "(no frame)"}'


def goal_camera(info, pose) -> Optional[Tuple[object, object]]:
    """Return an action goal's (camera_info, camera_pose), or None when it gives no camera.

    A goal gives a camera when its ``camera_info`` has a size or intrinsics; its pose must then
    be set too (a default ``PoseStamped`` is not a pose), else ``FrameError`` says so, as it
    does for a negative stamp (the rest is checked by ``conversions.camera_from_msgs``).
    """
    if info is None or not (info.width or info.height or any(info.k) or any(info.p)):
        return None
    unset = pose is None or (not pose.header.frame_id and stamp_ns(pose.header.stamp) == 0
                             and pose.pose == Pose())
    if unset:
        raise FrameError('camera in the goal: camera_info is set but camera_pose is not (give '
                         'both, or neither)')
    checked_stamp_ns(info.header.stamp, 'camera in the goal: camera_info')
    checked_stamp_ns(pose.header.stamp, 'camera in the goal: camera_pose')
    return info, pose
