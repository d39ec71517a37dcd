"""Query latency of the refersplat node: publish on /refer_query -> ~/result received.

For each scene size a synthetic scene is written: random Gaussians in a table-sized box with
eight annotated objects (blobs of 1.5 % of the Gaussians each, coloured as named: a red mug,
a blue bowl, ...; two rows of four, saved with the checkpoint as the object graph's objects and
a visibility record in which a tenth of the Gaussians are unseen) and the default PCMI field
with hand-set weights (``test/helpers/fixed_answer_field.py``: the full forward runs, so the
field's cost equals a trained field's). The node is started as a subprocess and this process sends
distinct queries one at a time (each waits for its result), so the numbers are per-query
latency, not throughput; the text encoder's cache never hits (every text is new).

Rows: ``graph`` = the node's default grounding (the object graph: "pick up the blue bowl right
of the red mug", a true relation of the layout, every answer OK); ``field`` = the paper's path
(``language.grounding: field``: one pass of the field over all N Gaussians). Per-stage times
come from the ReferResult fields; "other" = end-to-end minus the stages (DDS transport both
ways, queueing, message building). Peak RSS is the node process's VmHWM. "floor" is one plain
pass over an [N, 129] float32 table (the size of the field's inference table) measured in this
process with the same threads, so the ratio to it is visible.

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
from report import write_section  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Query latency'


#: The objects: name, RGB, (column, row) on the table; row 0 is nearer the mask camera.
OBJECTS = [('red-mug', (0.85, 0.1, 0.1), (0, 0)), ('blue-bowl', (0.1, 0.2, 0.85), (1, 0)),
           ('green-can', (0.1, 0.7, 0.15), (2, 0)), ('yellow-box', (0.9, 0.85, 0.1), (3, 0)),
           ('purple-cup', (0.5, 0.1, 0.6), (0, 1)), ('white-plate', (0.95, 0.95, 0.95), (1, 1)),
           ('black-kettle', (0.05, 0.05, 0.05), (2, 1)),
           ('orange-ball', (0.95, 0.5, 0.05), (3, 1))]
VERBS = ['pick up', 'grab', 'find', 'show me', 'where is', 'point at', 'look at', 'get me',
         'hand me', 'I need']


def graph_queries():
    """Distinct commands whose relation holds in the layout (one answer each: OK)."""
    names = {name: name.replace('-', ' ') for name, _, _ in OBJECTS}
    cells = {name: cell for name, _, cell in OBJECTS}
    facts = []
    for a, (ax, ay) in cells.items():
        for b, (bx, by) in cells.items():
            if a != b and ay == by and abs(ax - bx) == 1:
                facts.append((a, 'left of' if ax < bx else 'right of', b))
            if a != b and ax == bx:
                facts.append((a, 'in front of' if ay < by else 'behind', b))
    return [f'{verb} the {names[a]} {relation} the {names[b]}'
            for verb in VERBS for a, relation, b in facts]


def make_scene(folder: Path, num: int, seed: int = 0):
    """Write scene.ply, field.safetensors (with objects) and a one-camera COLMAP model."""
    import torch

    from helpers.fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.scene.cameras import Camera, write_colmap_text
    from refersplat_ros.core.scene.gaussian_io import save_ply
    from refersplat_ros.core.scene.gaussians import GaussianScene
    from refersplat_ros.core.scene.objects import SceneObjects
    from refersplat_ros.core.text.encoder import TextEncoder

    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(num, 3, generator=gen) - 0.5) * torch.tensor([1.0, 1.0, 0.3])
    colors = torch.rand(num, 3, generator=gen)
    labels = np.full(num, -1, np.int32)
    taken = torch.zeros(num, dtype=torch.bool)
    per = max(1, int(0.015 * num))  # an object's size
    for index, (_, rgb, (column, row)) in enumerate(OBJECTS):
        centre = torch.tensor([-0.35 + 0.7 * column / 3, -0.2 + 0.4 * row, 0.0])
        distance = (means - centre).norm(dim=1).masked_fill(taken, float('inf'))
        members = torch.topk(distance, per, largest=False).indices
        taken[members] = True
        labels[members.numpy()] = index
        colors[members] = (torch.tensor(rgb) + 0.03 * torch.randn(per, 3, generator=gen))
    scene = GaussianScene.from_colors(means, colors.clamp(0, 1), torch.full((num, 3), 0.004),
                                      torch.rand(num, generator=gen) * 0.8 + 0.1)
    save_ply(scene, folder / 'scene.ply')
    camera = Camera.look_at((0.0, -1.5, 1.0), (0.0, 0.0, 0.0), width=160, height=120,
                            fov_y_deg=50.0, name='frame_00001.png')
    write_colmap_text(folder / 'sparse' / '0', [camera])
    objects = SceneObjects(labels, [name for name, _, _ in OBJECTS],
                           [[f"the {name.replace('-', ' ')}"] for name, _, _ in OBJECTS],
                           camera, (0.0, 0.0, 1.0))
    visibility = torch.rand(num, generator=gen) * (torch.rand(num, generator=gen) > 0.1)
    encoder = TextEncoder()
    field = fixed_answer_field(scene.means, torch.as_tensor(labels == 0), encoder.hidden_size)
    save_checkpoint(folder / 'field.safetensors', field, text_encoder_id=encoder.encoder_id,
                    step=0, visibility=visibility, objects=objects)


def floor_ms(num: int, repeats: int = 15) -> float:
    """Median time of one plain pass over an [num, 129] float32 table (matrix-vector)."""
    import torch
    table = torch.rand(num, 129)
    vector = torch.rand(129)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        table @ vector
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]) * 1e3)


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def measure(num: int, grounding: str, queries: int, warmup: int, domain_id: int, workdir: Path,
            quantize: str) -> dict:
    """Run the node on a scene of ``num`` Gaussians and time ``queries`` queries."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from refersplat_ros.msg import ReferResult
    from refersplat_ros.node import QUERY_QOS, RESULT_QOS

    folder = workdir / f'n{num}'
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / 'field.safetensors').is_file():
        make_scene(folder, num)
    env = ros_environment(domain_id, folder / f'ros_log_{grounding}')
    args = [sys.executable, '-m', 'refersplat_ros.node', '--ros-args',
            '-p', f"scene:={folder / 'scene.ply'}",
            '-p', f"checkpoint:={folder / 'field.safetensors'}",
            '-p', f'mask.dataset:={folder}', '-p', 'mask.view_index:=0',
            '-p', 'scene_cloud.max_points:=50000',
            '-p', f"language.grounding:={grounding.split('-')[0]}",
            '-p', f"field_table_dtype:={'float16' if grounding == 'field-f16' else 'float32'}"]
    if quantize:
        args += ['-p', f'text_encoder_quantize:={quantize}']
    out_path = folder / f'node_{grounding}.out'
    log = open(out_path, 'wb')
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
        while b'active:' not in out_path.read_bytes():
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('node did not start:\n' + out_path.read_text(errors='replace'))
            executor.spin_once(timeout_sec=0.1)
        load_s = time.monotonic() - load_start
        while publisher.get_subscription_count() == 0:
            executor.spin_once(timeout_sec=0.05)
        rows = []
        texts = graph_queries()
        if warmup + queries > len(texts):
            raise ValueError(f'at most {len(texts)} distinct queries')
        for index in range(warmup + queries):
            text = texts[(index * 7) % len(texts)]  # the verbs and the facts in turn
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
    return {'n': num, 'grounding': grounding,
            'p50': np.percentile(e2e, 50), 'p95': np.percentile(e2e, 95),
            'stages': stages, 'other': np.median(e2e) - sum(stages.values()),
            'node_ms': float(np.median([r[1].latency.sec * 1e3 + r[1].latency.nanosec * 1e-6
                                        for r in rows])),
            'selected': int(np.median([r[1].num_gaussians for r in rows])),
            'ok': sum(s == ReferResult.OK for s in statuses), 'count': len(rows),
            'rss_mb': rss, 'load_s': load_s}


