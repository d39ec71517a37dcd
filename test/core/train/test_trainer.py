"""Tests of the training loop (docs/METHOD.md#training) on a tiny two-object scene, tiny BERT."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from refersplat_ros.core import runs
from refersplat_ros.core.datasets.reflerf.layout import category_phrase
from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.evaluate.evaluator import evaluate_checkpoint
from refersplat_ros.core.field.checkpoint import load_checkpoint, save_checkpoint
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.runs import run_info
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoderConfig
from refersplat_ros.core.train.losses import referring_loss, ReferringLossConfig
from refersplat_ros.core.train.trainer import (EXPRESSIONS_PER_STEP, fit_converged,
                                               _pack_view_words, resolve_config, round_steps,
                                               _sentence_embeddings, train, train_step,
                                               TrainConfig, _TrainView, ViewSampler)
from helpers.tiny_referring import tiny_encoder_folder, write_two_object_scene


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """(scene folder, encoder config, encoder) shared by the module."""
    root = tmp_path_factory.mktemp('training')
    data = write_two_object_scene(root / 'scene')
    encoder_config = TextEncoderConfig(model=str(tiny_encoder_folder(root / 'tiny-bert')))
    return data, encoder_config, load_text_encoder(encoder_config, torch.device('cpu'))


def _config(tiny, out, **kw):
    data, encoder_config, _ = tiny
    base = dict(data=data, out=out, steps=40, expressions_per_step=2, checkpoint_every=10,
                text_encoder=encoder_config, device='cpu', num_threads=1, progress=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope='module')
def trained(tiny, tmp_path_factory):
    """Train the full model (PCMI + GTCL) for 300 steps, enough to separate the objects."""
    out = tmp_path_factory.mktemp('run') / 'full'
    return train(_config(tiny, out, steps=300, checkpoint_every=75), encoder=tiny[2])


def _fresh_field(data, encoder):
    """Return the field a run with seed 42 starts from (step 0)."""
    scene = load_scene(Path(data) / 'point_cloud.ply')
    torch.manual_seed(42)
    return ReferringField(scene.means, ReferringFieldConfig(text_dim=encoder.hidden_size))


def _mean_bce(checkpoint_path, data, encoder):
    """Mean BCE of a checkpoint (None = step 0) over every training (view, expression) pair."""
    from refersplat_ros.core.train.losses import mask_bce_loss
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    field = _fresh_field(data, encoder) if checkpoint_path is None else \
        load_checkpoint(checkpoint_path).build_field(scene.means)
    weights = ViewWeights(scene, torch.device('cpu'), 1 << 30)
    losses = []
    with torch.no_grad():
        for view in dataset.train_views:
            comp = weights.get(view.camera)
            for annotation in view.annotations:
                response = field(encoder.encode(annotation.sentence)).response
                logits = comp.render(response[:, None])[0]
                losses.append(float(mask_bce_loss(logits, view.load_mask(annotation))))
    return float(np.mean(losses))


def test_bce_decreases(tiny, trained):
    first, last = trained.checkpoints[0], trained.last_checkpoint
    assert load_checkpoint(first).step == 75 and load_checkpoint(last).step == 300
    bce = [_mean_bce(path, tiny[0], tiny[2]) for path in (None, first, last)]
    assert bce[2] < bce[1] < 0.5 * bce[0]
    with open(trained.run_dir / 'checkpoints' / 'train_log.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r['step']) for r in rows] == list(range(10, 301, 10))
    assert float(rows[-1]['bce']) < float(rows[0]['bce'])
    assert float(rows[0]['tau']) == pytest.approx(0.1)


def test_tiny_run_separates_the_two_objects(tiny, trained, tmp_path):
    data, _, encoder = tiny
    trained_eval = evaluate_checkpoint(trained.last_checkpoint, data, encoder=encoder,
                                       device='cpu')
    # An untrained field (same initialisation, step 0) scores low: the threshold means something.
    fresh = _fresh_field(data, encoder)
    save_checkpoint(tmp_path / 'fresh.safetensors', fresh, text_encoder_id=encoder.encoder_id,
                    step=0)
    fresh_eval = evaluate_checkpoint(tmp_path / 'fresh.safetensors', data, encoder=encoder,
                                     device='cpu')
    assert fresh_eval.miou < 0.2
    assert trained_eval.miou > 0.7  # measured 0.85-0.89 at 300 steps
    # Each object's query selects mostly that object's Gaussians (3D precision).
    assert trained_eval.selection_means()['precision'] > 0.6
    assert trained.stages[0].steps_per_second > 0
    assert set(trained.final_losses) == {'loss', 'bce', 'gtcl', 'fit', 'tau'}
    assert 0.5 < trained.final_losses['fit'] <= 1.0


def test_checkpoint_records_run(tiny, trained):
    data, encoder_config, encoder = tiny
    checkpoint = load_checkpoint(trained.last_checkpoint, text_encoder_id=encoder.encoder_id)
    info = checkpoint.training_config
    assert info['stage'] == 1
    assert Path(info['data']) == Path(data).resolve()
    assert Path(info['scene_path']) == (Path(data) / 'point_cloud.ply').resolve()
    assert info['train']['steps'] == 300 and info['train']['seed'] == 42
    assert checkpoint.optimizer_state is not None
    assert checkpoint.extra['sampler']['view'] is not None
    recorded = run_info(trained.last_checkpoint)
    assert recorded.text_encoder.model == encoder_config.model
    assert recorded.step == 300 and recorded.test_frames is None
    config = json.loads((trained.run_dir / 'config.json').read_text())
    assert config['expressions_per_step'] == 2 and config['checkpoint_every'] == 75
    names = [p.name for p in trained.checkpoints]
    assert names == [f'step_{s:06d}.safetensors' for s in (75, 150, 225, 300)]


def test_resume_equals_uninterrupted_run(tiny, tmp_path):
    encoder = tiny[2]
    full = train(_config(tiny, tmp_path / 'a', steps=12, checkpoint_every=4), encoder=encoder)
    train(_config(tiny, tmp_path / 'b', steps=8, checkpoint_every=4), encoder=encoder)
    resumed = train(_config(tiny, tmp_path / 'b', steps=12, checkpoint_every=4, resume=True),
                    encoder=encoder)
    assert resumed.stages[0].steps_run == 4
    a = load_checkpoint(full.last_checkpoint)
    b = load_checkpoint(resumed.last_checkpoint)
    assert a.step == b.step == 12
    for name, tensor in a.field_state.items():
        torch.testing.assert_close(b.field_state[name], tensor, rtol=1e-5, atol=1e-6)
    for index, state in a.optimizer_state['state'].items():
        assert float(b.optimizer_state['state'][index]['step']) == float(state['step']) == 12
        torch.testing.assert_close(b.optimizer_state['state'][index]['exp_avg_sq'],
                                   state['exp_avg_sq'], rtol=1e-4, atol=1e-12)
    # The log continues instead of restarting.
    with open(tmp_path / 'b' / 'checkpoints' / 'train_log.csv') as handle:
        steps = [int(r['step']) for r in csv.DictReader(handle)]
    assert steps == [8, 10, 12]
    # Denormals were flushed to zero during training only (flush_denormal): torch's default is
    # back, a denormal is a number again.
    assert float(torch.tensor(1e-39) * 2.0) > 0.0


def test_resume_with_another_architecture_fails(tiny, tmp_path):
    train(_config(tiny, tmp_path / 'run', steps=2, checkpoint_every=2), encoder=tiny[2])
    with pytest.raises(CheckpointError, match='field_config'):
        train(_config(tiny, tmp_path / 'run', steps=4, resume=True,
                      field=ReferringFieldConfig(use_pcmi=False)), encoder=tiny[2])


def test_two_stage_writes_pseudo_masks_outside_the_dataset(tiny, tmp_path):
    data, _, encoder = tiny
    before = sorted(p.relative_to(data) for p in (data / 'gt_mask').rglob('*.png'))
    result = train(_config(tiny, tmp_path / 'run', steps=6, checkpoint_every=3, stage=2),
                   encoder=encoder)
    assert [s.stage for s in result.stages] == [1, 2]
    root = result.stages[1].pseudo_mask_dir
    assert root == tmp_path / 'run' / 'stage2' / 'pseudo_masks' / 'gt_mask'
    dataset = load_referring_dataset(data)
    expected = sorted(f'{v.frame}/{c}.png' for v in dataset.train_views for c in v.categories)
    assert sorted(str(p.relative_to(root)) for p in root.rglob('*.png')) == expected
    assert sorted(p.relative_to(data) for p in (data / 'gt_mask').rglob('*.png')) == before
    stage2 = load_checkpoint(result.last_checkpoint)
    assert stage2.training_config['stage'] == 2 and stage2.step == 6
    assert stage2.training_config['mask_root'] == str(root.resolve())
    assert result.last_checkpoint.parent == tmp_path / 'run' / 'stage2' / 'checkpoints'


def test_two_stage_pseudo_masks_follow_the_stage1_field(tiny, trained, tmp_path):
    from refersplat_ros.core.datasets.reflerf.loader import load_mask
    from refersplat_ros.core.evaluate.metrics import mask_iou
    from refersplat_ros.core.train.trainer import write_pseudo_masks
    data, _, encoder = tiny
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    field = load_checkpoint(trained.last_checkpoint).build_field(scene.means)
    weights = ViewWeights(scene, torch.device('cpu'), 1 << 30)
    root = write_pseudo_masks(field, dataset, encoder, weights, tmp_path)
    ious = []
    for view in dataset.train_views:
        for annotation in view.annotations:
            pseudo = load_mask(root / view.frame / f'{annotation.category}.png',
                               view.camera.width, view.camera.height)
            ious.append(mask_iou(pseudo, view.load_mask(annotation)))
    assert np.mean(ious) > 0.5  # the trained field reproduces its training masks


def test_split_step_gradients_equal_summed_loss(tiny):
    """train_step's shared-precompute backward equals back-propagating the summed loss."""
    data, _, encoder = tiny
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    torch.manual_seed(0)
    field = ReferringField(scene.means, ReferringFieldConfig(text_dim=encoder.hidden_size))
    with torch.no_grad():
        field.features.normal_()
    view = dataset.train_views[0]
    sentences = [a.sentence for a in view.annotations]
    categories = np.array([a.category for a in view.annotations])
    words = {s: encoder.encode(s) for s in sentences}

    class _View:
        pass
    packed_view = _View()
    packed_view.sentences = sentences
    packed = _pack_view_words(packed_view, words)
    comp = ViewWeights(scene, torch.device('cpu'), 1 << 30).get(view.camera)
    masks = [view.load_mask(a).float() for a in view.annotations]
    positives = [torch.from_numpy(categories == c) for c in categories]
    cfg = ReferringLossConfig()
    optimizer = torch.optim.SGD(field.parameters(), lr=0.0)
    train_step(field, optimizer, comp, [words[s] for s in sentences], masks, positives, packed,
               0, cfg)
    split = {n: p.grad.clone() for n, p in field.named_parameters() if p.grad is not None}
    field.zero_grad()
    total = 0.0
    for sentence, mask, positive in zip(sentences, masks, positives):
        out = field(words[sentence])
        logits = comp.render(out.response[:, None])[0]
        embeddings = _sentence_embeddings(field, *packed)
        total = total + referring_loss(logits, mask, out.response, out.enhanced, embeddings,
                                       positive, 0, cfg).total / len(sentences)
    total.backward()
    assert split.keys() == {n for n, p in field.named_parameters() if p.grad is not None}
    for name, param in field.named_parameters():
        torch.testing.assert_close(split[name], param.grad, rtol=1e-4, atol=1e-7)


