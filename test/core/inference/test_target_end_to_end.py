"""End to end on a tiny hard scene: the published 3D target is the object each sentence names.

A ``hard-tiny`` Ref-Synth scene (>= 12 objects of very different sizes, a long shelf, stacked
objects, identical twins, sentences naming 2-3 other objects) is trained with the default
recipe (capped at 1500 steps), and every training sentence is asked through
``ReferringModel.query``, the node's algorithm: the published instance must be the named object
(most of its Gaussians), and its position (the target box's centre) must lie inside that
object's bounding box for at least 90 % of the sentences. The gap to 100 %: two identical objects
side by side whose responses both pass the threshold can end in one DBSCAN instance, centred
between them (docs/RESULTS.md#3d-target). With the selection of the paper (threshold, DBSCAN,
ranking by probability mass) large objects win: that is what the visibility rule fixes, and
this test would catch its breaking.
"""
import numpy as np
import torch
import pytest

from refersplat_ros.core.inference.model import ReferringModel
from refersplat_ros.core.inference.queries import QueryStatus

pytestmark = pytest.mark.slow

#: Margin around an object's box (scene units): half a Gaussian's spacing on the tiny preset.
MARGIN = 0.01


@pytest.fixture(scope='module')
def trained_hard_tiny(hard_tiny_run):
    """Return the run trained once per session in the background (helpers/trained_runs.py)."""
    return hard_tiny_run


def test_every_training_sentence_publishes_its_object(trained_hard_tiny):
    data, manifest, result = trained_hard_tiny
    ids = np.load(data / manifest['object_ids'])
    model = ReferringModel.load(data / manifest['point_cloud'], result.last_checkpoint,
                                device='cpu')
    assert model.visibility is not None  # training saved it with the checkpoint
    means = model.scene.means.numpy()
    boxes = {o['category']: (means[ids == o['id']].min(axis=0) - MARGIN,
                             means[ids == o['id']].max(axis=0) + MARGIN)
             for o in manifest['objects']}
    wrong, outside = [], []
    sentences = [(e['sentence'], e['category']) for e in manifest['expressions']
                 if e['split'] == 'train']
    assert len(sentences) >= 40
    names = {o['id']: o['category'] for o in manifest['objects']}
    for sentence, category in sentences:
        outcome = model.query(sentence)
        if outcome.status != QueryStatus.OK:
            wrong.append((sentence, category, outcome.status.name))
            continue
        best = outcome.selection.best
        majority = names.get(int(np.bincount(ids[best.indices]).argmax()), 'table')
        if majority != category:
            wrong.append((sentence, category, majority))
        low, high = boxes[category]
        if not np.all((best.center >= low) & (best.center <= high)):
            outside.append((sentence, category))
    assert wrong == []
    assert len(outside) <= 0.1 * len(sentences), outside


def test_graph_answers_equal_the_per_query_selection(trained_hard_tiny):
    """The per-object summaries the model keeps give what selecting afresh gives."""
    from refersplat_ros.core.inference.selection import select_object, SelectionConfig
    data, manifest, result = trained_hard_tiny
    model = ReferringModel.load(data / manifest['point_cloud'], result.last_checkpoint,
                                device='cpu')
    assert model.uses_graph and model._cache is None  # the field's tables are never built
    objects = model.grounder.graph.objects
    labels = [o.label for o in objects]
    sentences = [e['sentence'] for e in manifest['expressions'] if e['split'] == 'train'][:8]
    for config in (SelectionConfig(), SelectionConfig(min_opacity=0.3, metric_scale=2.0)):
        for sentence in sentences + sentences:        # the second round reads the summaries
            outcome = model.query(sentence, config)
            if outcome.status != QueryStatus.OK:
                continue
            index = labels.index(outcome.candidates[0].label)
            score = outcome.selection.best.score
            fresh = select_object(objects[index].members, score, model._means,
                                  model._opacities, model._colors, config, model.visibility)
            np.testing.assert_array_equal(outcome.selection.indices, fresh.indices)
            np.testing.assert_array_equal(outcome.selection.points, fresh.points)
            np.testing.assert_array_equal(outcome.selection.scores, fresh.scores)
            for name in ('centroid', 'center', 'rotation', 'extent'):
                np.testing.assert_array_equal(getattr(outcome.selection.best, name),
                                              getattr(fresh.best, name))
            assert outcome.selection.best.mass == pytest.approx(fresh.best.mass, rel=1e-5)
            # the candidate's box is the published one (ReferResult.pose = candidates[0].pose)
            np.testing.assert_array_equal(outcome.candidates[0].instance.center,
                                          fresh.best.center)
    assert len(model._summaries) <= 2 * len(objects)


