"""Robustness probe: the node and the library as a hostile or careless client meets them.

Replays the probes of issue 13 against this checkout and prints what came back, one table per
item: bursts of action goals (1), hostile scene/checkpoint paths (2, 4, 6), signals at each
lifecycle stage (3), odd queries and goal fields (5), the sentence cache, a huge DBSCAN radius
and the time budget (7), a 200 Hz flood (8), kill -9 during training, a malformed recorded
config and a shutdown during a flood (9); and those of issue 24: invalid camera stamps and
cameras of every size up to 8192x8192 and a close-up, with time and peak memory (10), crafted
checkpoint descriptions through the node and the CLI (11), 200 simultaneous clears and queries
during a scene load (12). Bounded: fixed counts, every wait has a deadline, the whole probe takes
a few minutes on 2 cores. ``--only`` re-measures some items and keeps the others' last tables.

Every ROS process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, its own leased
ROS_DOMAIN_ID and ROS_LOG_DIR (``test/helpers/ros_harness.py``) and the loopback Fast DDS profile;
nothing leaves 127.0.0.1.

    python bench/robustness.py                      # all items; writes docs/ROBUSTNESS.md
    python bench/robustness.py --only 1,8 --no-write
"""
import argparse
import datetime
import json
import os
from pathlib import Path
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / 'test')]  # this checkout; the harness and test scenes

from helpers.node_scenes import make_handmade_scene  # noqa: E402
from helpers.ros_harness import DomainLease, RosProcess  # noqa: E402

from refersplat_ros.core.inference.queries import status_name  # noqa: E402
from refersplat_ros.ros_environment import apply_network_rule, ros_environment  # noqa: E402

NODE = 'refersplat_ros.node'
MARKER = '<!-- bench/robustness.py writes below this line -->'


def _ms(seconds: float) -> str:
    return f'{seconds * 1e3:.0f} ms' if seconds < 10 else f'{seconds:.1f} s'


