"""Tests of the Ref-LERF evaluation (docs/METHOD.md#evaluation) on a tiny two-object scene."""
import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.evaluate.evaluator import (EvalConfig, evaluate_run, Evaluator,
                                                    protocol_pairs as list_test_pairs)
from refersplat_ros.core.evaluate.metrics import mask_iou
from refersplat_ros.core.render.compositing import compositing_weights
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoder, TextEncoderConfig
from refersplat_ros.core.train.trainer import train, TrainConfig
from helpers.tiny_referring import tiny_encoder_folder, write_point_cloud, write_two_object_scene


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('evaluation')
    data = write_two_object_scene(root / 'scene')
    encoder_config = TextEncoderConfig(model=str(tiny_encoder_folder(root / 'tiny-bert')))
    encoder = load_text_encoder(encoder_config, torch.device('cpu'))
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    return data, encoder_config, encoder, dataset, scene


@pytest.fixture(scope='module')
def run(tiny, tmp_path_factory):
    """Train a short run with 3 checkpoints (its quality does not matter here)."""
    data, encoder_config, encoder = tiny[:3]
    out = tmp_path_factory.mktemp('eval_run') / 'run'
    train(TrainConfig(data=data, out=out, steps=30, expressions_per_step=2, checkpoint_every=10,
                      text_encoder=encoder_config, device='cpu', num_threads=1,
                      progress=False), encoder=encoder)
    return out


def _oracle(dataset, object_ids, target_of):
    """Per-expression logits: +10 on the Gaussians of ``target_of(category)``, -10 elsewhere."""
    ids = dataset.category_ids()
    responses = {}
    for view in dataset.test_views:
        for annotation in view.annotations:
            target = target_of(annotation.category)
            chosen = (object_ids == ids[target]) if target else torch.zeros_like(object_ids,
                                                                                 dtype=torch.bool)
            responses[annotation.sentence] = torch.where(chosen, 10.0, -10.0)
    return responses


def test_test_pairs_and_subsets(tiny):
    dataset = tiny[3]
    pairs = list_test_pairs(dataset)
    assert [(p.frame, p.category, p.expression, p.subsets) for p in pairs] == [
        ('frame_00002', 'red-ball', 'the red ball', ('attribute',)),
        ('frame_00002', 'blue-box', 'the box on the right', ('spatial', 'relational')),
        ('frame_00005', 'red-ball', 'the red ball', ('attribute',)),
        ('frame_00005', 'blue-box', 'the box on the right', ('spatial', 'relational'))]
    ovs = list_test_pairs(dataset, ovs=True)
    assert [(p.expression, p.subsets) for p in ovs[:2]] == [('red ball', ('category',)),
                                                            ('blue box', ('category',))]


def test_train_and_seen_wording_splits(tiny):
    dataset = tiny[3]
    train_frames = [v.frame for v in dataset.train_views]
    pairs = list_test_pairs(dataset, split='train')
    assert [p.frame for p in pairs] == [f for f in train_frames for _ in range(4)]
    assert [(p.category, p.expression, p.subsets) for p in pairs[:4]] == [
        ('red-ball', 'the red ball', ('attribute',)),
        ('red-ball', 'the ball on the left', ('spatial', 'relational')),
        ('blue-box', 'the blue box', ('attribute',)),
        ('blue-box', 'the box on the right', ('spatial', 'relational'))]
    seen = list_test_pairs(dataset, split='test-seen-wording')
    # Test views, every training expression of each object annotated there.
    assert [(p.frame, p.expression) for p in seen] == [
        (frame, sentence) for frame in ('frame_00002', 'frame_00005')
        for sentence in ('the red ball', 'the ball on the left', 'the blue box',
                         'the box on the right')]
    with pytest.raises(ValueError, match='split'):
        list_test_pairs(dataset, split='validation')
    with pytest.raises(ValueError, match='open-vocabulary'):
        EvalConfig(run='run', ovs=True, split='train')


