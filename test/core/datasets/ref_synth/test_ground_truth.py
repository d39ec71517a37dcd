"""Ref-Synth ground truth: masks come from compositing, so occlusion shrinks them."""
import numpy as np
import torch

from refersplat_ros.core.datasets.ref_synth.ground_truth import EMPTY_LABEL, render_ground_truth
from refersplat_ros.core.datasets.ref_synth.scene import (build_gaussians, GaussianConfig,
                                                          SceneObject, TableSpec)
from refersplat_ros.core.datasets.ref_synth.shapes import shape_extent
from refersplat_ros.core.scene.cameras import Camera

TABLE = TableSpec(half_x=0.3, half_y=0.3, floor_half=0.5)
CONFIG = GaussianConfig(density=12000.0)


def _objects(with_box, ball_x=0.09):
    ball = SceneObject(1, 'ball', 'red', 'large', ball_x, 0.15, 0.0, 0.0,
                       shape_extent('ball', 1.0), category='red-ball')
    objects = [ball]
    if with_box:
        objects.append(SceneObject(2, 'box', 'blue', 'large', 0.0, -0.05, 0.0, 0.0,
                                   shape_extent('box', 1.0), category='blue-box'))
    return objects


def _render(objects, camera):
    g = build_gaussians(np.random.default_rng(0), objects, TABLE, CONFIG)
    t = torch.from_numpy
    return render_ground_truth(t(g.means), t(g.quats), t(g.scales), t(g.opacities),
                               t(g.colors), t(g.object_ids), 2, camera,
                               background_rgb=(1.0, 1.0, 1.0), backend='cpu')


def test_occluded_object_mask_shrinks_and_hidden_object_is_empty():
    # A low camera in front of the table (at -y) sees the ball behind the box.
    low = Camera.look_at((0.0, -0.8, 0.06), (0.0, 0.15, 0.05), width=64, height=48,
                         fov_y_deg=40.0)
    _, alone = _render(_objects(False), low)
    _, hidden = _render(_objects(True), low)
    ball_alone = int((alone == 1).sum())
    ball_hidden = int((hidden == 1).sum())
    assert ball_alone > 30
    assert 0 < ball_hidden < 0.5 * ball_alone  # partly hidden behind the box
    assert int((hidden == 2).sum()) > ball_alone
    # Pixels the ball keeps were ball pixels without the box too (no leaking).
    assert bool(((hidden == 1) <= (alone == 1)).all())
    # Straight behind the box the ball is invisible: an empty mask.
    _, behind = _render(_objects(True, ball_x=0.0), low)
    assert int((behind == 1).sum()) == 0
    # From above nothing occludes the ball: same mask size with or without the box.
    top = Camera.look_at((0.0, 0.15, 1.2), (0.0, 0.15, 0.0), up=(0.0, 1.0, 0.0), width=64,
                         height=48, fov_y_deg=40.0)
    _, a = _render(_objects(False), top)
    _, b = _render(_objects(True), top)
    assert abs(int((a == 1).sum()) - int((b == 1).sum())) <= 2
    # Looking away from the scene: every mask is empty.
    away = Camera.look_at((0.0, -0.8, 0.3), (0.0, -2.0, 0.3), width=64, height=48)
    rgb, labels = _render(_objects(True), away)
    assert int((labels == 1).sum()) == 0 and int((labels == 2).sum()) == 0
    assert bool((labels == EMPTY_LABEL).all())
    torch.testing.assert_close(rgb, torch.ones_like(rgb))


def test_labels_partition_the_image_and_rgb_matches_colours():
    cam = Camera.look_at((0.0, -0.6, 0.5), (0.0, 0.05, 0.05), width=64, height=48)
    rgb, labels = _render(_objects(True), cam)
    assert rgb.shape == (3, 48, 64) and labels.shape == (48, 64)
    assert set(torch.unique(labels).tolist()) <= {EMPTY_LABEL, 0, 1, 2}
    red = rgb[:, labels == 1].mean(1)
    blue = rgb[:, labels == 2].mean(1)
    assert red[0] > 0.5 > red[2] and blue[2] > 0.5 > blue[0]
