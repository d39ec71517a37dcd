"""Normals benchmark: oriented Gaussian normals against the true surface normals of Ref-Synth.

Each Gaussian's normal is its shortest axis (``core/scene/normals.py``), oriented towards the
training views: by its view direction (``ViewWeights.view_directions`` over the training cameras,
what the trainer saves in the checkpoint) or, as checkpoints without it do, by the fallback
(towards the nearest training camera). The error is the angle to the true outward surface normal,
on the objects only (background id 0 left out):

- generated scenes: the Gaussians are the generator's surfels (a sanity row; their true normal is
  the generator's, +z of each surfel's rotation);
- reconstructed scenes (``make-scene --reconstructed``: Gaussians fitted to the images, the real
  test): the true normal of a fitted Gaussian is that of the nearest true Gaussian of the same
  object (``true_point_cloud.ply`` / ``true_object_ids.npy`` beside the fitted ones).

Signed error is 0-180 degrees (orientation included), axis error 0-90 (sign ignored); flipped is
the share with a signed error over 90 degrees. Prints a table and writes it to docs/RESULTS.md
(section "Normals"). Usage::

    python bench/normals.py
    python bench/normals.py --generated default:0 --reconstructed runs/language/default_s0_rec
"""
import argparse
import os
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import environment, publish  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Normals'
ORIENTATIONS = ('view direction', 'fallback: nearest camera')


def _errors(normals, true):
    """Return (signed, axis) angular errors in degrees of unit normals against true ones."""
    import numpy as np
    cos = np.clip((normals * true).sum(axis=1), -1.0, 1.0)
    return np.degrees(np.arccos(cos)), np.degrees(np.arccos(np.abs(cos)))


def _oriented(quats, scales, means, cameras, weights_scene):
    """Return {orientation: normals} for the Gaussians of ``weights_scene`` seen by ``cameras``."""
    import torch

    from refersplat_ros.core.render.compositing import ViewWeights
    from refersplat_ros.core.scene.normals import gaussian_normals
    weights = ViewWeights(weights_scene, torch.device('cpu'), 1 << 32)
    direction = weights.view_directions(cameras)
    centres = torch.stack([c.center for c in cameras])
    return {ORIENTATIONS[0]: gaussian_normals(quats, scales, means, direction),
            ORIENTATIONS[1]: gaussian_normals(quats, scales, means, viewpoints=centres)}


def generated(spec: str):
    """Return (label, {orientation: normals}, true normals, curvature) of ``preset:seed``."""
    from refersplat_ros.core.datasets.ref_synth.generator import generate_scene, preset_config
    from refersplat_ros.core.scene.normals import rotation_columns, surface_variation
    preset, seed = spec.split(':')
    scene = generate_scene(preset_config(preset, seed=int(seed)))
    g = scene.gaussians
    train = [c for i, c in enumerate(scene.cameras) if i not in scene.test_indices]
    normals = _oriented(g.quats, g.scales, g.means, train, g.to_scene())
    objects = g.object_ids > 0
    true = rotation_columns(g.quats)[:, :, 2]  # quats_from_normals rotates +z onto the normal
    return (f'generated {spec}', {k: v[objects] for k, v in normals.items()}, true[objects],
            surface_variation(g.scales)[objects])


def reconstructed(folder: Path):
    """Return (label, {orientation: normals}, true normals, curvature) of a reconstructed scene."""
    import numpy as np

    from refersplat_ros.core.datasets.ref_synth.generator import (TRUE_OBJECT_IDS_NAME,
                                                                  TRUE_POINT_CLOUD_NAME)
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from refersplat_ros.core.reconstruct.transfer import nearest
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.scene.normals import rotation_columns, surface_variation
    dataset = load_referring_dataset(folder)
    scene = load_scene(dataset.scene_path)
    ids = np.load(folder / 'object_ids.npy').reshape(-1)
    true_scene = load_scene(folder / TRUE_POINT_CLOUD_NAME)
    true_ids = np.load(folder / TRUE_OBJECT_IDS_NAME).reshape(-1)
    true_normals = rotation_columns(true_scene.quats)[:, :, 2]
    cameras = [view.camera for view in dataset.train_views]
    normals = _oriented(scene.quats, scene.log_scales, scene.means, cameras, scene)
    objects = np.nonzero(ids > 0)[0]
    true = np.zeros((len(objects), 3), np.float32)
    for obj in np.unique(ids[objects]):
        rows = ids[objects] == obj
        reference = np.nonzero(true_ids == obj)[0]
        _, index = nearest(scene.means[objects[rows]], true_scene.means[reference])
        true[rows] = true_normals[reference[index.numpy()]]
    return (f'reconstructed {folder.name}', {k: v[objects] for k, v in normals.items()}, true,
            surface_variation(scene.scales)[objects])


