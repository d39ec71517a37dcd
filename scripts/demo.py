"""The one-command demo (``make demo``): scene -> referring field -> node -> queries -> pictures.

A script, not part of the installed package: ``python scripts/demo.py`` from the checkout.

1. Generate the default Ref-Synth scene into ``scenes/default`` (skipped when present).
2. Train its referring field into ``runs/default`` (reused when ``last.safetensors`` matches the
   scene), with a progress bar.
3. Start the refersplat node as a subprocess (``python -m refersplat_ros.node``, the launch path
   that works without the launch packages; on a ROS machine ``ros2 launch refersplat_ros
   bringup.launch.py`` starts the same node), under the network rule: loopback discovery, an
   explicit ROS_DOMAIN_ID, its own ROS_LOG_DIR, the loopback Fast DDS profile.
4. Ask it objects by name, relational expressions in the training wording (spatial and
   distractor: the field answers those in new views), the held-out test expressions (attribute /
   spatial / distractor, wording never seen in training) and one that names nothing in the
   scene, through the ``ReferClient`` action facade.
5. Print a table (with the object nearest to each answer and whether it is the right one, from
   the scene's ground truth, and how the node understood each query; AMBIGUOUS answers are
   judged by their best candidate) and write ``demo_out/``: per query a PNG (the mask view
   rendered with the node's 2D mask overlaid and the target box projected) and the target
   cloud as ``.ply``.

``--keep-running`` leaves the node (and, with ``--viewer``, the Foxglove bridge on
ws://127.0.0.1:8765) running until Ctrl-C.
"""
import argparse
from dataclasses import dataclass
import functools
import logging
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np

# This checkout's package, not an installed copy (as ``python -m`` from the root would).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from refersplat_ros.core.inference.queries import ANSWERED, status_name  # noqa: E402
from refersplat_ros.core.runs import (DEFAULT_RUN_DIR, DEFAULT_SCENE_DIR,  # noqa: E402
                                      last_checkpoint)
from refersplat_ros.ros_environment import apply_network_rule, ros_environment  # noqa: E402
from refersplat_ros.topics import TARGET_MASK, under_node  # noqa: E402

logger = logging.getLogger('refersplat.demo')
NONSENSE_QUERY = 'the purple elephant flying above the ceiling lamp'
#: Widest interpretation shown in the table (longer ones end in '...'; results.txt too).
INTERPRETATION_WIDTH = 60
# Status names of the answers that have a target, as the table's rows hold them.
_ANSWERED_NAMES = tuple(status_name(status) for status in ANSWERED)


@functools.lru_cache(maxsize=4)
def scene_dataset(scene_dir: Path):
    """Load a scene folder once per process (the demo reads it in several places)."""
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    return load_referring_dataset(scene_dir)


def ensure_scene(scene_dir: Path) -> None:
    """Generate the default Ref-Synth scene unless ``scene_dir`` already holds one."""
    if (scene_dir / 'manifest.json').is_file():
        logger.info('scene: reusing %s', scene_dir)
        return
    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    logger.info('scene: generating the default Ref-Synth scene into %s', scene_dir)
    make_scene(preset_config('default'), scene_dir, overwrite=True, progress=True)


def ensure_checkpoint(scene_dir: Path, run_dir: Path, steps=None) -> Path:
    """Return a checkpoint trained on the scene; train one when none matches it."""
    from refersplat_ros.core.errors import CheckpointError
    from refersplat_ros.core.field.checkpoint import load_checkpoint
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.train.trainer import train, TrainConfig

    dataset = scene_dataset(scene_dir)
    scene = load_scene(dataset.scene_path)
    last = last_checkpoint(run_dir)
    if last.is_file():
        try:
            load_checkpoint(last, means=scene.means)
            logger.info('field: reusing %s', last)
            return last
        except CheckpointError as exc:
            logger.warning('field: %s does not fit the scene (%s); retraining', last, exc)
    logger.info('field: training on %s (a few minutes on 2 CPU cores)', scene_dir)
    # Category names ("small blue bowl") are added as training expressions so that the demo can
    # also ask for objects by name: the short CPU schedule learns those well before the held-out
    # referring expressions (docs/RESULTS.md).
    result = train(TrainConfig(data=scene_dir, out=run_dir, steps=steps, progress=True,
                               train_category_names=True))
    return result.last_checkpoint


