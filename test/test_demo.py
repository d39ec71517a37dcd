"""The demo's query/report path on a tiny Ref-Synth scene (no training: a fixed-answer field)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from helpers.ros_harness import REPO_ROOT, require_ros


@pytest.fixture(scope='module')
def tiny_scene(tmp_path_factory):
    require_ros()
    from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from helpers.fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.scene.gaussian_io import load_scene
    from refersplat_ros.core.text.encoder import TextEncoder

    root = tmp_path_factory.mktemp('demo')
    make_scene(preset_config('tiny'), root / 'scene', overwrite=True, progress=False,
               contact_sheet=False)
    dataset = load_referring_dataset(root / 'scene')
    ids = dataset.object_ids()
    encoder = TextEncoder()
    field = fixed_answer_field(load_scene(dataset.scene_path).means, ids == 1,
                               encoder.hidden_size)
    save_checkpoint(root / 'field.safetensors', field, text_encoder_id=encoder.encoder_id,
                    step=0)
    return root, int((ids == 1).sum())


def test_demo_queries_cover_each_expression_type(tiny_scene):
    from scripts.demo import demo_queries, NONSENSE_QUERY
    root, _ = tiny_scene
    queries = demo_queries(root / 'scene')
    assert [q[2] for q in queries[:3]] == ['name'] * 3
    assert [q[0] for q in queries[:3]] == [c.replace('-', ' ') for _, c, _ in queries[:3]]
    # Two relational expressions in the training wording, of two different objects.
    manifest = json.loads((root / 'scene' / 'manifest.json').read_text())
    forms = {(e['sentence'], e['category']): (e['split'], e['form']['family'])
             for e in manifest['expressions']}
    trained = queries[3:5]
    assert [kind for _, _, kind in trained] == ['trained wording'] * 2
    assert trained[0][1] != trained[1][1]
    for text, category, _ in trained:
        split, family = forms[(text, category)]
        assert split == 'train' and family in ('relation', 'ordinal')
    kinds = [kind for _, _, kind in queries[5:-2]]
    assert len(queries) == 11 and queries[-1] == (NONSENSE_QUERY, None, 'none')
    assert len({text for text, _, _ in queries}) == 11
    assert len(kinds) == 4 and set(kinds) <= {'held-out attribute', 'held-out spatial',
                                              'held-out distractor'}
    assert len(set(kinds)) >= 2                   # one of each type present, round-robin
    for text, category, _ in queries[5:-2]:
        assert forms[(text, category)][0] == 'test'
    # an annotator-style sentence that mentions the table (not an annotated object)
    text, category, kind = queries[-2]
    standing = {o['category'] for o in manifest['objects'] if o['support'] == 0}
    assert kind == 'annotator, table' and 'on the table' in text and category in standing


def test_judge_marks_right_and_wrong_answers():
    from scripts.demo import judge
    centres = {'red-mug': (0.0, 0.0, 0.05), 'blue-bowl': (0.3, 0.0, 0.03)}

    def row(status, kind, category, xyz=None):
        return {'status': status, 'kind': kind, 'category': category, 'xyz': xyz}

    cases = [(row('OK', 'name', 'red-mug', (0.01, 0.0, 0.05)), ('red-mug', 'yes')),
             (row('OK', 'name', 'red-mug', (0.28, 0.01, 0.03)), ('blue-bowl', 'no')),
             (row('NO_MATCH', 'held-out spatial', 'red-mug'), ('-', 'no')),
             (row('NO_MATCH', 'none', None), ('-', 'yes')),
             (row('OK', 'none', None, (0.3, 0.0, 0.0)), ('blue-bowl', 'no')),
             (row('OK', 'given', None, (0.3, 0.0, 0.0)), ('blue-bowl', '-')),
             # AMBIGUOUS is judged by its best candidate, like OK.
             (row('AMBIGUOUS', 'name', 'red-mug', (0.01, 0.0, 0.05)), ('red-mug', 'yes')),
             (row('AMBIGUOUS', 'name', 'red-mug', (0.28, 0.0, 0.03)), ('blue-bowl', 'no')),
             (row('AMBIGUOUS', 'none', None, (0.3, 0.0, 0.0)), ('blue-bowl', 'no'))]
    for case, expected in cases:
        judge(case, centres)
        assert (case['nearest'], case['right']) == expected, case
    unknown = row('OK', 'name', 'red-mug', (0.0, 0.0, 0.0))
    judge(unknown, {})                            # not a Ref-Synth scene: nothing to judge
    assert (unknown['nearest'], unknown['right']) == ('-', '-')


def _table_rows(table):
    """Split the printed table into {column: cell} per row, by the widths of its rule line."""
    spans, start = [], 0
    for dashes in table[1].split('  '):
        spans.append((start, start + len(dashes)))
        start += len(dashes) + 2
    names = [table[0][a:b].strip() for a, b in spans]
    return [{name: line[a:b].strip() for name, (a, b) in zip(names, spans)}
            for line in table[2:]]


def test_table_shows_ambiguous_rows_and_a_shortened_interpretation():
    from scripts.demo import format_table, INTERPRETATION_WIDTH

    long_reading = "target: bowl <- 'basin'; right of: ball #2 <- 'little sphere'; view: reference"
    assert len(long_reading) > INTERPRETATION_WIDTH
    rows = [{'text': 'the red can', 'kind': 'given', 'status': 'AMBIGUOUS', 'score': 0.5,
             'gaussians': 40, 'position': '(0.10, 0.00, 0.05)', 'latency_ms': 12.0,
             'interpretation': "target: can <- 'red can'"},
            {'text': 'the basin right of the little sphere', 'kind': 'given', 'status': 'OK',
             'score': 0.75, 'gaussians': 30, 'position': '(0.20, 0.10, 0.00)',
             'latency_ms': 9.5, 'interpretation': long_reading},
            {'text': 'nothing', 'kind': 'none', 'status': 'NO_MATCH', 'score': 0.0,
             'gaussians': 0, 'position': '-', 'latency_ms': 8.0}]
    table = format_table(rows).splitlines()
    assert table[0].split()[-1] == 'interpretation'
    cells = _table_rows(table)
    assert [c['status'] for c in cells] == ['AMBIGUOUS', 'OK', 'NO_MATCH']
    assert cells[0]['interpretation'] == "target: can <- 'red can'"
    shortened = cells[1]['interpretation']
    assert len(shortened) <= INTERPRETATION_WIDTH and shortened.endswith('...')
    assert long_reading.startswith(shortened[:-3])
    assert cells[2]['interpretation'] == '-' and cells[2]['right'] == '-'


def test_an_ambiguous_answer_is_drawn_and_reported_like_ok(tiny_scene, tmp_path):
    from plyfile import PlyData
    from refersplat_ros.conversions import xyz_to_pointcloud2
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
    from scripts.demo import DemoScene, mask_view, report_answer
    from refersplat_ros.msg import ReferCandidate, ReferResult

    root, _ = tiny_scene
    view_index, camera = mask_view(root / 'scene')
    demo = DemoScene(root / 'scene', load_referring_dataset(root / 'scene').scene_path,
                     root / 'field.safetensors', view_index, camera)
    xyz = np.random.default_rng(0).normal(0.0, 0.05, (25, 3))
    result = ReferResult(text='the red can', status=ReferResult.AMBIGUOUS, score=0.5,
                         num_gaussians=25, interpretation="target: can <- 'red can'",
                         candidates=[ReferCandidate(label='can #1'),
                                     ReferCandidate(label='can #2')])
    result.pose.position.x, result.pose.orientation.w = 0.125, 1.0
    result.bbox_size.x = result.bbox_size.y = result.bbox_size.z = 0.1
    result.cloud = xyz_to_pointcloud2(xyz, result.header, rgb=np.zeros((25, 3), np.uint8),
                                      score=np.full(25, 0.5))
    rgb = np.zeros((camera.height, camera.width, 3))
    row = report_answer(result, None, demo, rgb, 1, 'the red can', None, 'given', tmp_path)
    assert row['status'] == 'AMBIGUOUS' and row['interpretation'] == "target: can <- 'red can'"
    assert row['position'] == '(0.12, 0.00, 0.00)' and row['xyz'] == (0.125, 0.0, 0.0)
    assert len(PlyData.read(str(tmp_path / 'query_1.ply'))['vertex']) == 25
    assert (tmp_path / 'query_1.png').is_file()


def test_demo_prints_table_and_writes_pictures_and_clouds(tiny_scene, ros_env, ros_domain,
                                                          tmp_path):
    from PIL import Image
    from plyfile import PlyData

    root, num_target = tiny_scene
    out = tmp_path / 'demo_out'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'scripts' / 'demo.py'), '--scene-dir', root / 'scene',
         '--checkpoint', root / 'field.safetensors', '--out', out,
         '--domain-id', str(ros_domain)],
        env=ros_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = (out / 'results.txt').read_text().splitlines()
    assert table[0].split()[:4] == ['query', 'kind', 'status', 'score'] and len(table) == 2 + 11
    assert 'nearest object' in table[0] and 'right' in table[0]
    assert table == proc.stdout.strip().split('\n\n')[0].splitlines()
    object_1 = next(o['category'] for o in json.loads(
        (root / 'scene' / 'manifest.json').read_text())['objects'] if o['id'] == 1)
    assert table[0].split()[-1] == 'interpretation'
    for index, cells in enumerate(_table_rows(table), start=1):
        assert cells['status'] == 'OK'              # the fixed field always answers object 1
        assert cells['nearest object'] == object_1  # ... and the demo sees that it is object 1
        assert cells['right'] in ('yes', 'no') and cells['interpretation']
        picture = Image.open(out / f'query_{index}.png')
        assert picture.size == (64 * 6, 48 * 6 + 22)
        cloud = PlyData.read(str(out / f'query_{index}.ply'))['vertex']
        assert 0.8 * num_target <= len(cloud) <= num_target
        assert {'x', 'y', 'z', 'red', 'green', 'blue'} <= set(cloud.data.dtype.names)
    # The mask overlay is drawn: the picture differs from a plain render near the target.
    plain = np.asarray(Image.open(out / 'query_1.png').convert('RGB')).astype(int)
    assert (np.abs(plain[..., 0] - plain[..., 1]) > 100).any()