def test_view_sampler_walks_every_view_once_per_epoch():
    sampler = ViewSampler([3, 2, 4], seed=7)
    seen = []
    for _ in range(9):  # one epoch with 1 expression per step: 3 + 2 + 4 steps
        view, chunk = sampler.next_chunk(1)
        seen.append((view, chunk[0]))
    assert sorted(seen) == [(v, i) for v, n in enumerate([3, 2, 4]) for i in range(n)]
    assert [s[1] for s in seen if s[0] == 2] == [0, 1, 2, 3]  # fixed order within a view
    state = json.loads(json.dumps(sampler.state()))
    clone = ViewSampler([3, 2, 4], seed=0)
    clone.load_state(state)
    assert [clone.next_chunk(2) for _ in range(6)] == [sampler.next_chunk(2) for _ in range(6)]
    view, chunk = sampler.next_chunk(0)  # 0 = the rest of the current view
    assert chunk and chunk[-1] == [3, 2, 4][view] - 1


def _views(sizes):
    return [_TrainView(f'frame_{i}', None, [f's{j}' for j in range(n)], ['c'] * n, {})
            for i, n in enumerate(sizes)]


def test_recipe_is_chosen_from_the_training_views():
    # Up to EXPRESSIONS_PER_STEP expressions a step, at most the median view's; checkpoints
    # every round (one pass over every training expression) when training until converged.
    config = resolve_config(TrainConfig(), _views([3, 9, 2, 8, 7]))
    assert config.expressions_per_step == min(EXPRESSIONS_PER_STEP, 7)
    assert config.steps is None
    assert config.checkpoint_every == round_steps([3, 9, 2, 8, 7], EXPRESSIONS_PER_STEP) == 9
    small = resolve_config(TrainConfig(), _views([1, 2, 1]))
    assert small.expressions_per_step == 1 and small.checkpoint_every == 4
    fixed = resolve_config(TrainConfig(steps=500), _views([3, 9]))
    assert fixed.checkpoint_every == 50
    paper = resolve_config(TrainConfig(expressions_per_step=1), _views([3, 9]))
    assert paper.expressions_per_step == 1 and paper.checkpoint_every == 12