def _trained_relational(dataset, count: int):
    """Training expressions built on a relation or an ordinal, one per object (manifest)."""
    picked, objects = [], set()
    for entry in (dataset.manifest or {}).get('expressions', []):
        family = entry.get('form', {}).get('family', '')
        if (entry.get('split') != 'train' or family in ('', 'attribute')
                or entry['category'] in objects):
            continue
        objects.add(entry['category'])
        picked.append((entry['sentence'], entry['category'], 'trained wording'))
        if len(picked) == count:
            break
    return picked


def _on_the_table(dataset):
    """Return an annotator-style query that names the table (no annotated object).

    An object standing on the table told apart from one of its kind and colour stacked on
    another object ("the green ball that sits on the table, not the one on top of the yellow
    box"), else any object standing on the table by its name and the table.
    """
    objects = (dataset.manifest or {}).get('objects', [])
    by_id = {o['id']: o for o in objects}
    standing = [o for o in objects if o.get('support', 0) == 0]
    for upper in objects:
        support = by_id.get(upper.get('support', 0))
        if support is None:
            continue
        twins = [o for o in standing if (o['shape'], o['colour']) ==
                 (upper['shape'], upper['colour'])]
        if len(twins) == 1:
            return [(f"the {upper['colour']} {upper['shape']} that sits on the table, not the "
                     f"one on top of the {support['colour']} {support['shape']}",
                     twins[0]['category'], 'annotator, table')]
    if standing:
        return [(f"the {standing[0]['colour']} {standing[0]['shape']} standing on the table",
                 standing[0]['category'], 'annotator, table')]
    return []


def demo_queries(scene_dir: Path, limit: int = 4, names: int = 3, trained: int = 2):
    """Return the demo's queries: names, trained wording, held-out wording, nonsense.

    Objects by name, relational training expressions, the held-out test expressions round-robin
    over their types, an annotator-style sentence that mentions the table (not an annotated
    object: docs/LANGUAGE.md#grounding), then one query matching nothing.

    Returns:
        list of (text, category or None, kind).
    """
    from refersplat_ros.core.datasets.reflerf.layout import category_phrase
    dataset = scene_dataset(scene_dir)
    by_name = [(category_phrase(c), c, 'name') for c in dataset.categories[:names]]
    by_name += _trained_relational(dataset, trained)
    seen, by_kind = set(), {}
    for view in dataset.test_views:
        for ann in view.annotations:
            if ann.sentence not in seen:
                seen.add(ann.sentence)
                by_kind.setdefault(ann.kind, []).append(
                    (ann.sentence, ann.category, f'held-out {ann.kind}'))
    queries = []
    while len(queries) < limit and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(queries) < limit:
                queries.append(by_kind[kind].pop(0))
    return by_name + queries + _on_the_table(dataset) + [(NONSENSE_QUERY, None, 'none')]


def mask_view(scene_dir: Path):
    """Return the first test view's camera and its index among the sorted COLMAP image names."""
    from refersplat_ros.core.scene.cameras import read_colmap_model
    cameras = read_colmap_model(scene_dir / 'sparse' / '0')
    names = sorted(cameras)
    dataset = scene_dataset(scene_dir)
    name = dataset.test_views[0].camera.name if dataset.test_views else names[0]
    return names.index(name), cameras[name]


def box_corners(position, quaternion_xyzw, size) -> np.ndarray:
    """Return the 8 corners [8, 3] of a box given its centre pose and size."""
    x, y, z, w = quaternion_xyzw
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    return np.asarray(position) + (signs * np.asarray(size) / 2) @ rotation.T