def test_train_split_scores_the_training_views(tiny):
    _, _, encoder, dataset, scene = tiny
    object_ids = dataset.object_ids()
    ids = dataset.category_ids()
    responses = {}
    for view in dataset.train_views:
        for annotation in view.annotations:
            chosen = object_ids == ids[annotation.category]
            responses[annotation.sentence] = torch.where(chosen, 10.0, -10.0)
    evaluator = Evaluator(dataset, scene, encoder, torch.device('cpu'), False, 'background',
                          'train')
    oracle = evaluator.evaluate_responses(responses)
    assert len(oracle.records) == 4 * len(dataset.train_views)
    assert {r.frame for r in oracle.records} == {v.frame for v in dataset.train_views}
    assert all(r.iou > 0.8 for r in oracle.records)
    # Swapping the objects' answers must score (near) zero on the same pairs.
    swapped = {s: -r for s, r in responses.items()}
    assert evaluator.evaluate_responses(swapped).miou < 0.2


def test_hand_made_predictions(tiny):
    data, _, encoder, dataset, scene = tiny
    object_ids = dataset.object_ids()
    evaluator = Evaluator(dataset, scene, encoder, torch.device('cpu'), False, 'background')
    oracle = evaluator.evaluate_responses(_oracle(dataset, object_ids, lambda c: c))
    assert len(oracle.records) == 4 and all(r.iou > 0.8 for r in oracle.records)
    assert oracle.miou == pytest.approx(np.mean([r.iou for r in oracle.records]))
    means = oracle.selection_means()
    # The published target: the right object, nothing else, and nearly all of it (the oracle
    # also lights near-transparent Gaussians, which the selection ignores).
    assert means['right_object'] == 1.0 and means['precision'] == 1.0
    assert means['recall'] > 0.9 and means['centroid_error'] < 0.02
    # The first record by hand: render, threshold, IoU.
    view = dataset.test_views[0]
    comp = compositing_weights(scene.means, scene.quats, scene.scales, scene.opacities,
                               view.camera)
    response = _oracle(dataset, object_ids, lambda c: c)['the red ball']
    logits = comp.render(response[:, None])[0]
    expected = mask_iou(((logits >= 0) & (comp.alpha > 0)).numpy(),
                        view.load_mask(view.annotations[0]))
    assert oracle.records[0].iou == pytest.approx(expected)
    # The literal rule adds the uncovered pixels (M = 0) to every prediction.
    assert int((comp.alpha == 0).sum()) > 0
    assert oracle.paper_summary.average < oracle.miou
    # Selecting the other object, or nothing, scores 0.
    swap = {'red-ball': 'blue-box', 'blue-box': 'red-ball'}
    swapped = evaluator.evaluate_responses(_oracle(dataset, object_ids, swap.get))
    assert swapped.miou < 0.05
    assert swapped.selection_means()['precision'] == 0.0
    assert swapped.selection_means()['right_object'] == 0.0
    nothing = evaluator.evaluate_responses(_oracle(dataset, object_ids, lambda c: None))
    assert nothing.miou == 0.0 and all(p == 0 for p, _ in nothing.pixels)
    assert math.isnan(nothing.selection_means()['precision'])
    assert nothing.selection_means()['recall'] == 0.0
    assert nothing.selection_means()['right_object'] == 0.0
    assert math.isnan(nothing.selection_means()['centroid_error'])
    # Subsets: spatial = the box expression only.
    assert oracle.subsets['spatial'].average == pytest.approx(
        np.mean([r.iou for r in oracle.records if r.category == 'blue-box']))


def test_empty_ground_truth_is_skipped(tiny):
    data, _, encoder, dataset, scene = tiny
    evaluator = Evaluator(dataset, scene, encoder, torch.device('cpu'), False, 'background')
    key = next(iter(evaluator.gt))
    evaluator.gt[key] = np.zeros_like(evaluator.gt[key])
    result = evaluator.evaluate_responses(_oracle(dataset, dataset.object_ids(), lambda c: c))
    assert sum(r.iou is None for r in result.records) == 1
    assert result.summary.num_skipped == 1
    assert sum(result.summary.num_pairs.values()) == 3


