"""End-to-end tests of ``refersplat train`` / ``eval`` / ``query`` on a tiny two-object scene."""
import csv
import json
import re

import numpy as np
import pytest

from refersplat_ros.cli.main import build_parser, main
from refersplat_ros.cli.train import config_from_args
from refersplat_ros.core.field.checkpoint import load_checkpoint
from helpers.tiny_referring import (BALL_CENTRE, BOX_CENTRE, tiny_encoder_folder,
                                    write_two_object_scene)


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    data = write_two_object_scene(root / 'scene')
    encoder = tiny_encoder_folder(root / 'tiny-bert')
    run = root / 'run'
    code = main(['train', '--data', str(data), '--out', str(run), '--steps', '300',
                 '--expressions-per-step', '2', '--checkpoint-every', '150', '--text-encoder',
                 str(encoder), '--device', 'cpu', '--num-threads', '1', '--no-progress'])
    return code, data, run


def test_train_writes_checkpoints(trained_run, capsys):
    code, data, run = trained_run
    assert code == 0
    names = sorted(p.name for p in (run / 'checkpoints').glob('*.safetensors'))
    assert names == ['last.safetensors', 'step_000150.safetensors', 'step_000300.safetensors']
    info = load_checkpoint(run / 'checkpoints' / 'last.safetensors').training_config
    assert info['train']['expressions_per_step'] == 2
    assert info['text_encoder']['model'].endswith('tiny-bert')


def test_eval_prints_last_and_best(trained_run, capsys):
    _, _, run = trained_run
    assert main(['eval', '--run', str(run), '--device', 'cpu', '--no-progress']) == 0
    out = capsys.readouterr().out
    assert re.search(r'stage 1 last: step_000300.safetensors \(step 300\) mIoU \d+\.\d', out)
    assert 'stage 1 best:' in out and '3D right object' in out and 'centroid error' in out
    summary = json.loads((run / 'eval' / 'summary.json').read_text())
    assert summary['stages'][0]['last']['miou'] > 0.5


