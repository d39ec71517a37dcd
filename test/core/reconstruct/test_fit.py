"""Fitting Gaussians to a tiny capture: the images come back, the .ply loads, resume is exact."""
from dataclasses import replace
import json
import shutil

import pytest
from safetensors.torch import load as safetensors_load, save as safetensors_save
import torch

from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.reconstruct.capture import load_capture
from refersplat_ros.core.reconstruct.fit import (initial_params, LAST_CHECKPOINT, reconstruct,
                                                 ReconstructConfig, scaled_schedule)
from refersplat_ros.core.reconstruct.ssim import psnr
from refersplat_ros.core.render.rasterize import render_scene
from refersplat_ros.core.scene.gaussian_io import load_scene, save_ply

#: The tiny capture's training images are recovered to at least this PSNR (dB) in 300 steps;
#: measured 2026-12-07: 39.6 dB at the worst training view (at most 4000 Gaussians).
MIN_TRAIN_PSNR = 25.0


@pytest.fixture(scope='module')
def capture(tiny_capture_dir):
    manifest = json.loads((tiny_capture_dir / 'manifest.json').read_text())
    return load_capture(tiny_capture_dir, held_out=manifest['split']['test_frames']), manifest


def _config(manifest, steps):
    # at most 4000 Gaussians: the tiny capture grows past 17,000 otherwise, 4x the time
    return replace(scaled_schedule(ReconstructConfig(), steps), max_gaussians=4000,
                   background=tuple(manifest['config']['background_rgb']), eval_every=steps)


def test_reconstruction_recovers_the_images_and_writes_a_ply_the_loader_reads(capture, tmp_path):
    capture, manifest = capture
    config = _config(manifest, 300)
    result = reconstruct(capture, config)
    background = torch.tensor(config.background)
    values = [psnr(render_scene(result.scene, capture.cameras[i], background=background).image,
                   capture.images[i]) for i in capture.train]
    assert min(values) >= MIN_TRAIN_PSNR, values
    assert result.psnr is not None and result.history[-1]['step'] == 300
    assert result.scene.sh.shape[1] == 4  # SH degree 1 by default
    save_ply(result.scene, tmp_path / 'point_cloud.ply')
    loaded = load_scene(tmp_path / 'point_cloud.ply')
    assert torch.allclose(loaded.means, result.scene.means)
    assert loaded.sh.shape == result.scene.sh.shape


def test_densification_grows_from_the_sparse_points(capture):
    capture, manifest = capture
    start = len(initial_params(capture, ReconstructConfig())['means'])
    config = replace(_config(manifest, 40), refine_start=5, refine_stop=36, refine_every=10,
                     grow_grad2d=5e-5)
    result = reconstruct(capture, config)
    assert result.scene.num_gaussians > start


def test_resume_continues_exactly(capture, tmp_path):
    """Resume a run stopped at a checkpoint: it ends where the uninterrupted run ends.

    Densification (random splits) included.
    """
    capture, manifest = capture
    config = replace(_config(manifest, 30), refine_start=4, refine_every=4, refine_stop=26,
                     grow_grad2d=1e-5, checkpoint_every=10, eval_every=10)
    whole = reconstruct(capture, config, checkpoint_dir=tmp_path / 'a')
    (tmp_path / 'b').mkdir()
    shutil.copy(tmp_path / 'a' / 'reconstruct_000020.safetensors',
                tmp_path / 'b' / LAST_CHECKPOINT)
    resumed = reconstruct(capture, config, checkpoint_dir=tmp_path / 'b', resume=True)
    assert resumed.scene.num_gaussians == whole.scene.num_gaussians
    for name in ('means', 'quats', 'log_scales', 'opacity_logits', 'sh'):
        assert torch.equal(getattr(resumed.scene, name), getattr(whole.scene, name)), name
    assert [h['step'] for h in resumed.history] == [h['step'] for h in whole.history]