def draw_result(rgb: np.ndarray, mask, corners, camera, title: str, scale: int = 6):
    """Compose the demo picture: render, red mask overlay, green projected box, title."""
    from PIL import Image, ImageDraw, ImageFont
    image = rgb.astype(np.float32)
    if mask is not None:
        fg = mask > 0
        image[fg] = 0.45 * image[fg] + 0.55 * np.array([255.0, 40.0, 40.0])
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).resize(
        (camera.width * scale, camera.height * scale), Image.NEAREST)
    canvas = Image.new('RGB', (picture.width, picture.height + 22), (20, 20, 20))
    canvas.paste(picture, (0, 22))
    draw = ImageDraw.Draw(canvas)
    try:  # Pillow's bundled scalable font (needs FreeType); the bitmap default squeezes spaces
        font = ImageFont.load_default(size=15)
    except (TypeError, ImportError, OSError):
        font = ImageFont.load_default()
    draw.text((4, 3), title, fill=(255, 255, 255), font=font)
    if corners is not None:
        w2c = camera.world_to_camera.double().numpy()
        cam = corners @ w2c[:3, :3].T + w2c[:3, 3]
        if (cam[:, 2] > 1e-3).all():
            u = (camera.fx * cam[:, 0] / cam[:, 2] + camera.cx) * scale
            v = (camera.fy * cam[:, 1] / cam[:, 2] + camera.cy) * scale + 22
            for a in range(8):
                for b in range(a + 1, 8):
                    if bin(a ^ b).count('1') == 1:   # corners differing in one axis: an edge
                        draw.line([(u[a], v[a]), (u[b], v[b])], fill=(40, 255, 80), width=1)
    return canvas


