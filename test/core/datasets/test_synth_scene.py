"""Ref-Synth geometry: shapes, layouts, Gaussians, determinism by seed."""
import math

import numpy as np
import pytest

from refersplat_ros.core.datasets import shapes
from refersplat_ros.core.datasets.ref_synth import generate_scene, preset_config
from refersplat_ros.core.datasets.synth_scene import (build_gaussians, LayoutConfig, PALETTE,
                                                      quats_from_normals, sample_layout, TableSpec)


def _rotate(q, v):
    w, x, y, z = q
    u = np.array([x, y, z])
    return v + 2 * np.cross(u, np.cross(u, v) + w * v)


def test_sphere_samples_lie_on_sphere_with_outward_normals():
    rng = np.random.default_rng(0)
    s = shapes.sphere_zone(rng, 20000.0, 0.05, 0.05, 0.0, 0.1)
    assert len(s) == round(4 * math.pi * 0.05 ** 2 * 20000)
    r = np.linalg.norm(s.points - [0, 0, 0.05], axis=1)
    np.testing.assert_allclose(r, 0.05, atol=1e-12)
    np.testing.assert_allclose(s.normals, (s.points - [0, 0, 0.05]) / 0.05, atol=1e-12)


def test_frustum_samples_are_on_the_cone_and_area_uniform():
    rng = np.random.default_rng(1)
    s = shapes.frustum_side(rng, 2e5, 0.05, 0.0, 0.0, 0.1)
    radius = np.linalg.norm(s.points[:, :2], axis=1)
    np.testing.assert_allclose(radius, 0.05 * (1 - s.points[:, 2] / 0.1), atol=1e-12)
    # Uniform by area: the lower half (in height) holds 3/4 of the lateral area.
    assert abs((s.points[:, 2] < 0.05).mean() - 0.75) < 0.02
    assert np.allclose(np.linalg.norm(s.normals, axis=1), 1.0)


@pytest.mark.parametrize('shape', shapes.SHAPES)
def test_every_shape_scales_and_rests_on_its_base(shape):
    rng = np.random.default_rng(2)
    big, ext_big = shapes.sample_shape(shape, rng, 30000.0, 1.0)
    small, ext_small = shapes.sample_shape(shape, rng, 30000.0, 0.7)
    assert big.points[:, 2].min() >= -1e-9
    assert big.points[:, 2].max() <= ext_big.height + 1e-9
    assert ext_small.height == pytest.approx(0.7 * ext_big.height)
    # Points scale with the size, so the count scales with the area (0.49).
    assert len(small) == pytest.approx(0.49 * len(big), rel=0.05)


def test_quats_from_normals_rotate_z_onto_the_normal():
    rng = np.random.default_rng(3)
    n = rng.normal(size=(50, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n = np.concatenate([n, [[0, 0, 1.0], [0, 0, -1.0]]])
    q = quats_from_normals(n)
    for qi, ni in zip(q, n):
        np.testing.assert_allclose(_rotate(qi, np.array([0, 0, 1.0])), ni, atol=1e-9)


@pytest.mark.parametrize('seed', range(6))
def test_layout_fits_the_table_without_overlap_and_has_distractors(seed):
    rng = np.random.default_rng(seed)
    table = TableSpec()
    objects = sample_layout(rng, LayoutConfig(num_objects=7, table=table))
    assert [o.id for o in objects] == list(range(1, 8))
    cats = [o.category for o in objects]
    assert len(set(cats)) == len(cats) and not any('_' in c for c in cats)
    on_table = [o for o in objects if not o.support]
    for o in on_table:
        assert abs(o.x) + o.radius <= table.half_x and abs(o.y) + o.radius <= table.half_y
    for a in on_table:
        for b in on_table:
            if a.id < b.id:
                assert math.hypot(a.x - b.x, a.y - b.y) >= a.radius + b.radius
    by_shape = {}
    for o in objects:
        by_shape.setdefault(o.shape, []).append(o)
        assert o.colour in PALETTE and o.size in ('small', 'large')
    assert sorted(len(v) for v in by_shape.values())[-2:] == [2, 3]
    for o in objects:
        if o.support:
            base = next(b for b in objects if b.id == o.support)
            assert base.shape == 'box' and o.base_z == pytest.approx(base.top_z)


def test_gaussians_have_ids_and_follow_density():
    rng = np.random.default_rng(4)
    objects = sample_layout(rng, LayoutConfig(num_objects=6))
    g = build_gaussians(np.random.default_rng(5), objects, TableSpec())
    counts = np.bincount(g.object_ids, minlength=7)
    assert counts.shape == (7,) and (counts > 0).all()
    assert g.means.shape == (len(g), 3) and g.quats.shape == (len(g), 4)
    np.testing.assert_allclose(np.linalg.norm(g.quats, axis=1), 1.0, atol=1e-5)
    assert (g.colors >= 0).all() and (g.colors <= 1).all()
    for obj in objects:  # each object's Gaussians stay inside its bounding cylinder
        pts = g.means[g.object_ids == obj.id]
        r = np.hypot(pts[:, 0] - obj.x, pts[:, 1] - obj.y)
        assert r.max() <= obj.radius + 1e-4
        assert pts[:, 2].min() >= obj.base_z - 1e-4 and pts[:, 2].max() <= obj.top_z + 1e-4
    from refersplat_ros.core.datasets.synth_scene import GaussianConfig
    denser = build_gaussians(np.random.default_rng(5), objects, TableSpec(),
                             GaussianConfig(density=28000.0))
    assert len(denser) == pytest.approx(2 * len(g), rel=0.02)


def test_generation_is_deterministic_by_seed():
    a = generate_scene(preset_config('tiny', seed=11))
    b = generate_scene(preset_config('tiny', seed=11))
    c = generate_scene(preset_config('tiny', seed=12))
    assert [o.to_dict() for o in a.objects] == [o.to_dict() for o in b.objects]
    assert [e.to_dict() for e in a.expressions] == [e.to_dict() for e in b.expressions]
    np.testing.assert_array_equal(a.gaussians.means, b.gaussians.means)
    np.testing.assert_array_equal(a.gaussians.object_ids, b.gaussians.object_ids)
    for ca, cb in zip(a.cameras, b.cameras):
        assert (ca.world_to_camera == cb.world_to_camera).all()
    assert a.test_indices == b.test_indices
    assert [o.to_dict() for o in a.objects] != [o.to_dict() for o in c.objects]


def test_presets_sizes():
    tiny = generate_scene(preset_config('tiny'))
    assert len(tiny.gaussians) <= 5000
    assert (tiny.cameras[0].width, tiny.cameras[0].height) == (64, 48)
    default = preset_config('default')
    assert 6 <= default.layout.num_objects <= 8 and default.cameras.num_views >= 24
    scene = generate_scene(default)  # no rendering: cheap
    assert 20000 <= len(scene.gaussians) <= 60000
    assert any(o.support for o in scene.objects)  # the default scene shows a stack
    custom = preset_config('tiny', num_objects=5, num_views=8, width=80, height=60)
    assert custom.layout.num_objects == 5 and custom.cameras.num_views == 8
    assert (custom.cameras.width, custom.cameras.height) == (80, 60)
    with pytest.raises(ValueError, match='unknown Ref-Synth preset'):
        preset_config('huge')