def _status_kb(pid: int, key: str) -> float:
    """Return VmHWM / VmRSS of a process in MB (nan once it is gone)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def _table(header, rows) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(str(c).replace('|', '\\|').replace('\n', ' ')
                                       for c in row) + ' |')
    return '\n'.join(lines)


def _short(text: str, limit: int = 150) -> str:
    text = text.replace('\n', ' ')
    return text if len(text) <= limit else text[:limit - 3] + '...'


class Session:
    """One node process and one client participant on a leased domain."""

    def __init__(self, work: Path, scene, name: str, **params):
        self.lease = DomainLease()
        self.log_dir = work / f'{name}_log'
        self.env = ros_environment(self.lease.domain_id, self.log_dir)
        values = {'scene': scene.scene_path, 'checkpoint': scene.checkpoint_path, **params}
        args = ['--ros-args']
        for key, value in values.items():
            args += ['-p', f'{key}:={str(value).lower() if isinstance(value, bool) else value}']
        self.node = RosProcess.python_module(NODE, *args, env=self.env, log_dir=self.log_dir,
                                             name=name)
        try:
            self._join(name)
        except BaseException:
            self.node.stop()
            self.lease.release()
            raise

    def _join(self, name: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from refersplat_ros.msg import ReferResult
        from refersplat_ros.qos import QUERY_QOS, RESULT_QOS
        from std_msgs.msg import String

        apply_network_rule(self.env)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.lease.domain_id)
        self.client = rclpy.create_node(f'probe_{name}', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.client)
        self.results = []
        self.arrived = {}
        self.client.create_subscription(ReferResult, '/refersplat/result', self._on_result,
                                        RESULT_QOS)
        self.publisher = self.client.create_publisher(String, '/refer_query', QUERY_QOS)
        self._string = String

    def _on_result(self, msg):
        self.results.append(msg)
        self.arrived.setdefault(msg.text, time.monotonic())

    def diagnostic(self, key: str, timeout: float = 10.0) -> str:
        """Return the newest value of ``key`` in the node's /diagnostics."""
        from diagnostic_msgs.msg import DiagnosticArray

        seen = []
        subscription = self.client.create_subscription(DiagnosticArray, '/diagnostics',
                                                       seen.append, 10)
        try:
            self.spin(lambda: seen, timeout)
        finally:
            self.client.destroy_subscription(subscription)
        values = {kv.key: kv.value for msg in seen[-1:] for kv in msg.status[0].values}
        return values.get(key, '?')

    def spin(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
        return bool(predicate())

    def wait_active(self, timeout: float = 120.0):
        if not self.node.wait_for_output('active:', timeout):
            raise RuntimeError(f'node did not become active:\n{self.node.output()}')
        if not self.spin(lambda: self.publisher.get_subscription_count() > 0, timeout):
            raise RuntimeError('node does not subscribe to /refer_query')

    def send(self, text: str):
        self.publisher.publish(self._string(data=text))

    def ask(self, text: str, timeout: float = 60.0):
        count = len(self.results)
        sent = time.monotonic()
        self.send(text)
        if not self.spin(lambda: len(self.results) > count, timeout):
            raise RuntimeError(f'no answer to {text!r}')
        return self.results[-1], time.monotonic() - sent

    def action_client(self, deep: bool = True):
        from rclpy.action import ActionClient

        from refersplat_ros.action import Refer
        from refersplat_ros.qos import ACTION_FEEDBACK_QOS, ACTION_SERVICE_QOS

        kwargs = {}
        if deep:
            kwargs = dict(goal_service_qos_profile=ACTION_SERVICE_QOS,
                          result_service_qos_profile=ACTION_SERVICE_QOS,
                          cancel_service_qos_profile=ACTION_SERVICE_QOS,
                          feedback_sub_qos_profile=ACTION_FEEDBACK_QOS)
        client = ActionClient(self.client, Refer, '/refersplat/refer', **kwargs)
        if not self.spin(client.server_is_ready, 60):
            raise RuntimeError('no action server')
        return client

    def load_scene(self, scene_path, checkpoint_path, timeout: float = 60.0):
        from refersplat_ros.srv import LoadScene

        if not hasattr(self, '_load_client'):
            self._load_client = self.client.create_client(LoadScene, '/refersplat/load_scene')
            self.spin(self._load_client.service_is_ready, 30)
        hwm = _status_kb(self.node.popen.pid, 'VmHWM')
        start = time.monotonic()
        future = self._load_client.call_async(LoadScene.Request(
            scene_path=str(scene_path), checkpoint_path=str(checkpoint_path)))
        answered = self.spin(future.done, timeout)
        elapsed = time.monotonic() - start
        grown = _status_kb(self.node.popen.pid, 'VmHWM') - hwm
        return (future.result() if answered else None), elapsed, grown

    def close(self, sig=signal.SIGINT):
        start = time.monotonic()
        code = self.node.stop(sig, timeout=10.0)
        elapsed = time.monotonic() - start
        self.executor.shutdown()
        self.client.destroy_node()
        self.context.try_shutdown()
        self.lease.release()
        return code, elapsed


# ----------------------------------------------------------------------------------- item 1
def probe_burst(work: Path, scene) -> str:
    from refersplat_ros.action import Refer

    rows = []
    for deep, sizes in ((True, (20, 40, 60, 100, 200)), (False, (20, 100))):
        session = Session(work, scene, f'burst_{int(deep)}')
        try:
            session.wait_active()
            action = session.action_client(deep)
            for size in sizes:
                start = time.monotonic()
                texts = [f'burst {size} goal {i}' for i in range(size)]
                sent = [action.send_goal_async(Refer.Goal(text=t)) for t in texts]
                session.spin(lambda: all(f.done() for f in sent), 60)
                accepted = [f.result() for f in sent if f.done() and f.result().accepted]
                waiting = [h.get_result_async() for h in accepted]
                session.spin(lambda: all(f.done() for f in waiting), 60)
                answers = [f.result().result.result for f in waiting if f.done()]
                statuses = {}
                for answer in answers:
                    name = ('OK', 'NO_MATCH', 'INVALID_QUERY', 'NOT_READY', 'DROPPED',
                            'ERROR')[answer.status]
                    statuses[name] = statuses.get(name, 0) + 1
                unique = len({a.query_id for a in answers}) == len(answers)
                rows.append(['refersplat_ros.qos (deep)' if deep else 'rclpy defaults (depth 10)',
                             size, len(accepted), len(answers),
                             ', '.join(f'{k} {v}' for k, v in sorted(statuses.items())),
                             'yes' if unique else 'NO', _ms(time.monotonic() - start)])
            action.destroy()
        finally:
            session.close()
    return ('Goals sent at once (no spinning in between) to one node (default parameters, '
            'queue 4); then every result requested. The server always uses the deep profiles '
            "of `refersplat_ros/qos.py`; the client either the same or rclpy's defaults.\n\n"
            + _table(['client QoS', 'goals', 'acknowledged', 'results', 'statuses',
                      'ids unique', 'all answered in'], rows)
            + "\n\nBefore the fix the server used rclpy's default action QoS (keep-last 10 on "
              'its goal and result services): 20 goals sent at once got 11 answers, 40 got 17, '
              '60 got 12. The server now answers every goal it receives. A client keeps its own '
              "histories too: the rows with rclpy's defaults on the client show what its "
              'keep-last-10 readers lost in this run (a burst needs the deep profiles on both '
              'ends; `ReferClient` uses them).')


# ----------------------------------------------------------------------------------- items 2, 4, 6
def _hostile_files(work: Path, scene) -> list:
    import io
    import zipfile

    import numpy as np
    from plyfile import PlyData, PlyElement
    import torch

    from refersplat_ros.core.field.checkpoint import load_checkpoint, save_checkpoint
    from refersplat_ros.core.field.referring_field import ReferringField
    from refersplat_ros.core.scene.gaussian_io import load_scene

    folder = work / 'hostile'
    folder.mkdir(exist_ok=True)
    fifo = folder / 'fifo.safetensors'
    os.mkfifo(fifo)
    directory = folder / 'directory.ply'
    directory.mkdir()
    big = folder / 'big.ply'
    with open(big, 'wb') as handle:
        handle.write(b'ply\n')
        handle.truncate(64 * 2**20)  # sparse: 64 MiB over a 32 MiB limit
    # A .pth whose deflated records inflate to ~300 MiB (the 2 MB file inflated to 6 GB).
    num = 2**26 // 12
    args = (0, torch.zeros(num, 3), torch.zeros(num, 1, 3), torch.zeros(num, 0, 3),
            torch.zeros(num, 3), torch.zeros(num, 4), torch.zeros(num, 1))
    plain = io.BytesIO()
    torch.save((args, 1), plain)
    del args
    deflated = folder / 'deflated.pth'
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, \
            zipfile.ZipFile(deflated, 'w') as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
    inflated = len(plain.getvalue())
    del plain
    # A safetensors header claiming 2 GiB of features in a ~2 MB file.
    data = Path(scene.checkpoint_path).read_bytes()
    length = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + length])
    header['field.features']['shape'] = [2**25, 16]
    text = json.dumps(header).encode()
    forged = folder / 'forged.safetensors'
    forged.write_bytes(len(text).to_bytes(8, 'little') + text + data[8 + length:])
    # What a diverged run saves, and a scene without Gaussians.
    saved = load_checkpoint(scene.checkpoint_path)
    means = load_scene(scene.scene_path).means
    field = ReferringField(means, saved.field_config)
    field.load_state_dict(saved.field_state)
    with torch.no_grad():
        field.features[::7] = float('nan')
    nan = save_checkpoint(folder / 'diverged.safetensors', field,
                          text_encoder_id=saved.text_encoder_id, step=1)
    empty = folder / 'empty.ply'
    PlyData([PlyElement.describe(np.zeros(0, dtype=[(f, 'f4') for f in (
        'x', 'y', 'z', 'f_dc_0', 'f_dc_1', 'f_dc_2', 'opacity', 'scale_0', 'scale_1', 'scale_2',
        'rot_0', 'rot_1', 'rot_2', 'rot_3')]), 'vertex')]).write(str(empty))
    s, c = scene.scene_path, scene.checkpoint_path
    return [
        ('2', 'checkpoint /dev/zero', s, '/dev/zero'),
        ('2', 'checkpoint = a FIFO without writer', s, fifo),
        ('2', 'scene = a directory', directory, c),
        ('2', 'scene of 64 MiB, limit 32 MiB (`load.max_file_mb`)', big, c),
        ('2', 'checkpoint missing', s, folder / 'missing.safetensors'),
        ('4', f'.pth of {deflated.stat().st_size / 2**20:.2f} MiB deflating '
              f'{inflated / 2**20:.0f} MiB of records', deflated, c),
        ('4', 'safetensors header claiming 2 GiB of features', s, forged),
        ('6', 'checkpoint with NaN weights (diverged run)', s, nan),
        ('6', 'scene with 0 Gaussians', empty, c),
    ]


