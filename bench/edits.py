"""Scene edits: how long ``~/edit_scene`` takes to apply, against the scene size.

A synthetic scene of N Gaussians (random in a table-sized box) holds eight annotated objects of
2,000 Gaussians each (the issue's object size), saved with a visibility record (a tenth
unseen) and the default PCMI field with hand-set weights (``test/helpers/fixed_answer_field.py``).
The model is built in this process as the node builds it (``ReferringModel``: object graph,
visibility links) and then edited the way the node edits it (``editing.edit_scene``, on the
edits file beside the checkpoint): MOVE by a motion, MOVE_TO a pose, REMOVE, RESTORE, RESET, in
turn on one object, ``--edits`` times. Columns:

- *apply*: ``ReferringModel.apply_edits`` alone (Gaussians, graph, grounders, links' groups);
- *edit_scene*: the whole request as the node runs it on its worker: checks, the object's box,
  the atomic file write, apply;
- *first edit*: the first edit of a loaded model, which also copies the scene's means,
  rotations and opacities once (the loaded tensors may be shared);
- *query after*: a graph query ("the red mug left of the blue bowl") right after an edit, and
  the same query without one: what an edit leaves for the next query (the edited object's
  summary, the propagation links filtered by the edit's groups).

    python bench/edits.py                        # 100k and 1M; writes docs/BENCHMARKS.md
    python bench/edits.py --sizes 100000 --edits 10 --no-write
"""
import argparse
from pathlib import Path
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This checkout's package first; the fixed-answer field is a test helper.
sys.path[:0] = [str(ROOT), str(ROOT / 'test')]

from report import environment, publish  # noqa: E402 (bench/ is the script's folder)

SECTION = 'Scene edits'
OBJECT_SIZE = 2000
NAMES = ['red-mug', 'blue-bowl', 'green-can', 'yellow-box', 'purple-cup', 'white-plate',
         'black-kettle', 'orange-ball']
QUERY = 'the red mug left of the blue bowl'


