#!/usr/bin/env python3
"""Benchmark the rasterizer: direct CPU path, frozen-geometry cached path, gsplat on CUDA.

Each table row runs in a fresh subprocess so its peak RSS (``resource.getrusage``) belongs to
that configuration alone. Scenes are random Gaussians in front of the camera (depth 2-6,
scale 0.003-0.02, opacity 0.1-0.9, fx = 0.8 W), the setup of docs/SETUP.md#cpu-rasterizer. The
loss is BCE on a random mask for C = 1 (the ReferSplat logit map) and MSE for C > 1.

Columns: pairs = contributing Gaussian-pixel pairs; fwd = forward; fwd+bwd (feat) = forward and
backward w.r.t. the features only (ReferSplat training); fwd+bwd (all) = also w.r.t. means,
quats, scales, opacities; build = building the cached compositing weights of one view; cached
step = forward + backward through the cached weights; speed-up = fwd+bwd (feat) / cached step;
peak RSS includes the ~250 MB torch + gsplat baseline. Times are medians after one warm-up.

Usage:
    python bench/rasterize.py --quick          # 20k rows only, fast
    python bench/rasterize.py                  # default table (total time: docs/BENCHMARKS.md)
    python bench/rasterize.py --n 100000 --res 640x480 --channels 16 --no-write
"""
import argparse
import datetime
import json
import os
from pathlib import Path
import platform
import resource
import statistics
import subprocess
import sys
import time

REPO = Path(__file__).resolve().parents[1]
DEFAULT_N = (20000, 100000, 500000)
DEFAULT_RES = ('320x240', '640x480')
DEFAULT_CHANNELS = (1, 16)
# Peak RSS of the direct path per surviving pair, measured here: ~250 B at C = 1, ~700 B at 16.
BYTES_PER_PAIR = 250
BYTES_PER_PAIR_CHANNEL = 30