def test_evaluate_run_reports_last_and_best(tiny, run):
    result = evaluate_run(EvalConfig(run=run, device='cpu', progress=False), encoder=tiny[2])
    stage = result.final
    assert [c.step for c in stage.checkpoints] == [10, 20, 30]
    assert stage.last.step == 30
    assert stage.best.miou == max(c.miou for c in stage.checkpoints)
    summary = json.loads((run / 'eval' / 'summary.json').read_text())
    assert summary['mode'] == 'referring'
    assert summary['stages'][0]['last']['step'] == 30
    assert summary['stages'][0]['best']['step'] == stage.best.step
    with open(run / 'eval' / 'stage1' / 'per_expression.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 4
    assert {r['expression'] for r in rows} == {'the red ball', 'the box on the right'}
    overlays = sorted((run / 'eval' / 'stage1' / 'overlays_last').glob('*.png'))
    assert len(overlays) == 4
    with Image.open(overlays[0]) as image:
        assert image.size == (48, 36) and image.mode == 'RGB'
    with open(run / 'eval' / 'stage1' / 'overlays_best' / 'index.csv') as handle:
        assert len(list(csv.DictReader(handle))) == 4


def test_run_evaluation_of_the_train_split(tiny, run):
    result = evaluate_run(EvalConfig(run=run, device='cpu', overlays=False, progress=False,
                                     split='train'), encoder=tiny[2])
    assert result.split == 'train' and result.out_dir == run / 'eval_train'
    assert {r.frame for r in result.final.last.records} == {
        v.frame for v in tiny[3].train_views}
    summary = json.loads((run / 'eval_train' / 'summary.json').read_text())
    assert summary['split'] == 'train'


def test_graph_grounding_scores_what_the_node_publishes(tiny, run, monkeypatch):
    from refersplat_ros.core.inference.model import ReferringModel
    calls = []
    query = ReferringModel.query

    def counted(self, text, *args, **kwargs):
        calls.append(text)
        return query(self, text, *args, **kwargs)
    monkeypatch.setattr(ReferringModel, 'query', counted)
    config = EvalConfig(run=run, device='cpu', overlays=False, progress=False,
                        out=run / 'eval_graph', grounding='graph')
    graph = evaluate_run(config, encoder=tiny[2]).final
    # the graph's answers do not depend on the field weights: each sentence asked once for
    # the three checkpoints, and every checkpoint scores the same
    assert sorted(calls) == ['the box on the right', 'the red ball']
    assert len({c.miou for c in graph.checkpoints}) == 1
    assert graph.last.selection_means()['right_object'] == 1.0
    assert graph.last.miou > 0.5
    field = evaluate_run(EvalConfig(run=run, device='cpu', overlays=False, progress=False,
                                    out=run / 'eval_field', grounding='field'),
                         encoder=tiny[2]).final
    assert not calls[2:]  # the field is scored from its own response
    assert [c.step for c in field.checkpoints] == [10, 20, 30]


def test_open_vocabulary_mode(tiny, run):
    result = evaluate_run(EvalConfig(run=run, device='cpu', ovs=True, overlays=False,
                                     progress=False), encoder=tiny[2])
    assert result.mode == 'ovs'
    assert {r.expression for r in result.final.last.records} == {'red ball', 'blue box'}
    assert (run / 'eval_ovs' / 'summary.json').is_file()


def test_checkpoint_of_another_scene_is_rejected(tiny, run, tmp_path):
    data = tiny[0]
    other = tmp_path / 'other'
    shutil.copytree(data, other)
    write_point_cloud(other / 'point_cloud.ply', jitter=0.01)
    with pytest.raises(CheckpointError, match='centres differ'):
        evaluate_run(EvalConfig(run=run, data=other, device='cpu', progress=False),
                     encoder=tiny[2])
    other_encoder = TextEncoder.from_components(tiny[2].tokenizer, tiny[2].model, 'other-bert')
    with pytest.raises(CheckpointError, match='text_encoder_id'):
        evaluate_run(EvalConfig(run=run, device='cpu', progress=False), encoder=other_encoder)
    with pytest.raises(CheckpointError, match='no step_'):
        evaluate_run(EvalConfig(run=tmp_path, device='cpu', progress=False), encoder=tiny[2])
