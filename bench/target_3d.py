"""3D-target benchmark: whether the published target is the object the sentence names.

For each seed: generate a Ref-Synth scene of the ``hard`` preset (>= 12 objects of very different
sizes, a long shelf, stacked objects, identical twins, sentences naming 2-3 other objects),
train a referring field with the default recipe (until the fit stops improving), then score with
``Evaluator`` on three splits (training views + training sentences = fit; test views + training
sentences = new views, seen wording; test views + held-out sentences = the protocol):

- 2D: Ref-LERF mIoU of the rendered masks;
- 3D, with the node's selection (``inference/selection.py``): the right-object rate of the
  published instance, precision and recall of its Gaussians against the object's (all of them,
  unseen ones included), centroid error; for the node's default answer in the object graph and
  for the field alone, with visibility and without it
  (``seen_fraction=0, rank_by='mass', propagate=False``: the paper's threshold and
  DBSCAN).

With ``--reconstructed`` each seed is scored twice, side by side: on the true Gaussians and on
the same scene made a capture (``make-scene --reconstructed``: Gaussians fitted to the training
images, ids from the true surface, floaters count against precision), with the reconstruction's
held-out PSNR and time and the purity of the objects lifted from the training masks (the share
of each object's labelled Gaussians that lie on that object).

Prints a table and writes it to docs/RESULTS.md (section "3D target", or "3D target:
reconstructed scenes"). Scenes and runs are kept in ``--out`` (reused when present). Usage::

    python bench/target_3d.py --seeds 0 1          # about 15-30 min a seed on 2 CPU cores
    python bench/target_3d.py --preset hard-tiny --seeds 0 --no-write   # a quick look
    python bench/target_3d.py --seeds 0 --reconstructed   # + ~10 min of reconstruction a seed
"""
import argparse
import json
import math
import os
from pathlib import Path
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import environment, publish  # noqa: E402 (bench/ is the script's folder)

SECTION = '3D target'
SECTION_RECONSTRUCTED = '3D target: reconstructed scenes'
SPLITS = (('train', 'fit'), ('test-seen-wording', 'new views'), ('test', 'held-out'))
# (name, SelectionConfig overrides, grounding): the node's default answers in the object graph
# (the chosen object's Gaussians, docs/LANGUAGE.md); 'field' rows select from the field's
# responses alone, with the visibility rule and without it.
SELECTIONS = (('object graph (node default)', {}, 'graph'),
              ('field + visibility', {}, 'field'),
              ('field + paper rule',
               {'seen_fraction': 0.0, 'rank_by': 'mass', 'propagate': False}, 'field'))


def run_seed(preset: str, seed: int, out: Path, threads: int, max_steps: int,
             reconstructed: bool = False) -> dict:
    from dataclasses import replace

    import numpy as np
    import torch

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from refersplat_ros.core.evaluate.evaluator import Evaluator
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    from refersplat_ros.core.inference.selection import SelectionConfig
    from refersplat_ros.core.runs import run_info
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.text.encoder import load_text_encoder
    from refersplat_ros.core.datasets.ref_synth.reconstructed import CaptureConfig
    from refersplat_ros.core.reconstruct.transfer import purity
    from refersplat_ros.core.train.trainer import train, TrainConfig

    name = f'{preset}_s{seed}' + ('_rec' if reconstructed else '')
    data, run = out / name, out / f'{name}_run'
    if not (data / 'manifest.json').is_file():
        config = preset_config(preset, seed=seed)
        if reconstructed:
            config = replace(config, capture=CaptureConfig())
        make_scene(config, data, overwrite=True, progress=False, contact_sheet=False)
    start = time.monotonic()
    result = train(TrainConfig(data=data, out=run, seed=seed, num_threads=threads,
                               max_steps=max_steps, resume=True, progress=False))
    train_s = time.monotonic() - start
    stage = result.stages[0]
    checkpoint = load_checkpoint(stage.last_checkpoint)
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    encoder = load_text_encoder(run_info(checkpoint).text_encoder, torch.device('cpu'))
    row = {'seed': seed, 'steps': stage.steps, 'train_min': train_s / 60.0,
           'wall_min': stage.wall_time_s / 60.0, 'fit_history': stage.fit_history,
           'num_gaussians': scene.num_gaussians, 'objects': len(dataset.categories),
           'scene': 'reconstructed' if reconstructed else 'true'}
    manifest = dataset.manifest
    ids = np.load(data / manifest['object_ids'])
    by_name = {o['category']: o['id'] for o in manifest['objects']}
    objects = checkpoint.objects
    if objects is not None:  # lifted labels -> object ids, then the share on the object
        lifted = np.array([by_name.get(n, -1) for n in objects.names] + [-1])
        labels = lifted[np.where(objects.labels >= 0, objects.labels, len(objects.names))]
        row['purity'] = float(np.nanmean(purity(ids, labels, max(by_name.values()))))
    if 'reconstruction' in manifest:
        rec = manifest['reconstruction']
        row.update(psnr=rec['psnr_test'], reconstruct_min=rec['seconds'] / 60.0,
                   floaters=rec['floaters'], true_gaussians=rec['true_num_gaussians'])
    for split, label in SPLITS:
        for name, overrides, grounding in SELECTIONS:
            evaluator = Evaluator(dataset, scene, encoder, torch.device('cpu'), False,
                                  'background', split, SelectionConfig(**overrides),
                                  grounding=grounding)
            ev = evaluator.evaluate(stage.last_checkpoint)
            row[f'{label}|{name}'] = {'miou': ev.miou, **ev.selection_means(),
                                      'expressions': len(ev.selection)}
    return row


