"""The reference view comes from the training sentences, not from the capture's first frame."""
import numpy as np

from helpers.object_graphs import BACK, FRONT, make_graph
from refersplat_ros.core.language.graph import ObjectGraph
from refersplat_ros.core.language.ground import Grounder
from refersplat_ros.core.language.viewpoint import annotators_view
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.objects import SceneObjects

# a capture that starts 90 degrees to the side of where the annotators stood (front, at -y)
SIDE = Camera.look_at((2.0, 0.0, 1.2), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), width=64, height=48)
SMALL = (0.06, 0.06, 0.08)
ROW = [('blue-cup', 'blue', (-0.4, 0.0, 0.0), SMALL),
       ('white-cup', 'white', (0.0, 0.0, 0.0), SMALL),
       ('green-cup', 'green', (0.4, 0.0, 0.0), SMALL),
       ('yellow-bowl', 'yellow', (0.0, 0.4, 0.0), (0.14, 0.14, 0.05))]
SENTENCES = {'blue-cup': ['the cup to the left of the white cup', 'the leftmost cup'],
             'green-cup': ['the cup on the right of the white one'],
             'white-cup': ['the cup in front of the bowl'],
             'yellow-bowl': ['the bowl behind the cups']}


def _chosen(reference):
    _, objects, means, colours = make_graph(ROW, SENTENCES, reference)
    return annotators_view(objects, [SIDE, FRONT, BACK], means, colours, np.ones(len(means))), \
        means, colours


def test_the_view_under_which_the_sentences_hold_is_chosen():
    objects, means, colours = _chosen(SIDE)
    assert np.allclose(objects.reference_view.world_to_camera, FRONT.world_to_camera)
    assert '5 of 5' in objects.reference_source and 'from the first frame' in \
        objects.reference_source
    # queries without a camera now read sides as the annotators did, and say which view
    graph = ObjectGraph.build(objects, means, colours, np.ones(len(means)))
    result = Grounder(graph, lambda texts: np.zeros((len(texts), 1), np.float32)).ground(
        'the cup on the left')
    assert graph.objects[result.chosen].name == 'blue-cup'
    assert 'sided training sentences hold' in result.interpretation


def test_a_first_frame_that_agrees_keeps_its_place():
    objects, _, _ = _chosen(FRONT)
    assert np.allclose(objects.reference_view.world_to_camera, FRONT.world_to_camera)
    assert objects.reference_source.startswith('first frame; 5 of 5')


def test_saved_and_read_with_the_objects():
    objects, _, _ = _chosen(SIDE)
    again = SceneObjects.from_meta(objects.to_meta(), objects.labels)
    assert again.reference_source == objects.reference_source
    # metadata written before the field existed reads as the first frame
    meta = objects.to_meta()
    del meta['reference_source']
    assert SceneObjects.from_meta(meta, objects.labels).reference_source == 'first frame'
