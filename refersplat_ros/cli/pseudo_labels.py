"""``refersplat pseudo-labels``: one pseudo mask per (frame, object) from detector candidates.

Example::

    refersplat pseudo-labels candidates/ data/ramen/gt_mask --test-frames 6,24,60,65,81,119,128

The selection rule and the candidate layout are in ``core/labels/pseudo_labels.py``.
"""
import argparse
from pathlib import Path

from refersplat_ros.cli.options import add_test_frames
from refersplat_ros.core.labels.pseudo_labels import METHODS


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('candidates', type=Path,
                        help='candidate folder: <frame>/<category>/scores.json + mask PNGs')
    parser.add_argument('output', type=Path, help='output folder, usually <scene>/gt_mask')
    parser.add_argument('--method', choices=METHODS, default='weighted',
                        help='weighted = confidence-weighted IoU (default), top1 = most confident')
    parser.add_argument('--area-cap', type=float, default=None,
                        help='drop candidates covering more than this image fraction (e.g. 0.15)')
    add_test_frames(parser, 'frames to skip: the test frames keep their human ground truth')
    parser.add_argument('--overwrite', action='store_true', help='replace existing masks')


def run(args) -> int:
    from refersplat_ros.core.labels.pseudo_labels import select_folder

    records = select_folder(args.candidates, args.output, method=args.method,
                            area_cap=args.area_cap, exclude_frames=args.test_frames or (),
                            overwrite=args.overwrite)
    empty = sum(r.selected is None for r in records)
    print(f'wrote {len(records)} pseudo masks to {args.output} ({empty} empty)')
    return 0
