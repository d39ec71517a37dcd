"""Query latency of the refersplat node: publish on /refer_query -> ~/result received.

For each scene size a synthetic scene (random Gaussians in a table-sized box; the default PCMI
architecture with hand-set weights, ``core.fixed_answer_field``, whose answer is an object-sized
blob of 1.5 % of the Gaussians: the full forward runs, so the cost equals a trained field's) is
written, the node is started as a subprocess, and this process sends distinct queries one at
a time (each waits for its result), so the numbers are per-query latency, not throughput. The
text encoder cache never hits (every text is new). Per-stage times come from the ReferResult
fields; "other" = end-to-end minus the stages (DDS transport both ways, queueing, message
building). Peak RSS is the node process's VmHWM.

Every ROS process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, its own ROS_DOMAIN_ID and
ROS_LOG_DIR, and the Fast DDS loopback/shared-memory profile (config/fastdds_loopback.xml).

    python bench/query_latency.py                  # 10k, 50k, 200k, 1M; writes docs/BENCHMARKS.md
    python bench/query_latency.py --sizes 10000 --queries 10 --no-write
"""
import argparse
import datetime
import os
from pathlib import Path
import platform
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This checkout's package first; the fixed-answer field is a test helper.
sys.path[:0] = [str(ROOT), str(ROOT / 'test')]

from refersplat_ros.ros_environment import apply_network_rule, ros_environment  # noqa: E402
from refersplat_ros.topics import QUERY, RESULT, under_node  # noqa: E402

SECTION = 'Query latency'


