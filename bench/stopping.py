"""When should training stop? Fit curves of runs trained to convergence, and each stopping rule.

For each scene: train the referring field with the default recipe and a strict convergence rule
(``--reference-patience`` rounds without a ``fit_min_delta`` gain, 3 by default: what the
recipe did until 2026-12-07), keeping a checkpoint every round. Then, for each candidate
patience, find the round where that rule would have stopped (the rounds before are the same
run: only the stop differs, the learning-rate halving on a plateau does not), and score that
round's checkpoint against the last one: the round fit (mask IoU on the training views), the
training time, and the 3D right-object rate of the field alone (with the visibility rule: the
node's default answer in the object graph does not depend on the field's fit) on the training
sentences.

Prints a table and writes it to docs/RESULTS.md (section "Stopping rule"). Usage::

    python bench/stopping.py --scenes default:0 default:1 hard:0 hard:1   # ~30 min, 2 cores
"""
import argparse
import json
import os
from pathlib import Path
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import environment, publish  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Stopping rule'
PATIENCES = (1, 2, 3)


def stop_round(history, patience: int, min_delta: float) -> int:
    """Return the rounds trained under ``fit_converged(patience, min_delta)`` (all if never)."""
    from refersplat_ros.core.train.trainer import fit_converged
    for rounds in range(1, len(history) + 1):
        if fit_converged(history[:rounds], patience, min_delta):
            return rounds
    return len(history)


def run_scene(spec: str, out: Path, threads: int, reference_patience: int) -> dict:
    import torch

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from refersplat_ros.core.evaluate.evaluator import Evaluator
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    from refersplat_ros.core.runs import run_info, step_checkpoint_name
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.text.encoder import load_text_encoder
    from refersplat_ros.core.train.trainer import train, TrainConfig

    preset, seed = spec.split(':')
    data, run = out / f'{preset}_s{seed}', out / f'{preset}_s{seed}_run'
    if not (data / 'manifest.json').is_file():
        make_scene(preset_config(preset, seed=int(seed)), data, overwrite=True, progress=False,
                   contact_sheet=False)
    config = TrainConfig(data=data, out=run, seed=int(seed), num_threads=threads, resume=True,
                         progress=False, fit_patience=reference_patience)
    result = train(config)
    stage = result.stages[0]
    last = load_checkpoint(stage.last_checkpoint)
    history = list(last.extra['fit_history'])
    per_round = int(last.extra['round_steps'])
    wall = float(last.extra['wall_time_s'])
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    encoder = load_text_encoder(run_info(last).text_encoder, torch.device('cpu'))
    evaluator = Evaluator(dataset, scene, encoder, torch.device('cpu'), False, 'background',
                          'train', grounding='field')
    rows = {}
    for patience in PATIENCES:
        rounds = stop_round(history, patience, config.fit_min_delta)
        steps = min(rounds * per_round, stage.steps)
        path = stage.checkpoint_dir / step_checkpoint_name(steps)
        if rounds == len(history) or not path.is_file():
            path = stage.last_checkpoint
        ev = evaluator.evaluate(path)
        rows[patience] = {'rounds': rounds, 'steps': steps, 'fit': history[rounds - 1],
                          'best_fit': max(history[:rounds]), 'miou': ev.miou,
                          'minutes': wall * steps / stage.steps / 60.0,
                          'right_object': ev.selection_means()['right_object']}
    return {'scene': spec, 'objects': len(dataset.categories), 'round_steps': per_round,
            'history': history, 'steps': stage.steps, 'minutes': wall / 60.0, 'rules': rows}


def table(records) -> str:
    head = ['scene', 'objects', 'rule', 'stops at (steps)', 'minutes', 'round fit',
            'best round fit by then', 'below the last round', 'checkpoint mIoU, training views',
            'right object, field (train sentences)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for rec in records:
        final = rec['history'][-1]
        for patience, row in sorted(rec['rules'].items(), key=lambda kv: -int(kv[0])):
            lines.append('| ' + ' | '.join([
                rec['scene'], str(rec['objects']), f'patience {patience}',
                str(row['steps']), f"{row['minutes']:.1f}", f"{100 * row['fit']:.1f}",
                f"{100 * row['best_fit']:.1f}", f"{100 * (final - row['best_fit']):.1f}",
                f"{100 * row['miou']:.1f}", f"{100 * row['right_object']:.1f}"]) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenes', nargs='+', default=['default:0', 'default:1', 'hard:0',
                                                        'hard:1'])
    parser.add_argument('--out', type=Path, default=ROOT / 'runs' / 'stopping')
    parser.add_argument('--num-threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--reference-patience', type=int, default=3,
                        help='patience of the runs trained to convergence (default 3)')
    parser.add_argument('--report', type=Path, default=ROOT / 'docs' / 'RESULTS.md')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for spec in args.scenes:
        start = time.monotonic()
        rec = run_scene(spec, args.out, args.num_threads, args.reference_patience)
        (args.out / f"{spec.replace(':', '_s')}.json").write_text(json.dumps(rec, indent=1))
        records.append(rec)
        print(f'{spec}: {rec["steps"]} steps, {rec["minutes"]:.1f} min '
              f'({time.monotonic() - start:.0f} s with scoring)', flush=True)
    text = (f'## {SECTION}\n\n`python bench/stopping.py --scenes {" ".join(args.scenes)}` '
            f'{environment(args.num_threads)}. Each scene trained once with the default '
            f'recipe to convergence (patience {args.reference_patience}: '
            'rounds without a 0.005 gain of the round fit); each rule is where a smaller '
            'patience stops the same run (the rounds before are identical). Round fit: mask '
            'IoU on the training views over the round, while it trains (a rule keeps the best '
            "round's field); checkpoint mIoU: the Ref-LERF mIoU of the field of that round's "
            'checkpoint on the training views and sentences (the fit of what was saved); right '
            'object: the field alone with the visibility rule on the training sentences (the '
            "node's default answer in the object graph does not depend on the fit). Minutes: "
            'training loop time to that round.\n\n' + table(records) + '\n')
    publish(text, args.report, SECTION, not args.no_write)
    return 0


if __name__ == '__main__':
    sys.exit(main())
