"""The target's mask and depth in an arbitrary camera: ground truth, occlusion, out of view."""
import numpy as np
import pytest
import torch

from refersplat_ros.core.datasets.ref_synth.ground_truth import render_ground_truth
from refersplat_ros.core.datasets.ref_synth.scene import (build_gaussians, GaussianConfig,
                                                          SceneObject, TableSpec)
from refersplat_ros.core.datasets.ref_synth.shapes import shape_extent
from refersplat_ros.core.inference.target_view import render_target
from refersplat_ros.core.scene.cameras import Camera

TABLE = TableSpec(half_x=0.3, half_y=0.3, floor_half=0.5)


@pytest.fixture(scope='module')
def scene():
    ball = SceneObject(1, 'ball', 'red', 'large', 0.0, 0.15, 0.0, 0.0,
                       shape_extent('ball', 1.0), category='red-ball')
    box = SceneObject(2, 'box', 'blue', 'large', 0.0, -0.05, 0.0, 0.0,
                      shape_extent('box', 1.0), category='blue-box')
    mug = SceneObject(3, 'mug', 'green', 'large', 0.2, 0.1, 0.0, 0.0,
                      shape_extent('mug', 1.0), category='green-mug')
    g = build_gaussians(np.random.default_rng(0), [ball, box, mug], TABLE,
                        GaussianConfig(density=12000.0))
    return g, g.to_scene()


