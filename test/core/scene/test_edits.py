"""SceneEdits: composition, the file beside the checkpoint, hostile files refused."""
import json

import numpy as np
import pytest

from refersplat_ros.core.scene.edits import (checked_transform, EditError, edits_path,
                                             load_edits, MAX_EDITS_BYTES, rotate_quats_wxyz,
                                             save_edits, SceneEdits)
from refersplat_ros.core.scene.frames import quaternion_to_matrix

LABELS = ['red-mug-1', 'blue-bowl-2']
QUARTER = (0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4))


def test_moves_compose_and_restore_drops_the_entry():
    edits = SceneEdits().move('red-mug-1', checked_transform((1, 0, 0), QUARTER))
    edits = edits.move('red-mug-1', checked_transform((0, 1, 0), (0, 0, 0, 1)))
    moved = edits.get('red-mug-1').apply_points(np.array([[1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(moved, [[1.0, 2.0, 0.0]], atol=1e-6)
    assert edits.moved == ['red-mug-1'] and edits.removed == []
    removed = edits.remove('red-mug-1')
    assert removed.removed == ['red-mug-1'] and removed.moved == []
    assert not removed.restore('red-mug-1')
    back = removed.move('red-mug-1', checked_transform((0, 0, 0), (0, 0, 0, 1)))
    assert back.removed == [] and back.moved == ['red-mug-1']  # a move puts it back


def test_rotated_quaternions_rotate_the_covariance_axes():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    r = rotate_quats_wxyz(QUARTER, q)
    for a, b in zip(q, r):
        ma = quaternion_to_matrix([a[1], a[2], a[3], a[0]])
        mb = quaternion_to_matrix([b[1], b[2], b[3], b[0]])
        np.testing.assert_allclose(mb, quaternion_to_matrix(QUARTER) @ ma, atol=1e-12)


def test_the_file_round_trips_and_no_edits_removes_it(tmp_path):
    path = edits_path(tmp_path / 'run' / 'last.safetensors')
    assert path.name == 'last.edits.json'
    assert not load_edits(path, LABELS)
    edits = SceneEdits().move('red-mug-1', checked_transform((0.1, 0, 0), QUARTER)).remove(
        'blue-bowl-2')
    save_edits(path, edits)
    back = load_edits(path, LABELS)
    assert back.removed == ['blue-bowl-2'] and back.moved == ['red-mug-1']
    np.testing.assert_allclose(back.get('red-mug-1').transform.translation, [0.1, 0, 0])
    save_edits(path, SceneEdits())
    assert not path.exists()


ENTRY = {'translation': [0, 0, 0], 'rotation_xyzw': [0, 0, 0, 1], 'removed': True}


@pytest.mark.parametrize('content, reason', [
    (b'{', 'not valid JSON'),
    (b'\xff\xfe', 'not valid JSON'),
    (b'[]', 'not a refersplat edits file'),
    (json.dumps({'format': 'refersplat-edits', 'version': 9, 'objects': {}}).encode(),
     'version 9'),
    (json.dumps({'format': 'refersplat-edits', 'version': 1,
                 'objects': {'teapot': ENTRY}}).encode(), "'teapot' is not in this scene"),
    (json.dumps({'format': 'refersplat-edits', 'version': 1,
                 'objects': {'red-mug-1': dict(ENTRY, removed='yes')}}).encode(),
     'wrong type'),
    (json.dumps({'format': 'refersplat-edits', 'version': 1,
                 'objects': {'red-mug-1': dict(ENTRY, extra=1)}}).encode(), 'exactly'),
    (b'{"format": "refersplat-edits", "version": 1, "objects": {"red-mug-1": '
     b'{"translation": [NaN, 0, 0], "rotation_xyzw": [0, 0, 0, 1], "removed": false}}}',
     'NaN is not a number'),
    (json.dumps({'format': 'refersplat-edits', 'version': 1, 'objects': {'red-mug-1': dict(
        ENTRY, rotation_xyzw=[0, 0, 0, 2])}}).encode(), 'not a unit quaternion'),
    (json.dumps({'format': 'refersplat-edits', 'version': 1, 'objects': {'red-mug-1': dict(
        ENTRY, translation=[5000, 0, 0])}}).encode(), 'over 1000'),
    (b'[' * 100000 + b']' * 100000, 'not valid JSON'),
    (b' ' * (MAX_EDITS_BYTES + 1), 'more than the limit'),
])
def test_a_bad_file_is_refused_with_the_reason(tmp_path, content, reason):
    path = tmp_path / 'last.edits.json'
    path.write_bytes(content)
    with pytest.raises(EditError, match=reason):
        load_edits(path, LABELS)


def test_a_directory_is_refused(tmp_path):
    (tmp_path / 'last.edits.json').mkdir()
    with pytest.raises(EditError, match='not a regular file'):
        load_edits(tmp_path / 'last.edits.json', LABELS)
