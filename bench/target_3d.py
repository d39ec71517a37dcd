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

Prints a table and writes it to docs/RESULTS.md (section "3D target"). Scenes and runs are
kept in ``--out`` (reused when present). Usage::

    python bench/target_3d.py --seeds 0 1          # about 15-30 min a seed on 2 CPU cores
    python bench/target_3d.py --preset hard-tiny --seeds 0 --no-write   # a quick look
"""
import argparse
import datetime
import json
import math
import os
from pathlib import Path
import platform
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import write_section  # noqa: E402 (bench/ is the script's folder)

SECTION = '3D target'
SPLITS = (('train', 'fit'), ('test-seen-wording', 'new views'), ('test', 'held-out'))
# (name, SelectionConfig overrides, grounding): the node's default answers in the object graph
# (the chosen object's Gaussians, docs/LANGUAGE.md); 'field' rows select from the field's
# responses alone, with the visibility rule and without it.
SELECTIONS = (('object graph (node default)', {}, 'graph'),
              ('field + visibility', {}, 'field'),
              ('field + paper rule',
               {'seen_fraction': 0.0, 'rank_by': 'mass', 'propagate': False}, 'field'))


def run_seed(preset: str, seed: int, out: Path, threads: int, max_steps: int) -> dict:
    import torch

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from refersplat_ros.core.evaluate.evaluator import Evaluator
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    from refersplat_ros.core.inference.selection import SelectionConfig
    from refersplat_ros.core.runs import run_info
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.text.encoder import load_text_encoder
    from refersplat_ros.core.train.trainer import train, TrainConfig

    data, run = out / f'{preset}_s{seed}', out / f'{preset}_s{seed}_run'
    if not (data / 'manifest.json').is_file():
        make_scene(preset_config(preset, seed=seed), data, overwrite=True, progress=False,
                   contact_sheet=False)
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
           'num_gaussians': scene.num_gaussians, 'objects': len(dataset.categories)}
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
    head = ['seed', 'steps', 'train min', 'fit (last round)', 'split', 'selection', 'mIoU 2D',
            'right object', '3D precision', '3D recall', 'centroid error m', 'expressions']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        for _, label in SPLITS:
            for name, _, _ in SELECTIONS:
                cell = row[f'{label}|{name}']
                lines.append('| ' + ' | '.join([
                    str(row['seed']), str(row['steps']), f'{row["train_min"]:.1f}',
                    _pct(row['fit_history'][-1] if row['fit_history'] else None), label, name,
                    _pct(cell['miou']), _pct(cell['right_object']), _pct(cell['precision']),
                    _pct(cell['recall']), f'{cell["centroid_error"]:.3f}',
                    str(cell['expressions'])]) + ' |')
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
    args = parser.parse_args(argv)
    from refersplat_ros.core.train.trainer import TrainConfig
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        record = args.out / f'{args.preset}_s{seed}.json'
        before = json.loads(record.read_text()) if record.is_file() else None
        row = run_seed(args.preset, seed, args.out, args.num_threads,
                       args.max_steps or TrainConfig.max_steps)
        if before and before['steps'] == row['steps'] and before['train_min'] > row['train_min']:
            # a finished run scored again (e.g. with a new selection): keep its training time
            row['train_min'], row['wall_min'] = before['train_min'], before['wall_min']
        record.write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(f'seed {seed}: {row["steps"]} steps, {row["train_min"]:.1f} min', flush=True)
    import torch
    text = (f'## {SECTION}\n\n`python bench/target_3d.py --preset {args.preset} --seeds '
            f'{" ".join(map(str, args.seeds))}` on {datetime.date.today().isoformat()}: '
            f'{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, '
            f'{args.num_threads} threads. Ref-Synth `{args.preset}` preset '
            f'({rows[0]["objects"]} objects, {rows[0]["num_gaussians"]:,} Gaussians); each seed '
            'is its own scene. Training: the default recipe (until the fit stops improving'
            + (f', capped at {args.max_steps} steps' if args.max_steps else '') + '). '
            "Scores are means over the split's expressions; 3D scores use the node's "
            "answer: in the object graph (the default: the named object's Gaussians), or from "
            "the field's responses with the visibility rule and without it (the paper's "
            "threshold and DBSCAN). Right object: most of the published instance's Gaussians "
            "belong to the named object; recall counts all of the object's Gaussians.\n\n"
            + table(rows) + '\n')
    print('\n' + text)
    if not args.no_write:
        write_section(text, args.report, SECTION)
        print(f'written to {args.report}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