def _pct(value) -> str:
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{100.0 * value:.1f}'


def table(rows: list) -> str:
    head = ['seed', 'scene', 'Gaussians', 'steps', 'train min', 'fit (last round)', 'split',
            'selection', 'mIoU 2D', 'right object', '3D precision', '3D recall',
            'centroid error m', 'expressions']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        for _, label in SPLITS:
            for name, _, _ in SELECTIONS:
                cell = row[f'{label}|{name}']
                lines.append('| ' + ' | '.join([
                    str(row['seed']), row.get('scene', 'true'), f"{row['num_gaussians']:,}",
                    str(row['steps']), f'{row["train_min"]:.1f}',
                    _pct(row['fit_history'][-1] if row['fit_history'] else None), label, name,
                    _pct(cell['miou']), _pct(cell['right_object']), _pct(cell['precision']),
                    _pct(cell['recall']), f'{cell["centroid_error"]:.3f}',
                    str(cell['expressions'])]) + ' |')
    return '\n'.join(lines)


def scene_table(rows: list) -> str:
    """Return the scenes' table: reconstruction quality, purity of the lifted objects."""
    head = ['seed', 'scene', 'Gaussians', 'reconstruction held-out PSNR dB',
            'reconstruction min', 'floaters', 'lifted-object purity %']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        rec = row.get('scene') == 'reconstructed'
        lines.append('| ' + ' | '.join([
            str(row['seed']), row.get('scene', 'true'),
            f"{row['num_gaussians']:,}" + (f" (true {row['true_gaussians']:,})" if rec else ''),
            f"{row['psnr']:.2f}" if rec else 'n/a', f"{row['reconstruct_min']:.1f}" if rec
            else 'n/a', f"{row['floaters']:,}" if rec else 'n/a',
            _pct(row.get('purity'))]) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', default='hard', help='Ref-Synth preset (default hard)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--out', type=Path, default=ROOT / 'runs' / 'target_3d')
    parser.add_argument('--num-threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--max-steps', type=int, default=None,
                        help='cap the training (default: TrainConfig.max_steps)')
    parser.add_argument('--report', type=Path, default=ROOT / 'docs' / 'RESULTS.md')
    parser.add_argument('--no-write', action='store_true')
    parser.add_argument('--reconstructed', action='store_true',
                        help='score each seed on its true Gaussians and on the scene '
                             'reconstructed from its images, side by side')
    args = parser.parse_args(argv)
    from refersplat_ros.core.train.trainer import TrainConfig
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for reconstructed in ((False, True) if args.reconstructed else (False,)):
            suffix = '_rec' if reconstructed else ''
            record = args.out / f'{args.preset}_s{seed}{suffix}.json'
            before = json.loads(record.read_text()) if record.is_file() else None
            row = run_seed(args.preset, seed, args.out, args.num_threads,
                           args.max_steps or TrainConfig.max_steps, reconstructed)
            if before and before['steps'] == row['steps'] and \
                    before['train_min'] > row['train_min']:
                # a finished run scored again (e.g. with a new selection): keep its time
                row['train_min'], row['wall_min'] = before['train_min'], before['wall_min']
            record.write_text(json.dumps(row, indent=1))
            rows.append(row)
            print(f'seed {seed} ({row["scene"]}): {row["steps"]} steps, '
                  f'{row["train_min"]:.1f} min', flush=True)
    text = (f'## {SECTION}\n\n`python bench/target_3d.py --preset {args.preset} --seeds '
            f'{" ".join(map(str, args.seeds))}'
            + (' --reconstructed' if args.reconstructed else '')
            + f'` {environment(args.num_threads)}. Ref-Synth `{args.preset}` preset '
            f'({rows[0]["objects"]} objects, {rows[0]["num_gaussians"]:,} Gaussians); each seed '
            'is its own scene. Training: the default recipe (until the fit stops improving'
            + (f', capped at {args.max_steps} steps' if args.max_steps else '') + '). '
            "Scores are means over the split's expressions; 3D scores use the node's "
            "answer: in the object graph (the default: the named object's Gaussians), or from "
            "the field's responses with the visibility rule and without it (the paper's "
            "threshold and DBSCAN). Right object: most of the published instance's Gaussians "
            "belong to the named object; recall counts all of the object's Gaussians."
            + (' Reconstructed: the scene made a capture (`make-scene --reconstructed`, '
               'docs/RECONSTRUCT.md): Gaussians fitted to the training images, ids from the '
               'true surface; floaters have the background id and count against precision.'
               '\n\n' + scene_table(rows) if args.reconstructed else '')
            + '\n\n' + table(rows) + '\n')
    if args.reconstructed:
        text = text.replace(f'## {SECTION}\n', f'## {SECTION_RECONSTRUCTED}\n', 1)
    publish(text, args.report, SECTION_RECONSTRUCTED if args.reconstructed else SECTION,
            not args.no_write)
    return 0


if __name__ == '__main__':
    sys.exit(main())
