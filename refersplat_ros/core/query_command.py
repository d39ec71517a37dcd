"""``refersplat query``: select the Gaussians a referring expression names, with a checkpoint.

Example::

    refersplat query --ckpt runs/full/checkpoints/last.safetensors --text "the red mug"

The scene and the text encoder default to those recorded in the checkpoint.
"""
import argparse
from pathlib import Path

from refersplat_ros.core.errors import RefersplatError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--ckpt', required=True, type=Path, help='referring-field checkpoint')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: recorded in the checkpoint')
    parser.add_argument('--text', required=True, action='append',
                        help='referring expression (repeat for several)')
    parser.add_argument('--encoder', default=None,
                        help='text encoder (default: recorded in the checkpoint)')
    parser.add_argument('--threshold', type=float, default=0.5,
                        help='select Gaussians with sigmoid(m) >= this (default 0.5)')
    parser.add_argument('--no-cluster', action='store_true',
                        help='keep every selected Gaussian (no DBSCAN instance split)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, ...')


def run(args) -> int:
    from refersplat_ros.core.inference import ReferringModel
    from refersplat_ros.core.selection import SelectionConfig
    from refersplat_ros.core.text_encoder import TextEncoderConfig
    from refersplat_ros.core.training import run_info

    try:
        info = run_info(args.ckpt)
        scene = args.scene or info['scene_path']
        if scene is None:
            print(f'error: {args.ckpt} records no scene; pass --scene')
            return 1
        encoder = info['text_encoder'] if args.encoder is None else TextEncoderConfig(
            model=args.encoder)
        model = ReferringModel.load(scene, args.ckpt, encoder, device=args.device)
        selection = SelectionConfig(threshold=args.threshold, cluster=not args.no_cluster)
        selection.validate()
    except (RefersplatError, ValueError) as exc:
        print(f'error: {exc}')
        return 1
    failed = 0
    for text in args.text:
        outcome = model.query(text, selection)
        if outcome.selection is None or not outcome.selection.ok:
            failed += 1
            print(f'{text!r}: {outcome.status.name} {outcome.message}'.rstrip())
            continue
        chosen = outcome.selection
        centre = ', '.join(f'{v:.4f}' for v in chosen.best.centroid)
        millis = outcome.timings_ms['encode'] + outcome.timings_ms['field']
        print(f'{text!r}: {len(chosen.indices)} Gaussians, score {chosen.score:.4f}, '
              f'centroid ({centre}), {millis:.1f} ms')
    return 0 if failed == 0 else 3
