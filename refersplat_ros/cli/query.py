"""``refersplat query``: select the Gaussians a referring expression names, with a checkpoint.

Example::

    refersplat query --checkpoint runs/full/checkpoints/last.safetensors --text "the red mug"

The scene and the text encoder default to those recorded in the checkpoint. The selection is
the node's (``ReferringModel.query``). Exit code 0 when every text found its target, 1 when one
did not.
"""
import argparse
from pathlib import Path

from refersplat_ros.cli.main import EXIT_NO_MATCH, EXIT_OK
from refersplat_ros.cli.options import add_device, add_text_encoder, text_encoder_config
from refersplat_ros.core.errors import DatasetError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--checkpoint', required=True, type=Path,
                        help='referring-field checkpoint (.safetensors)')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: recorded in the checkpoint')
    parser.add_argument('--text', required=True, action='append',
                        help='referring expression (repeat for several)')
    add_text_encoder(parser, 'recorded in the checkpoint')
    parser.add_argument('--threshold', type=float, default=0.5,
                        help='select Gaussians with sigmoid(m) >= this (default 0.5)')
    parser.add_argument('--no-cluster', action='store_true',
                        help='keep every selected Gaussian (no DBSCAN instance split)')
    add_device(parser)


def run(args) -> int:
    from refersplat_ros.core.inference.model import ReferringModel
    from refersplat_ros.core.inference.selection import SelectionConfig
    from refersplat_ros.core.runs import run_info

    selection = SelectionConfig(threshold=args.threshold, cluster=not args.no_cluster)
    selection.validate()
    recorded = run_info(args.checkpoint)
    scene = args.scene or recorded.scene_path
    if scene is None:
        raise DatasetError(f'{args.checkpoint} records no scene; pass --scene')
    encoder = text_encoder_config(args.text_encoder) or recorded.text_encoder
    model = ReferringModel.load(scene, args.checkpoint, encoder, device=args.device)
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
    return EXIT_OK if failed == 0 else EXIT_NO_MATCH
