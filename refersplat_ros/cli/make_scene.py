"""``refersplat make-scene``: write a Ref-Synth scene in the Ref-LERF layout.

Examples::

    refersplat make-scene --preset default --out scenes/default
    refersplat make-scene --preset tiny --out /tmp/tiny --seed 3
    refersplat make-scene --preset hard --out scenes/hard
    refersplat make-scene --out scenes/s7 --seed 7 --num-objects 8 --num-views 40 --width 320
"""
import argparse
from pathlib import Path

from refersplat_ros.cli.options import add_progress


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', required=True, type=Path, help='output scene folder')
    parser.add_argument('--preset', default='default',
                        choices=('default', 'tiny', 'hard', 'hard-tiny'),
                        help='default: 7 objects, ~30k Gaussians, 32 views at 160x120 (6 test); '
                             'tiny: 4 objects, <5k Gaussians, 6 views at 64x48 (2 test); '
                             'hard: 14 objects of very different sizes (a long shelf with '
                             'objects on it, a stacked box, identical twins), multi-anchor '
                             'sentences, ~33k Gaussians, 30 views at 160x120 (6 test); '
                             'hard-tiny: the hard scene with <8k Gaussians, 8 views at 64x48 '
                             '(2 test)')
    parser.add_argument('--seed', type=int, default=None, help='random seed (preset: 0)')
    parser.add_argument('--num-objects', type=int, default=None, help='number of objects K')
    parser.add_argument('--num-views', type=int, default=None, help='number of views M')
    parser.add_argument('--num-test-views', type=int, default=None, help='held-out test views')
    parser.add_argument('--width', type=int, default=None, help='image width (pixels)')
    parser.add_argument('--height', type=int, default=None, help='image height (pixels)')
    parser.add_argument('--density', type=float, default=None,
                        help='Gaussians per square metre of object surface (sets N)')
    parser.add_argument('--reconstructed', action='store_true',
                        help='make the scene a capture: write SfM-like sparse points, '
                             'reconstruct the Gaussians from the training images (refersplat '
                             'reconstruct) and ship those as the scene; masks and sentences '
                             'stay the true ones, ids come from the true surface '
                             '(docs/RECONSTRUCT.md#ref-synth-as-a-capture)')
    parser.add_argument('--reconstruct-steps', type=int, default=None,
                        help='steps of that reconstruction (default 2000)')
    parser.add_argument('--no-contact-sheet', action='store_true',
                        help='do not write contact_sheet.png')
    add_progress(parser)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous scene in --out')


def run(args) -> int:
    from dataclasses import replace

    from refersplat_ros.core.datasets.ref_synth.generator import (generate_scene, preset_config,
                                                                  summary)
    from refersplat_ros.core.datasets.ref_synth.reconstructed import CaptureConfig
    from refersplat_ros.core.reconstruct.fit import scaled_schedule
    from refersplat_ros.core.datasets.ref_synth.generator import write_scene
    from refersplat_ros.core.datasets.reflerf.layout import CONTACT_SHEET_NAME

    config = preset_config(args.preset, seed=args.seed, num_objects=args.num_objects,
                           num_views=args.num_views, width=args.width, height=args.height,
                           density=args.density, num_test_views=args.num_test_views)
    if args.reconstruct_steps is not None and not args.reconstructed:
        raise ValueError('--reconstruct-steps needs --reconstructed')
    if args.reconstructed:
        capture = CaptureConfig()
        if args.reconstruct_steps is not None:
            capture.reconstruct = scaled_schedule(capture.reconstruct, args.reconstruct_steps)
        config = replace(config, capture=capture)
    scene = generate_scene(config)
    manifest = write_scene(scene, args.out, overwrite=args.overwrite,
                           progress=not args.no_progress,
                           contact_sheet=not args.no_contact_sheet)
    counts = summary(scene)
    print(f'Ref-Synth scene written to {args.out}: ' +
          ', '.join(f'{v} {k}' for k, v in counts.items()))
    print(f'manifest: {manifest}')
    if config.capture is not None:
        import json
        rec = json.loads(manifest.read_text())['reconstruction']
        print(f"reconstructed from the images: {rec['steps']} steps in {rec['seconds']:.0f} s, "
              f"held-out PSNR {rec['psnr_test']} dB, {counts['gaussians']} true Gaussians -> "
              f"{json.loads(manifest.read_text())['num_gaussians']} fitted "
              f"({rec['floaters']} floaters)")
    if not args.no_contact_sheet:
        print(f'contact sheet: {args.out / CONTACT_SHEET_NAME}')
    return 0
