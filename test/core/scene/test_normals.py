"""Surface normals of Gaussians: shortest axes, their orientation, degenerate rows."""
import math

import numpy as np
import pytest
import torch

from refersplat_ros.core.datasets.ref_synth import scene as synth_scene
from refersplat_ros.core.datasets.ref_synth.generator import generate_scene, preset_config
from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.scene.normals import (gaussian_normals, oriented_normals,
                                               rotation_columns, shortest_axes)


def _axis_angle(axis, angle):  # -> (w, x, y, z)
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def test_known_rotations_and_scales_give_known_axes():
    quats = np.stack([
        [1.0, 0.0, 0.0, 0.0],                     # identity, z shortest
        2.5 * np.array([1.0, 0.0, 0.0, 0.0]),     # unnormalised identity, x shortest
        _axis_angle([1, 0, 0], math.pi / 2),      # z -> -y
        _axis_angle([0, 0, 1], math.pi / 2),      # x -> y, y shortest -> -x
    ])
    scales = np.array([[0.1, 0.1, 0.01], [0.01, 0.2, 0.3], [0.1, 0.1, 0.01], [0.1, 0.01, 0.1]])
    expected = [[0, 0, 1], [1, 0, 0], [0, -1, 0], [-1, 0, 0]]
    axes = shortest_axes(quats, scales)
    assert axes.dtype == np.float32 and axes.shape == (4, 3)
    np.testing.assert_allclose(axes, expected, atol=1e-6)
    # Log-scales pick the same axis; torch tensors are accepted.
    np.testing.assert_allclose(shortest_axes(torch.tensor(quats), torch.tensor(scales).log()),
                               expected, atol=1e-6)


def test_random_rotations_are_orthonormal_and_the_axis_is_a_column():
    rng = np.random.default_rng(0)
    quats, scales = rng.normal(size=(500, 4)), rng.random((500, 3))
    rot = rotation_columns(quats)
    np.testing.assert_allclose(np.einsum('nij,nik->njk', rot, rot), np.broadcast_to(
        np.eye(3), rot.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    axes = shortest_axes(quats, scales)
    np.testing.assert_allclose(axes, rot[np.arange(500), :, scales.argmin(1)], atol=1e-6)


def test_degenerate_rows_get_a_zero_normal():
    quats = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [np.nan, 1, 0, 0], [1, 0, 0, 0],
                      [1, 0, 0, 0], [np.inf, 0, 0, 0]], np.float32)
    scales = np.array([[1, 1, 0.1], [1, 1, 0.1], [1, 1, 0.1], [np.nan, 1, 0.1],
                       [1, -np.inf, 0.1], [1, 1, 0.1]], np.float32)
    with np.errstate(all='raise'):  # no warnings either
        axes = shortest_axes(quats, scales)
    np.testing.assert_array_equal(axes[1:], 0.0)
    np.testing.assert_allclose(axes[0], [0, 0, 1])
    means = np.zeros((6, 3))
    means[0] = np.nan  # a broken centre: zero normal as well
    normals = oriented_normals(np.ones((6, 3)), means, viewpoints=[[0, 0, 5]])
    np.testing.assert_array_equal(normals[0], 0.0)
    assert np.isfinite(normals).all()


def test_orientation_follows_the_view_direction_then_the_fallback():
    axes = np.array([[0, 0, 1], [0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 0, 0]], np.float32)
    means = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [2, 0, 0], [0, 0, 0]], np.float32)
    view = np.array([[0, 0.3, -1], [0, 1, 0.1], [0, 0, 0], [0, 0, 0], [0, 0, 1]], np.float32)
    cameras = np.array([[0, 0, 5], [-5, 0, 0]], np.float32)
    normals = oriented_normals(axes, means, view, cameras)
    # n.d >= 0 where d is known; the nearest camera for d = 0 (rows 2, 3); zero stays zero.
    np.testing.assert_array_equal(normals, [[0, 0, -1], [0, 0, 1], [0, 0, 1], [-1, 0, 0],
                                            [0, 0, 0]])
    # Without view directions every row takes the fallback; without cameras, away from the
    # centroid of the centres.
    np.testing.assert_array_equal(oriented_normals(axes[:2], means[:2], viewpoints=cameras),
                                  [[0, 0, 1], [0, 0, 1]])
    sphere = np.array([[0, 0, 1], [0, 0, -1], [1, 0, 0]], np.float32)
    np.testing.assert_array_equal(oriented_normals(-sphere, sphere), sphere)
    with pytest.raises(ValueError, match='view_direction has 2 rows'):
        oriented_normals(axes, means, view[:2])


def test_ref_synth_surfels_give_back_the_generator_normals(monkeypatch):
    recorded = []
    original = synth_scene.quats_from_normals

    def record(normals):
        recorded.append(np.asarray(normals, np.float64))
        return original(normals)

    monkeypatch.setattr(synth_scene, 'quats_from_normals', record)
    scene = generate_scene(preset_config('tiny', seed=0))
    true = np.concatenate(recorded)
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    g = scene.gaussians
    assert true.shape == g.means.shape
    axes = shortest_axes(g.quats, g.scales)
    np.testing.assert_allclose(np.abs((axes * true).sum(1)), 1.0, atol=1e-5)  # up to sign
    # Oriented by the training views (all above the table), the objects' surfaces facing up
    # point out of the objects; the undersides, which the views only see through the objects,
    # come out flipped (docs/RESULTS.md#normals). The nearest-camera fallback does worse.
    train = [c for i, c in enumerate(scene.cameras) if i not in scene.test_indices]
    direction = ViewWeights(g.to_scene(), torch.device('cpu'), 1 << 28).view_directions(train)
    normals = gaussian_normals(g.quats, g.scales, g.means, direction)
    agree = (normals * true).sum(1) > 0
    up = (g.object_ids > 0) & (true[:, 2] > 0.2)
    assert up.sum() > 100 and agree[up].all()
    cameras = torch.stack([c.center for c in train])
    fallback = (gaussian_normals(g.quats, g.scales, g.means, viewpoints=cameras) * true).sum(1)
    objects = g.object_ids > 0
    assert agree[objects].mean() > (fallback[objects] > 0).mean() + 0.03


def test_surface_variation_is_pcl_curvature_of_the_gaussian():
    from refersplat_ros.core.scene.normals import surface_variation
    scales = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.1, 1.0, 1.0], [np.nan, 1, 1]])
    out = surface_variation(scales)
    np.testing.assert_allclose(out[:3], [0.0, 1.0 / 3.0, 0.01 / 2.01], rtol=1e-6)
    assert np.isnan(out[3])
