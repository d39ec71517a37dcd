"""Test helper: hand-built object graphs (objects as point blobs at known places)."""
from typing import Dict, List, Optional, Sequence, Tuple
import zlib

import numpy as np

from refersplat_ros.core.language.graph import ObjectGraph
from refersplat_ros.core.language.ground import Grounder, GroundingConfig
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.objects import SceneObjects

RGB = {'red': (0.85, 0.1, 0.1), 'blue': (0.1, 0.3, 0.9), 'green': (0.15, 0.65, 0.2),
       'white': (0.95, 0.95, 0.95), 'yellow': (0.95, 0.85, 0.1), 'black': (0.08, 0.08, 0.08),
       'orange': (0.95, 0.5, 0.05), 'brown': (0.45, 0.28, 0.12),
       'pink': (0.95, 0.55, 0.72), 'purple': (0.5, 0.2, 0.7), 'cyan': (0.1, 0.72, 0.78)}
FRONT = Camera.look_at((0.0, -2.0, 1.2), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), width=64, height=48)
BACK = Camera.look_at((0.0, 2.0, 1.2), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), width=64, height=48)


def blob(rng, centre, size, count=200) -> np.ndarray:
    """Points filling a box of ``size`` (x, y, z) standing at ``centre`` (x, y, base z)."""
    size = np.asarray(size, np.float64)
    points = rng.uniform(-0.5, 0.5, (count, 3)) * size
    points[:, 2] += 0.5 * size[2]
    return points + np.asarray(centre, np.float64)


Vec = Tuple[float, float, float]


def make_graph(spec: Sequence[Tuple[str, str, Vec, Vec]],
               sentences: Optional[Dict[str, List[str]]] = None,
               reference: Optional[Camera] = FRONT, seed: int = 0):
    """Objects (name, colour, (x, y, base z), (size x, y, z)) -> (graph, means, colours)."""
    rng = np.random.default_rng(seed)
    means, colours, labels = [], [], []
    for k, (name, colour, centre, size) in enumerate(spec):
        points = blob(rng, centre, size)
        means.append(points)
        colours.append(np.tile(RGB[colour], (len(points), 1)))
        labels.append(np.full(len(points), k, np.int32))
    means, colours = np.concatenate(means), np.concatenate(colours)
    names = [s[0] for s in spec]
    sentences = sentences or {}
    objects = SceneObjects(np.concatenate(labels), names, [sentences.get(n, []) for n in names],
                           reference, (0.0, 0.0, 1.0))
    graph = ObjectGraph.build(objects, means, colours, np.ones(len(means)))
    return graph, objects, means, colours


class HashEmbed:
    """Deterministic bag-of-words sentence vectors (a stand-in encoder without model files)."""

    def __init__(self, dim: int = 256):
        self.dim = dim

    def __call__(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in str(text).lower().split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out


def grounder(spec, sentences=None, reference=FRONT, config: Optional[GroundingConfig] = None):
    graph, *_ = make_graph(spec, sentences, reference)
    return Grounder(graph, HashEmbed(), config)


def answer(g: Grounder, text: str, camera: Optional[Camera] = None):
    """(status, chosen object name or None, grounding)."""
    result = g.ground(text, camera)
    name = g.graph.objects[result.chosen].name if result.chosen is not None else None
    return result.status, name, result
