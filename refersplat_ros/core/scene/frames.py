"""Rigid transforms between frames, and cameras given by intrinsics + a pose (docs/ROBOT.md).

Conventions (those of ROS, REP 103 / REP 105):

- A pose of frame B in frame A is the transform that maps B's coordinates into A's:
  ``p_A = R(q) p_B + t``, quaternion (x, y, z, w).
- A camera's pose is that of its *optical* frame (x right, y down, z forward, OpenCV; the
  ``*_optical_frame`` of a ROS camera driver) in the scene frame, in metres.
- The scene frame in metres is the scene's own coordinates times ``metric_scale``.

Every input is checked: a non-finite value, a quaternion whose norm is not 1 (within
``QUATERNION_TOLERANCE``), a zero or negative focal length or image size is a ``FrameError``
that says which value is wrong.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from refersplat_ros.core.errors import ReferSplatError
from refersplat_ros.core.scene.cameras import Camera

#: Largest camera image a pose may come with (a bigger one is an error, not an allocation).
MAX_CAMERA_PIXELS = 8192 * 8192
#: |‖q‖ - 1| above this is an error (a quaternion that was meant to be unit, e.g. 0,0,0,0 or a
#: rotation typed as Euler angles); below, q is normalised.
QUATERNION_TOLERANCE = 1e-3


class FrameError(ReferSplatError, ValueError):
    """A transform, pose or camera given by the user is not valid (NaN, non-unit quaternion...)."""


def _finite(values, what: str, size: int) -> np.ndarray:
    array = np.asarray(values, np.float64).reshape(-1)
    if array.shape[0] != size:
        raise FrameError(f'{what} must have {size} values, got {array.shape[0]}')
    if not np.all(np.isfinite(array)):
        raise FrameError(f'{what} holds NaN or inf: {array.tolist()}')
    return array


def unit_quaternion(quaternion_xyzw: Sequence[float], what: str = 'quaternion') -> np.ndarray:
    """Return the quaternion (x, y, z, w) normalised; FrameError if it is not about unit."""
    q = _finite(quaternion_xyzw, what, 4)
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise FrameError(f'{what} (x, y, z, w) = {q.tolist()} is not a unit quaternion '
                         f'(norm {norm:.6g}); the identity rotation is (0, 0, 0, 1)')
    return q / norm


def quaternion_to_matrix(quaternion_xyzw: Sequence[float]) -> np.ndarray:  # [3, 3]
    """Rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(quaternion_xyzw, np.float64)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rotation_to_quaternion_xyzw(rotation: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (x, y, z, w), w >= 0, of a proper rotation matrix [3, 3]."""
    m = np.asarray(rotation, np.float64)
    trace = np.trace(m)
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[3] >= 0 else -q


@dataclass(frozen=True)
class RigidTransform:
    """``p_out = R p_in + t``: the pose of the input frame in the output frame.

    Build it with :meth:`create` (checks the values); ``identity()`` changes nothing.
    """

    translation: np.ndarray      # [3]
    quaternion_xyzw: np.ndarray  # [4], unit

    @classmethod
    def create(cls, translation: Sequence[float], quaternion_xyzw: Sequence[float],
               what: str = 'transform') -> 'RigidTransform':
        return cls(_finite(translation, f'{what} translation', 3),
                   unit_quaternion(quaternion_xyzw, f'{what} rotation'))

    @classmethod
    def identity(cls) -> 'RigidTransform':
        return cls(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @property
    def rotation(self) -> np.ndarray:  # [3, 3]
        return quaternion_to_matrix(self.quaternion_xyzw)

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self.translation == 0.0)
                    and abs(abs(float(self.quaternion_xyzw[3])) - 1.0) < 1e-12)

    def matrix(self) -> np.ndarray:  # [4, 4]
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = self.rotation, self.translation
        return out

    def inverse(self) -> 'RigidTransform':
        rot_t = self.rotation.T
        q = self.quaternion_xyzw * np.array([-1.0, -1.0, -1.0, 1.0])
        return RigidTransform(-rot_t @ self.translation, q)

    def apply_points(self, points: np.ndarray) -> np.ndarray:  # [M, 3] -> [M, 3]
        """Map points (keeps float32 input float32)."""
        pts = np.asarray(points)
        if self.is_identity or len(pts) == 0:
            return pts
        out = pts.astype(np.float64) @ self.rotation.T + self.translation
        return out.astype(pts.dtype if pts.dtype in (np.float32, np.float64) else np.float64)

    def apply_pose(self, position: Sequence[float],
                   quaternion_xyzw: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
        """Map a pose (position, orientation) given in the input frame."""
        if self.is_identity:
            return np.asarray(position, np.float64), np.asarray(quaternion_xyzw, np.float64)
        rot = self.rotation @ quaternion_to_matrix(quaternion_xyzw)
        return (self.rotation @ np.asarray(position, np.float64) + self.translation,
                rotation_to_quaternion_xyzw(rot))


def camera_from_pose(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                     pose_in_scene: RigidTransform, metric_scale: float = 1.0,
                     name: str = '') -> Camera:
    """Build the renderer's camera from intrinsics (pixels) and its optical frame's pose.

    ``pose_in_scene`` is in metres (the scene frame scaled by ``metric_scale``); the camera is
    returned in scene units. Raises FrameError with the reason on a bad value.
    """
    intrinsics = _finite([fx, fy, cx, cy], 'camera intrinsics (fx, fy, cx, cy)', 4)
    if int(width) <= 0 or int(height) <= 0:
        raise FrameError(f'camera image size must be positive, got {width}x{height}')
    if int(width) * int(height) > MAX_CAMERA_PIXELS:
        raise FrameError(f'camera image {width}x{height} is larger than {MAX_CAMERA_PIXELS} '
                         'pixels')
    if intrinsics[0] <= 0 or intrinsics[1] <= 0:
        raise FrameError(f'camera focal lengths must be positive, got fx={fx}, fy={fy} '
                         '(camera_info.k is all zeros: is the camera calibrated?)')
    if not (metric_scale > 0 and np.isfinite(metric_scale)):
        raise FrameError(f'metric_scale must be positive, got {metric_scale}')
    rot = pose_in_scene.rotation                    # camera -> scene
    center = pose_in_scene.translation / metric_scale
    world_to_camera = np.eye(4)
    world_to_camera[:3, :3] = rot.T
    world_to_camera[:3, 3] = -rot.T @ center
    return Camera(int(width), int(height), *intrinsics.tolist(),
                  world_to_camera.astype(np.float32), name)
