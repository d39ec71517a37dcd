"""Tiny referring scenes and a tiny text encoder for the training / evaluation / CLI tests.

``write_two_object_scene`` writes a Ref-LERF-layout folder (docs/METHOD.md#data-layout) with two
objects (a red ball on the left, a blue box on the right) on a floor: about 1.4k Gaussians, 48x36
views, exact masks rendered with the project rasterizer, a manifest with the split, object ids and
expression types. ``tiny_encoder_folder`` saves a random 2-layer BERT (hidden size 32) with the
bundled tokenizer as a model folder, so it can be named in configs and CLIs.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch

from refersplat_ros.core.datasets.ref_synth.ground_truth import render_ground_truth
from refersplat_ros.core.datasets.reflerf.layout import (frame_json, mask_relpath, write_image_png,
                                                         write_json, write_mask_png)
from refersplat_ros.core.scene.cameras import Camera, write_colmap_text
from refersplat_ros.core.scene.gaussian_io import save_ply
from refersplat_ros.core.scene.gaussians import GaussianScene

CATEGORIES = {'red-ball': 1, 'blue-box': 2}
TRAIN_SENTENCES = {'red-ball': ['the red ball', 'the ball on the left'],
                   'blue-box': ['the blue box', 'the box on the right']}
TEST_SENTENCES = {'red-ball': ['the red ball'], 'blue-box': ['the box on the right']}
KINDS = {'the red ball': ('attribute', 'attribute'),
         'the ball on the left': ('spatial', 'relation'),
         'the blue box': ('attribute', 'attribute'),
         'the box on the right': ('spatial', 'relation')}
BALL_CENTRE = (-0.45, 0.0, 0.25)
BOX_CENTRE = (0.45, 0.0, 0.22)


def _gaussians(seed: int, jitter: float = 0.0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(420, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    ball = np.array(BALL_CENTRE) + 0.25 * direction
    cube = rng.uniform(-1.0, 1.0, size=(420, 3))
    axis = rng.integers(0, 3, size=420)
    cube[np.arange(420), axis] = np.sign(cube[np.arange(420), axis])
    box = np.array(BOX_CENTRE) + 0.22 * cube
    floor = np.stack([rng.uniform(-1.3, 1.3, 560), rng.uniform(-1.3, 1.3, 560),
                      np.zeros(560)], axis=1)
    means = np.concatenate([ball, box, floor]).astype(np.float32)
    means += jitter * rng.normal(size=means.shape).astype(np.float32)
    ids = np.concatenate([np.full(420, 1), np.full(420, 2), np.zeros(560)]).astype(np.int64)
    colors = np.concatenate([np.tile([0.9, 0.15, 0.1], (420, 1)),
                             np.tile([0.1, 0.2, 0.9], (420, 1)),
                             np.tile([0.6, 0.6, 0.55], (560, 1))]).astype(np.float32)
    scales = np.concatenate([np.full(840, 0.05), np.full(560, 0.09)]).astype(np.float32)
    return means, colors, scales, ids


def _scene(seed: int, jitter: float = 0.0):
    means, colors, scales, ids = _gaussians(seed, jitter)
    n = len(means)
    scene = GaussianScene.from_colors(torch.from_numpy(means), torch.from_numpy(colors),
                                      torch.from_numpy(scales), torch.full((n,), 0.8))
    return scene, ids


def write_point_cloud(path, *, seed: int = 0, jitter: float = 0.0) -> Path:
    """Write only the scene's Gaussians (e.g. moved by ``jitter``: another scene) to ``path``."""
    save_ply(_scene(seed, jitter)[0], path)
    return Path(path)


def _cameras(num_views: int, width: int, height: int):
    cameras = []
    for i in range(num_views):
        angle = -math.pi / 2 + 2.0 * math.pi * i / num_views  # a full ring: all sides seen
        eye = (2.3 * math.cos(angle), 2.3 * math.sin(angle), 1.4)
        cameras.append(Camera.look_at(eye, (0.0, 0.0, 0.15), width=width, height=height,
                                      fov_y_deg=45.0, name=f'frame_{i + 1:05d}.png'))
    return cameras


def write_two_object_scene(root, *, num_views: int = 6, test_views=(2, 5), width: int = 48,
                           height: int = 36, seed: int = 0, jitter: float = 0.0) -> Path:
    """Write the two-object scene to ``root``; ``jitter`` moves the Gaussians (another scene).

    Test views are 1-based frame numbers. Returns ``root``.
    """
    root = Path(root)
    scene, ids = _scene(seed, jitter)
    cameras = _cameras(num_views, width, height)
    for i, camera in enumerate(cameras):
        frame = f'frame_{i + 1:05d}'
        split = 'test' if i + 1 in test_views else 'train'
        rgb, labels = render_ground_truth(
            scene.means, scene.rotations, scene.scales, scene.opacities, scene.colors,
            torch.from_numpy(ids), 2, camera, background_rgb=(1.0, 1.0, 1.0), backend='cpu')
        write_image_png(root / 'images' / f'{frame}.png', rgb.permute(1, 2, 0).numpy())
        entries = []
        for category, object_id in CATEGORIES.items():
            mask = (labels == object_id).numpy()
            if mask.sum() < 2:
                continue
            write_mask_png(root / 'gt_mask' / mask_relpath(frame, category), mask)
            sentences = (TEST_SENTENCES if split == 'test' else TRAIN_SENTENCES)[category]
            entries.append((category, mask_relpath(frame, category), sentences))
        write_json(root / 'json' / f'{frame}.json', frame_json(entries))
    write_colmap_text(root / 'sparse' / '0', cameras)
    save_ply(scene, root / 'point_cloud.ply')
    np.save(root / 'object_ids.npy', ids.astype(np.int32))
    expressions = []
    for split, table in (('train', TRAIN_SENTENCES), ('test', TEST_SENTENCES)):
        for category, sentences in table.items():
            for sentence in sentences:
                kind, family = KINDS[sentence]
                expressions.append({'category': category, 'sentence': sentence, 'kind': kind,
                                    'split': split, 'form': {'family': family}})
    manifest = {
        'split': {'test_frames': [f'frame_{i:05d}' for i in test_views]},
        'objects': [{'category': c, 'id': i} for c, i in CATEGORIES.items()],
        'object_ids': 'object_ids.npy', 'point_cloud': 'point_cloud.ply',
        'expressions': expressions,
    }
    (root / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    return root


def tiny_encoder_folder(root) -> Path:
    """Save a random tiny BERT (hidden 32, 2 layers) with the bundled tokenizer to ``root``."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from refersplat_ros.core.text.encoder import bundled_model_path

    root = Path(root)
    if (root / 'config.json').is_file():
        return root
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()), local_files_only=True)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                                 num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64))
    model.save_pretrained(str(root))
    tokenizer.save_pretrained(str(root))
    return root
