"""Ref-Synth as a capture: SfM-like points, visibility, and a reconstructed scene end to end."""
import json

import numpy as np
import pytest
import torch

from refersplat_ros.core.datasets.ref_synth.reconstructed import (CaptureConfig, seen_counts,
                                                                  sfm_points)
from refersplat_ros.core.inference.model import ReferringModel
from refersplat_ros.core.inference.queries import QueryStatus
from refersplat_ros.core.scene.cameras import Camera


def _wall_scene():
    """Return a 21 x 21 opaque wall at z = 2 with one Gaussian behind it and one beside it.

    Both at z = 3; the one beside it is in the open.
    """
    xs = np.linspace(-0.5, 0.5, 21)
    wall = np.array([[x, y, 2.0] for x in xs for y in xs])
    means = np.concatenate([wall, [[0.0, 0.0, 3.0], [1.5, 0.0, 3.0]]]).astype(np.float32)
    n = len(means)
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    scales = np.full((n, 3), 0.04)
    opacities = np.full(n, 0.99)
    return means, quats, scales, opacities


def test_a_point_behind_a_wall_is_not_seen():
    means, quats, scales, opacities = _wall_scene()
    camera = Camera(64, 48, 40.0, 40.0, 32.0, 24.0, torch.eye(4))
    counts = seen_counts(means, quats, scales, opacities, [camera, camera])
    assert counts[-2] == 0  # hidden behind the wall
    assert counts[-1] == 2  # in the open, inside the image
    assert counts[220] == 2  # the wall's centre


def test_sfm_points_are_seen_surface_points_with_noise_and_outliers():
    rng = np.random.default_rng(0)
    grid = np.arange(20) * 0.1  # 10 cm apart: 1 cm of noise keeps each point nearest its own
    means = np.stack(np.meshgrid(grid, grid, grid[:10], indexing='ij'), -1).reshape(-1, 3)
    colors = rng.uniform(0, 1, (4000, 3))
    counts = np.where(np.arange(4000) < 3000, 2, 1)  # the last 1000 seen once: never chosen
    config = CaptureConfig(sfm_points=1000, point_noise=0.01, outlier_fraction=0.05)
    xyz, rgb = sfm_points(means, colors, counts, config, seed=3)
    assert xyz.shape == (1050, 3) and rgb.shape == (1050, 3) and rgb.dtype == np.uint8
    inliers = torch.from_numpy(xyz[:1000])
    dist = torch.cdist(inliers, torch.from_numpy(means)).min(1)
    assert float(dist.values.median()) < 0.03  # near the surface: noise of 1 cm
    assert dist.indices.max() < 3000  # from points seen twice
    with pytest.raises(ValueError, match='enough views'):
        sfm_points(means, colors, np.zeros(4000, int), config, seed=0)


@pytest.mark.slow
def test_a_reconstructed_scene_answers_its_sentences_with_the_right_object(
        tiny_reconstructed_run):
    run = tiny_reconstructed_run
    manifest = json.loads((run.data_dir / 'manifest.json').read_text())
    rec = manifest['reconstruction']
    ids = np.load(run.data_dir / manifest['object_ids'])
    true_ids = np.load(run.data_dir / rec['true_object_ids'])
    assert len(ids) == manifest['num_gaussians'] != len(true_ids) == rec['true_num_gaussians']
    assert rec['psnr_test'] is not None and rec['sfm_points'] > 100
    model = ReferringModel.load(run.scene_path, run.checkpoint, device='cpu')
    assert model.scene.num_gaussians == len(ids)
    asked = list(run.queries.items()) + [(e['category'], e['sentence'])
                                         for e in manifest['expressions'] if e['split'] == 'train']
    assert len(asked) > 8
    wrong = []
    for category, query in asked:
        outcome = model.query(query)
        if outcome.status != QueryStatus.OK:
            wrong.append((query, outcome.status.name))
            continue
        published = ids[outcome.selection.best.indices]
        if np.bincount(published).argmax() != run.categories[category]:
            wrong.append((query, int(np.bincount(published).argmax())))
    assert wrong == []