def probe_paths(work: Path, scene) -> str:
    session = Session(work, scene, 'paths', **{'load.max_file_mb': 32})
    rows = []
    try:
        session.wait_active()
        for item, what, scene_path, checkpoint_path in _hostile_files(work, scene):
            reply, elapsed, grown = session.load_scene(scene_path, checkpoint_path)
            if reply is None:
                rows.append([item, what, 'NO REPLY', '', _ms(elapsed), f'{grown:.0f}'])
                continue
            reason = reply.message.replace('load failed, previous scene kept: ', '')
            reason = reason.replace(str(work), '…')
            rows.append([item, what, 'loaded' if reply.success else 'refused', _short(reason),
                         _ms(elapsed), f'{grown:.0f}'])
        answer, elapsed = session.ask('the red mug')
        after = 'OK' if answer.status == 0 else str(answer.status)
    finally:
        code, _ = session.close()
    return ('`~/load_scene` calls on an active node (`load.max_file_mb` 32). "peak +MB" is '
            "the growth of the node's peak RSS (VmHWM) during the call.\n\n"
            + _table(['item', 'path given', 'reply', 'reason in the reply', 'replied in',
                      'peak +MB'], rows)
            + f'\n\nAfterwards the previous field still serves: "the red mug" -> {after} in '
              f'{_ms(elapsed)}; the node exits with status {code}.')