def test_object_field_is_the_field_on_a_sample_of_each_object(trained_hard_tiny):
    """The soft grounding's field evidence: the full field's mean over each object's sample."""
    data, manifest, result = trained_hard_tiny
    model = ReferringModel.load(data / manifest['point_cloud'], result.last_checkpoint,
                                device='cpu')
    labels = [o.label for o in model.grounder.graph.objects]
    train = [e for e in manifest['expressions'] if e['split'] == 'train']
    own_best, same_best, gaps = 0, 0, []
    for expression in train:
        words = model.encoder.encode(expression['sentence'])
        per_object = model.object_field(words)
        _, rows, owners, count = model._object_rows
        full = torch.sigmoid(model.response(expression['sentence'])).numpy()
        expected = np.bincount(owners, full[rows], minlength=count) / np.bincount(owners)
        assert per_object.shape == (count,) and ((0 <= per_object) & (per_object <= 1)).all()
        gaps.append(np.abs(per_object - expected).mean())
        same_best += int(np.argmax(per_object)) == int(np.argmax(expected))
        own_best += labels[int(np.argmax(per_object))] == expression['category']
    # text positions pooled over the objects' samples, not all N: close to the full field
    assert same_best >= 0.9 * len(train) and np.mean(gaps) < 0.05, (same_best, np.mean(gaps))
    assert own_best >= 0.7 * len(train)  # the field knows its training sentences' objects


@pytest.mark.parametrize('table_dtype', ['float16'])
def test_16_bit_field_tables_select_what_float32_selects(trained_hard_tiny, table_dtype):
    """The field path with a 16-bit inference table: same instance, same Gaussians (IoU)."""
    from refersplat_ros.core.language.ground import GroundingConfig
    data, manifest, result = trained_hard_tiny
    field_only = GroundingConfig(grounding='field')
    models = {dtype: ReferringModel.load(data / manifest['point_cloud'], result.last_checkpoint,
                                         device='cpu', grounding=field_only,
                                         table_dtype=dtype)
              for dtype in ('float32', table_dtype)}
    assert models[table_dtype].field_tables().table.dtype.itemsize == 2
    ids = np.load(data / manifest['object_ids'])
    sentences = [e['sentence'] for e in manifest['expressions'] if e['split'] == 'train']
    compared = shared = union = 0
    for sentence in sentences:
        reference, reduced = (models[d].query(sentence) for d in ('float32', table_dtype))
        assert reduced.status == reference.status, sentence
        if reference.status != QueryStatus.OK:
            continue
        a, b = set(reference.selection.indices), set(reduced.selection.indices)
        # IoU >= 0.99, or one Gaussian at the threshold where a tiny scene's object is < 100
        assert len(a ^ b) <= max(1, 0.01 * len(a | b)), sentence
        shared += len(a & b)
        union += len(a | b)
        majority = [int(np.bincount(ids[s.best.indices] + 1).argmax())
                    for s in (reference.selection, reduced.selection)]
        assert majority[0] == majority[1], sentence
        compared += 1
    assert compared >= 0.9 * len(sentences)
    assert shared / union >= 0.99  # over every selected Gaussian of the sentences
