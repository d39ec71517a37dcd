"""``refersplat reconstruct``: fit an RGB 3D Gaussian Splatting scene to a capture's images.

Examples::

    refersplat reconstruct --data my_capture --out my_capture/splat
    refersplat reconstruct --data my_capture --out my_capture/splat --steps 5000 --sh-degree 3
    refersplat reconstruct --data my_capture --out my_capture/splat --resume

``--data`` holds ``images/`` and ``sparse/0`` (COLMAP, its ``points3D`` start the Gaussians) or a
``transforms.json``. Writes ``--out/point_cloud.ply`` (the INRIA format every other command
reads), ``--out/checkpoints/`` and ``--out/reconstruct_log.csv`` (held-out PSNR over the steps).
Every option sets the ``ReconstructConfig`` field of the same name (``core/reconstruct/fit.py``,
docs/RECONSTRUCT.md).
"""
import argparse
import csv
import json
from pathlib import Path

from refersplat_ros.cli.options import add_device, add_progress, add_test_frames


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--data', required=True, type=Path,
                        help='capture folder: images/ and sparse/0 (COLMAP) or transforms.json')
    parser.add_argument('--out', required=True, type=Path,
                        help='output folder (point_cloud.ply, checkpoints/, reconstruct_log.csv)')
    parser.add_argument('--steps', type=int, default=3000,
                        help='optimisation steps, one image each (default 3000; the '
                             'densification window scales with it)')
    parser.add_argument('--sh-degree', type=int, default=1, choices=(0, 1, 2, 3),
                        help='SH degree of the colours (default 1; 3DGS: 3)')
    parser.add_argument('--max-gaussians', type=int, default=200_000,
                        help='densification stops growing above this count (default 200000)')
    parser.add_argument('--max-height', type=int, default=None,
                        help='scale taller images down to this height (default: as captured)')
    parser.add_argument('--background', type=float, nargs=3, default=None,
                        metavar=('R', 'G', 'B'),
                        help='colour behind the Gaussians, 0-1 (default: a Ref-Synth '
                             "manifest's background, else black)")
    add_test_frames(parser, 'held out for PSNR (default: every 8th image, or the Ref-Synth '
                            "manifest's test views)")
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--resume', action='store_true',
                        help='continue from --out/checkpoints/reconstruct_last.safetensors')
    add_device(parser)
    add_progress(parser)


def _manifest(args) -> dict:
    """Return the ``manifest.json`` of ``--data`` ({} when absent or unreadable)."""
    path = args.data / 'manifest.json'
    try:
        manifest = json.loads(path.read_text(encoding='utf-8')) if path.is_file() else {}
    except (ValueError, UnicodeDecodeError, OSError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _held_out(args, manifest: dict):
    if args.test_frames is not None:
        return args.test_frames
    split = manifest.get('split')
    if isinstance(split, dict) and isinstance(split.get('test_frames'), list):
        return [str(f) for f in split['test_frames']]
    return None


def _background(args, manifest: dict):
    if args.background is not None:
        return tuple(args.background)
    config = manifest.get('config')
    colour = config.get('background_rgb') if isinstance(config, dict) else None
    if isinstance(colour, list) and len(colour) == 3 and all(
            isinstance(c, (int, float)) for c in colour):
        return tuple(float(c) for c in colour)
    return (0.0, 0.0, 0.0)


def run(args) -> int:
    from dataclasses import replace

    from refersplat_ros.core.devices import resolve_device
    from refersplat_ros.core.reconstruct.capture import load_capture
    from refersplat_ros.core.reconstruct.fit import (LAST_CHECKPOINT, reconstruct,
                                                     ReconstructConfig, scaled_schedule)
    from refersplat_ros.core.scene.gaussian_io import save_ply

    manifest = _manifest(args)
    config = scaled_schedule(replace(ReconstructConfig(), sh_degree=args.sh_degree,
                                     max_gaussians=args.max_gaussians,
                                     background=_background(args, manifest), seed=args.seed),
                             args.steps)
    if args.max_height is not None and args.max_height < 1:
        raise ValueError(f'--max-height must be >= 1, got {args.max_height}')
    capture = load_capture(args.data, held_out=_held_out(args, manifest),
                           max_height=args.max_height, background=config.background)
    checkpoints = args.out / 'checkpoints'
    if args.resume and not (checkpoints / LAST_CHECKPOINT).is_file():
        raise ValueError(f'--resume: no {checkpoints / LAST_CHECKPOINT}')
    result = reconstruct(capture, config, checkpoint_dir=checkpoints, resume=args.resume,
                         device=resolve_device(args.device), progress=not args.no_progress)
    save_ply(result.scene, args.out / 'point_cloud.ply')
    with open(args.out / 'reconstruct_log.csv', 'w', newline='', encoding='utf-8') as handle:
        writer = csv.DictWriter(handle, ['step', 'loss', 'psnr', 'gaussians', 'seconds'])
        writer.writeheader()
        writer.writerows(result.history)
    psnr = '-' if result.psnr is None else f'{result.psnr:.2f} dB'
    print(f'{len(capture.cameras)} views ({len(capture.test)} held out), '
          f'{config.steps} steps in {result.seconds:.0f} s: '
          f'{result.scene.num_gaussians} Gaussians, held-out PSNR {psnr}')
    print(f"scene: {args.out / 'point_cloud.ply'}")
    return 0