# ----------------------------------------------------------------------------------- item 3
def _wait_for_subscriber(env, domain_id: int, topic: str, timeout: float = 120.0) -> bool:
    """Wait until some participant of the domain subscribes to ``topic``."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    apply_network_rule(env)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('probe_watch', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while node.count_subscribers(topic) == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        return node.count_subscribers(topic) > 0
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


def probe_signals(work: Path, scene) -> str:
    rows = []
    for stage in ('configuring', 'unconfigured', 'active'):
        for sig in (signal.SIGTERM, signal.SIGINT):
            lease = DomainLease()
            log_dir = work / f'signal_{stage}_{sig.name}'
            env = ros_environment(lease.domain_id, log_dir)
            args = ['--ros-args', '-p', f'scene:={scene.scene_path}',
                    '-p', f'checkpoint:={scene.checkpoint_path}']
            if stage == 'unconfigured':
                args += ['-p', 'autostart:=false']
            node = RosProcess.python_module(NODE, *args, env=env, log_dir=log_dir, name='node')
            if stage == 'unconfigured':
                _wait_for_subscriber(env, lease.domain_id, '/refer_query')
            else:
                node.wait_for_output({'configuring': 'configuring:', 'active': 'active:'}[stage],
                                     120)
            start = time.monotonic()
            code = node.stop(sig, timeout=20.0)
            elapsed = time.monotonic() - start
            during = ('yes' if 'loaded ' not in node.output() else 'no (load had ended)'
                      ) if stage == 'configuring' else ''
            rows.append([stage, sig.name, code, _ms(elapsed), 'killed' if node.killed else 'no',
                         len(node.leftover_shm()), during])
            lease.release()
    return ('The node is started (autostart, or `autostart:=false` for "unconfigured") and '
            'signalled as soon as the stage is reached. /dev/shm: segments of the process '
            'left behind after its exit.\n\n'
            + _table(['stage', 'signal', 'exit status', 'exited in', 'SIGKILL needed',
                      '/dev/shm left', 'signal came during the load'], rows))


# ----------------------------------------------------------------------------------- item 5
def probe_queries(work: Path, scene) -> str:
    import math

    from refersplat_ros.action import Refer

    session = Session(work, scene, 'queries')
    rows = []
    try:
        session.wait_active()
        for label, text in (('U+200B', '\u200b'), ('U+FEFF', '\ufeff'), ('soft hyphen', '\u00ad'),
                            ('combining marks', '\u0301\u0308'), ('RLO', '\u202e'),
                            ('U+FFFD (dropped by the tokenizer)', '\ufffd'),
                            ('"mug" + U+200B', 'mug\u200b')):
            answer, elapsed = session.ask(text)
            rows.append(['topic', label, status_name(answer.status), _short(answer.message, 110),
                         _ms(elapsed)])
        action = session.action_client()
        for label, goal in (('score_threshold 1.0', Refer.Goal(text='mug', score_threshold=1.0)),
                            ('score_threshold +inf', Refer.Goal(text='mug',
                                                                score_threshold=math.inf)),
                            ('score_threshold NaN', Refer.Goal(text='mug',
                                                               score_threshold=math.nan)),
                            ('score_threshold -0.5', Refer.Goal(text='mug',
                                                                score_threshold=-0.5)),
                            ('top_k 65', Refer.Goal(text='mug', top_k=65)),
                            ('top_k 2^32-1', Refer.Goal(text='mug', top_k=2**32 - 1)),
                            ('score_threshold 0.99, top_k 64',
                             Refer.Goal(text='mug', score_threshold=0.99, top_k=64))):
            start = time.monotonic()
            future = action.send_goal_async(goal)
            session.spin(future.done, 30)
            result = future.result().get_result_async()
            session.spin(result.done, 30)
            answer = result.result().result.result
            rows.append(['action', label, status_name(answer.status), _short(answer.message, 110),
                         _ms(time.monotonic() - start)])
        action.destroy()
        errors = session.node.output().count('failed')
    finally:
        session.close()
    return (_table(['via', 'query', 'status', 'message', 'answered in'], rows)
            + f'\n\nNode log lines with "failed" (internal errors) during these: {errors}.')


# ----------------------------------------------------------------------------------- item 7
def _wide_scene(folder: Path, num: int, share: float):
    """Write a scene whose answer is ``share`` of ``num`` Gaussians (a large selection)."""
    import torch

    from helpers.fixed_answer_field import fixed_answer_field
    from helpers.node_scenes import HandmadeScene
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.scene.gaussian_io import save_ply
    from refersplat_ros.core.scene.gaussians import GaussianScene
    from refersplat_ros.core.text.encoder import TextEncoder

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(num, 3, generator=gen)
    scene = GaussianScene.from_colors(means, torch.rand(num, 3, generator=gen),
                                      torch.full((num, 3), 0.004), torch.full((num,), 0.9))
    save_ply(scene, folder / 'scene.ply')
    encoder = TextEncoder()
    selected = torch.arange(num) < int(share * num)
    save_checkpoint(folder / 'field.safetensors',
                    fixed_answer_field(scene.means, selected, encoder.hidden_size),
                    text_encoder_id=encoder.encoder_id, step=0)
    return HandmadeScene(folder / 'scene.ply', folder / 'field.safetensors', folder,
                         means.numpy(), selected.numpy().astype(int))


def probe_resources(work: Path, scene) -> str:
    rows = []
    session = Session(work, scene, 'cache')
    try:
        session.wait_active()
        session.ask('warm up')
        before = _status_kb(session.node.popen.pid, 'VmRSS')
        count = 200
        for index in range(count):
            words = ' '.join(f'mug{index}x{j}' for j in range(60))[:512]
            session.ask(words, timeout=120)
        grown = _status_kb(session.node.popen.pid, 'VmRSS') - before
        cached = session.diagnostic('text_cache_mb')
        rows.append([f'{count} unique 512-character queries (`query.cache_mb` 64)',
                     f'node RSS +{grown:.0f} MB; cached word features {cached} MB '
                     '(/diagnostics `text_cache_mb`)',
                     f'unbounded by bytes the cache would hold all {count} (~0.8 MB each)'])
    finally:
        session.close()
    wide = _wide_scene(work / 'wide', 40_000, 0.5)
    for index, (eps, budget) in enumerate(((0.0, 10.0), (1e6, 10.0), (1e6, 0.02))):
        session = Session(work, wide, f'eps_{index}',
                          **{'selection.cluster_eps': eps, 'query.time_budget_s': budget})
        try:
            session.wait_active()
            session.ask('warm up')
            answer, elapsed = session.ask('the red mug')
            hwm = _status_kb(session.node.popen.pid, 'VmHWM')
            rows.append([f'20k selected Gaussians, `selection.cluster_eps` {eps:g}, '
                         f'`query.time_budget_s` {budget:g}',
                         f'{status_name(answer.status)} in {_ms(elapsed)} (select '
                         f'{answer.select_ms:.0f} ms), peak RSS {hwm:.0f} MB',
                         _short(answer.message, 100) or f'{answer.num_gaussians} Gaussians'])
        finally:
            session.close()
    return _table(['probe', 'result', 'detail'], rows)


# ----------------------------------------------------------------------------------- item 8
def probe_flood(work: Path, scene, rate: float = 200.0, seconds: float = 8.0) -> str:
    from refersplat_ros.msg import ReferResult

    session = Session(work, scene, 'flood')
    try:
        session.wait_active()
        idle = []
        for index in range(15):
            _, elapsed = session.ask(f'idle query {index}')
            idle.append(elapsed)
        idle = idle[5:]
        session.results.clear()
        session.arrived.clear()
        sent = {}
        count = int(rate * seconds)
        start = time.monotonic()
        for index in range(count):
            target = start + index / rate
            while time.monotonic() < target:
                session.executor.spin_once(timeout_sec=max(0.0, target - time.monotonic()))
            text = f'the red mug number {index}'
            sent[text] = time.monotonic()
            session.send(text)
        send_s = time.monotonic() - start
        session.spin(lambda: len(session.results) >= count, 120)
        served = sorted(session.arrived[r.text] - sent[r.text] for r in session.results
                        if r.status == ReferResult.OK)
        dropped = sorted(session.arrived[r.text] - sent[r.text] for r in session.results
                         if r.status == ReferResult.DROPPED)
        service = statistics.median(r.encode_ms + r.field_ms + r.select_ms + r.render_ms
                                    for r in session.results if r.status == ReferResult.OK)
    finally:
        code, _ = session.close()

    def quantile(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] if values else float('nan')

    row = [f'{rate:.0f} Hz x {seconds:.0f} s ({send_s:.1f} s to send)', count,
           len(session.results), len(served), len(dropped), _ms(statistics.median(idle)),
           f'{service:.0f} ms', _ms(quantile(served, 0.5)), _ms(quantile(served, 0.9)),
           _ms(served[-1] if served else float('nan')), _ms(quantile(dropped, 0.5))]
    return ('Queries published at a fixed rate on `/refer_query` (default parameters: queue '
            '4, the handmade 2000-Gaussian scene with its 64x48 mask view); latencies are '
            'publish -> `~/result` at the client. "service" is the in-node stage time of the '
            'served queries during the flood.\n\n'
            + _table(['flood', 'sent', 'answered', 'OK', 'DROPPED', 'idle p50', 'service p50',
                      'served p50', 'served p90', 'served max', 'DROPPED p50'], [row])
            + f'\n\nThe node exits with status {code} afterwards.')


# ----------------------------------------------------------------------------------- item 9
def probe_training_and_shutdown(work: Path, scene) -> str:
    from helpers.tiny_referring import tiny_encoder_folder, write_two_object_scene

    rows = []
    data = write_two_object_scene(work / 'train_scene')
    encoder = tiny_encoder_folder(work / 'tiny_bert')
    run = work / 'run'
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    command = [sys.executable, '-m', 'refersplat_ros.cli.main', 'train', '--data', str(data),
               '--out', str(run), '--text-encoder', str(encoder), '--device', 'cpu',
               '--num-threads', '1', '--no-progress', '--expressions-per-step', '2',
               '--checkpoint-every', '1']
    folder = run / 'checkpoints'
    killed_with = []
    for attempt in range(3):  # kill -9 while a checkpoint is being written, if it can be caught
        proc = subprocess.Popen(command + ['--steps', '400'] + (['--resume'] if attempt else []),
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if folder.is_dir() and list(folder.glob('.*.tmp')) and len(
                    list(folder.glob('step_*.safetensors'))) >= 5:
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_with = sorted(p.name for p in folder.glob('.*.tmp'))
        if killed_with:
            break
    log = (folder / 'train_log.csv').read_text() if (folder / 'train_log.csv').exists() else ''
    rows.append(['kill -9 during training (checkpoint every step)',
                 f'temp files left: {len(killed_with)}; log header present: '
                 f"{log.startswith('step,')}", ''])
    resumed = subprocess.run(command + ['--steps', '420', '--resume'], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
    log = (folder / 'train_log.csv').read_text()
    steps = [int(line.split(',')[0]) for line in log.splitlines()[1:]]
    rows.append(['`refersplat train --resume` afterwards',
                 f'exit {resumed.returncode}; temp files left: '
                 f"{len(list(folder.glob('.*.tmp')))}; log header: {log.startswith('step,')}; "
                 f'steps strictly increasing: {all(a < b for a, b in zip(steps, steps[1:]))}',
                 ''])
    # A malformed recorded config.
    import torch

    from refersplat_ros.core.field.checkpoint import load_checkpoint, save_checkpoint
    from refersplat_ros.core.field.referring_field import ReferringField
    from refersplat_ros.core.scene.gaussian_io import load_scene

    saved = load_checkpoint(folder / 'last.safetensors')
    field = ReferringField(load_scene(saved.training_config['scene_path']).means,
                           saved.field_config)
    field.load_state_dict(saved.field_state)
    del torch
    for label, record in (('text_encoder with an unknown key', {'text_encoder': {'bogus': 1}}),
                          ('stage "two"', {'stage': 'two'})):
        bad = save_checkpoint(work / 'malformed.safetensors', field,
                              text_encoder_id=saved.text_encoder_id, step=saved.step,
                              training_config={**saved.training_config, **record})
        query = subprocess.run([sys.executable, '-m', 'refersplat_ros.cli.main', 'query',
                                '--checkpoint', str(bad), '--text', 'the red ball', '--device',
                                'cpu'], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=300)
        first = (query.stderr.strip().splitlines() or [''])[-1].replace(str(work), '…')
        rows.append([f'`refersplat query`, recorded config: {label}',
                     f'exit {query.returncode}; traceback: {"Traceback" in query.stderr}',
                     _short(first, 140)])
    # A shutdown in the middle of a flood.
    session = Session(work, scene, 'shutdown', **{'query.queue_size': 1000})
    try:
        session.wait_active()
        for index in range(400):
            session.send(f'the red mug number {index}')
        session.spin(lambda: len(session.results) >= 3, 60)
    finally:
        code, elapsed = session.close()
    noise = [line for line in session.node.output().splitlines()
             if 'Failed to publish' in line or 'Traceback' in line or '[ERROR]' in line]
    rows.append(['SIGINT after 3 of 400 queued queries were answered',
                 f'exit {code} in {_ms(elapsed)}; error lines: {len(noise)}',
                 _short(noise[0], 120) if noise else ''])
    return _table(['probe', 'outcome', 'detail'], rows)


# ------------------------------------------------------------------------- issue 24 items
def _synth_scene(work: Path, objects: bool = False):
    """Return a Ref-Synth default scene (~30k Gaussians) and a field answering its largest object.

    With ``objects`` its checkpoint also records the objects (names, no sentences).
    """
    import numpy as np
    import torch

    from helpers.fixed_answer_field import fixed_answer_field
    from helpers.node_scenes import HandmadeScene
    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.scene.objects import SceneObjects
    from refersplat_ros.core.text.encoder import TextEncoder

    data = work / 'synth'
    if not (data / 'manifest.json').exists():
        make_scene(preset_config('default', seed=0), data, overwrite=True, progress=False,
                   contact_sheet=False)
    manifest = json.loads((data / 'manifest.json').read_text())
    scene_path = data / manifest['point_cloud']
    means = load_scene(scene_path).means
    ids = np.load(data / 'object_ids.npy')
    largest = max(manifest['objects'], key=lambda o: o['num_gaussians'])
    selected = torch.from_numpy(ids == largest['id'])
    encoder = TextEncoder()
    recorded = None
    name = 'field.safetensors'
    if objects:
        order = [o['id'] for o in manifest['objects']]
        labels = np.full(len(ids), -1, np.int32)
        for index, object_id in enumerate(order):
            labels[ids == object_id] = index
        recorded = SceneObjects(labels, [o['category'] for o in manifest['objects']],
                                [[] for _ in order], None, (0.0, 0.0, 1.0))
        name = 'objects.safetensors'
    checkpoint = save_checkpoint(data / name, fixed_answer_field(means, selected,
                                                                 encoder.hidden_size),
                                 text_encoder_id=encoder.encoder_id, step=0, objects=recorded)
    return HandmadeScene(scene_path, checkpoint, data, means.numpy(), ids), largest


def _camera_messages(camera, stamp_sec: float):
    """Return CameraInfo + PoseStamped (frame 'scene') of a core camera."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Header

    from refersplat_ros.conversions import camera_info, pose_msg
    from refersplat_ros.core.scene.frames import rotation_to_quaternion_xyzw

    c2w = camera.camera_to_world.double().numpy()
    stamp = Time(sec=int(stamp_sec), nanosec=int(round((stamp_sec % 1) * 1e9)))
    info = camera_info(camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy,
                       Header(stamp=stamp, frame_id='camera_optical'))
    pose = PoseStamped(header=Header(stamp=stamp, frame_id='scene'),
                       pose=pose_msg(c2w[:3, 3], rotation_to_quaternion_xyzw(c2w[:3, :3])))
    return info, pose