def make_scene(folder: Path, num: int, seed: int = 0):
    """Write scene.ply, field.safetensors and a one-camera COLMAP model (the mask view)."""
    import torch

    from fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.scene.cameras import Camera, write_colmap_text
    from refersplat_ros.core.scene.gaussian_io import save_ply
    from refersplat_ros.core.scene.gaussians import GaussianScene
    from refersplat_ros.core.text.encoder import TextEncoder

    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(num, 3, generator=gen) - 0.5) * torch.tensor([1.0, 1.0, 0.3])
    scene = GaussianScene.from_colors(means, torch.rand(num, 3, generator=gen),
                                      torch.full((num, 3), 0.004),
                                      torch.rand(num, generator=gen) * 0.8 + 0.1)
    save_ply(scene, folder / 'scene.ply')
    encoder = TextEncoder()
    # The answer: the 1.5 % of Gaussians nearest to a point on the table (an object's size).
    distance = (means - torch.tensor([0.2, 0.0, 0.0])).norm(dim=1)
    selected = distance <= distance.kthvalue(max(1, int(0.015 * num))).values
    field = fixed_answer_field(scene.means, selected, encoder.hidden_size)
    save_checkpoint(folder / 'field.safetensors', field, text_encoder_id=encoder.encoder_id,
                    step=0)
    camera = Camera.look_at((0.0, -1.5, 1.0), (0.0, 0.0, 0.0), width=160, height=120,
                            fov_y_deg=50.0, name='frame_00001.png')
    write_colmap_text(folder / 'sparse' / '0', [camera])


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def measure(num: int, queries: int, warmup: int, domain_id: int, workdir: Path) -> dict:
    """Run the node on a scene of ``num`` Gaussians and time ``queries`` queries."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from refersplat_ros.msg import ReferResult
    from refersplat_ros.node import QUERY_QOS, RESULT_QOS

    folder = workdir / f'n{num}'
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    make_scene(folder, num)
    build_s = time.monotonic() - start
    env = ros_environment(domain_id, folder / 'ros_log')
    args = [sys.executable, '-m', 'refersplat_ros.node', '--ros-args',
            '-p', f"scene:={folder / 'scene.ply'}",
            '-p', f"checkpoint:={folder / 'field.safetensors'}",
            '-p', f'mask.dataset:={folder}', '-p', 'mask.view_index:=0',
            '-p', 'scene_cloud.max_points:=50000']
    log = open(folder / 'node.out', 'wb')
    node_proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    apply_network_rule(env)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('latency_client', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = {}
    node.create_subscription(ReferResult, under_node(RESULT),
                             lambda m: received.setdefault(m.text, (time.perf_counter(), m)),
                             RESULT_QOS)
    publisher = node.create_publisher(String, '/' + QUERY, QUERY_QOS)
    try:
        deadline = time.monotonic() + 600
        load_start = time.monotonic()
        while b'active:' not in (folder / 'node.out').read_bytes():
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('node did not start:\n'
                                   + (folder / 'node.out').read_text(errors='replace'))
            executor.spin_once(timeout_sec=0.1)
        load_s = time.monotonic() - load_start
        while publisher.get_subscription_count() == 0:
            executor.spin_once(timeout_sec=0.05)
        rows = []
        for index in range(warmup + queries):
            text = f'the {index}th red mug to the left of the blue bowl'
            sent = time.perf_counter()
            publisher.publish(String(data=text))
            while text not in received:
                executor.spin_once(timeout_sec=0.05)
                if time.perf_counter() - sent > 120:
                    raise RuntimeError(f'no result for {text!r}')
            arrived, result = received[text]
            if index >= warmup:
                rows.append((arrived - sent, result))
        rss = peak_rss_mb(node_proc.pid)
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        log.close()
    e2e = np.array([r[0] for r in rows]) * 1e3
    stages = {k: np.median([getattr(r[1], f'{k}_ms') for r in rows])
              for k in ('encode', 'field', 'select', 'render')}
    statuses = [r[1].status for r in rows]
    return {'n': num, 'p50': np.percentile(e2e, 50), 'p95': np.percentile(e2e, 95),
            'stages': stages, 'other': np.median(e2e) - sum(stages.values()),
            'node_ms': float(np.median([r[1].latency.sec * 1e3 + r[1].latency.nanosec * 1e-6
                                        for r in rows])),
            'selected': int(np.median([r[1].num_gaussians for r in rows])),
            'ok': sum(s == ReferResult.OK for s in statuses), 'count': len(rows),
            'rss_mb': rss, 'build_s': build_s, 'load_s': load_s}


def table(rows) -> str:
    lines = ['| Gaussians | p50 ms | p95 ms | in node | encode | field | select | render | '
             'other | selected (median) | OK | node peak RSS MB | node start s |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        s = r['stages']
        lines.append(f"| {r['n']:,} | {r['p50']:.1f} | {r['p95']:.1f} | {r['node_ms']:.1f} | "
                     f"{s['encode']:.1f} | "
                     f"{s['field']:.1f} | {s['select']:.1f} | {s['render']:.1f} | "
                     f"{r['other']:.1f} | {r['selected']:,} | {r['ok']}/{r['count']} | "
                     f"{r['rss_mb']:.0f} | {r['load_s']:.1f} |")
    return '\n'.join(lines)


TARGETS_MS = {50_000: 25.0, 1_000_000: 300.0}  # issue 6: p50 on a 2-core CPU


def targets(rows) -> str:
    """Target lines (p50) for the sizes that have one, and the growth from smallest to largest."""
    lines = []
    for row in rows:
        goal = TARGETS_MS.get(row['n'])
        if goal is not None:
            verdict = 'met' if row['p50'] <= goal else 'missed'
            lines.append(f"- p50 at {row['n']:,} Gaussians: {row['p50']:.1f} ms, target <= "
                         f'{goal:.0f} ms: {verdict}.')
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        lines.append(f"- Field stage {first['stages']['field']:.1f} -> "
                     f"{last['stages']['field']:.1f} ms for {last['n'] / first['n']:.0f}x the "
                     'Gaussians. The encode stage (a new sentence per query through MiniLM) '
                     'does not depend on N.')
    return ('\n' + '\n'.join(lines) + '\n') if lines else ''


def write_section(text: str, path: Path = ROOT / 'docs' / 'BENCHMARKS.md'):
    """Replace (or append) the '## Query latency' section of docs/BENCHMARKS.md."""
    old = path.read_text() if path.exists() else '# Benchmarks\n'
    header = f'## {SECTION}'
    if header in old:
        before, rest = old.split(header, 1)
        after = rest.split('\n## ', 1)
        old = before + ('\n## ' + after[1] if len(after) > 1 else '')
    path.write_text(old.rstrip() + '\n\n' + text.rstrip() + '\n')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10_000, 50_000, 200_000, 1_000_000])
    parser.add_argument('--queries', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--domain-id', type=int, default=201)
    parser.add_argument('--no-write', action='store_true', help='print only')
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix='refersplat_latency_') as tmp:
        for num in args.sizes:
            row = measure(num, args.queries, args.warmup, args.domain_id, Path(tmp))
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    import torch
    text = (f'## {SECTION}\n\n'
            f'`python bench/query_latency.py` on {datetime.date.today()}: {platform.node()}, '
            f'{os.cpu_count()} CPU cores, torch {torch.__version__}, device '
            f"{'CUDA' if torch.cuda.is_available() else 'CPU'}. The node runs as a "
            f'subprocess; this process publishes {args.queries} distinct queries one at a '
            f'time ({args.warmup} warm-up queries first) and times publish -> `~/result` '
            'receipt. "in node" is the ReferResult latency (receipt to publication on the '
            'node); stage columns are medians in ms from the ReferResult; "other" is '
            'end-to-end minus the stages (transport both ways, queueing, message building). '
            'Synthetic scenes: random Gaussians, '
            'the default PCMI field with hand-set weights answering an object-sized blob '
            '(1.5 % of N; `test/fixed_answer_field.py`: the full forward runs, so latency '
            "equals a trained field's), a 160x120 mask view. Queries look like \"the 7th red "
            'mug to the left of the blue bowl" (12 word pieces; the field cost grows with N '
            'and with the number of word pieces).\n\n' + table(rows) + '\n' + targets(rows))
    print('\n' + text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