def build_model(num: int, seed: int = 0):
    """Return a ReferringModel of the synthetic scene described in the module docstring."""
    import torch

    from helpers.fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.inference.model import ReferringModel
    from refersplat_ros.core.scene.cameras import Camera
    from refersplat_ros.core.scene.gaussians import GaussianScene
    from refersplat_ros.core.scene.objects import SceneObjects
    from refersplat_ros.core.text.encoder import TextEncoder

    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(num, 3, generator=gen) - 0.5) * torch.tensor([1.0, 1.0, 0.3])
    labels = np.full(num, -1, np.int32)
    taken = torch.zeros(num, dtype=torch.bool)
    for index in range(len(NAMES)):
        centre = torch.tensor([-0.35 + 0.7 * (index % 4) / 3, -0.2 + 0.4 * (index // 4), 0.0])
        distance = (means - centre).norm(dim=1).masked_fill(taken, float('inf'))
        members = torch.topk(distance, OBJECT_SIZE, largest=False).indices
        taken[members] = True
        labels[members.numpy()] = index
    scene = GaussianScene.from_colors(means, torch.rand(num, 3, generator=gen),
                                      torch.full((num, 3), 0.004),
                                      torch.rand(num, generator=gen) * 0.8 + 0.1)
    camera = Camera.look_at((0.0, -1.5, 1.0), (0.0, 0.0, 0.0), width=160, height=120,
                            fov_y_deg=50.0, name='reference')
    objects = SceneObjects(labels, NAMES, [[f"the {n.replace('-', ' ')}"] for n in NAMES],
                           camera, (0.0, 0.0, 1.0))
    visibility = (torch.rand(num, generator=gen) * (torch.rand(num, generator=gen) > 0.1))
    encoder = TextEncoder()
    field = fixed_answer_field(scene.means, torch.as_tensor(labels == 0), encoder.hidden_size)
    return ReferringModel(scene, field, encoder, visibility=visibility.numpy(),
                          objects=objects)


def requests():
    """Yield the edit requests of one round (every operation once)."""
    from refersplat_ros.core.inference.editing import EditRequest
    turn = (0.0, 0.0, np.sin(np.pi / 8), np.cos(np.pi / 8))
    yield 'move', EditRequest('move', 'red-mug', (0.05, 0.02, 0.0), turn)
    yield 'move_to', EditRequest('move_to', 'red-mug', (-0.45, -0.25, 0.0))
    yield 'remove', EditRequest('remove', 'red-mug')
    yield 'restore', EditRequest('restore', 'red-mug')
    yield 'move', EditRequest('move', 'red-mug', (-0.05, 0.0, 0.0))
    yield 'reset', EditRequest('reset')


def measure(num: int, rounds: int) -> dict:
    from refersplat_ros.core.inference.editing import edit_scene
    from refersplat_ros.core.inference.selection import SelectionConfig

    start = time.perf_counter()
    model = build_model(num)
    build_s = time.perf_counter() - start
    config = SelectionConfig()
    model.query(QUERY, config)  # warm: encoder, summaries
    plain = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.query(QUERY, config)
        plain.append((time.perf_counter() - t0) * 1e3)
    times = {'apply': [], 'edit_scene': [], 'after': []}
    first = None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'last.edits.json'
        for _ in range(rounds):
            for name, request in requests():
                before = model.edits
                t0 = time.perf_counter()
                reply = edit_scene(model, request, path, config)
                elapsed = (time.perf_counter() - t0) * 1e3
                if first is None:
                    first = elapsed
                    continue
                times['edit_scene'].append(elapsed)
                # apply alone: undo to the edits before, then time re-applying these
                model.apply_edits(before)
                t0 = time.perf_counter()
                model.apply_edits(reply.edits)
                times['apply'].append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                model.query(QUERY, config)
                times['after'].append((time.perf_counter() - t0) * 1e3)
    return {'num': num, 'build_s': build_s, 'first': first, 'plain': statistics.median(plain),
            **{k: (statistics.median(v), max(v)) for k, v in times.items()}}


def table(rows) -> str:
    lines = ['| Gaussians | edit_scene median / max | apply median / max | first edit | '
             'query after an edit (median / max) | same query, no edit | model build |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['num']:,} | {r['edit_scene'][0]:.1f} / {r['edit_scene'][1]:.1f} ms "
                     f"| {r['apply'][0]:.1f} / {r['apply'][1]:.1f} ms | {r['first']:.1f} ms | "
                     f"{r['after'][0]:.1f} / {r['after'][1]:.1f} ms | {r['plain']:.1f} ms | "
                     f"{r['build_s']:.1f} s |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[100_000, 1_000_000])
    parser.add_argument('--edits', type=int, default=20, help='rounds of the six requests')
    parser.add_argument('--no-write', action='store_true', help='print only')
    args = parser.parse_args(argv)
    rows = []
    for num in args.sizes:
        rows.append(measure(num, max(1, args.edits // 6 + 1)))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    one_m = [r for r in rows if r['num'] >= 1_000_000]
    verdict = ''
    if one_m:
        worst = one_m[-1]['edit_scene'][1]
        verdict = (f'\n\nTarget: an edit of a 2,000-Gaussian object at 1M Gaussians applied '
                   f'within 50 ms: {"met" if worst <= 50 else "missed"} (slowest edit_scene '
                   f'{worst:.1f} ms, file write included; the first edit of a loaded model '
                   f'{one_m[-1]["first"]:.1f} ms).')
    text = (f'## {SECTION}\n\n`python bench/edits.py` {environment(torch.get_num_threads())}; '
            f'8 objects of {OBJECT_SIZE:,} Gaussians, edits on one of them, '
            f'{max(1, args.edits // 6 + 1) * 6 - 1} timed requests per size (MOVE, MOVE_TO, '
            'REMOVE, RESTORE, MOVE, RESET in turn).\n\n' + table(rows) + verdict + '\n')
    publish(text, ROOT / 'docs' / 'BENCHMARKS.md', SECTION, not args.no_write)
    return 0


if __name__ == '__main__':
    sys.exit(main())