def _truth(g, camera, object_id):
    t = torch.from_numpy
    _, labels = render_ground_truth(t(g.means), t(g.quats), t(g.scales), t(g.opacities),
                                    t(g.colors), t(g.object_ids), 3, camera, backend='cpu')
    return labels.numpy() == object_id


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_mask_matches_ground_truth_and_the_full_render(scene):
    g, gs = scene
    camera = Camera.look_at((0.5, -0.6, 0.5), (0.1, 0.05, 0.05), width=160, height=120,
                            fov_y_deg=50.0)
    for object_id in (1, 2, 3):
        indices = np.flatnonzero(g.object_ids == object_id)
        view = render_target(gs, indices, camera, backend='cpu')
        truth = _truth(g, camera, object_id)
        assert truth.sum() > 50
        assert _iou(view.mask > 0, truth) >= 0.9, object_id
        # the window render equals rendering the whole image with every Gaussian
        full = render_target(gs, indices, camera, backend='cpu', full_image=True)
        assert _iou(view.mask > 0, full.mask > 0) >= 0.999
        np.testing.assert_allclose(view.depth, full.depth, rtol=1e-4, equal_nan=True)
        assert view.gaussians < len(g.means)
        # depth: along the optical axis, metres = scene units x metric scale
        mean_z = (gs.means[indices] @ camera.world_to_camera[:3, :3].T
                  + camera.world_to_camera[:3, 3])[:, 2].mean().item()
        seen = view.depth[view.mask > 0]
        assert np.isfinite(seen).all() and np.isnan(view.depth[view.mask == 0]).all()
        assert abs(float(np.median(seen)) - mean_z) < 0.1
        doubled = render_target(gs, indices, camera, metric_scale=2.0, backend='cpu')
        np.testing.assert_allclose(doubled.depth, 2.0 * view.depth, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize('offset, degrees, depth',
                         [(0.2, 60, 0.8), (0.25, 45, 1.0), (0.25, 60, 0.8), (0.3, 30, 0.6)])
def test_large_tilted_occluder_off_the_window_hides_the_target_as_in_the_full_render(
        offset, degrees, depth):
    # A small target straight ahead and one big flat Gaussian, tilted and off to the side: its
    # centre projects outside the target's window but its footprint covers the target.
    from refersplat_ros.core.scene.gaussians import GaussianScene
    rng = np.random.default_rng(4)
    half = np.radians(degrees) / 2
    means = np.concatenate([rng.normal((0.0, 0.0, 1.5), 0.02, (200, 3)), [(offset, 0, depth)]])
    scales = np.concatenate([np.full((200, 3), 0.01), [(0.3, 0.1, 0.002)]])
    quats = np.concatenate([np.tile((1.0, 0.0, 0.0, 0.0), (200, 1)),
                            [(np.cos(half), 0.0, np.sin(half), 0.0)]])
    opacity = np.concatenate([np.full(200, 0.9), [0.95]])
    scene = GaussianScene.from_colors(torch.tensor(means).float(), torch.full((201, 3), 0.5),
                                      torch.tensor(scales).float(), torch.tensor(opacity).float(),
                                      torch.tensor(quats).float())
    camera = Camera.look_at((0.0, 0.0, 0.0), (0.0, 0.0, 1.5), up=(0.0, -1.0, 0.0), width=640,
                            height=480, fov_y_deg=60.0)
    window = render_target(scene, np.arange(200), camera, backend='cpu')
    full = render_target(scene, np.arange(200), camera, backend='cpu', full_image=True)
    alone = render_target(scene.subset(torch.arange(200)), np.arange(200), camera, backend='cpu')
    x0, y0, x1, y1 = window.window
    assert (x1 - x0) * (y1 - y0) < 0.05 * 640 * 480
    assert full.pixels < 0.7 * alone.pixels  # the occluder hides (part of) the target
    np.testing.assert_array_equal(window.mask, full.mask)
    np.testing.assert_allclose(window.depth, full.depth, rtol=1e-5, equal_nan=True)


def test_occluded_target_shows_only_what_the_camera_sees(scene):
    g, gs = scene
    ball = np.flatnonzero(g.object_ids == 1)
    # low, in front of the table: the ball stands straight behind the box
    low = Camera.look_at((0.0, -0.8, 0.06), (0.0, 0.15, 0.05), width=64, height=48,
                         fov_y_deg=40.0)
    hidden = render_target(gs, ball, low, backend='cpu')
    assert hidden.pixels <= 0.1 * (_truth(g, low, 2).sum())
    assert _iou(hidden.mask > 0, _truth(g, low, 1)) >= 0.9 or hidden.pixels == 0
    if hidden.pixels == 0:
        assert 'hidden' in hidden.reason
    # from above nothing hides it
    top = Camera.look_at((0.0, 0.15, 1.2), (0.0, 0.15, 0.0), up=(0.0, 1.0, 0.0), width=64,
                         height=48, fov_y_deg=40.0)
    seen = render_target(gs, ball, top, backend='cpu')
    assert seen.pixels > 30 and _iou(seen.mask > 0, _truth(g, top, 1)) >= 0.9


def test_target_out_of_view_has_a_reason(scene):
    g, gs = scene
    ball = np.flatnonzero(g.object_ids == 1)
    away = Camera.look_at((0.0, -0.8, 0.3), (0.0, -2.0, 0.3), width=64, height=48)
    view = render_target(gs, ball, away, backend='cpu')
    assert view.pixels == 0 and 'behind the camera' in view.reason
    aside = Camera.look_at((0.0, -0.8, 0.3), (3.0, -0.8, 0.3), width=64, height=48)
    view = render_target(gs, ball, aside, backend='cpu')
    assert view.pixels == 0 and 'outside the camera image' in view.reason
    assert render_target(gs, [], away).reason == 'the target has no Gaussians'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (gsplat)')
def test_gsplat_window_render_matches_cpu(scene):
    g, gs = scene
    camera = Camera.look_at((0.5, -0.6, 0.5), (0.1, 0.05, 0.05), width=160, height=120)
    indices = np.flatnonzero(g.object_ids == 3)
    cpu = render_target(gs, indices, camera, backend='cpu')
    gpu = render_target(gs.to('cuda'), indices, camera, backend='gsplat')
    assert _iou(cpu.mask > 0, gpu.mask > 0) >= 0.97


def test_a_render_over_budget_is_rendered_at_a_lower_resolution_and_upsampled(scene):
    from refersplat_ros.core.render.budget import RenderBudget
    g, gs = scene
    camera = Camera.look_at((0.5, -0.6, 0.5), (0.1, 0.05, 0.05), width=320, height=240,
                            fov_y_deg=50.0)
    indices = np.flatnonzero(g.object_ids == 2)
    full = render_target(gs, indices, camera, backend='cpu')
    assert full.scale == 1.0 and full.note == ''
    window = (full.window[2] - full.window[0]) * (full.window[3] - full.window[1])
    # pixel budget: a quarter of the window -> half the resolution
    low = render_target(gs, indices, camera, backend='cpu',
                        budget=RenderBudget(max_pixels=window // 4))
    assert low.scale == pytest.approx(0.5, abs=0.01)
    assert 'rendered at 0.50 of the camera resolution' in low.note
    assert low.mask.shape == (240, 320) and low.depth.shape == (240, 320)
    assert _iou(low.mask > 0, full.mask > 0) >= 0.85
    both = (low.mask > 0) & (full.mask > 0)
    assert np.nanmedian(np.abs(low.depth[both] - full.depth[both])) < 0.01
    assert np.isnan(low.depth[low.mask == 0]).all()
    # work budget: fewer candidates than the window's footprints -> a lower resolution too
    cheap = render_target(gs, indices, camera, backend='cpu',
                          budget=RenderBudget(max_candidates=full.gaussians * 80))
    assert 0.3 < cheap.scale < 1.0 and cheap.mask.shape == (240, 320)
    assert _iou(cheap.mask > 0, full.mask > 0) >= 0.6


def test_a_close_or_huge_camera_costs_a_bounded_render(scene):
    """A camera 3 cm from the target and an 8192 x 8192 one stay within the default budget."""
    from refersplat_ros.core.render.budget import RenderBudget
    g, gs = scene
    indices = np.flatnonzero(g.object_ids == 1)
    centre = gs.means[torch.as_tensor(indices)].mean(0)
    close = Camera.look_at((centre + torch.tensor([0.0, -0.03, 0.0])).tolist(), centre.tolist(),
                           width=640, height=480, fov_y_deg=60.0)
    view = render_target(gs, indices, close, backend='cpu')
    budget = RenderBudget()
    x0, y0, x1, y1 = view.window
    assert view.scale < 1.0 and view.visible
    assert (x1 - x0) * (y1 - y0) * view.scale ** 2 <= budget.max_pixels
    huge = Camera.look_at((0.5, -0.6, 0.5), (0.1, 0.05, 0.05), width=8192, height=8192,
                          fov_y_deg=50.0)
    view = render_target(gs, indices, huge, backend='cpu')
    x0, y0, x1, y1 = view.window
    assert view.mask.shape == (8192, 8192) and view.visible
    assert (x1 - x0) * (y1 - y0) * view.scale ** 2 <= budget.max_pixels * 1.01


def test_a_check_that_raises_stops_the_render(scene):
    g, gs = scene
    camera = Camera.look_at((0.5, -0.6, 0.5), (0.1, 0.05, 0.05), width=160, height=120,
                            fov_y_deg=50.0)
    calls = []

    def check():
        calls.append(1)
        raise TimeoutError('over budget')

    with pytest.raises(TimeoutError):
        render_target(gs, np.flatnonzero(g.object_ids == 1), camera, backend='cpu', check=check)
    assert calls == [1]