def _row(label, orientation, normals, true):
    import numpy as np
    known = np.linalg.norm(normals, axis=1) > 0  # degenerate Gaussians have no normal
    signed, axis = _errors(normals[known], true[known])
    return [label, orientation, f'{int(known.sum()):,}', f'{np.median(signed):.1f}',
            f'{np.median(axis):.1f}', f'{np.percentile(axis, 90):.1f}',
            f'{100.0 * np.mean(signed > 90.0):.1f}']


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--generated', nargs='*', default=['default:0', 'hard:0'],
                        help='preset:seed of generated scenes (sanity rows)')
    parser.add_argument('--reconstructed', nargs='*', type=Path,
                        default=[ROOT / 'runs' / 'language' / 'default_s0_rec',
                                 ROOT / 'runs' / 'target_3d' / 'hard_s0_rec'],
                        help='make-scene --reconstructed folders')
    parser.add_argument('--num-threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--report', type=Path, default=ROOT / 'docs' / 'RESULTS.md')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    import numpy as np
    import torch
    torch.set_num_threads(args.num_threads)
    results = [generated(spec) for spec in args.generated]
    results += [reconstructed(folder) for folder in args.reconstructed]
    head = ['scene', 'orientation', 'object Gaussians', 'median signed error °',
            'median axis error °', 'p90 axis error °', 'flipped %']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for label, normals, true, _ in results:
        for orientation in ORIENTATIONS:
            row = _row(label, orientation, normals[orientation], true)
            lines.append('| ' + ' | '.join(row) + ' |')
            print(lines[-1], flush=True)
    pooled = {}
    for kind in ('generated', 'reconstructed'):
        chosen = [r for r in results if r[0].startswith(kind)]
        if chosen:
            pooled[kind] = [np.median(_errors(np.concatenate([r[1][o] for r in chosen]),
                                              np.concatenate([r[2] for r in chosen]))[i])
                            for o in ORIENTATIONS for i in (0, 1)]
        if len(chosen) > 1:
            for orientation in ORIENTATIONS:
                normals = np.concatenate([r[1][orientation] for r in chosen])
                true = np.concatenate([r[2] for r in chosen])
                row = _row(f'**all {kind}**', orientation, normals, true)
                lines.append('| ' + ' | '.join(row) + ' |')
    folders = ' '.join(str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)
                       for f in args.reconstructed)
    text = (f'## {SECTION}\n\n`python bench/normals.py --generated {" ".join(args.generated)} '
            f"--reconstructed {folders}` {environment(args.num_threads)}. Each Gaussian's "
            'normal is its shortest axis (`core/scene/normals.py`), oriented by its view '
            'direction (the compositing-weighted sum of unit vectors to the training cameras, '
            '`ViewWeights.view_directions`, saved in the checkpoint as `scene.view_direction`) '
            'or, as a fallback, towards the nearest training camera (a node whose checkpoint '
            'has no view directions turns them towards the camera of the reference view). '
            'Errors '
            'against the true outward surface normal on the objects (background left out): '
            "generated scenes are the generator's own surfels (a sanity row); on reconstructed "
            'scenes (`make-scene --reconstructed`, Gaussians fitted to the images) the true '
            'normal of a fitted Gaussian is that of the nearest true Gaussian of the same '
            'object. Signed error 0-180° (orientation included), axis error 0-90° (sign '
            'ignored), flipped: signed error over 90°. Target (issue 26): median error <= 15° '
            'on Ref-Synth objects.\n\n' + '\n'.join(lines) + '\n')
    if 'reconstructed' in pooled:
        signed, axis, fallback, _ = pooled['reconstructed']
        verdict = 'met' if signed <= 15.0 else 'missed'
        text += ('\nReading: the generated rows check the axis (exact on surfels) and the '
                 'orientation, whose flips are the surfaces no training view faces (the '
                 'undersides of objects standing on the table or on another object), which the '
                 'views only see through the objects. On fitted Gaussians the target is '
                 f'{verdict} ({signed:.1f}° median signed error over the reconstructed scenes): '
                 f'the axis itself is {axis:.1f}° off in the median, fitted Gaussians being '
                 'flattened but not surfels; the view direction brings the signed error from '
                 f'{fallback:.1f}° (nearest camera) to {signed:.1f}°.\n')
    reconstructed_rows = [r for r in results if r[0].startswith('reconstructed')]
    if reconstructed_rows:
        text += '\n' + curvature_table(reconstructed_rows) + '\n'
    publish(text, args.report, SECTION, not args.no_write)
    return 0


#: Bins of the clouds' ``curvature`` field (PCL's: 0 flat, 1/3 round) for the breakdown.
CURVATURE_BINS = (0.0, 0.02, 0.05, 0.1, 1.0)


def curvature_table(results) -> str:
    """Return the reconstructed scenes' errors (view direction) by the Gaussians' curvature."""
    import numpy as np
    normals = np.concatenate([r[1][ORIENTATIONS[0]] for r in results])
    true = np.concatenate([r[2] for r in results])
    curvature = np.concatenate([r[3] for r in results])
    signed, axis = _errors(normals, true)
    lines = ['By the `curvature` field the clouds carry with each normal (as in PCL: the smallest '
             'variance over their sum, 0 for a flat Gaussian, 1/3 for a round one), all '
             'reconstructed object Gaussians, oriented by view direction:', '',
             '| curvature | share of Gaussians | median signed error ° | median axis error ° '
             '| flipped % |', '|---|---|---|---|---|']
    for low, high in zip(CURVATURE_BINS[:-1], CURVATURE_BINS[1:]):
        rows = (curvature >= low) & (curvature < high)
        if rows.any():
            lines.append(f'| {low:g}-{high:g} | {100 * rows.mean():.0f} % | '
                         f'{np.median(signed[rows]):.1f} | {np.median(axis[rows]):.1f} | '
                         f'{100 * np.mean(signed[rows] > 90):.1f} |')
    for cut in (0.05, 0.1):
        rows = curvature < cut
        lines.append(f'| **below {cut:g}** | {100 * rows.mean():.0f} % | '
                     f'{np.median(signed[rows]):.1f} | {np.median(axis[rows]):.1f} | '
                     f'{100 * np.mean(signed[rows] > 90):.1f} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