def _scene(n, width, height, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    fx = 0.8 * width
    z = 2.0 + 4.0 * torch.rand(n, generator=g)
    u = torch.rand(n, generator=g) * width
    v = torch.rand(n, generator=g) * height
    means = torch.stack([(u - width / 2) / fx * z, (v - height / 2) / fx * z, z], dim=1)
    quats = torch.randn(n, 4, generator=g)
    scales = 0.003 + 0.017 * torch.rand(n, 3, generator=g)
    opacities = 0.1 + 0.8 * torch.rand(n, generator=g)
    return means, quats, scales, opacities, fx


def _timed(fn, repeats, sync):
    start = time.perf_counter()
    fn()  # warm-up
    sync()
    if time.perf_counter() - start > 5.0:
        repeats = 1  # large rows: one timed run keeps the default table under 15 min
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def worker(args) -> dict:
    """Measure one configuration in this process; return the row as a dict."""
    import torch
    sys.path.insert(0, str(REPO))
    from refersplat_ros.core.scene.cameras import Camera
    from refersplat_ros.core.render.compositing import compositing_weights
    from refersplat_ros.core.render.rasterize import rasterize
    from refersplat_ros.core.render.cpu import enumerate_pairs, project

    torch.set_num_threads(args.threads)
    width, height = map(int, args.res.split('x'))
    device = torch.device(args.device)
    means, quats, scales, opac, fx = _scene(args.n, width, height)
    cam = Camera(width, height, fx, fx, width / 2, height / 2, torch.eye(4))
    means, quats, scales, opac = (t.to(device) for t in (means, quats, scales, opac))
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(args.n, args.channels, generator=g).to(device)
    target = (torch.rand(args.channels, height, width, generator=g) > 0.5).float().to(device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    row = {'n': args.n, 'res': args.res, 'channels': args.channels, 'backend': args.backend}

    proj = project(means, quats, scales, opac, cam.world_to_camera.to(device),
                   cam.intrinsics(device=device), width, height)
    pairs = enumerate_pairs(proj, width, height).num_pairs
    row['pairs'] = pairs
    need = pairs * (BYTES_PER_PAIR + BYTES_PER_PAIR_CHANNEL * args.channels)
    if args.backend == 'cpu' and need > args.max_bytes:
        row['skipped'] = (f'needs ~{need / 1e9:.1f} GB for {pairs / 1e6:.1f}M pairs, '
                          f'limit {args.max_bytes / 1e9:.1f} GB')
        return row
    del proj

    def loss_of(image):
        if args.channels == 1:
            return torch.nn.functional.binary_cross_entropy_with_logits(image, target)
        return torch.nn.functional.mse_loss(image, target)

    def forward():
        with torch.no_grad():
            rasterize(means, quats, scales, opac, feats, cam, backend=args.backend)

    f_leaf = feats.clone().requires_grad_(True)

    def fwd_bwd_features():
        f_leaf.grad = None
        out = rasterize(means, quats, scales, opac, f_leaf, cam, backend=args.backend)
        loss_of(out.image).backward()

    leaves = [t.clone().requires_grad_(True) for t in (means, quats, scales, opac, feats)]

    def fwd_bwd_all():
        for t in leaves:
            t.grad = None
        out = rasterize(*leaves, cam, backend=args.backend)
        loss_of(out.image).backward()

    row['fwd_s'], _ = _timed(forward, args.repeats, sync)
    row['fwd_bwd_feat_s'], row['fwd_bwd_feat_min_s'] = _timed(fwd_bwd_features, args.repeats,
                                                              sync)
    row['fwd_bwd_all_s'], _ = _timed(fwd_bwd_all, args.repeats, sync)
    if args.backend == 'cpu':
        start = time.perf_counter()
        weights = compositing_weights(means, quats, scales, opac, cam)
        sync()
        row['build_s'] = time.perf_counter() - start
        row['cache_mb'] = weights.nbytes / 1e6

        def cached_step():
            f_leaf.grad = None
            loss_of(weights.render(f_leaf)[None][0]).backward()

        row['cached_s'], row['cached_min_s'] = _timed(cached_step, max(args.repeats, 5), sync)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    row['peak_rss_mb'] = usage / 1024.0
    if device.type == 'cuda':
        row['peak_cuda_mb'] = torch.cuda.max_memory_allocated() / 1e6
    return row


def _mem_available() -> int:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def _load_average() -> str:
    try:
        return ' '.join(f'{v:.1f}' for v in os.getloadavg())
    except OSError:
        return '?'


def run_row(n, res, channels, backend, args) -> dict:
    cmd = [sys.executable, __file__, '--worker', '--n', str(n), '--res', res,
           '--channels', str(channels), '--backend', backend, '--repeats', str(args.repeats),
           '--threads', str(args.threads), '--max-bytes', str(args.max_bytes),
           '--device', 'cuda' if backend == 'gsplat' else 'cpu']
    row = {'n': n, 'res': res, 'channels': channels, 'backend': backend}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        row['skipped'] = f'over the {args.timeout:.0f} s per-row time limit'
        return row
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ['?'])[-1][:120]
        reason = 'killed (out of memory?)' if proc.returncode < 0 else f'failed: {tail}'
        row['skipped'] = reason
        return row
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(row, key, fmt):
    return fmt.format(row[key]) if key in row else '-'


def table(rows, backend) -> str:
    if backend == 'cpu':
        head = ('| N | res | C | pairs | fwd s | fwd+bwd (feat) s | fwd+bwd (all) s | '
                'build s | cached step s | speed-up | cache MB | peak RSS MB |\n'
                '|---|---|---|---|---|---|---|---|---|---|---|---|\n')
    else:
        head = ('| N | res | C | pairs | fwd s | fwd+bwd (feat) s | fwd+bwd (all) s | '
                'peak CUDA MB | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|\n')
    lines = []
    for r in rows:
        cells = [f'{r["n"] // 1000}k', r['res'].replace('x', '×'), str(r['channels']),
                 f'{r["pairs"] / 1e6:.2f}M' if 'pairs' in r else '-']
        if 'skipped' in r:
            ncols = 8 if backend == 'cpu' else 5
            cells += [f'not run: {r["skipped"]}'] + [''] * (ncols - 1)
        else:
            cells += [_fmt(r, 'fwd_s', '{:.3f}'),
                      _fmt(r, 'fwd_bwd_feat_s', '{:.3f}') + _fmt(r, 'fwd_bwd_feat_min_s',
                                                                 ' ({:.3f})'),
                      _fmt(r, 'fwd_bwd_all_s', '{:.3f}')]
            if backend == 'cpu':
                speed = (f'{r["fwd_bwd_feat_s"] / r["cached_s"]:.0f}×'
                         if r.get('cached_s') else '-')
                cells += [_fmt(r, 'build_s', '{:.3f}'),
                          _fmt(r, 'cached_s', '{:.4f}') + _fmt(r, 'cached_min_s', ' ({:.4f})'),
                          speed,
                          _fmt(r, 'cache_mb', '{:.0f}')]
            else:
                cells += [_fmt(r, 'peak_cuda_mb', '{:.0f}')]
            cells.append(_fmt(r, 'peak_rss_mb', '{:.0f}'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return head + '\n'.join(lines) + '\n'


def write_section(path: Path, section: str) -> None:
    """Replace the '## Rasterizer' section of ``path`` (keep the others), or append it."""
    text = path.read_text(encoding='utf-8') if path.exists() else '# Benchmarks\n'
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == '## Rasterizer'), None)
    if start is None:
        new = text.rstrip('\n') + '\n\n' + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith('## ')),
                   len(lines))
        rest = ''.join(lines[end:])
        new = ''.join(lines[:start]) + section + ('\n' + rest if rest else '')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding='utf-8')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='only N=20k, 1 timed repeat')
    parser.add_argument('--n', type=int, nargs='+', default=None, help='Gaussian counts')
    parser.add_argument('--res', nargs='+', default=None, help='resolutions WxH')
    parser.add_argument('--channels', type=int, nargs='+', default=None, help='channel counts')
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats (median)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: all cores, or 1 if the machine is '
                             'already busy: OpenMP threads stall badly under contention)')
    parser.add_argument('--timeout', type=float, default=120.0, help='seconds per row')
    parser.add_argument('--max-bytes', type=float, default=None,
                        help='skip CPU rows whose estimated memory exceeds this '
                             '(default: 60%% of MemAvailable)')
    parser.add_argument('--output', type=Path, default=REPO / 'docs' / 'BENCHMARKS.md')
    parser.add_argument('--no-write', action='store_true', help='print only')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--backend', default='cpu', help=argparse.SUPPRESS)
    parser.add_argument('--device', default='cpu', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.max_bytes is None:
        args.max_bytes = 0.6 * _mem_available()
    if args.threads is None:
        cores = os.cpu_count() or 1
        args.threads = cores if os.getloadavg()[0] < 0.5 * cores else 1
    if args.worker:
        print(json.dumps(worker(argparse.Namespace(
            n=args.n[0], res=args.res[0], channels=args.channels[0], backend=args.backend,
            repeats=args.repeats, threads=args.threads, max_bytes=args.max_bytes,
            device=args.device))))
        return 0
    if args.quick:
        args.n = args.n or [20000]
        args.repeats = 1
    ns = args.n or list(DEFAULT_N)
    resolutions = args.res or list(DEFAULT_RES)
    channel_counts = args.channels or list(DEFAULT_CHANNELS)
    import torch
    backends = ['cpu'] + (['gsplat'] if torch.cuda.is_available() else [])
    started = time.time()
    load_before = _load_average()
    sections = []
    for backend in backends:
        rows = []
        timed_out = set()
        for n in ns:
            for res in resolutions:
                for c in channel_counts:
                    if (res, c) in timed_out:
                        row = {'n': n, 'res': res, 'channels': c, 'backend': backend,
                               'skipped': 'a smaller N already hit the time limit'}
                    else:
                        row = run_row(n, res, c, backend, args)
                    if 'time limit' in row.get('skipped', ''):
                        timed_out.add((res, c))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        title = ('CPU backend (exact pure-torch compositor) and cached path' if backend == 'cpu'
                 else 'gsplat CUDA backend')
        sections.append(f'### {title}\n\n' + table(rows, backend))
    machine = (f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores '
               f'({args.threads} torch threads), torch {torch.__version__}, '
               f'Python {platform.python_version()}')
    cuda = (f'; GPU {torch.cuda.get_device_name(0)}' if torch.cuda.is_available()
            else '; no GPU (gsplat table not run)')
    command = ' '.join(['python bench/rasterize.py']
                       + list(argv if argv is not None else sys.argv[1:]))
    load = f'load average {load_before} before, {_load_average()} after'
    section = (
        '## Rasterizer\n\n'
        f'Measured {datetime.date.today().isoformat()} with `{command}` on {machine}{cuda}; '
        f'total {time.time() - started:.0f} s; {load} (the 2 cores are shared with other '
        'jobs, so times vary by up to several times between runs).\n\n'
        'Random Gaussians (depth 2–6, scale 0.003–0.02, opacity 0.1–0.9, fx = 0.8·W); '
        'loss BCE (C = 1) or MSE (C = 16); median of '
        f'{args.repeats} timed run(s) after one warm-up (minimum in parentheses; cached step: '
        f'{max(args.repeats, 5)} runs); one fresh process per row. '
        '*fwd+bwd (feat)*: gradient w.r.t. the features only (ReferSplat training); '
        '*(all)*: also means, quats, scales, opacities. *build*: compositing weights of one '
        'view; *cached step*: forward + backward through them; *speed-up* = fwd+bwd (feat) / '
        'cached step. Peak RSS includes the torch + gsplat baseline (~250 MB).\n\n'
        + '\n'.join(sections))
    print()
    print(section)
    if not args.no_write:
        write_section(args.output, section)
        print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
