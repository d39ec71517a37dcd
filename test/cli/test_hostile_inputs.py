"""The CLI with hostile recorded settings and names (issue 24): one error line, escaped output."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from refersplat_ros.cli.main import main
from refersplat_ros.core.field.checkpoint import save_checkpoint
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig


def _checkpoint(path, training_config=None, objects=None):
    field = ReferringField(torch.randn(9, 3), ReferringFieldConfig(text_dim=8))
    return save_checkpoint(path, field, text_encoder_id='x/h8', step=5,
                           training_config=training_config, objects=objects)


def _objects():
    from refersplat_ros.core.scene.cameras import Camera
    from refersplat_ros.core.scene.objects import SceneObjects
    camera = Camera.look_at((0.0, -2.0, 1.0), (0.0, 0.0, 0.0), width=32, height=24)
    return SceneObjects(np.arange(9) % 2, ['red-mug', 'bowl'], [['the red mug'], []], camera,
                        (0.0, 0.0, 1.0))


def _edit_meta(path, edit):
    """Rewrite the checkpoint's JSON description in place with ``edit(meta)``."""
    import json
    data = path.read_bytes()
    size = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + size])
    meta = json.loads(header['__metadata__']['refersplat'])
    edit(meta)
    header['__metadata__']['refersplat'] = json.dumps(meta)  # Infinity for inf, as Python does
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, 'little') + text + data[8 + size:])
    return path


def _query_error(capsys, path) -> str:
    assert main(['query', '--checkpoint', str(path), '--text', 'the mug', '--device',
                 'cpu']) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith('refersplat query: error: checkpoint '), captured.err
    assert 'Traceback' not in captured.err and captured.out == ''
    return captured.err


@pytest.mark.parametrize('setting, value', [
    ('max_tokens', -3), ('max_tokens', 100_000), ('num_threads', 100_000),
    ('num_threads', -1), ('cache_size', -5), ('cache_bytes', 2**50),
])
def test_recorded_text_encoder_settings_are_range_checked(tmp_path, capsys, setting, value):
    path = _checkpoint(tmp_path / 'c.safetensors', {'text_encoder': {setting: value}})
    err = _query_error(capsys, path)
    assert 'malformed run record (training_config)' in err
    assert f'text_encoder.{setting} is {value}, not an integer in ' in err


@pytest.mark.parametrize('entry, message', [
    (('step',), 'step is inf'),
    (('scene', 'num_gaussians'), 'scene.num_gaussians is inf'),
    (('objects', 'reference_view', 'width'), 'reference view: width is inf'),
])
def test_infinity_in_a_recorded_number_is_an_error_line(tmp_path, capsys, entry, message):
    def edit(meta):
        target = meta
        for key in entry[:-1]:
            target = target[key]
        target[entry[-1]] = float('inf')
    path = _edit_meta(_checkpoint(tmp_path / 'c.safetensors', objects=_objects()), edit)
    err = _query_error(capsys, path)
    assert 'malformed description: ' + message in err


def test_a_thread_count_out_of_range_is_an_error_line(tmp_path, capsys):
    for count in ('100000', '-2'):
        assert main(['train', '--data', str(tmp_path), '--out', str(tmp_path / 'r'),
                     '--num-threads', count, '--no-progress']) == 2
        err = capsys.readouterr().err
        assert err.startswith('refersplat train: error: ') and 'num_threads must be 0..1024' in err


def test_printable_escapes_control_characters_only():
    from refersplat_ros.core.inference.queries import printable
    assert printable('red mug é 杯 #2') == 'red mug é 杯 #2'
    assert printable('a\x1b[31mb\x00\n\t\x7f\x9b\u202e') == \
        'a\\x1b[31mb\\x00\\n\\t\\x7f\\x9b\\u202e'


def test_query_output_escapes_names_interpretations_and_messages():
    from refersplat_ros.cli.query import format_outcome
    from refersplat_ros.core.inference.queries import QueryStatus

    best = SimpleNamespace(centroid=np.zeros(3))
    outcome = SimpleNamespace(
        text='the \x1b[2Jmug', status=QueryStatus.AMBIGUOUS, message='two\x1b[0m fit',
        selection=SimpleNamespace(indices=[1, 2], score=0.5, best=best),
        timings_ms={'encode': 1.0, 'field': 1.0}, interpretation='target: mug\x07',
        confidence=0.5,
        candidates=[SimpleNamespace(label='mug\x1b]0;x\x07', score=0.5,
                                    instance=SimpleNamespace(centroid=np.zeros(3)))])
    text = format_outcome(outcome)
    assert '\x1b' not in text and '\x07' not in text
    lines = text.splitlines()
    assert lines[0].startswith("'the \\x1b[2Jmug': AMBIGUOUS (two\\x1b[0m fit), best of 1:")
    assert lines[1].startswith('  1. mug\\x1b]0;x\\x07: score 0.5000')
    assert lines[2] == '  understood: target: mug\\x07'
    outcome.status, outcome.message = QueryStatus.NO_MATCH, 'nothing like \x1b[5m'
    assert format_outcome(outcome).splitlines()[0].endswith('NO_MATCH nothing like \\x1b[5m')
