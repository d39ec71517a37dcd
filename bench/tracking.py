"""How fast the target's mask and depth are rendered in a robot camera (tracking mode's rate).

    python bench/tracking.py [--size 640x480] [--frames 20] [--preset default] [--no-write]

Generates the Ref-Synth scene (no training: the target is an object's ground-truth Gaussians),
moves a camera around the table, and times ``render_target`` per frame for a small, a mid-sized
and the largest object: the window render the node uses, and for comparison the whole image with
every Gaussian (``full_image``). Both run in the same process, alternating frame by frame, so the
ratio is fair on a machine whose speed drifts. On CUDA the gsplat backend is timed as well. The
table goes to docs/BENCHMARKS.md#tracking-render (the rate tracking mode can reach is 1000 / ms).
"""
import argparse
import json
import os
from pathlib import Path
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DOC = ROOT / 'docs' / 'BENCHMARKS.md'


def _orbit(frames: int, width: int, height: int, centre):
    from refersplat_ros.core.scene.cameras import Camera
    for k in range(frames):
        angle = -0.6 + 1.2 * k / max(1, frames - 1)
        eye = (centre[0] + 0.9 * np.sin(angle), centre[1] - 0.9 * np.cos(angle), 0.55)
        yield Camera.look_at(eye, centre, width=width, height=height, fov_y_deg=55.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--preset', default='default')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    import torch

    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.inference.target_view import render_target
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from report import write_section

    width, height = (int(v) for v in args.size.split('x'))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / 'scene'
        make_scene(preset_config(args.preset, seed=0), data, overwrite=True, progress=False,
                   contact_sheet=False)
        manifest = json.loads((data / 'manifest.json').read_text())
        scene = load_scene(data / manifest['point_cloud'])
        ids = np.load(data / 'object_ids.npy')
    objects = sorted(manifest['objects'], key=lambda o: o['num_gaussians'])
    picks = [objects[0], objects[len(objects) // 2], objects[-1]]
    centre = (0.0, 0.0, 0.05)
    backends = [('cpu', scene)]
    if torch.cuda.is_available():
        backends.append(('gsplat', scene.to('cuda')))
    rows = []
    for obj in picks:
        indices = np.flatnonzero(ids == obj['id'])
        for backend, s in backends:
            times = {'window': [], 'full image': []}
            pixels, gaussians = [], []
            for camera in _orbit(args.frames, width, height, centre):
                for mode in ('window', 'full image'):
                    start = time.perf_counter()
                    view = render_target(s, indices, camera, backend=backend,
                                         full_image=mode == 'full image')
                    if backend == 'gsplat':
                        torch.cuda.synchronize()
                    times[mode].append((time.perf_counter() - start) * 1e3)
                    if mode == 'window':
                        pixels.append(view.pixels)
                        gaussians.append(view.gaussians)
            for mode, values in times.items():
                values = values[1:] or values  # the first frame warms caches up
                p50 = float(np.median(values))
                rendered = (int(np.median(gaussians)) if mode == 'window'
                            else scene.num_gaussians)
                rows.append((obj['category'], len(indices), backend, mode,
                             int(np.median(pixels)), rendered, p50,
                             float(np.percentile(values, 90)), 1000.0 / p50))
    header = ('| target (Gaussians) | backend | render | mask px (median) | Gaussians rendered | '
              'ms p50 | ms p90 | frames/s (p50) |\n|---|---|---|---|---|---|---|---|\n')
    lines = [f'| {name} ({n}) | {backend} | {mode} | {px} | {g} | {p50:.1f} | {p90:.1f} | '
             f'{fps:.1f} |' for name, n, backend, mode, px, g, p50, p90, fps in rows]
    table = header + '\n'.join(lines)
    print(table)
    if not args.no_write:
        machine = (f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                   f'torch {torch.__version__}, threads {torch.get_num_threads()}'
                   + (f', {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ''))
        text = (
            '## Tracking render\n\n'
            f"`bench/tracking.py` ({time.strftime('%Y-%m-%d')}, {machine}): the target's mask "
            f'and depth in a {width}x{height} camera moving around the `{args.preset}` Ref-Synth '
            f'scene ({scene.num_gaussians} Gaussians), {args.frames} frames per row (the first '
            'left out), window and full-image renders alternating frame by frame. "window" is '
            "what the node does (only the target's footprint, only the Gaussians that reach "
            'it); "full image" rasterizes everything. The rate tracking mode reaches is at most '
            'min(`tracking.max_rate_hz`, frames/s).\n\n' + table + '\n')
        write_section(text, DOC, 'Tracking render')
        print(f'written to {DOC.relative_to(ROOT)}#tracking-render')
    return 0


if __name__ == '__main__':
    sys.exit(main())