def test_eval_split_train_scores_the_fit(trained_run, capsys):
    _, _, run = trained_run
    assert main(['eval', '--run', str(run), '--split', 'train', '--no-overlays',
                 '--device', 'cpu', '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'train split' in out and str(run / 'eval_train' / 'summary.json') in out
    summary = json.loads((run / 'eval_train' / 'summary.json').read_text())
    assert summary['split'] == 'train' and summary['stages'][0]['last']['miou'] > 0.5
    with pytest.raises(SystemExit):
        main(['eval', '--run', str(run), '--split', 'validation'])


def _query_lines(out: str) -> list:
    """Return the first line of each text in ``refersplat query``'s output (no indented one)."""
    return [line for line in out.strip().splitlines() if not line.startswith(' ')]


def test_query_selects_the_named_object(trained_run, capsys):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    assert main(['query', '--checkpoint', str(ckpt), '--text', 'the red ball', '--text',
                 'the box on the right', '--device', 'cpu']) == 0
    lines = _query_lines(capsys.readouterr().out)
    assert len(lines) == 2
    for line, centre in zip(lines, (BALL_CENTRE, BOX_CENTRE)):
        match = re.search(r'(\d+) Gaussians, score ([\d.]+), centroid \(([-\d.]+), ([-\d.]+), '
                          r'([-\d.]+)\)', line)
        assert match, line
        assert int(match.group(1)) >= 10 and 0.5 <= float(match.group(2)) <= 1.0
        centroid = [float(match.group(i)) for i in (3, 4, 5)]
        assert np.linalg.norm(np.subtract(centroid, centre)) < 0.2  # best DBSCAN instance


def test_a_query_without_a_target_exits_1(trained_run, capsys):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    # One text finds its object, one is not a query at all: the command reports both, exit 1.
    assert main(['query', '--checkpoint', str(ckpt), '--text', 'the red ball', '--text',
                 '   ', '--device', 'cpu']) == 1
    lines = _query_lines(capsys.readouterr().out)
    assert 'Gaussians, score' in lines[0] and 'INVALID_QUERY' in lines[1]


JSON_KEYS = {'text', 'status', 'message', 'score', 'centroid', 'box', 'num_gaussians',
             'interpretation', 'confidence', 'candidates', 'targets', 'timings_ms'}


def test_query_json_prints_one_object_per_text(trained_run, capsys):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    assert main(['query', '--checkpoint', str(ckpt), '--text', 'the red ball', '--text', '   ',
                 '--json', '--device', 'cpu']) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    found, invalid = (json.loads(line) for line in lines)
    assert set(found) == set(invalid) == JSON_KEYS
    assert (found['text'], found['status'], found['message']) == ('the red ball', 'OK', '')
    assert 0.5 <= found['score'] <= 1.0 and found['num_gaussians'] >= 10
    assert np.linalg.norm(np.subtract(found['centroid'], BALL_CENTRE)) < 0.2
    box = found['box']
    assert set(box) == {'center', 'quaternion_xyzw', 'size'}
    assert np.linalg.norm(np.subtract(box['center'], BALL_CENTRE)) < 0.2
    assert np.linalg.norm(box['quaternion_xyzw']) == pytest.approx(1.0)
    assert all(0.0 < v < 1.0 for v in box['size'])
    assert set(found['timings_ms']) == {'encode', 'field', 'select', 'render'}
    assert isinstance(found['interpretation'], str) and isinstance(found['candidates'], list)
    assert (invalid['text'], invalid['status']) == ('   ', 'INVALID_QUERY')
    assert invalid['message'] == 'query is empty' and invalid['interpretation'] == ''
    assert (invalid['centroid'], invalid['box'], invalid['score']) == (None, None, 0.0)
    assert invalid['num_gaussians'] == 0 and invalid['candidates'] == []
    assert 0.0 < found['confidence'] <= 1.0 and invalid['confidence'] == 0.0


def test_query_grounding_field_answers_by_the_field_alone(trained_run, capsys):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    assert main(['query', '--checkpoint', str(ckpt), '--text', 'the red ball', '--json',
                 '--grounding', 'field', '--device', 'cpu']) == 0
    record = json.loads(capsys.readouterr().out)
    assert record['status'] == 'OK' and record['interpretation'] == ''
    assert 0.5 <= record['confidence'] <= 1.0  # the field's mean probability of the target


def test_query_json_stdout_holds_nothing_but_the_objects(trained_run):
    import subprocess
    import sys

    from helpers.ros_harness import REPO_ROOT

    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    texts = ['the red ball', 'the box on the right', 'the purple elephant']
    argv = [sys.executable, '-m', 'refersplat_ros.cli.main', '-v', 'query', '--checkpoint',
            str(ckpt), '--json', '--device', 'cpu']
    for text in texts:
        argv += ['--text', text]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r['text'] for r in records] == texts
    assert all(set(r) == JSON_KEYS for r in records)
    assert 'DEBUG' in proc.stderr or 'INFO' in proc.stderr   # the logs went to stderr


def _ambiguous(monkeypatch):
    """Make ``ReferringModel.query`` answer AMBIGUOUS: its target, then a second ball."""
    from refersplat_ros.core.inference.model import Candidate, ReferringModel
    from refersplat_ros.core.inference.queries import QueryStatus
    from refersplat_ros.core.inference.selection import Instance

    query = ReferringModel.query
    twin = Instance(indices=np.zeros(0, np.int64), score=0.5, mass=1.0,
                    centroid=np.array([0.5, 0.25, 0.125]), center=np.array([0.5, 0.25, 0.25]),
                    rotation=np.eye(3), extent=np.array([0.5, 0.5, 0.5]))

    def ambiguous(self, text, *args, **kwargs):
        outcome = query(self, text, *args, **kwargs)
        if outcome.status == QueryStatus.OK:
            best = outcome.selection.best
            outcome.status, outcome.message = QueryStatus.AMBIGUOUS, 'two balls fit'
            outcome.candidates = [Candidate('ball #1', 0.75, best),
                                  Candidate('ball #2', 0.625, twin)]
        outcome.interpretation = f"target: ball <- '{text}'"
        return outcome

    monkeypatch.setattr(ReferringModel, 'query', ambiguous)


def test_query_reports_an_ambiguous_answer_as_found(trained_run, capsys, monkeypatch):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    _ambiguous(monkeypatch)
    argv = ['query', '--checkpoint', str(ckpt), '--text', 'the red ball', '--device', 'cpu']
    assert main(argv) == 0                       # AMBIGUOUS has a target: exit 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"'the red ball': AMBIGUOUS \(two balls fit\), best of 2: \d+ Gaussians, "
                    r'score [\d.]+, centroid \(', lines[0]), lines[0]
    assert re.match(r'  1\. ball #1: score 0\.7500, centroid \(', lines[1]), lines[1]
    assert lines[2] == '  2. ball #2: score 0.6250, centroid (0.5000, 0.2500, 0.1250)'
    assert lines[3] == "  understood: target: ball <- 'the red ball'"
    assert re.match(r'  confidence: [01]\.\d\d$', lines[4]) and len(lines) == 5

    assert main(argv + ['--json']) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert (record['status'], record['message']) == ('AMBIGUOUS', 'two balls fit')
    assert record['interpretation'] == "target: ball <- 'the red ball'"
    assert record['num_gaussians'] >= 10 and record['box'] is not None
    first, second = record['candidates']
    assert (first['label'], first['score']) == ('ball #1', 0.75)
    assert first['center'] == record['box']['center'] and first['size'] == record['box']['size']
    assert first['centroid'] == record['centroid']
    assert second == {'label': 'ball #2', 'score': 0.625, 'centroid': [0.5, 0.25, 0.125],
                      'center': [0.5, 0.25, 0.25], 'size': [0.5, 0.5, 0.5]}