def write_cloud_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Write points with colours as a binary .ply (x, y, z float; red, green, blue uchar)."""
    from plyfile import PlyData, PlyElement
    vertices = np.zeros(len(xyz), dtype=[('x', 'f4'), ('y', 'f4'), ('z', 'f4'), ('red', 'u1'),
                                         ('green', 'u1'), ('blue', 'u1')])
    for i, axis in enumerate('xyz'):
        vertices[axis] = xyz[:, i]
    for i, channel in enumerate(('red', 'green', 'blue')):
        vertices[channel] = rgb[:, i]
    PlyData([PlyElement.describe(vertices, 'vertex')]).write(str(path))


def object_centres(scene_dir: Path) -> dict:
    """Category -> true centre (x, y, z) of each object of a Ref-Synth scene (empty otherwise)."""
    manifest = scene_dataset(scene_dir).manifest or {}
    return {o['category']: (o['x'], o['y'], o['base_z'] + 0.5 * o['height'])
            for o in manifest.get('objects', [])}


def judge(row: dict, centres: dict) -> None:
    """Add ``nearest`` (object nearest to the answer) and ``right`` (yes / no / -) to a row.

    A query with a known target is right when the answer has a target (OK, or AMBIGUOUS: its best
    candidate) nearest to that object; the query naming nothing is right when it gets NO_MATCH; a
    user's own query is not judged.
    """
    row['nearest'], row['right'] = '-', '-'
    if row['status'] in _ANSWERED_NAMES and centres and row.get('xyz') is not None:
        names = list(centres)
        distances = np.linalg.norm(np.asarray([centres[n] for n in names])
                                   - np.asarray(row['xyz']), axis=1)
        row['nearest'] = names[int(np.argmin(distances))]
    if row['kind'] == 'none':
        row['right'] = 'yes' if row['status'] == 'NO_MATCH' else 'no'
    elif row.get('category') and centres:
        row['right'] = 'yes' if row['nearest'] == row['category'] else 'no'


def shorten(text: str, width: int = INTERPRETATION_WIDTH) -> str:
    """Return ``text`` on one line of at most ``width`` characters ('...': cut; '-': empty)."""
    text = ' '.join(text.split())
    if not text:
        return '-'
    return text if len(text) <= width else text[:width - 3].rstrip() + '...'


def format_table(rows) -> str:
    """Return the results table; the interpretation is the last column (cut to its width)."""
    header = ('query', 'kind', 'status', 'score', 'Gaussians', 'position (x, y, z)',
              'nearest object', 'right', 'latency ms', 'interpretation')
    lines = [header]
    for row in rows:
        lines.append((row['text'], row['kind'], row['status'], f"{row['score']:.2f}",
                      str(row['gaussians']), row['position'], row.get('nearest', '-'),
                      row.get('right', '-'), f"{row['latency_ms']:.1f}",
                      shorten(row.get('interpretation', ''))))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append('  '.join(str(cell).ljust(width)
                             for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            out.append('  '.join('-' * width for width in widths))
    return '\n'.join(out)


@dataclass
class DemoScene:
    """What the node serves and what the demo draws on: scene, field and the mask view."""

    scene_dir: Path                 # the scene folder (its cameras give the node's mask view)
    scene_path: Path                # the Gaussians
    checkpoint: Path                # the referring field
    view_index: int                 # index of the mask view among the sorted COLMAP images
    camera: object                  # that view's Camera
    background: object = None       # [3] tensor of the renders' background, or None


def start_processes(demo: DemoScene, out_dir: Path, env: dict, viewer: bool) -> list:
    """Start the node (and the Foxglove viewer) as subprocesses logging into ``out_dir``."""
    args = [sys.executable, '-m', 'refersplat_ros.node', '--ros-args',
            '-p', f'scene:={demo.scene_path}', '-p', f'checkpoint:={demo.checkpoint}',
            '-p', f'mask.dataset:={demo.scene_dir}', '-p', f'mask.view_index:={demo.view_index}']
    commands = [('node', args)]
    if viewer:
        commands.append(('viewer', [sys.executable, '-m', 'refersplat_ros.viewer']))
    return [subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                             stdout=open(out_dir / f'{name}.log', 'wb'),
                             stderr=subprocess.STDOUT)
            for name, command in commands]


def stop_processes(processes: list) -> None:
    """SIGINT each process, then SIGKILL what has not exited 10 s later."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def report_answer(result, mask, demo: DemoScene, rgb, index: int, text: str, category,
                  kind: str, out_dir: Path) -> dict:
    """Write the picture (and the target cloud) of one answer; return its table row."""
    from refersplat_ros.conversions import pointcloud2_to_array, unpack_rgb

    status = status_name(result.status)
    corners, position, xyz_centre = None, '-', None
    if result.status in ANSWERED:  # AMBIGUOUS: the best candidate, as the node publishes it
        p, q, s = result.pose.position, result.pose.orientation, result.bbox_size
        corners = box_corners((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), (s.x, s.y, s.z))
        position = f'({p.x:.2f}, {p.y:.2f}, {p.z:.2f})'
        xyz_centre = (p.x, p.y, p.z)
        points = pointcloud2_to_array(result.cloud)
        xyz = np.stack([points['x'], points['y'], points['z']], axis=1)
        write_cloud_ply(out_dir / f'query_{index}.ply', xyz, unpack_rgb(points['rgb']))
    title = f'{index}. "{text}" -> {status} ({result.score:.2f})'
    draw_result(rgb, mask, corners, demo.camera, title).save(out_dir / f'query_{index}.png')
    latency = result.latency.sec * 1e3 + result.latency.nanosec * 1e-6
    return {'text': text, 'status': status, 'score': result.score,
            'gaussians': result.num_gaussians, 'position': position, 'xyz': xyz_centre,
            'latency_ms': latency, 'category': category, 'kind': kind,
            'interpretation': result.interpretation}


