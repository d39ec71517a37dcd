"""Ref-Synth geometry: shapes, layouts, Gaussians, determinism by seed."""
import math

import numpy as np
import pytest

from refersplat_ros.core.datasets.ref_synth import shapes
from refersplat_ros.core.datasets.ref_synth.generator import generate_scene, preset_config
from refersplat_ros.core.datasets.ref_synth.relations import on_top_of
from refersplat_ros.core.datasets.ref_synth.scene import (build_gaussians, ClutterSpec, identical,
                                                          LayoutConfig, object_facts, PALETTE,
                                                          quats_from_normals, sample_layout,
                                                          size_class, TableSpec)


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


@pytest.mark.parametrize('shape', shapes.ALL_SHAPES)
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


def test_shelf_is_long_and_open_at_the_front():
    pts, ext = shapes.sample_shape('shelf', np.random.default_rng(0), 20000.0, 1.0)
    assert (ext.half_x, ext.half_y) == pytest.approx((0.42, 0.07)) and not ext.round_footprint
    assert ext.half_x >= 5 * shapes.shape_extent('ball', 0.7).radius
    assert np.abs(pts.points[:, 0]).max() <= ext.half_x + 1e-9
    assert np.abs(pts.points[:, 1]).max() <= ext.half_y + 1e-9
    # Below the top board the front half holds only the two end panels: open at the front.
    below = pts.points[:, 2] < ext.height - 0.02 - 1e-9
    front = below & (pts.points[:, 1] < 0.0)
    assert front.any() and (np.abs(pts.points[front, 0]) >= ext.half_x - 0.02 - 1e-9).all()
    assert (below & (pts.points[:, 1] > 0.0) & (np.abs(pts.points[:, 0]) < 0.3)).any()  # back


@pytest.mark.parametrize('seed', range(6))
def test_clutter_layout(seed):
    table = TableSpec(half_x=0.6, half_y=0.4)
    config = LayoutConfig(num_objects=14, table=table, clutter=ClutterSpec())
    objects = sample_layout(np.random.default_rng(seed), config)
    by_id = {o.id: o for o in objects}
    assert [o.id for o in objects] == list(range(1, 15))
    cats = [o.category for o in objects]
    assert len(set(cats)) == len(cats) and not any('_' in c for c in cats)
    shelf = [o for o in objects if o.shape == 'shelf']
    assert len(shelf) == 1 and shelf[0].elongated and size_class(shelf[0]) == 'large'
    x0, x1, y0, y1 = shelf[0].footprint_bounds()
    assert y1 == pytest.approx(table.half_y - table.edge_margin)  # along the back edge
    assert x1 - x0 >= 5 * min(2 * o.radius for o in objects if o.size == 'small')
    on_table = [o for o in objects if not o.support]
    for o in on_table:
        bx0, bx1, by0, by1 = o.footprint_bounds() if o.elongated else \
            (o.x - o.radius, o.x + o.radius, o.y - o.radius, o.y + o.radius)
        assert -table.half_x <= bx0 and bx1 <= table.half_x
        assert -table.half_y <= by0 and by1 <= table.half_y
        for p in on_table:
            if p.id > o.id:
                gap = (o.outline_distance(p.x, p.y) - p.radius if o.elongated else
                       p.outline_distance(o.x, o.y) - o.radius)
                assert gap >= config.min_gap - 1e-9, (o.category, p.category)
    stacked = [o for o in objects if o.support]
    assert {by_id[o.support].shape for o in stacked} == {'shelf', 'box'}
    for o in stacked:
        assert o.size == 'small' and on_top_of(o, by_id[o.support])
    on_shelf = sorted((o for o in stacked if o.support == shelf[0].id), key=lambda o: o.x)
    for a, b in zip(on_shelf, on_shelf[1:]):
        assert b.x - a.x >= a.radius + b.radius + config.min_gap - 1e-9
    # Exactly one pair of identical objects, side by side along x.
    twins = [(a, b) for a in objects for b in objects if identical(a, b) and a.id < b.id]
    assert len(twins) == 1
    a, b = twins[0]
    assert a.support == b.support == 0 and abs(a.y - b.y) <= 0.01 + 1e-9
    assert math.hypot(a.x - b.x, a.y - b.y) - a.radius - b.radius <= 0.06 + 1e-9
    assert sum(o.shape == a.shape for o in objects) >= 3  # and another of their shape
    facts = {o.category: object_facts(o, objects) for o in objects}
    assert facts[a.category]['identical_to'] == [b.category] and facts[b.category]['has_twin']
    assert sum(f['has_twin'] for f in facts.values()) == 2
    for o in stacked:
        assert facts[o.category]['on_top_of'] == by_id[o.support].category
    assert {'small', 'large'} <= {f['size_class'] for f in facts.values()}
    with pytest.raises(ValueError, match='at least'):
        sample_layout(np.random.default_rng(seed), LayoutConfig(num_objects=6, table=table,
                                                                clutter=ClutterSpec()))


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
    from refersplat_ros.core.datasets.ref_synth.scene import GaussianConfig
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
    for name, (lo, hi), (views, tests, size) in (
            ('hard', (25000, 40000), (30, 6, (160, 120))),
            ('hard-tiny', (0, 8000), (8, 2, (64, 48)))):
        hard = generate_scene(preset_config(name))
        assert lo <= len(hard.gaussians) <= hi and len(hard.objects) >= 12
        assert (len(hard.cameras), len(hard.test_indices)) == (views, tests)
        assert (hard.cameras[0].width, hard.cameras[0].height) == size
        counts = np.bincount(hard.gaussians.object_ids)[1:]
        assert counts.max() >= 5 * counts.min()
        assert hard.objects[int(np.argmax(counts))].shape == 'shelf'
        assert any(o.support for o in hard.objects)
        assert any(identical(a, b) for a in hard.objects for b in hard.objects)
    custom = preset_config('tiny', num_objects=5, num_views=8, width=80, height=60)
    assert custom.layout.num_objects == 5 and custom.cameras.num_views == 8
    assert (custom.cameras.width, custom.cameras.height) == (80, 60)
    with pytest.raises(ValueError, match='unknown Ref-Synth preset'):
        preset_config('huge')
