"""The scene's up from its support plane: robust to cameras that all tilt the same way."""
import math

import numpy as np

from refersplat_ros.core.scene.support import support_up


def _angle(a, b) -> float:
    cos = abs(float(np.dot(a, b))) / float(np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(min(1.0, cos)))


def _counter(rng, up):
    """Return a counter top (plane through 0 with normal ``up``), a wall and clutter."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    a = np.cross(up, [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    top = rng.uniform(-0.5, 0.5, (3000, 1)) * a + rng.uniform(-0.3, 0.3, (3000, 1)) * b
    top += rng.normal(0, 0.002, (3000, 1)) * up
    wall = rng.uniform(-0.5, 0.5, (2500, 1)) * a + rng.uniform(0.0, 0.6, (2500, 1)) * up
    wall += 0.3 * b
    clutter = rng.uniform(-0.5, 0.5, (500, 3))
    return np.concatenate([top, wall, clutter])


def test_support_plane_beats_tilted_cameras():
    rng = np.random.default_rng(0)
    true_up = np.array([0.05, -0.03, 1.0])
    cameras_up = np.array([0.0, -math.sin(math.radians(11)), math.cos(math.radians(11))])
    up, offset, source = support_up(_counter(rng, true_up), cameras_up)
    assert _angle(up, true_up) < 1.0, source
    assert up @ cameras_up > 0 and abs(offset) < 0.01
    assert source.startswith('support plane')


def test_falls_back_to_the_cameras():
    rng = np.random.default_rng(1)
    hint = np.array([0.0, 0.0, 1.0])
    up, offset, source = support_up(rng.uniform(-1, 1, (50, 3)), hint)  # too few points
    assert np.allclose(up, hint) and offset is None and source == 'cameras'
    # only a wall (normal far from the cameras' up): not a support plane
    wall = np.c_[rng.uniform(-1, 1, 2000), np.zeros(2000), rng.uniform(0, 1, 2000)]
    up, _, source = support_up(wall, hint)
    assert source == 'cameras' and np.allclose(up, hint)
    up, _, _ = support_up(np.full((500, 3), np.nan), hint)
    assert np.allclose(up, hint)