def _rewrite(path, tensors=None, meta=None):
    """Write ``path`` again with some tensors or description entries changed (None: removed)."""
    data = path.read_bytes()
    saved = safetensors_load(data)
    header = json.loads(data[8:8 + int.from_bytes(data[:8], 'little')])
    description = json.loads(header['__metadata__']['refersplat_reconstruct'])
    for key, value in (tensors or {}).items():
        saved.pop(key) if value is None else saved.__setitem__(key, value)
    description.update(meta or {})
    path.write_bytes(safetensors_save(saved, metadata={
        'refersplat_reconstruct': json.dumps(description)}))


def test_a_corrupt_or_foreign_checkpoint_is_refused(capture, tmp_path):
    capture, manifest = capture
    config = _config(manifest, 3)
    reconstruct(capture, config, checkpoint_dir=tmp_path / 'good')
    good = (tmp_path / 'good' / LAST_CHECKPOINT).read_bytes()
    n = len(safetensors_load(good)['param/means'])
    folder = tmp_path / 'bad'
    folder.mkdir()
    last = folder / LAST_CHECKPOINT
    cases = [
        (dict(), dict(), replace(config, sh_degree=0), 'other settings .*sh_degree'),
        (dict(), dict(), replace(config, seed=5), 'other settings .*seed'),
        ({'rng': None}, {}, config, 'entry rng is missing'),
        ({'rng': torch.zeros(5)}, {}, config, 'entry rng'),
        ({'param/quats': torch.zeros(n, 3)}, {}, config, r'param/quats .*\(%d, 4\)' % n),
        ({'param/opacities': torch.zeros(n, dtype=torch.int32)}, {}, config, 'float32'),
        ({'param/means': torch.full((n, 3), float('nan'))}, {}, config, 'finite'),
        ({'adam/means/exp_avg_sq': None}, {}, config, 'exp_avg_sq is missing'),
        ({'extra': torch.zeros(1)}, {}, config, 'unknown entries'),
        ({}, {'step': 10 ** 9}, config, 'step'),
        ({}, {'step': 'x'}, config, 'step'),
        ({}, {'step': float('inf')}, config, 'step'),
        ({}, {'history': [1, 2]}, config, 'malformed history'),
        ({}, {'adam_steps': {'means': 'x'}}, config, 'malformed adam_steps'),
    ]
    for tensors, meta, settings, message in cases:
        last.write_bytes(good)
        _rewrite(last, tensors, meta)
        with pytest.raises(CheckpointError, match=message):
            reconstruct(capture, settings, checkpoint_dir=folder, resume=True)
    last.write_bytes(good[:200])
    with pytest.raises(CheckpointError, match='not a reconstruction checkpoint'):
        reconstruct(capture, config, checkpoint_dir=folder, resume=True)


def test_a_new_run_replaces_an_older_runs_checkpoints(capture, tmp_path):
    capture, manifest = capture
    config = replace(_config(manifest, 4), checkpoint_every=2)
    reconstruct(capture, config, checkpoint_dir=tmp_path)
    assert (tmp_path / 'reconstruct_000002.safetensors').is_file()
    reconstruct(capture, replace(config, steps=1, checkpoint_every=0), checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]


def test_bad_settings_are_refused():
    for bad in (dict(steps=0), dict(sh_degree=4), dict(ssim_lambda=1.5),
                dict(means_lr=float('nan')), dict(background=(0.0, 0.0))):
        with pytest.raises(ValueError):
            ReconstructConfig(**bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (gsplat backend)')
def test_reconstruction_on_the_gpu_matches_the_cpu_recipe(capture):
    """The same fit on CUDA (gsplat's packed rasterizer feeds the densification) learns too."""
    capture, manifest = capture
    config = replace(_config(manifest, 100), refine_start=10, refine_stop=80, refine_every=10)
    gpu = reconstruct(capture, config, device='cuda')
    cpu = reconstruct(capture, config)
    assert gpu.scene.means.is_cuda
    assert gpu.psnr >= cpu.psnr - 2.0, (gpu.psnr, cpu.psnr)
