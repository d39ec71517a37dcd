"""Training masks lifted onto the Gaussians: object labels of a generated scene."""
import numpy as np
import torch

from refersplat_ros.core.datasets.ref_synth.generator import make_scene, preset_config
from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset
from refersplat_ros.core.labels.objects import lift_objects, names_only, object_label_agreement
from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.scene.objects import NO_OBJECT


def test_lifted_labels_name_the_true_objects(tmp_path):
    data = tmp_path / 'scene'
    make_scene(preset_config('tiny', seed=3), data, progress=False, contact_sheet=False)
    dataset = load_referring_dataset(data)
    scene = load_scene(dataset.scene_path)
    objects = lift_objects(dataset, ViewWeights(scene, torch.device('cpu'), 1 << 30))
    assert objects.names == dataset.categories
    truth = dataset.object_ids().numpy()
    assert object_label_agreement(objects, truth, dataset.category_ids()) > 0.85
    for index, name in enumerate(objects.names):  # most of every object is labelled
        mine = truth == dataset.category_ids()[name]
        assert (objects.labels[mine] == index).mean() > 0.5, name
    assert (objects.labels[truth == 0] == NO_OBJECT).mean() > 0.95  # the table is no object
    assert all(objects.sentences) and not any(names_only(objects).sentences)
    assert objects.reference_view.name == dataset.views[0].camera.name or \
        objects.reference_view.name.endswith('00001.png')
    assert np.allclose(objects.up, (0, 0, 1), atol=0.1)
