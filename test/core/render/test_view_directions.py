"""ViewWeights.view_directions: compositing-weighted unit vectors towards the seeing cameras."""
import torch

from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussians import GaussianScene


def test_a_gaussian_seen_by_one_camera_points_to_it():
    # Gaussian 0 only in camera A's narrow view, 1 only in B's, 2 in neither.
    means = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    scene = GaussianScene.from_colors(means, torch.full((3, 3), 0.5), 0.05, 0.9)
    a = Camera.look_at((0.0, -3.0, 1.0), (0.0, 0.0, 0.0), width=32, height=24, fov_y_deg=20.0)
    b = Camera.look_at((10.0, 3.0, -1.0), (10.0, 0.0, 0.0), width=32, height=24,
                       fov_y_deg=20.0)
    weights = ViewWeights(scene, torch.device('cpu'), 1 << 26)
    visibility, directions = weights.visibility_and_directions([a, b])
    assert directions.shape == (3, 3) and directions.dtype == torch.float32
    torch.testing.assert_close(visibility, weights.visibility([a, b]))
    torch.testing.assert_close(directions, weights.view_directions([a, b]))
    assert float(visibility[0]) > 0 and float(visibility[1]) > 0
    for index, camera in ((0, a), (1, b)):
        to_camera = camera.center - means[index]
        expected = visibility[index] * to_camera / to_camera.norm()
        torch.testing.assert_close(directions[index], expected, rtol=1e-5, atol=1e-6)
    assert float(visibility[2]) == 0.0 and not bool(directions[2].any())
    assert len(weights.cache) == 2  # built once per view, shared by both quantities