def test_fit_convergence_rule():
    assert not fit_converged([0.2, 0.5], patience=2, min_delta=0.005)
    assert not fit_converged([0.2, 0.5, 0.7, 0.71], patience=2, min_delta=0.005)
    assert fit_converged([0.2, 0.9, 0.902, 0.899], patience=2, min_delta=0.005)
    assert fit_converged([0.95, 0.94, 0.93], patience=2, min_delta=0.0)
    # a collapsed round (the run returns to the best one) does not stop it
    assert not fit_converged([0.3, 0.6, 0.45], patience=1, min_delta=0.005)
    assert fit_converged([0.3, 0.6, 0.45, 0.602], patience=1, min_delta=0.005)


#: Round fits of three runs trained to convergence with patience 3 (bench/stopping.py,
#: 2026-12-07): where the default rule stops them, and the best fit by then.
RECORDED_CURVES = {
    'default:0': ([0.225, 0.864, 0.978, 0.982, 0.985, 0.986, 0.987], 4),
    'default:1': ([0.017, 0.416, 0.878, 0.954, 0.963, 0.965, 0.967, 0.969, 0.97, 0.971], 6),
    'hard:0': ([0.15, 0.569, 0.709, 0.87, 0.964, 0.969, 0.874, 0.971, 0.974], 7),
}


