"""The annotators' viewpoint: the view under which the training sentences' sides hold best.

Left / right / front / behind need a viewpoint when a query gives no camera. The first frame of a
capture is often not where the people who described the scene stood (an independent counter was
captured starting 45 degrees to the side), but their sentences say where they stood: each training
sentence with a side ("the cup left of the bowl", "the second can from the right") is grounded
under every training camera, and the camera under which the most of them name their own object
becomes the reference view. The first frame keeps its place on a tie, so a capture that starts
where the annotators stood is unchanged. docs/LANGUAGE.md#viewpoint.
"""
from dataclasses import replace
import logging
from typing import Optional, Sequence

import numpy as np

from refersplat_ros.core.language.graph import ObjectGraph
from refersplat_ros.core.language.ground import Grounder, GroundingConfig, OK
from refersplat_ros.core.language.parse import parse_query, ParsedQuery
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.objects import SceneObjects

logger = logging.getLogger(__name__)

#: Relations whose truth depends on the viewpoint.
SIDED = frozenset({'left_of', 'right_of', 'in_front_of', 'behind'})


def sided(parsed: ParsedQuery) -> bool:
    """Tell whether a reading's truth depends on the viewpoint (a side or a sided relation)."""
    return parsed.side is not None or any(r.op in SIDED for r in parsed.relations)


def _no_vectors(texts):
    """Sentence vectors that match nothing: the program alone decides (no known sentences)."""
    return np.zeros((len(texts), 1), np.float32)


def annotators_view(objects: SceneObjects, cameras: Sequence[Camera], means: np.ndarray,
                    colours: np.ndarray, opacities: np.ndarray) -> SceneObjects:
    """Return ``objects`` with the reference view chosen by its training sentences.

    Args:
        objects: The lifted objects (their reference view: the first frame).
        cameras: Candidate views (the training cameras).
        means, colours, opacities: The scene's Gaussians ([N, 3], [N, 3], [N]).
    """
    if not cameras or not objects.num_objects:
        return objects
    graph = ObjectGraph.build(objects, means, colours, opacities)
    grounder = Grounder(graph, _no_vectors, GroundingConfig())
    claims = [(text, position) for position, obj in enumerate(graph.objects)
              for text in obj.sentences if sided(parse_query(text))]
    if not claims:
        return objects
    held = [sum(_holds(grounder, text, position, camera) for text, position in claims)
            for camera in cameras]
    first = _index_of(objects.reference_view, cameras)
    best = max(held)
    if first is not None and held[first] == best:
        source = f'first frame; {best} of {len(claims)} sided training sentences hold'
        return replace(objects, reference_source=source)
    k = held.index(best)
    name = cameras[k].name or f'training view {k}'
    was = '' if first is None else f', {held[first]} from the first frame'
    source = f'{name}: {best} of {len(claims)} sided training sentences hold{was}'
    logger.info('reference view %s', source)
    return replace(objects, reference_view=cameras[k], reference_source=source)


def _holds(grounder: Grounder, text: str, position: int, camera: Camera) -> bool:
    result = grounder.ground(text, camera)
    return result.status == OK and result.chosen == position


def _index_of(camera: Optional[Camera], cameras: Sequence[Camera]) -> Optional[int]:
    if camera is None:
        return None
    target = camera.world_to_camera.double()
    for k, other in enumerate(cameras):
        if other.world_to_camera.shape == target.shape and bool(
                (other.world_to_camera.double() - target).abs().max() < 1e-9):
            return k
    return None
