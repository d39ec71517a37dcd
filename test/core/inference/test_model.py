"""ReferringModel: loading checks, query validation, statuses, timings, mask (no ROS)."""
import numpy as np
import pytest
import torch

from helpers.node_scenes import A_CENTER, make_handmade_scene
from refersplat_ros.core.devices import resolve_device
from refersplat_ros.core.errors import CheckpointError, SceneFormatError, TextEncoderError
from refersplat_ros.core.inference.model import ReferringModel
from refersplat_ros.core.inference.queries import QueryStatus, validate_query
from refersplat_ros.core.inference.selection import SelectionConfig
from refersplat_ros.core.scene.gaussian_io import load_scene, save_ply
from refersplat_ros.core.text.encoder import TextEncoderConfig


@pytest.fixture(scope='module')
def handmade(tmp_path_factory):
    return make_handmade_scene(tmp_path_factory.mktemp('handmade'))


@pytest.fixture(scope='module')
def model(handmade):
    from refersplat_ros.core.scene.cameras import read_colmap_model
    camera = next(iter(read_colmap_model(handmade.dataset_dir / 'sparse' / '0').values()))
    return ReferringModel.load(handmade.scene_path, handmade.checkpoint_path, device='cpu',
                               mask_camera=camera)


@pytest.mark.parametrize('text, reason', [
    ('the red mug', None),
    ('  der rote Becher, links ', None),
    ('', 'query is empty'),
    (' \t  ', 'query is empty'),
    ('x' * 13, 'query has 13 characters (maximum 12)'),
    ('red\x00mug', 'query contains control character U+0000 at position 3'),
    ('red mug\n', 'query contains control character U+000A at position 7'),
    (None, 'query must be a string, got NoneType'),
    # Invisible only: format characters, separators, combining marks, a bidi override.
    ('\u200b\u200b', 'query has only invisible characters (format, separator or combining '
                     'characters such as U+200B)'),
    ('\ufeff', 'query has only invisible characters (format, separator or combining '
               'characters such as U+FEFF)'),
    ('\u00ad \u0301', 'query has only invisible characters (format, separator or combining '
                      'characters such as U+00AD)'),
    ('\u202e\u2029', 'query has only invisible characters (format, separator or combining '
                     'characters such as U+202E)'),
    ('mug\u200b', None),
])
def test_validate_query(text, reason):
    assert validate_query(text, max_chars=12 if text and len(text) == 13 else 512) == reason


@pytest.mark.parametrize('top_k, threshold, reason', [
    (0, 0.0, None), (1, 0.5, None), (64, 0.99, None), (0, 0.01, None),
    (0, float(np.float32(0.99)), None), (0, float(np.float32(0.01)), None),  # goal's float32
    (65, 0.0, 'top_k 65 is out of range (0 = node parameter, or 1..64)'),
    (2**32 - 1, 0.0, 'top_k 4294967295 is out of range (0 = node parameter, or 1..64)'),
    (0, 1.0, 'score_threshold 1 is out of range (0 = node parameter, or 0.01..0.99)'),
    (0, float('inf'), 'score_threshold inf is out of range (0 = node parameter, or 0.01..0.99)'),
    (0, float('nan'), 'score_threshold nan is out of range (0 = node parameter, or 0.01..0.99)'),
    (0, -0.5, 'score_threshold -0.5 is out of range (0 = node parameter, or 0.01..0.99)'),
    (0, 0.001, 'score_threshold 0.001 is out of range (0 = node parameter, or 0.01..0.99)'),
])
def test_validate_overrides(top_k, threshold, reason):
    from refersplat_ros.core.inference.queries import validate_overrides
    assert validate_overrides(top_k, threshold) == reason


def test_resolve_device():
    assert resolve_device('cpu') == torch.device('cpu')
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto').type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            resolve_device('cuda')


def test_query_selects_object_with_timings_and_mask(model, handmade):
    outcome = model.query('the red mug')
    assert outcome.status == QueryStatus.OK and outcome.message == ''
    assert set(handmade.object_ids[outcome.selection.indices]) == {1}
    np.testing.assert_allclose(outcome.selection.best.center, A_CENTER, atol=0.01)
    assert set(outcome.timings_ms) == {'encode', 'field', 'select', 'render'}
    assert all(v >= 0 for v in outcome.timings_ms.values())
    assert outcome.mask.shape == (48, 64) and outcome.mask.dtype == np.uint8
    # The mask is where A's positive logits dominate: compare with A rendered alone.
    logits = model.response('the red mug')
    assert logits.shape == (len(handmade.means),)
    assert (logits[torch.from_numpy(handmade.object_ids == 1)] > 0).all()
    coverage = model.render_logits((logits > 0).float())
    np.testing.assert_array_equal(outcome.mask > 0, (model.render_logits(logits) > 0).numpy())
    assert ((outcome.mask > 0) <= (coverage.numpy() > 0)).all()
    assert model.memory_bytes() > handmade.means.nbytes


