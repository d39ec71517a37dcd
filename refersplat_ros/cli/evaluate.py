"""``refersplat eval``: Ref-LERF mIoU of every checkpoint of a run (docs/METHOD.md#evaluation).

Examples::

    refersplat eval --run runs/full
    refersplat eval --run runs/full --ovs          # category names as queries
    refersplat eval --run runs/full --split train  # fit: training views and expressions
    refersplat eval --run runs/full --data scenes/other   # fails: checkpoint of another scene
"""
import argparse
import math
from pathlib import Path

from refersplat_ros.cli.options import add_device, add_grounding, add_progress, add_test_frames
from refersplat_ros.core.evaluate.evaluator import EvalConfig, evaluate_run, SPLITS
from refersplat_ros.core.field.masks import EMPTY_PIXEL_RULES


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--run', required=True, type=Path, help='run folder of refersplat train')
    parser.add_argument('--data', type=Path, default=None,
                        help='scene folder (default: the one recorded in the checkpoints)')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder (default RUN/eval or RUN/eval_ovs)')
    parser.add_argument('--ovs', action='store_true',
                        help='open-vocabulary mode: category names as queries')
    add_test_frames(parser, 'the test views (default: those the run was trained with)')
    parser.add_argument('--empty-pixels', choices=EMPTY_PIXEL_RULES, default='background',
                        help='uncovered pixels (M = 0): background (default) or the literal '
                             'M >= 0 rule of the paper (foreground)')
    parser.add_argument('--split', choices=SPLITS,
                        default='test',
                        help='test: the protocol (default); train: training views with their '
                             'training expressions (fit); test-seen-wording: test views with '
                             'the training expressions (new views, seen wording)')
    parser.add_argument('--no-overlays', action='store_true', help='do not write PNG overlays')
    add_grounding(parser)
    add_device(parser)
    add_progress(parser)


def _pct(value: float) -> str:
    return 'n/a' if value is None or math.isnan(value) else f'{100.0 * value:.1f}'


def run(args) -> int:
    result = evaluate_run(EvalConfig(
        run=args.run, data=args.data, test_frames=args.test_frames, out=args.out,
        device=args.device, ovs=args.ovs, empty_pixels=args.empty_pixels,
        overlays=not args.no_overlays, progress=not args.no_progress, split=args.split,
        grounding=args.grounding))
    print(f'{result.mode} evaluation of {result.run_dir}, {result.split} split (mIoU in %, '
          f'empty pixels: {result.empty_pixels})')
    for stage in result.stages:
        for label, ev in (('last', stage.last), ('best', stage.best)):
            subsets = ', '.join(f'{k} {_pct(v.average)}' for k, v in ev.subsets.items())
            sel = ev.selection_means()
            print(f'stage {stage.stage} {label}: {ev.checkpoint.name} (step {ev.step}) '
                  f'mIoU {_pct(ev.miou)} (paper rule {_pct(ev.paper_summary.average)}; '
                  f'{sum(ev.summary.num_pairs.values())} pairs, {ev.summary.num_skipped} '
                  f'skipped)' + (f'; {subsets}' if subsets else '') +
                  (f'; 3D right object {_pct(sel["right_object"])} precision '
                   f'{_pct(sel["precision"])} recall {_pct(sel["recall"])} centroid error '
                   f'{sel["centroid_error"]:.3f}' if ev.selection else ''))
    print(f'results: {result.out_dir / "summary.json"}')
    return 0