def test_cli_errors_go_to_stderr_with_exit_code_2(trained_run, tmp_path, capsys):
    _, data, run = trained_run
    calls = {
        'eval': ['eval', '--run', str(tmp_path), '--no-progress'],
        'query': ['query', '--checkpoint', str(tmp_path / 'missing.safetensors'), '--text', 'x'],
        'train': ['train', '--data', str(tmp_path), '--out', str(tmp_path / 'r'),
                  '--no-progress'],
    }
    for command, argv in calls.items():
        assert main(argv) == 2, command
        captured = capsys.readouterr()
        assert captured.err.startswith(f'refersplat {command}: error: '), captured.err
        assert 'Traceback' not in captured.err and 'error' not in captured.out
    # An invalid setting (config validation) takes the same path.
    assert main(['query', '--checkpoint', str(run / 'checkpoints' / 'last.safetensors'),
                 '--text', 'x', '--threshold', '1.5', '--device', 'cpu']) == 2
    assert 'threshold' in capsys.readouterr().err


@pytest.mark.parametrize('record', [
    {'text_encoder': {'model': 'x', 'bogus': 1}},
    {'text_encoder': 'bundled'},
    {'text_encoder': {'max_tokens': 'many'}},
    {'stage': 'two'},
    {'scene_path': 42},
    {'train': [1, 2]},
])
def test_query_with_a_malformed_recorded_config_is_an_error_line(trained_run, tmp_path,
                                                                 capsys, record):
    from refersplat_ros.core.field.checkpoint import save_checkpoint
    from refersplat_ros.core.field.referring_field import ReferringField
    from refersplat_ros.core.scene.gaussian_io import load_scene

    _, _, run = trained_run
    saved = load_checkpoint(run / 'checkpoints' / 'last.safetensors')
    recorded = {**saved.training_config, **record}
    path = tmp_path / 'malformed.safetensors'
    # The checkpoint's own field, written again with a malformed run record.
    means = load_scene(saved.training_config['scene_path']).means
    field = ReferringField(means, saved.field_config)
    field.load_state_dict(saved.field_state)
    save_checkpoint(path, field, text_encoder_id=saved.text_encoder_id, step=saved.step,
                    training_config=recorded)
    assert main(['query', '--checkpoint', str(path), '--text', 'the red ball',
                 '--device', 'cpu']) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith('refersplat query: error: checkpoint ')
    assert 'malformed run record (training_config)' in captured.err
    assert 'Traceback' not in captured.err


def test_test_frames_set_the_split(trained_run, tmp_path, capsys):
    _, data, run = trained_run
    frames = sorted(p.stem for p in (data / 'json').glob('*.json'))
    out = tmp_path / 'eval'
    assert main(['eval', '--run', str(run), '--test-frames', f'{frames[0]},{frames[1]}',
                 '--out', str(out), '--no-overlays', '--device', 'cpu', '--no-progress']) == 0
    with open(out / 'stage1' / 'per_expression.csv') as handle:
        scored = {row['frame'] for row in csv.DictReader(handle)}
    assert scored == {frames[0], frames[1]}
    with pytest.raises(SystemExit):
        build_parser('train').parse_args(['train', '--data', 'd', '--out', 'o',
                                          '--test-frames', ','])