def test_query_with_a_camera_renders_the_target_in_it(model, handmade):
    from refersplat_ros.core.inference.target_view import render_target
    from refersplat_ros.core.scene.cameras import Camera
    camera = Camera.look_at((0.6, -0.8, 0.5), A_CENTER, width=80, height=60, fov_y_deg=50.0)
    outcome = model.query('the red mug', SelectionConfig(metric_scale=2.0), camera=camera)
    assert outcome.status == QueryStatus.OK and outcome.mask is None
    view = outcome.view
    assert view.mask.shape == (60, 80) and view.pixels > 50
    expected = render_target(model.scene, np.flatnonzero(handmade.object_ids == 1), camera,
                             metric_scale=2.0)
    a, b = view.mask > 0, expected.mask > 0
    iou = (a & b).sum() / (a | b).sum()
    assert iou >= 0.95
    distance = 2.0 * np.linalg.norm(np.subtract((0.6, -0.8, 0.5), A_CENTER))
    assert abs(float(np.nanmedian(view.depth)) - distance) < 0.2


def test_a_render_past_the_time_budget_keeps_the_3d_answer(model):
    """The time budget covers the render: stopped there, the answer is OK without a mask."""
    import time as clock
    from refersplat_ros.core.scene.cameras import Camera
    camera = Camera.look_at((0.6, -0.8, 0.5), A_CENTER, width=80, height=60, fov_y_deg=50.0)
    start = clock.perf_counter()

    def slow_render_start(stage):
        if stage == 'rendering':  # the budget runs out while the render starts
            clock.sleep(max(0.0, 1.0 - (clock.perf_counter() - start)) + 0.05)

    outcome = model.query('the red mug', camera=camera, on_stage=slow_render_start,
                          time_budget_s=1.0)
    assert outcome.status == QueryStatus.OK and outcome.selection is not None
    assert not outcome.view.visible and outcome.view.mask.shape == (60, 80)
    assert outcome.view.reason.startswith('render stopped: query stopped after')


def test_query_statuses(model):
    invalid = model.query('   ')
    assert invalid.status == QueryStatus.INVALID_QUERY and invalid.selection is None
    stages = []
    miss = model.query('mug', SelectionConfig(threshold=0.999), on_stage=stages.append)
    assert miss.status == QueryStatus.NO_MATCH and 'probability >= 0.999' in miss.message
    assert miss.mask is None and stages == ['encoding', 'field', 'selecting']


@pytest.mark.parametrize('text', ['\ufffd', '\ufffd\u200b', '\u0301 \u00ad'])
def test_query_the_encoder_gets_no_word_piece_from_is_invalid(model, text):
    # '\ufffd' is visible (validate_query lets it pass) but the tokenizer drops it.
    outcome = model.query(text)
    assert outcome.status == QueryStatus.INVALID_QUERY and outcome.selection is None
    assert outcome.message.startswith(('query has only invisible characters',
                                       f'query {text!r} has no word piece the text encoder'))


class _SlowClock:
    """A perf_counter that advances 0.25 s per reading: a query that never ends in time."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.25
        return self.now


def test_time_budget_stops_a_query_with_error(model, monkeypatch):
    import refersplat_ros.core.inference.model as model_module

    assert model.query('the red mug', time_budget_s=60.0).status == QueryStatus.OK
    monkeypatch.setattr(model_module, 'time', _SlowClock())
    outcome = model.query('the red mug', time_budget_s=1.0)
    assert outcome.status == QueryStatus.ERROR and outcome.selection is None
    assert 'over its time budget of 1 s (in stage' in outcome.message
    monkeypatch.undo()
    assert model.query('the red mug', time_budget_s=0).status == QueryStatus.OK  # 0 = none
    # Time spent before the call (the node's queue) counts against the budget.
    spent = model.query('the red mug', time_budget_s=1.0, spent_s=2.0)
    assert spent.status == QueryStatus.ERROR
    assert spent.message.startswith('query stopped after 2.0')
    assert spent.message.endswith('over its time budget of 1 s (in stage encoding)')


def test_oversized_files_are_refused(handmade):
    with pytest.raises(SceneFormatError, match='more than the limit of 100 bytes'):
        ReferringModel.load(handmade.scene_path, handmade.checkpoint_path, device='cpu',
                            max_file_bytes=100)


def test_load_errors_name_the_problem(handmade, tmp_path):
    with pytest.raises(SceneFormatError, match='nothing.ply'):
        ReferringModel.load(tmp_path / 'nothing.ply', handmade.checkpoint_path, device='cpu')
    with pytest.raises(CheckpointError, match='nothing.safetensors'):
        ReferringModel.load(handmade.scene_path, tmp_path / 'nothing.safetensors', device='cpu')
    other = load_scene(handmade.scene_path)
    other.means[0, 0] += 1.0                        # a different scene of the same size
    save_ply(other, tmp_path / 'other.ply')
    with pytest.raises(CheckpointError, match='means_sha256'):
        ReferringModel.load(tmp_path / 'other.ply', handmade.checkpoint_path, device='cpu')
    with pytest.raises(TextEncoderError):
        ReferringModel.load(handmade.scene_path, handmade.checkpoint_path,
                            TextEncoderConfig(model=str(tmp_path / 'no-model')), device='cpu')