def probe_cameras(work: Path, _scene) -> str:
    """Issue 24 items 1-3: invalid camera stamps, then cameras of every size and a close-up."""
    import torch
    from sensor_msgs.msg import CameraInfo, Image
    from geometry_msgs.msg import PoseStamped

    from refersplat_ros import topics
    from refersplat_ros.core.scene.cameras import Camera, read_colmap_model
    from refersplat_ros.qos import CAMERA_QOS, LATCHED

    synth, largest = _synth_scene(work)
    view = read_colmap_model(synth.dataset_dir / 'sparse' / '0')
    base = view[sorted(view)[0]]
    centre = torch.as_tensor(synth.means[synth.object_ids == largest['id']].mean(0))
    cameras = [(f'{w}x{h}', base.resized(w, h)) for w, h in (
        (640, 480), (1280, 720), (1920, 1080), (3840, 2160), (8192, 6144), (8192, 8192))]
    cameras.append(('640x480, 3 cm from the target', Camera.look_at(
        (centre + torch.tensor([0.0, -0.03, 0.01])).tolist(), centre.tolist(), width=640,
        height=480, fov_y_deg=60.0)))
    cameras.append(('640x480, fx = fy = 1e5, aimed at the target', Camera.look_at(
        base.center.tolist(), centre.tolist(), width=640, height=480, fx=1e5, fy=1e5)))
    session = Session(work, synth, 'cameras')
    rows, stamp = [], 100.0
    try:
        session.wait_active()
        node = session.client
        info_pub = node.create_publisher(CameraInfo, '/' + topics.CAMERA_INFO, CAMERA_QOS)
        pose_pub = node.create_publisher(PoseStamped, '/' + topics.CAMERA_POSE, CAMERA_QOS)
        masks = []
        node.create_subscription(Image, '/refersplat/target/mask', masks.append, LATCHED)
        session.spin(lambda: info_pub.get_subscription_count() > 0
                     and pose_pub.get_subscription_count() > 0, 30)
        session.ask('warm up')

        def show(camera, sec):
            info, pose = _camera_messages(camera, sec)
            for _ in range(3):  # best effort: a few copies
                pose_pub.publish(pose)
                info_pub.publish(info)
                session.spin(lambda: False, 0.05)

        # 1. negative stamps, then a valid camera
        bad_info, bad_pose = _camera_messages(cameras[0][1], 0.0)
        bad_info.header.stamp.sec = bad_pose.header.stamp.sec = -5
        for _ in range(3):
            info_pub.publish(bad_info)
            pose_pub.publish(bad_pose)
            session.spin(lambda: False, 0.05)
        show(cameras[0][1], stamp)
        answer, elapsed = session.ask('the red mug')
        dropped = session.diagnostic('camera_dropped')
        rows.append(['CameraInfo + pose with sec = -5, then a valid 640x480 camera',
                     f'{status_name(answer.status)} in {_ms(elapsed)}; camera_dropped {dropped}',
                     '', '', _short(answer.message, 90)])
        for name, camera in cameras:
            stamp += 1.0
            count = len(masks)
            show(camera, stamp)
            answer, elapsed = session.ask('the red mug', timeout=120)
            session.spin(lambda: len(masks) > count, 10)
            size = f'{masks[-1].width}x{masks[-1].height}' if len(masks) > count else 'none'
            hwm = _status_kb(session.node.popen.pid, 'VmHWM')
            rows.append([name, f'{status_name(answer.status)} in {_ms(elapsed)} (render '
                         f'{answer.render_ms:.0f} ms)', size, f'{hwm:.0f}',
                         _short(answer.message, 110)])
    finally:
        code, _ = session.close()
    return ('A Ref-Synth default scene (30k Gaussians), the field answering its largest object; '
            'each camera published as CameraInfo + PoseStamped, then one query. "peak MB" is '
            "the node's peak RSS (VmHWM) so far, in MiB.\n\n"
            + _table(['camera', 'answer (query to result)', 'mask', 'peak MB', 'message'],
                     rows) + f'\n\nThe node exits with status {code}.')


