"""Scenes for node tests: a hand-built referring field with a known, query-independent answer.

The node's mechanics (statuses, queue, headers, latched topics, lifecycle) are tested against a
field whose weights are set by hand so that every expression selects object A: the baseline field
(no PCMI) gives m_i = <MLP2(f_r,i), sum_j MLP1(word_j)>; MLP2 passes the first two feature
channels through, MLP1 outputs the constant w = (2, -2, 0, ...), and f_r = e0 on A, e1 elsewhere.
So m = 2L on A and -2L elsewhere (L = number of word pieces): deterministic, no training needed.
The semantic test (the right object per expression) uses a trained Ref-Synth scene instead.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

A_CENTER = (0.3, 0.0, 0.05)
A_SIZE = (0.12, 0.06, 0.10)
B_CENTER = (-0.3, 0.2, 0.05)


@dataclass
class HandmadeScene:
    scene_path: Path
    checkpoint_path: Path
    dataset_dir: Path       # holds sparse/0 with one camera looking at the table (mask view)
    means: np.ndarray       # [N, 3]
    object_ids: np.ndarray  # [N] 1 = A, 2 = B, 0 = table


def _blob(rng, center, size, n):
    return np.asarray(center) + (rng.random((n, 3)) - 0.5) * np.asarray(size)


def make_handmade_scene(folder: Path) -> HandmadeScene:
    """Write scene.ply, field.safetensors and a one-camera COLMAP model into ``folder``."""
    from refersplat_ros.core.cameras import Camera, write_colmap_text
    from refersplat_ros.core.checkpoint import save_checkpoint
    from refersplat_ros.core.gaussian_io import save_ply
    from refersplat_ros.core.gaussians import GaussianScene
    from refersplat_ros.core.referring_field import ReferringField, ReferringFieldConfig
    from refersplat_ros.core.text_encoder import TextEncoder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    parts = [_blob(rng, A_CENTER, A_SIZE, 600), _blob(rng, B_CENTER, (0.08, 0.08, 0.1), 600),
             _blob(rng, (0, 0, 0), (1.0, 1.0, 0.0), 800)]
    ids = np.repeat([1, 2, 0], [len(p) for p in parts])
    means = torch.tensor(np.concatenate(parts), dtype=torch.float32)
    colors = torch.tensor(np.where(ids[:, None] == 1, [0.9, 0.1, 0.1], [0.5, 0.5, 0.5]),
                          dtype=torch.float32)
    scene = GaussianScene.from_colors(means, colors, torch.full((len(means), 3), 0.012),
                                      torch.full((len(means),), 0.9))
    save_ply(scene, folder / 'scene.ply')

    encoder = TextEncoder()
    field = ReferringField(scene.means, ReferringFieldConfig(text_dim=encoder.hidden_size,
                                                             use_pcmi=False))
    with torch.no_grad():
        for module in list(field.mlp1) + list(field.mlp2):
            if isinstance(module, torch.nn.Linear):
                module.weight.zero_()
                module.bias.zero_()
        for index in (0, 2, 4):                 # MLP2: pass channels 0 and 1 through
            field.mlp2[index].weight[:2, :2] = torch.eye(2)
        field.mlp1[4].bias[:2] = torch.tensor([2.0, -2.0])
        field.features.zero_()
        field.features[torch.from_numpy(ids == 1), 0] = 1.0
        field.features[torch.from_numpy(ids != 1), 1] = 1.0
    save_checkpoint(folder / 'field.safetensors', field, text_encoder_id=encoder.encoder_id,
                    step=0)

    camera = Camera.look_at(eye=(0.0, -1.2, 0.8), target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0),
                            width=64, height=48, fx=60.0, fy=60.0, name='frame_00001.png')
    write_colmap_text(folder / 'sparse' / '0', [camera])
    return HandmadeScene(folder / 'scene.ply', folder / 'field.safetensors', folder,
                         means.numpy(), ids)
