"""Selection core: threshold, opacity, clusters, top-k instances, propagation, no-match."""
import numpy as np
import pytest

from refersplat_ros.core.inference.selection import select_target, SelectionConfig, Visibility
from refersplat_ros.core.scene.frames import rotation_to_quaternion_xyzw


def _blob(rng, center, size, n):
    return (np.asarray(center) + (rng.random((n, 3)) - 0.5) * np.asarray(size)).astype(np.float32)


@pytest.fixture
def two_objects():
    """Build two objects at (0.3, 0, 0.05) and (-0.3, 0.2, 0.05), plus a table."""
    rng = np.random.default_rng(0)
    a = _blob(rng, [0.3, 0.0, 0.05], [0.12, 0.06, 0.1], 400)
    b = _blob(rng, [-0.3, 0.2, 0.05], [0.06, 0.06, 0.1], 300)
    table = _blob(rng, [0, 0, 0], [1.0, 1.0, 0.0], 1000)
    means = np.concatenate([a, b, table])
    ids = np.repeat([1, 2, 0], [400, 300, 1000])
    opacities = np.full(len(means), 0.9, np.float32)
    colors = rng.random((len(means), 3)).astype(np.float32)
    return means, ids, opacities, colors


def test_selects_the_high_probability_object(two_objects):
    means, ids, opacities, colors = two_objects
    prob = np.where(ids == 1, 0.9, 0.1).astype(np.float32)
    sel = select_target(prob, means, opacities, colors)
    assert sel.ok and sel.reason == ''
    assert set(ids[sel.indices]) == {1} and len(sel.indices) == 400
    np.testing.assert_allclose(sel.best.center, [0.3, 0.0, 0.05], atol=0.01)
    np.testing.assert_allclose(sel.best.extent, [0.12, 0.06, 0.1], atol=0.01)
    np.testing.assert_allclose(sel.best.rotation, np.eye(3), atol=0.1)
    assert sel.score == pytest.approx(0.9)
    np.testing.assert_array_equal(sel.colors, colors[sel.indices])


def test_metric_scale_scales_positions_and_sizes(two_objects):
    means, ids, opacities, colors = two_objects
    prob = np.where(ids == 1, 0.9, 0.1)
    sel = select_target(prob, means, opacities, colors, SelectionConfig(metric_scale=2.0))
    np.testing.assert_allclose(sel.best.center, [0.6, 0.0, 0.1], atol=0.02)
    np.testing.assert_allclose(sel.points, means[sel.indices] * 2.0, rtol=1e-6)


def test_clustering_drops_outliers_and_ranks_instances(two_objects):
    means, ids, opacities, colors = two_objects
    prob = np.where(ids > 0, 0.8, 0.0)
    prob[ids == 2] = 0.95                       # smaller but more confident object
    stray = np.flatnonzero(ids == 0)[:3]        # isolated false positives on the table
    prob[stray] = 0.99
    one = select_target(prob, means, opacities, colors, SelectionConfig(top_k=1))
    # Mass ranking: 400 x 0.8 = 320 beats 300 x 0.95 = 285; strays are DBSCAN noise.
    assert set(ids[one.indices]) == {1}
    both = select_target(prob, means, opacities, colors, SelectionConfig(top_k=2))
    assert [set(ids[i.indices]) for i in both.instances] == [{1}, {2}]
    assert len(both.indices) >= 690 and not set(stray) & set(both.indices)
    assert set(ids[both.indices]) == {1, 2}
    no_cluster = select_target(prob, means, opacities, colors, SelectionConfig(cluster=False))
    assert len(no_cluster.instances) == 1 and set(stray) <= set(no_cluster.indices)


def test_opacity_and_nan_are_filtered(two_objects):
    means, ids, opacities, colors = two_objects
    prob = np.where(ids == 1, 0.9, 0.1).astype(np.float32)
    opacities = opacities.copy()
    opacities[:200] = 0.01                      # half of object 1 is transparent
    prob[200:210] = np.nan
    sel = select_target(prob, means, opacities, colors)
    assert sel.ok and len(sel.indices) == 190 and sel.indices.min() >= 210
    prob[210:213] = np.inf                      # not a probability: never selected
    means = means.copy()
    means[213:216, 1] = np.nan                  # a corrupt centre: never selected
    sel = select_target(prob, means, opacities, colors)
    assert sel.ok and len(sel.indices) == 184 and sel.indices.min() >= 216
    assert np.isfinite(sel.points).all() and np.isfinite(sel.scores).all()


def test_no_match_reports_why(two_objects):
    means, ids, opacities, colors = two_objects
    sel = select_target(np.full(len(means), 0.2), means, opacities, colors)
    assert not sel.ok and '0 Gaussians have probability >= 0.5' in sel.reason
    assert sel.score == 0.0 and sel.points.shape == (0, 3)
    few = np.zeros(len(means))
    few[:5] = 0.9
    sel = select_target(few, means, opacities, colors, SelectionConfig(min_gaussians=10))
    assert not sel.ok and '(minimum 10)' in sel.reason