def _crafted_checkpoints(work: Path, synth) -> list:
    """Checkpoints whose description is oversized or not finite (issue 24 items 4 and 5)."""
    path = Path(synth.checkpoint_path)
    data = path.read_bytes()
    length = int.from_bytes(data[:8], 'little')
    payload = data[8 + length:]

    def write(name, edit=None, raw=None):
        header = json.loads(data[8:8 + length])
        meta = json.loads(header['__metadata__']['refersplat'])
        if edit is not None:
            edit(meta)
        header['__metadata__']['refersplat'] = raw(meta) if raw else json.dumps(meta)
        text = json.dumps(header).encode()
        out = work / 'crafted' / name
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(len(text).to_bytes(8, 'little') + text + payload)
        return out

    def sentences(meta):
        meta['objects']['sentences'][0] = ['the red mug on the left'] * 100_000

    def groups(meta):
        meta['objects']['names'][0] = 'mug' + '-1' * 40_000

    def view(meta):
        meta['objects']['reference_view'] = {'width': float('inf'), 'height': 120, 'fx': 1.0,
                                             'fy': 1.0, 'cx': 0.0, 'cy': 0.0,
                                             'world_to_camera': [[1, 0, 0, 0], [0, 1, 0, 0],
                                                                 [0, 0, 1, 0], [0, 0, 0, 1]]}

    def step(meta):
        meta['step'] = float('inf')

    def deep(meta):
        return json.dumps(meta)[:-1] + ', "deep": ' + '[' * 100_000 + ']' * 100_000 + '}'

    return [
        ('100,000 training sentences for one object', write('sentences.safetensors', sentences)),
        ('an object name of 40,000 "-1" groups', write('groups.safetensors', groups)),
        ('reference view of infinite width', write('view.safetensors', view)),
        ('recorded step Infinity', write('step.safetensors', step)),
        ('100,000-deep JSON in the description', write('deep.safetensors', raw=deep)),
    ]


