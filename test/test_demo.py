"""The demo's query/report path on a tiny Ref-Synth scene (no training: a fixed-answer field)."""
import subprocess
import sys

import numpy as np
import pytest

from ros_harness import REPO_ROOT, require_ros


@pytest.fixture(scope='module')
def tiny_scene(tmp_path_factory):
    require_ros()
    from refersplat_ros.core.checkpoint import save_checkpoint
    from refersplat_ros.core.datasets import load_refer_dataset
    from refersplat_ros.core.datasets.ref_synth import make_scene, preset_config
    from refersplat_ros.core.fixed_answer_field import fixed_answer_field
    from refersplat_ros.core.gaussian_io import load_scene
    from refersplat_ros.core.text_encoder import TextEncoder

    root = tmp_path_factory.mktemp('demo')
    make_scene(preset_config('tiny'), root / 'scene', overwrite=True, progress=False,
               contact_sheet=False)
    dataset = load_refer_dataset(root / 'scene')
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
    kinds = [kind for _, _, kind in queries[3:-1]]
    assert len(queries) == 8 and queries[-1] == (NONSENSE_QUERY, None, 'none')
    assert len({text for text, _, _ in queries}) == 8
    assert len(kinds) == 4 and set(kinds) <= {'attribute', 'spatial', 'distractor'}
    assert len(set(kinds)) >= 2                   # one of each type present, round-robin


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
    assert table[0].split()[:3] == ['query', 'status', 'score'] and len(table) == 2 + 8
    assert table == proc.stdout.strip().split('\n\n')[0].splitlines()
    for index, line in enumerate(table[2:], start=1):
        assert '  OK  ' in line                     # the fixed field always answers object 1
        picture = Image.open(out / f'query_{index}.png')
        assert picture.size == (64 * 6, 48 * 6 + 22)
        cloud = PlyData.read(str(out / f'query_{index}.ply'))['vertex']
        assert 0.8 * num_target <= len(cloud) <= num_target
        assert {'x', 'y', 'z', 'red', 'green', 'blue'} <= set(cloud.data.dtype.names)
    # The mask overlay is drawn: the picture differs from a plain render near the target.
    plain = np.asarray(Image.open(out / 'query_1.png').convert('RGB')).astype(int)
    assert (np.abs(plain[..., 0] - plain[..., 1]) > 100).any()
