"""The run-folder layout (``core/runs.py``): one definition of every name in a run."""
import pytest
import torch

from refersplat_ros.core import runs
from refersplat_ros.core.field.checkpoint import save_checkpoint
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.text.encoder import TextEncoderConfig


def test_layout_names(tmp_path):
    assert runs.checkpoint_dir(tmp_path) == tmp_path / 'checkpoints'
    assert runs.checkpoint_dir(tmp_path, 2) == tmp_path / 'stage2' / 'checkpoints'
    assert runs.last_checkpoint(tmp_path, 2) == tmp_path / 'stage2' / 'checkpoints' / \
        'last.safetensors'
    assert runs.pseudo_mask_dir(tmp_path) == tmp_path / 'stage2' / 'pseudo_masks'
    assert runs.step_checkpoint_name(75) == 'step_000075.safetensors'
    with pytest.raises(ValueError, match='stage'):
        runs.checkpoint_dir(tmp_path, 3)


def test_step_checkpoints_sorted_and_stages_found(tmp_path):
    assert runs.stage_checkpoint_dirs(tmp_path) == []
    folder = runs.checkpoint_dir(tmp_path, 2)
    folder.mkdir(parents=True)
    for step in (300, 75, 1500):
        (folder / runs.step_checkpoint_name(step)).write_bytes(b'')
    (folder / runs.LAST_CHECKPOINT).write_bytes(b'')
    assert [p.name for p in runs.step_checkpoints(folder)] == [
        'step_000075.safetensors', 'step_000300.safetensors', 'step_001500.safetensors']
    assert runs.stage_checkpoint_dirs(tmp_path) == [(2, folder)]


def test_run_info_of_a_checkpoint_written_outside_training(tmp_path):
    means = torch.rand(5, 3)
    field = ReferringField(means, ReferringFieldConfig(text_dim=8, width=8))
    path = save_checkpoint(tmp_path / 'c.safetensors', field, text_encoder_id='x', step=3)
    info = runs.run_info(path)
    assert (info.scene_path, info.data, info.stage, info.step) == (None, None, 1, 3)
    assert info.text_encoder == TextEncoderConfig()