def probe_metadata(work: Path, _scene) -> str:
    """Issue 24 items 4 and 5: crafted descriptions through ~/load_scene and the CLI."""
    synth, largest = _synth_scene(work, objects=True)
    crafted = _crafted_checkpoints(work, synth)
    session = Session(work, synth, 'metadata')
    rows = []
    try:
        session.wait_active()
        for what, path in crafted:
            reply, elapsed, grown = session.load_scene(synth.scene_path, path)
            node = ('NO REPLY' if reply is None else
                    ('loaded' if reply.success else 'refused') + ': ' + _short(
                        reply.message.replace('load failed, previous scene kept: ', '')
                        .replace(str(work), '…'), 100))
            start = time.monotonic()
            cli = subprocess.run([sys.executable, '-m', 'refersplat_ros.cli', 'query',
                                  '--scene', str(synth.scene_path), '--checkpoint', str(path),
                                  '--text', 'the red mug'], capture_output=True, text=True,
                                 timeout=300, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
            cli_s = time.monotonic() - start
            last = (cli.stderr.strip().splitlines() or [''])[-1].replace(str(work), '…')
            rows.append([what, node, _ms(elapsed), f'{grown:.0f}',
                         f'exit {cli.returncode} in {cli_s:.1f} s: {_short(last, 90)}'])
        name = largest['category'].replace('-', ' ')
        answer, _ = session.ask(f'the {name}')
        after = f'"the {name}" -> {status_name(answer.status)}'
    finally:
        code, _ = session.close()
    return ('Checkpoints of the Ref-Synth default scene with one entry of the description '
            'crafted, given to `~/load_scene` of an active node and to `refersplat query`. '
            '"peak +MB": growth of the node\'s peak RSS during the call.\n\n'
            + _table(['crafted entry', 'node reply', 'replied in', 'peak +MB', 'CLI'], rows)
            + f'\n\nAfterwards the scene in use still answers: {after}; the node exits with '
              f'status {code}.')


def probe_services(work: Path, scene) -> str:
    """Issue 24 items 4 and 6: 200 simultaneous clears; queries during a scene load."""
    from std_srvs.srv import Trigger

    from refersplat_ros.qos import SERVICE_QOS
    from refersplat_ros.srv import LoadScene

    rows = []
    session = Session(work, scene, 'services')
    try:
        session.wait_active()
        client = session.client.create_client(Trigger, '/refersplat/clear',
                                              qos_profile=SERVICE_QOS)
        session.spin(client.service_is_ready, 30)
        for count in (20, 200):
            start = time.monotonic()
            futures = [client.call_async(Trigger.Request()) for _ in range(count)]
            session.spin(lambda: all(f.done() for f in futures), 60)
            done = sum(f.done() for f in futures)
            rows.append([f'{count} simultaneous `~/clear` calls (one client, deep QoS)',
                         f'{done} replies in {_ms(time.monotonic() - start)}'])
        synth, _ = _synth_scene(work)
        loader = session.client.create_client(LoadScene, '/refersplat/load_scene',
                                              qos_profile=SERVICE_QOS)
        session.spin(loader.service_is_ready, 30)
        start = time.monotonic()
        loading = loader.call_async(LoadScene.Request(scene_path=str(synth.scene_path),
                                                      checkpoint_path=str(synth.checkpoint_path)))
        answered = []
        while not loading.done() and time.monotonic() - start < 120:
            answer, elapsed = session.ask('the red mug')
            answered.append((answer.status, elapsed))
        session.spin(loading.done, 120)
        load_s = time.monotonic() - start
        statuses = sorted({status_name(s) for s, _ in answered})
        worst = max((e for _, e in answered), default=0.0)
        rows.append([f'queries while `~/load_scene` loads the 30k-Gaussian scene ({load_s:.1f} s)',
                     f'{len(answered)} answered during the load ({", ".join(statuses)}), '
                     f'slowest {_ms(worst)}; load reply: '
                     f'{"success" if loading.done() and loading.result().success else "failed"}'])
    finally:
        code, _ = session.close()
    return _table(['probe', 'result'], rows) + f'\n\nThe node exits with status {code}.'


PROBES = {
    '1': ('1. Bursts of action goals', probe_burst),
    '2': ('2, 4, 6. Hostile, oversized, forged, diverged and empty files', probe_paths),
    '3': ('3. Signals at each lifecycle stage', probe_signals),
    '5': ('5. Invisible queries and goal fields', probe_queries),
    '7': ('7. Cache bytes, a huge DBSCAN radius, the time budget', probe_resources),
    '8': ('8. A 200 Hz flood', probe_flood),
    '9': ('9. kill -9 during training, malformed recorded config, shutdown in a flood',
          probe_training_and_shutdown),
    '10': ('10. Camera messages: invalid stamps, every camera size, a close-up (issue 24)',
           probe_cameras),
    '11': ('11. Crafted checkpoint descriptions: node and CLI (issue 24)', probe_metadata),
    '12': ('12. 200 simultaneous clears; queries during a scene load (issue 24)',
           probe_services),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--only', default=','.join(PROBES),
                        help=f'comma-separated items among {",".join(PROBES)}')
    parser.add_argument('--no-write', action='store_true', help='print only')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'ROBUSTNESS.md')
    args = parser.parse_args(argv)
    chosen = [key for key in args.only.split(',') if key]
    unknown = [key for key in chosen if key not in PROBES]
    if unknown:
        parser.error(f'unknown item(s) {unknown}')
    sections = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='refersplat_robustness_') as tmp:
        work = Path(tmp)
        scene = make_handmade_scene(work / 'handmade')
        for key in chosen:
            title, probe = PROBES[key]
            begin = time.monotonic()
            body = probe(work, scene)
            section = (f'### {title}\n\n{body}\n\n({time.monotonic() - begin:.0f} s, '
                       f'{datetime.date.today()})')
            print('\n' + section, flush=True)
            sections[title] = section
    import torch

    load = os.getloadavg()
    kept, previous = '', {}
    if args.out.exists() and MARKER in args.out.read_text():
        # the hand-written part above the marker is kept, and so are the items not re-run
        above, below = args.out.read_text().split(MARKER, 1)
        kept = above + MARKER + '\n\n'
        for part in below.split('\n### ')[1:]:
            previous[part.split('\n', 1)[0]] = '### ' + part.strip('\n')
    ordered = [sections.get(title) or previous.get(title) for title, _ in PROBES.values()]
    text = ('## Measured\n\n'
            f'Last `python bench/robustness.py --only {",".join(chosen)}` on '
            f'{datetime.date.today()}: {platform.node()}, {os.cpu_count()} CPU cores, torch '
            f'{torch.__version__}, load average at the end {load[0]:.1f}; '
            f'{time.monotonic() - started:.0f} s. Each item says when it was measured. Every ROS '
            'process on its own ROS_DOMAIN_ID and ROS_LOG_DIR, discovery on localhost, '
            'transports on 127.0.0.1 and shared memory. Items 1-9 are those of issue 13, 10-12 '
            'those of issue 24; each has tests in `test/`; these are the measured outcomes.\n\n'
            + '\n\n'.join(section for section in ordered if section) + '\n')
    if not args.no_write:
        args.out.write_text(kept + text)
        print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