def table(rows) -> str:
    lines = ['| Gaussians | grounding | p50 ms | p95 ms | in node | encode | field | select | '
             'render | other | floor ms | p50 / floor | selected (median) | OK | '
             'node peak RSS MB | node start s |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        s = r['stages']
        lines.append(f"| {r['n']:,} | {r['grounding']} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['node_ms']:.1f} | {s['encode']:.1f} | {s['field']:.1f} | "
                     f"{s['select']:.1f} | {s['render']:.1f} | {r['other']:.1f} | "
                     f"{r['floor_ms']:.1f} | {r['p50'] / r['floor_ms']:.1f} | "
                     f"{r['selected']:,} | {r['ok']}/{r['count']} | {r['rss_mb']:.0f} | "
                     f"{r['load_s']:.1f} |")
    return '\n'.join(lines)


#: Row kinds: the node's grounding, and 'field-f16' = the field with its table in float16.
GROUNDINGS = ('graph', 'field', 'field-f16')
#: p50 publish -> ~/result on a 2-core CPU with the language layer on (grounding: graph).
TARGETS_MS = {50_000: 15.0, 1_000_000: 120.0}
#: Node peak RSS at 1M Gaussians.
TARGET_RSS_MB = {1_000_000: 2048.0}


def targets(rows) -> str:
    """Target lines for the graph rows, and the growth from the smallest to the largest scene."""
    lines = []
    graph = [r for r in rows if r['grounding'] == 'graph']
    for row in graph:
        goal = TARGETS_MS.get(row['n'])
        if goal is not None:
            verdict = 'met' if row['p50'] <= goal else 'missed'
            lines.append(f"- p50 at {row['n']:,} Gaussians: {row['p50']:.1f} ms, target <= "
                         f'{goal:.0f} ms: {verdict}.')
        goal = TARGET_RSS_MB.get(row['n'])
        if goal is not None:
            verdict = 'met' if row['rss_mb'] <= goal else 'missed'
            lines.append(f"- node peak RSS at {row['n']:,} Gaussians: {row['rss_mb']:.0f} MB, "
                         f'target <= {goal:.0f} MB: {verdict}.')
    for mode in GROUNDINGS:
        chosen = [r for r in rows if r['grounding'] == mode]
        if len(chosen) > 1:
            first, last = chosen[0], chosen[-1]
            lines.append(f"- {mode}: p50 {first['p50']:.1f} -> {last['p50']:.1f} ms for "
                         f"{last['n'] / first['n']:.0f}x the Gaussians (x"
                         f"{last['p50'] / first['p50']:.1f}).")
    return ('\n' + '\n'.join(lines) + '\n') if lines else ''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[10_000, 50_000, 200_000, 1_000_000])
    parser.add_argument('--groundings', nargs='+', choices=GROUNDINGS, default=list(GROUNDINGS))
    parser.add_argument('--quantize', choices=('none', 'int8'), default=None,
                        help="the node's text_encoder_quantize (default: the node's default)")
    parser.add_argument('--queries', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--domain-id', type=int, default=201)
    parser.add_argument('--no-write', action='store_true', help='print only')
    args = parser.parse_args(argv)
    import torch
    rows = []
    print(table([]).splitlines()[0], flush=True)
    with tempfile.TemporaryDirectory(prefix='refersplat_latency_') as tmp:
        for num in args.sizes:
            for grounding in args.groundings:
                row = measure(num, grounding, args.queries, args.warmup, args.domain_id,
                              Path(tmp), args.quantize)
                row['floor_ms'] = floor_ms(num)  # same threads as the node, between its runs
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    quantize = args.quantize or "the node's default"
    text = (f'## {SECTION}\n\n'
            f'`python bench/query_latency.py` on {datetime.date.today()}: {platform.node()}, '
            f'{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} '
            f"threads), device {'CUDA' if torch.cuda.is_available() else 'CPU'}, text encoder "
            f'{quantize}. The node runs as a subprocess; this process publishes '
            f'{args.queries} distinct queries one at a time ({args.warmup} warm-up queries '
            'first) and times publish -> `~/result` receipt. "in node" is the ReferResult '
            'latency (receipt to publication on the node); stage columns are medians in ms '
            'from the ReferResult ("encode" includes parsing and grounding in the object '
            'graph); "other" is end-to-end minus the stages (transport both ways, queueing, '
            'message building). "floor" is one plain pass over an [N, 129] float32 table (the '
            "size of the field's inference table: a matrix-vector product) timed in the "
            "benchmark process between the node's runs. Synthetic scenes: random Gaussians "
            'with eight annotated objects of 1.5 % of N each; graph rows ask commands such as '
            '"pick up the blue bowl right of the red mug" (a true relation, a new sentence each '
            'time); field rows (`language.grounding: field`, the paper) ask the same through '
            'the default PCMI field with hand-set weights (`test/helpers/fixed_answer_field.py`: '
            "the full forward runs, so its cost equals a trained field's); field-f16 rows the "
            'same with the field table in float16 (`field_table_dtype`); a 160x120 mask view.\n\n'
            + table(rows) + '\n' + targets(rows))
    print('\n' + text)
    if not args.no_write:
        write_section(text, ROOT / 'docs' / 'BENCHMARKS.md', SECTION)
    return 0


if __name__ == '__main__':
    sys.exit(main())
