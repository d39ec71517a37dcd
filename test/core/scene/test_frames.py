"""Rigid transforms and cameras from intrinsics + pose: conventions and bad values."""
import numpy as np
import pytest

from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.frames import (camera_from_pose, FrameError, RigidTransform,
                                              rotation_to_quaternion_xyzw)

# 90 degrees about z: x -> y
QZ90 = (0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5))


def test_transform_points_poses_and_inverse():
    tf = RigidTransform.create((1.0, 2.0, 3.0), QZ90)
    np.testing.assert_allclose(tf.apply_points(np.array([[1.0, 0.0, 0.0]])), [[1.0, 3.0, 3.0]],
                               atol=1e-12)
    position, q = tf.apply_pose((1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    np.testing.assert_allclose(position, [1.0, 3.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(q, QZ90, atol=1e-12)
    back = tf.inverse().apply_points(tf.apply_points(np.array([[0.3, -0.2, 0.5]])))
    np.testing.assert_allclose(back, [[0.3, -0.2, 0.5]], atol=1e-12)
    assert tf.apply_points(np.zeros((4, 3), np.float32)).dtype == np.float32
    assert RigidTransform.identity().is_identity and not tf.is_identity
    rot = tf.rotation
    np.testing.assert_allclose(rotation_to_quaternion_xyzw(rot), QZ90, atol=1e-12)


@pytest.mark.parametrize('translation, quaternion, words', [
    ((0, 0, 0), (0, 0, 0, 0), 'not a unit quaternion'),
    ((0, 0, 0), (0, 0, 0.7, 0.7), 'not a unit quaternion'),
    ((0, float('nan'), 0), (0, 0, 0, 1), 'NaN'),
    ((0, 0, 0), (0, 0, float('inf'), 1), 'NaN or inf'),
    ((0, 0), (0, 0, 0, 1), 'must have 3 values'),
])
def test_bad_transforms_say_why(translation, quaternion, words):
    with pytest.raises(FrameError, match=words):
        RigidTransform.create(translation, quaternion)


def test_camera_from_pose_matches_look_at():
    eye, target = (0.4, -0.9, 0.6), (0.0, 0.1, 0.0)
    ref = Camera.look_at(eye, target, width=80, height=60, fx=70.0)
    c2w = ref.camera_to_world.double().numpy()
    pose = RigidTransform.create(c2w[:3, 3] * 2.0, rotation_to_quaternion_xyzw(c2w[:3, :3]))
    camera = camera_from_pose(80, 60, 70.0, 70.0, 40.0, 30.0, pose, metric_scale=2.0)
    np.testing.assert_allclose(camera.world_to_camera.numpy(), ref.world_to_camera.numpy(),
                               atol=1e-5)
    with pytest.raises(FrameError, match='focal lengths must be positive'):
        camera_from_pose(80, 60, 0.0, 0.0, 40.0, 30.0, pose)
    with pytest.raises(FrameError, match='image size'):
        camera_from_pose(0, 60, 70.0, 70.0, 40.0, 30.0, pose)
    with pytest.raises(FrameError, match='NaN'):
        camera_from_pose(80, 60, float('nan'), 70.0, 40.0, 30.0, pose)