def test_config_validation_and_shape_errors(two_objects):
    means, ids, opacities, colors = two_objects
    for bad in [dict(threshold=1.5), dict(top_k=0), dict(metric_scale=0), dict(min_gaussians=0)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            select_target(np.zeros(len(means)), means, opacities, colors, SelectionConfig(**bad))
    with pytest.raises(ValueError, match='shape mismatch'):
        select_target(np.zeros(3), means, opacities, colors)


@pytest.mark.parametrize('angle', [0.0, 1.0, 2.5, np.pi, -2.0])
def test_quaternion_of_rotation(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    q = rotation_to_quaternion_xyzw(rot)
    expected = np.append(axis * np.sin(angle / 2), np.cos(angle / 2))
    expected = expected if expected[3] >= 0 else -expected
    np.testing.assert_allclose(q, expected, atol=1e-9)


def _shelf_and_vase(rng):
    """Build a large shelf (mostly hidden inner Gaussians) beside a small vase, and a table.

    The vase stands on a thin plinth (not modelled), clear of the table, so that its back
    side's nearest well-seen Gaussians are its own front ones.
    """
    shelf_surface = _blob(rng, [0.0, 0.3, 0.2], [0.9, 0.02, 0.4], 600)
    shelf_inside = _blob(rng, [0.0, 0.35, 0.2], [0.85, 0.08, 0.35], 2400)
    vase_front = _blob(rng, [0.5, 0.0, 0.2], [0.06, 0.02, 0.16], 150)
    vase_back = _blob(rng, [0.5, 0.03, 0.2], [0.06, 0.02, 0.16], 150)
    table = _blob(rng, [0, 0, 0], [1.4, 1.4, 0.0], 1500)
    means = np.concatenate([shelf_surface, shelf_inside, vase_front, vase_back, table])
    ids = np.repeat([1, 1, 2, 2, 0], [600, 2400, 150, 150, 1500])
    # Compositing weight over the training views: surfaces seen, inner / back Gaussians not.
    seen = np.repeat([1.0, 0.0, 1.0, 0.0, 1.0], [600, 2400, 150, 150, 1500])
    visibility = (seen * rng.uniform(2.0, 4.0, len(means)) + (1 - seen) * rng.uniform(
        0.0, 0.01, len(means))).astype(np.float32)
    opacities = np.full(len(means), 0.9, np.float32)
    colors = rng.random((len(means), 3)).astype(np.float32)
    return means, ids, visibility, opacities, colors


def test_well_seen_support_beats_a_large_half_hidden_object():
    rng = np.random.default_rng(1)
    means, ids, visibility, opacities, colors = _shelf_and_vase(rng)
    # The field fits the views: seen vase Gaussians answer, seen shelf Gaussians do not. The
    # shelf's unchecked inner Gaussians answer at random, and outweigh the vase by mass.
    prob = np.where(ids == 2, 0.9, 0.1).astype(np.float32)
    inner = np.flatnonzero((ids == 1) & (visibility < 0.5))
    prob[inner] = np.where(rng.random(len(inner)) < 0.6, 0.8, 0.2)
    paper = select_target(prob, means, opacities, colors,
                          SelectionConfig(seen_fraction=0.0, rank_by='mass'))
    assert paper.ok and np.bincount(ids[paper.best.indices]).argmax() == 1  # the shelf
    vis = Visibility(visibility, means, opacities)
    chosen = select_target(prob, means, opacities, colors, SelectionConfig(), vis)
    assert chosen.ok
    assert set(ids[chosen.best.indices]) == {2}
    # Propagation brings the never-seen back side: the whole vase, nothing else.
    assert len(chosen.best.indices) == 300
    np.testing.assert_allclose(chosen.best.centroid, means[ids == 2].mean(axis=0), atol=0.005)
    # Propagated Gaussians carry the probability of the neighbour they inherit from.
    assert np.all(chosen.scores == pytest.approx(0.9))


def test_propagation_reaches_only_poorly_seen_gaussians_near_the_target():
    rng = np.random.default_rng(2)
    means, ids, visibility, opacities, colors = _shelf_and_vase(rng)
    prob = np.where(ids == 2, 0.9, 0.1).astype(np.float32)
    vis = Visibility(visibility, means, opacities)
    without = select_target(prob, means, opacities, colors, SelectionConfig(propagate=False),
                            vis)
    assert set(ids[without.best.indices]) == {2} and len(without.best.indices) == 150
    # A tiny radius links nothing; the automatic one the back side (2 cm away).
    tiny = select_target(prob, means, opacities, colors,
                         SelectionConfig(propagation_radius=1e-4), vis)
    assert len(tiny.best.indices) == 150
    # Transparent Gaussians never join.
    opacities = opacities.copy()
    opacities[(ids == 2) & (visibility < 0.5)] = 0.01
    vis = Visibility(visibility, means, opacities)
    faint = select_target(prob, means, opacities, colors, SelectionConfig(), vis)
    assert len(faint.best.indices) == 150


def test_propagation_reaches_the_inside_of_a_thick_object_layer_by_layer():
    """A solid box whose core is far from its seen surface: steps of propagation fill it."""
    rng = np.random.default_rng(4)
    grid = np.stack(np.meshgrid(*[np.arange(12)] * 3, indexing='ij'), -1).reshape(-1, 3)
    box = (grid * 0.01 + rng.normal(0, 0.001, grid.shape)).astype(np.float32)
    surface = (grid == 0).any(1) | (grid == 11).any(1)
    neighbour = box + np.float32([0.2, 0.0, 0.0])  # a second solid box, 8 cm away
    means = np.concatenate([box, neighbour])
    ids = np.repeat([1, 2], len(box))
    seen = np.concatenate([surface, surface])
    visibility = np.where(seen, 3.0, 0.0).astype(np.float32)
    opacities = np.full(len(means), 0.9, np.float32)
    colors = rng.random((len(means), 3)).astype(np.float32)
    prob = np.where(ids == 1, 0.9, 0.1).astype(np.float32)
    vis = Visibility(visibility, means, opacities)
    radius = 0.015  # 1.5 x the spacing: one layer per step
    one = select_target(prob, means, opacities, colors,
                        SelectionConfig(propagation_radius=radius, propagation_hops=1), vis)
    full = select_target(prob, means, opacities, colors,
                         SelectionConfig(propagation_radius=radius), vis)
    assert set(ids[one.best.indices]) == set(ids[full.best.indices]) == {1}
    # one step adds the layer under the surface only; eight reach the core (5 layers deep)
    assert len(one.best.indices) == surface.sum() + 10 ** 3 - 8 ** 3
    assert len(full.best.indices) == len(box)
    # every propagated Gaussian inherits a well-seen source of its own object
    unseen, source = vis.links(0.05, radius, 0.05, 8)
    assert len(unseen) == 2 * (len(box) - surface.sum())
    assert np.all(seen[source]) and np.all(ids[source] == ids[unseen])
    with pytest.raises(ValueError, match='propagation_hops'):
        SelectionConfig(propagation_hops=0).validate()


def test_visibility_validates_its_input():
    means = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match='does not match'):
        Visibility(np.ones(2), means, np.ones(3))
    with pytest.raises(ValueError, match='finite'):
        Visibility(np.array([1.0, np.nan, 1.0]), means, np.ones(3))
    with pytest.raises(ValueError, match='rank_by'):
        SelectionConfig(rank_by='size').validate()


def test_clustering_can_be_abandoned_between_steps(two_objects):
    means, ids, opacities, colors = two_objects
    prob = np.where(ids == 1, 0.9, 0.1).astype(np.float32)
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError('budget spent')

    with pytest.raises(TimeoutError, match='budget spent'):
        select_target(prob, means, opacities, colors, check=check)


@pytest.mark.parametrize('config', [
    SelectionConfig(),
    SelectionConfig(min_opacity=0.5, metric_scale=2.0, upright=False),
    SelectionConfig(rank_by='mass', propagate=False),
    SelectionConfig(seen_fraction=0.0),
    SelectionConfig(threshold=0.95),            # the score is below it: no match
])
@pytest.mark.parametrize('with_visibility', [True, False])
def test_select_object_equals_select_target_of_its_members(two_objects, config,
                                                           with_visibility):
    """The object-graph path (O(object)) gives select_target's one-instance answer."""
    from dataclasses import replace

    from refersplat_ros.core.inference.selection import select_object
    means, ids, opacities, colors = two_objects
    rng = np.random.default_rng(3)
    opacities = rng.uniform(0.02, 1.0, len(means)).astype(np.float32)
    means = means.copy()
    means[np.flatnonzero(ids == 1)[:2]] = np.nan          # broken centres are dropped
    vis = None
    if with_visibility:
        weight = rng.uniform(0.5, 1.0, len(means)) * (rng.random(len(means)) > 0.3)
        vis = Visibility(weight, np.nan_to_num(means), opacities)
    members = np.flatnonzero(ids == 1)[::-1]               # any order
    score = 0.8
    prob = np.zeros(len(means), np.float32)
    prob[members] = score
    single = replace(config, cluster=False, top_k=1, min_gaussians=1)
    expected = select_target(prob, means, opacities, colors, single, vis)
    got = select_object(members, score, means, opacities, colors, config, vis)
    assert got.ok == expected.ok
    if not expected.ok:
        assert got.reason == expected.reason
        return
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.points, expected.points)
    np.testing.assert_array_equal(got.colors, expected.colors)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert got.num_candidates == expected.num_candidates
    a, b = got.best, expected.best
    assert a.score == pytest.approx(b.score, rel=1e-6)
    assert a.mass == pytest.approx(b.mass, rel=1e-5)
    for name in ('centroid', 'center', 'rotation', 'extent'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    if with_visibility and config.propagate and config.seen_fraction > 0:
        assert len(got.indices) > got.num_candidates      # some poorly seen ones joined