@pytest.mark.parametrize('scene', sorted(RECORDED_CURVES))
def test_the_default_rule_stops_recorded_curves_within_a_point_of_convergence(scene):
    history, stops = RECORDED_CURVES[scene]
    config = TrainConfig()
    rounds = next(r for r in range(1, len(history) + 1)
                  if fit_converged(history[:r], config.fit_patience, config.fit_min_delta))
    assert rounds == stops < len(history)
    assert max(history[:rounds]) >= history[-1] - 0.01  # the run keeps its best round


def test_training_without_steps_stops_when_the_fit_stops_improving(tiny, tmp_path):
    result = train(_config(tiny, tmp_path / 'run', steps=None, checkpoint_every=None,
                           fit_patience=1, fit_min_delta=1.0, max_steps=10_000),
                   encoder=tiny[2])
    stage = result.stages[0]
    # Any improvement below 1.0 IoU counts as none: two rounds, then stop.
    assert len(stage.fit_history) == 2 and all(0.0 <= f <= 1.0 for f in stage.fit_history)
    assert stage.steps == 2 * load_checkpoint(stage.last_checkpoint).extra['round_steps']
    assert [p.name for p in stage.checkpoints] == [
        runs.step_checkpoint_name(stage.steps // 2), runs.step_checkpoint_name(stage.steps)]
    # it ends with the better of the two rounds' fields
    first, last = (load_checkpoint(p).field_state for p in stage.checkpoints)
    same = all(torch.equal(first[k], last[k]) for k in first)
    assert same == (stage.fit_history[1] < stage.fit_history[0])
    capped = train(_config(tiny, tmp_path / 'capped', steps=None, checkpoint_every=None,
                           max_steps=3), encoder=tiny[2])
    assert capped.stages[0].steps == 3


def test_a_resumed_run_still_ends_with_its_best_round(tiny, tmp_path):
    """Resume a run stopped after 2 of its 3 rounds: it ends with the best round's field.

    Also when that round was before the resume.
    """
    run = tmp_path / 'run'
    first = train(_config(tiny, run, steps=None, checkpoint_every=None, fit_patience=2,
                          fit_min_delta=1.0, max_steps=10_000, seed=2), encoder=tiny[2])
    per_round = load_checkpoint(first.stages[0].last_checkpoint).extra['round_steps']
    for path in first.stages[0].checkpoints[2:]:  # as if it had been stopped after round 2
        path.unlink()
    shutil.copy(first.stages[0].checkpoints[1], run / 'checkpoints' / runs.LAST_CHECKPOINT)
    resumed = train(_config(tiny, run, steps=None, checkpoint_every=None, fit_patience=2,
                            fit_min_delta=1.0, max_steps=10_000, resume=True, seed=2),
                    encoder=tiny[2]).stages[0]
    history = resumed.fit_history
    assert len(history) == 3 and resumed.steps == 3 * per_round
    assert np.argmax(history) < 2  # (seed 2: the best round is one before the resume)
    best = load_checkpoint(run / 'checkpoints' / runs.step_checkpoint_name(
        (int(np.argmax(history)) + 1) * per_round)).field_state
    final = load_checkpoint(resumed.last_checkpoint).field_state
    assert all(torch.equal(best[k], final[k]) for k in best)


def test_config_validation_and_round_trip(tiny):
    with pytest.raises(ValueError, match='stage'):
        TrainConfig(stage=3)
    with pytest.raises(ValueError, match='stage2_init'):
        TrainConfig(stage2_init='warm')
    assert category_phrase('small-blue-bowl') == 'small blue bowl'
    config = TrainConfig(data=tiny[0], steps=5)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == \
        TrainConfig(data=str(tiny[0]), steps=5)


def test_resume_after_a_kill_clears_temp_files_and_keeps_the_log_header(tiny, tmp_path):
    encoder = tiny[2]
    run = tmp_path / 'killed'
    train(_config(tiny, run, steps=8, checkpoint_every=4, log_every=2), encoder=encoder)
    folder = run / 'checkpoints'
    # What kill -9 leaves: a temp file of the checkpoint being written, and a log whose rows go
    # past the last checkpoint and end in half a row (or an empty log, killed before its
    # first flush; see below).
    orphan = folder / '.step_000010.safetensors.k2j4h1.tmp'
    orphan.write_bytes(b'\0' * 100)
    with open(folder / 'train_log.csv', 'a') as handle:
        handle.write('10,0.5,0.4,0.1,0.07,1.0\n12,0.5')
    resumed = train(_config(tiny, run, steps=12, checkpoint_every=4, log_every=2, resume=True),
                    encoder=encoder)
    assert resumed.stages[0].steps_run == 4
    assert not orphan.exists() and not list(folder.glob('.*.tmp'))
    with open(folder / 'train_log.csv', newline='') as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ['step', 'loss', 'bce', 'gtcl', 'fit', 'tau', 'wall_time_s']
    assert [int(r[0]) for r in rows[1:]] == [2, 4, 6, 8, 10, 12]
    # Killed before the log's first flush: an empty log gets its header back on resume.
    (folder / 'train_log.csv').write_text('')
    train(_config(tiny, run, steps=14, checkpoint_every=2, log_every=2, resume=True),
          encoder=encoder)
    with open(folder / 'train_log.csv', newline='') as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == 'step' and [int(r[0]) for r in rows[1:]] == [14]


def test_a_collapsed_round_restores_the_best_round_and_halves_the_rates(tiny, tmp_path):
    from refersplat_ros.core.render.compositing import ViewWeights
    from refersplat_ros.core.train.trainer import _Session, _Stage, COLLAPSE_DROP

    config = _config(tiny, tmp_path / 'run', steps=None)
    dataset = load_referring_dataset(config.data)
    scene = load_scene(dataset.scene_path)
    session = _Session(config, dataset, scene, tiny[2], torch.device('cpu'),
                       ViewWeights(scene, torch.device('cpu'), 1 << 30))
    stage = _Stage(session, 1, tmp_path / 'run' / 'checkpoints', None)
    rates = [g['lr'] for g in stage.optimizer.param_groups]
    stage._end_round(0.5)                       # the best round: remembered
    best = stage.field.features.detach().clone()
    with torch.no_grad():
        stage.field.features.add_(1.0)          # a step too large
    stage._end_round(0.49)                      # a plateau: rates halved, no restore
    assert not torch.equal(stage.field.features, best)
    assert [g['lr'] for g in stage.optimizer.param_groups] == [r / 2 for r in rates]
    stage._end_round(0.5 - COLLAPSE_DROP - 0.01)  # a collapse: back to the best round
    assert torch.equal(stage.field.features, best)
    assert [g['lr'] for g in stage.optimizer.param_groups] == [r / 2 for r in rates]
    assert stage.fit_history == [0.5, 0.49, 0.5 - COLLAPSE_DROP - 0.01]