def test_train_flags_build_the_config():
    args = build_parser('train').parse_args(
        ['train', '--data', 'd', '--out', 'o', '--official', '--no-pcmi', '--stage', '2',
         '--seed', '3', '--steps', '7'])
    config = config_from_args(args)
    assert config.loss.gtcl_weight == 0.1 and config.loss.tau_period == 2000
    assert not config.field.use_pcmi and config.stage == 2 and config.seed == 3
    args = build_parser('train').parse_args(
        ['train', '--data', 'd', '--out', 'o', '--gtcl-weight', '0.5', '--no-gtcl',
         '--naive-attention', '--resume', '--pcmi-form', 'paper', '--test-frames', '3,frame_7'])
    config = config_from_args(args)
    assert config.loss.gtcl_weight == 0.5 and not config.loss.use_gtcl
    assert config.field.naive_attention and config.field.pcmi_form == 'paper' and config.resume
    assert config.steps is None  # resolved per scene kind at train time
    assert config.test_frames == [3, 'frame_7']


def test_every_train_flag_is_named_like_the_field_it_sets():
    from dataclasses import fields

    from refersplat_ros.core.field.referring_field import ReferringFieldConfig
    from refersplat_ros.core.train.losses import ReferringLossConfig
    from refersplat_ros.core.train.trainer import TrainConfig

    names = {f.name for c in (TrainConfig, ReferringFieldConfig, ReferringLossConfig)
             for f in fields(c)}
    # Negated switches (--no-x sets x) and the one preset flag.
    negated = {'no_pcmi': 'use_pcmi', 'no_gtcl': 'use_gtcl', 'no_progress': 'progress'}
    presets = {'official', 'help'}
    parser = build_parser('train')
    train_parser = parser._subparsers._group_actions[0].choices['train']
    for action in train_parser._actions:
        dest = negated.get(action.dest, action.dest)
        assert dest in names or dest in presets, f'--{action.dest} sets no config field'


def test_edit_verbs_change_what_query_answers(trained_run, capsys):
    _, _, run = trained_run
    ckpt = run / 'checkpoints' / 'last.safetensors'
    edits = run / 'checkpoints' / 'last.edits.json'
    base = ['--checkpoint', str(ckpt), '--device', 'cpu']
    try:
        assert main(['query', *base, '--text', 'the red ball', '--json']) == 0
        ball = json.loads(capsys.readouterr().out)['targets'][0]
        assert main(['edit', *base, 'remove', ball['label']]) == 0
        assert capsys.readouterr().out.startswith(f"removed {ball['label']}")
        assert edits.exists()
        assert main(['query', *base, '--text', 'the red ball']) == 1
        assert 'was removed' in capsys.readouterr().out
        assert main(['query', *base, '--text', 'the red ball', '--no-edits']) == 0
        capsys.readouterr()
        # the ball is put down 0.3 m further along x, its box centre stated exactly
        to = np.add(ball['center'], (0.3, 0.0, 0.0))
        assert main(['edit', *base, 'move-to', ball['label'], '--to', *map(str, to)]) == 0
        capsys.readouterr()
        assert main(['query', *base, '--text', 'the red ball', '--json']) == 0
        moved = json.loads(capsys.readouterr().out)['targets'][0]
        np.testing.assert_allclose(moved['center'], to, atol=1e-4)
        assert main(['edit', *base, 'remove', 'teapot']) == 2
        assert "no object 'teapot'" in capsys.readouterr().err
        assert main(['edit', *base, 'move', ball['label'], '--rotation', '0', '0', '1',
                     '1']) == 2
        assert 'not a unit quaternion' in capsys.readouterr().err
        assert main(['edit', *base, 'list']) == 0
        assert f"{ball['label']}: moved" in capsys.readouterr().out
        assert main(['edit', *base, 'reset']) == 0
        assert not edits.exists()
    finally:
        edits.unlink(missing_ok=True)
