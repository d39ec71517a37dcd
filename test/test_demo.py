"""The demo's query/report path on a tiny Ref-Synth scene (no training: a fixed-answer field)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ros_harness import REPO_ROOT, require_ros


@pytest.fixture(scope='module')
def tiny_scene(tmp_path_factory):
    require_ros()
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.datasets.reflerf_loader import load_referring_dataset
    from refersplat_ros.core.datasets.ref_synth import make_scene, preset_config
    from fixed_answer_field import fixed_answer_field
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
    from refersplat_ros.demo import demo_queries, NONSENSE_QUERY
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
    kinds = [kind for _, _, kind in queries[5:-1]]
    assert len(queries) == 10 and queries[-1] == (NONSENSE_QUERY, None, 'none')
    assert len({text for text, _, _ in queries}) == 10
    assert len(kinds) == 4 and set(kinds) <= {'held-out attribute', 'held-out spatial',
                                              'held-out distractor'}
    assert len(set(kinds)) >= 2                   # one of each type present, round-robin
    for text, category, _ in queries[5:-1]:
        assert forms[(text, category)][0] == 'test'


def test_judge_marks_right_and_wrong_answers():
    from refersplat_ros.demo import judge
    centres = {'red-mug': (0.0, 0.0, 0.05), 'blue-bowl': (0.3, 0.0, 0.03)}

    def row(status, kind, category, xyz=None):
        return {'status': status, 'kind': kind, 'category': category, 'xyz': xyz}

    cases = [(row('OK', 'name', 'red-mug', (0.01, 0.0, 0.05)), ('red-mug', 'yes')),
             (row('OK', 'name', 'red-mug', (0.28, 0.01, 0.03)), ('blue-bowl', 'no')),
             (row('NO_MATCH', 'held-out spatial', 'red-mug'), ('-', 'no')),
             (row('NO_MATCH', 'none', None), ('-', 'yes')),
             (row('OK', 'none', None, (0.3, 0.0, 0.0)), ('blue-bowl', 'no')),
             (row('OK', 'given', None, (0.3, 0.0, 0.0)), ('blue-bowl', '-'))]
    for case, expected in cases:
        judge(case, centres)
        assert (case['nearest'], case['right']) == expected, case
    unknown = row('OK', 'name', 'red-mug', (0.0, 0.0, 0.0))
    judge(unknown, {})                            # not a Ref-Synth scene: nothing to judge
    assert (unknown['nearest'], unknown['right']) == ('-', '-')


def test_demo_prints_table_and_writes_pictures_and_clouds(tiny_scene, ros_env, ros_domain,
                                                          tmp_path):
    from PIL import Image
    from plyfile import PlyData

    root, num_target = tiny_scene
    out = tmp_path / 'demo_out'
    proc = subprocess.run(
        [sys.executable, '-m', 'refersplat_ros.demo', '--scene-dir', root / 'scene',
         '--checkpoint', root / 'field.safetensors', '--out', out,
         '--domain-id', str(ros_domain)],
        env=ros_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = (out / 'results.txt').read_text().splitlines()
    assert table[0].split()[:4] == ['query', 'kind', 'status', 'score'] and len(table) == 2 + 10
    assert 'nearest object' in table[0] and 'right' in table[0]
    assert table == proc.stdout.strip().split('\n\n')[0].splitlines()
    object_1 = next(o['category'] for o in json.loads(
        (root / 'scene' / 'manifest.json').read_text())['objects'] if o['id'] == 1)
    for index, line in enumerate(table[2:], start=1):
        assert '  OK  ' in line                     # the fixed field always answers object 1
        assert f'  {object_1}  ' in line            # ... and the demo sees that it is object 1
        assert line.split()[-2] in ('yes', 'no')
        picture = Image.open(out / f'query_{index}.png')
        assert picture.size == (64 * 6, 48 * 6 + 22)
        cloud = PlyData.read(str(out / f'query_{index}.ply'))['vertex']
        assert 0.8 * num_target <= len(cloud) <= num_target
        assert {'x', 'y', 'z', 'red', 'green', 'blue'} <= set(cloud.data.dtype.names)
    # The mask overlay is drawn: the picture differs from a plain render near the target.
    plain = np.asarray(Image.open(out / 'query_1.png').convert('RGB')).astype(int)
    assert (np.abs(plain[..., 0] - plain[..., 1]) > 100).any()