def run_queries(demo: DemoScene, queries, out_dir: Path, domain_id: int, viewer: bool = False,
                keep_running: bool = False):
    """Start the node (and viewer), ask ``queries``, write pictures and clouds; return rows."""
    import rclpy
    from sensor_msgs.msg import Image as ImageMsg

    from refersplat_ros.client import ReferClient
    from refersplat_ros.conversions import image_to_mono8
    from refersplat_ros.core.render.rasterize import render_scene
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.node import LATCHED

    out_dir.mkdir(parents=True, exist_ok=True)
    env = ros_environment(domain_id, out_dir / 'ros_log')
    processes = start_processes(demo, out_dir, env, viewer)
    apply_network_rule(env)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('refersplat_demo', context=context)
    masks = {}  # result stamp -> the node's mask of that answer
    node.create_subscription(ImageMsg, under_node(TARGET_MASK),
                             lambda m: masks.__setitem__(
                                 (m.header.stamp.sec, m.header.stamp.nanosec), m), LATCHED)
    client = ReferClient(node)
    rgb = render_scene(load_scene(demo.scene_path), demo.camera,
                       background=demo.background).image
    rgb = rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255
    rows = []
    try:
        if not client.wait_for_server(120):
            raise RuntimeError('the node did not come up; see ' + str(out_dir / 'node.log'))
        for index, (text, category, kind) in enumerate(queries, start=1):
            result = client.refer(text, timeout=60)
            stamp = (result.header.stamp.sec, result.header.stamp.nanosec)
            mask = None
            if (result.status in ANSWERED
                    and client.spin_until(lambda: stamp in masks, timeout=5)):
                mask = image_to_mono8(masks[stamp])
            rows.append(report_answer(result, mask, demo, rgb, index, text, category, kind,
                                      out_dir))
        if keep_running:
            print('node running; Foxglove: ws://localhost:8765 (with --viewer). Ctrl-C stops.')
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        client.destroy()
        node.destroy_node()
        context.try_shutdown()
        stop_processes(processes)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='refersplat_ros demo on the default scene')
    parser.add_argument('--scene-dir', type=Path, default=DEFAULT_SCENE_DIR,
                        help='scene folder (generated when missing; default %(default)s)')
    parser.add_argument('--run-dir', type=Path, default=DEFAULT_RUN_DIR,
                        help='run folder (trained when missing; default %(default)s)')
    parser.add_argument('--checkpoint', type=Path, help='use this checkpoint (no training)')
    parser.add_argument('--steps', type=int, help='training steps (default: TrainConfig)')
    parser.add_argument('--queries', nargs='+', help='ask these instead of the test set')
    parser.add_argument('--out', type=Path, default=Path('demo_out'),
                        help='pictures, clouds and the table (default %(default)s)')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('REFERSPLAT_DEMO_DOMAIN_ID', 78)))
    parser.add_argument('--viewer', action='store_true', help='also start the Foxglove bridge')
    parser.add_argument('--keep-running', action='store_true', help='keep serving after')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[demo] %(message)s')
    start = time.monotonic()
    ensure_scene(args.scene_dir)
    checkpoint = args.checkpoint or ensure_checkpoint(args.scene_dir, args.run_dir, args.steps)
    import torch

    dataset = scene_dataset(args.scene_dir)
    if args.queries:
        queries = [(q, None, 'given') for q in args.queries]
    else:
        queries = demo_queries(args.scene_dir)
    view_index, camera = mask_view(args.scene_dir)
    background = (dataset.manifest or {}).get('config', {}).get('background_rgb')
    demo = DemoScene(args.scene_dir, dataset.scene_path, checkpoint, view_index, camera,
                     None if background is None else torch.tensor(background))
    rows = run_queries(demo, queries, args.out, args.domain_id, args.viewer, args.keep_running)
    centres = object_centres(args.scene_dir)
    for row in rows:
        judge(row, centres)
    table = format_table(rows)
    print('\n' + table + '\n')
    (args.out / 'results.txt').write_text(table + '\n')
    print(f'pictures and target clouds in {args.out}/ (query_N.png, query_N.ply); '
          f'demo took {time.monotonic() - start:.0f} s')
    return 0 if len(rows) == len(queries) else 1


if __name__ == '__main__':
    sys.exit(main())
