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
import json

import numpy as np
import pytest

from refersplat_ros.core.datasets.ref_synth import make_scene, preset_config
from refersplat_ros.core.inference.model import ReferringModel
from refersplat_ros.core.inference.queries import QueryStatus
from refersplat_ros.core.train.trainer import train, TrainConfig

pytestmark = pytest.mark.slow

#: Margin around an object's box (scene units): half a Gaussian's spacing on the tiny preset.
MARGIN = 0.01


@pytest.fixture(scope='module')
def trained_hard_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('hard_tiny')
    data = root / 'scene'
    make_scene(preset_config('hard-tiny', seed=0), data, overwrite=True, progress=False,
               contact_sheet=False)
    result = train(TrainConfig(data=data, out=root / 'run', max_steps=1500, progress=False))
    manifest = json.loads((data / 'manifest.json').read_text())
    return data, manifest, result


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
