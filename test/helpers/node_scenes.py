"""Scenes for node tests: a hand-built referring field with a known, query-independent answer.

The node's mechanics (statuses, queue, headers, latched topics, lifecycle) are tested against
``core.fixed_answer_field``: every expression selects object A with m = +11.4 * 0.1 * L on A and
the negative elsewhere (L = number of word pieces), so 'mug' (L = 1) has sigmoid(m) = 0.76 and
longer expressions approach 1. Deterministic, no training needed; the semantic test (the right
object per expression) uses a trained Ref-Synth scene instead.
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


def make_handmade_scene(folder: Path, objects: bool = False) -> HandmadeScene:
    """Write scene.ply, field.safetensors and a one-camera COLMAP model into ``folder``.

    With ``objects`` the checkpoint also records the two objects ('red-mug' = A, 'blue-bowl' =
    B, one sentence each), so the node grounds queries in the object graph and can edit them.
    """
    from refersplat_ros.core.scene.cameras import Camera, write_colmap_text
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.scene.gaussian_io import save_ply
    from refersplat_ros.core.scene.gaussians import GaussianScene
    from helpers.fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.text.encoder import TextEncoder

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
    field = fixed_answer_field(scene.means, torch.from_numpy(ids == 1), encoder.hidden_size)
    camera = Camera.look_at(eye=(0.0, -1.2, 0.8), target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0),
                            width=64, height=48, fx=60.0, fy=60.0, name='frame_00001.png')
    scene_objects = None
    if objects:
        from refersplat_ros.core.scene.objects import SceneObjects
        scene_objects = SceneObjects(ids - 1, ['red-mug', 'blue-bowl'],
                                     [['the red mug'], ['the blue bowl']], camera, (0, 0, 1))
    save_checkpoint(folder / 'field.safetensors', field, text_encoder_id=encoder.encoder_id,
                    step=0, objects=scene_objects)

    write_colmap_text(folder / 'sparse' / '0', [camera])
    return HandmadeScene(folder / 'scene.ply', folder / 'field.safetensors', folder,
                         means.numpy(), ids)
