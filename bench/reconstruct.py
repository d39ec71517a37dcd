"""Reconstruction benchmark: Ref-Synth scenes made captures, fitted from their images.

For each scene: generate it as a capture (``make-scene --reconstructed``: SfM-like points from the
true surface with noise and outliers, Gaussians fitted to the training images with
``refersplat reconstruct``'s recipe, ids from the true surface) and report the held-out PSNR over
the steps, the time, the Gaussian counts and the floaters. Prints a table and writes it to
docs/RESULTS.md (section "Reconstruction"). Usage::

    python bench/reconstruct.py                       # the issue's scene: 15 objects, 25 views
    python bench/reconstruct.py --scenes hard:0:15:25:200x150 default:0
"""
import argparse
from dataclasses import replace
import json
import os
from pathlib import Path
import sys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import environment, publish  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Reconstruction'


def scene_config(spec: str):
    """``preset:seed[:objects:views:WxH]`` -> RefSynthConfig made a capture."""
    from refersplat_ros.core.datasets.ref_synth.generator import preset_config
    from refersplat_ros.core.datasets.ref_synth.reconstructed import CaptureConfig

    parts = spec.split(':')
    overrides = {}
    if len(parts) == 5:
        width, height = (int(v) for v in parts[4].split('x'))
        overrides = dict(num_objects=int(parts[2]), num_views=int(parts[3]), width=width,
                         height=height)
    elif len(parts) != 2:
        raise SystemExit(f'bad scene {spec!r}: preset:seed or preset:seed:objects:views:WxH')
    config = preset_config(parts[0], seed=int(parts[1]), **overrides)
    return replace(config, capture=CaptureConfig())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenes', nargs='+', default=['hard:0:15:25:200x150'])
    parser.add_argument('--out', type=Path, default=ROOT / 'runs' / 'reconstruct')
    parser.add_argument('--num-threads', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--report', type=Path, default=ROOT / 'docs' / 'RESULTS.md')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    import torch

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene
    torch.set_num_threads(args.num_threads)
    rows = []
    for spec in args.scenes:
        config = scene_config(spec)
        folder = args.out / spec.replace(':', '_')
        manifest_path = folder / 'manifest.json'
        if not manifest_path.is_file():
            make_scene(config, folder, overwrite=True, progress=False, contact_sheet=False)
        manifest = json.loads(manifest_path.read_text())
        rec = manifest['reconstruction']
        cams = config.cameras
        rows.append((spec, len(manifest['objects']), cams.num_views, config.num_test_views,
                     f'{cams.width}x{cams.height}', rec, manifest['num_gaussians']))
        print(f"{spec}: {rec['psnr_test']} dB in {rec['seconds'] / 60:.1f} min", flush=True)
    head = ['scene', 'objects', 'views (held out)', 'size', 'sparse points', 'steps',
            'minutes', 'held-out PSNR dB', 'PSNR over the steps', 'true Gaussians',
            'fitted Gaussians', 'floaters']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for spec, objects, views, test, size, rec, fitted in rows:
        curve = ', '.join(f"{h['step']}: {h['psnr']:.1f}" for h in rec['history']
                          if h.get('psnr') is not None)
        lines.append('| ' + ' | '.join([
            spec, str(objects), f'{views} ({test})', size, f"{rec['sfm_points']:,}",
            str(rec['steps']), f"{rec['seconds'] / 60:.1f}", f"{rec['psnr_test']:.2f}", curve,
            f"{rec['true_num_gaussians']:,}", f'{fitted:,}', f"{rec['floaters']:,}"]) + ' |')
    text = (f'## {SECTION}\n\n`python bench/reconstruct.py --scenes {" ".join(args.scenes)}` '
            f'{environment(args.num_threads)}. Each scene made a capture '
            '(`make-scene --reconstructed`, docs/RECONSTRUCT.md): SfM-like points, '
            'Gaussians fitted to the training images on the CPU rasterizer, PSNR on the held-out '
            'views; scene spec `preset:seed[:objects:views:WxH]`. Floaters: fitted Gaussians '
            "farther than 2 cm (or twice the nearest true Gaussian's largest scale) from the "
            'true surface.\n\n' + '\n'.join(lines) + '\n')
    publish(text, args.report, SECTION, not args.no_write)
    return 0


if __name__ == '__main__':
    sys.exit(main())
