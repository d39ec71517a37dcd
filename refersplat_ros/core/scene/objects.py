"""The annotated objects of a scene: which Gaussians belong to which object, and its name.

A referring dataset names its objects (Ref-LERF ``category``) and describes each with training
sentences; training lifts each object's 2D masks onto the Gaussians (``labels/objects.py``) and
saves the result with the checkpoint. The language layer (``core/language``) builds its object
graph from it: every object with its Gaussians, name and known sentences.

``reference_view`` is the camera that defines left / right / front / behind when a query gives no
camera of its own (docs/LANGUAGE.md#viewpoint): the dataset's first view in frame order.
``up`` is the scene's up direction: the normal of the support plane under the objects
(``scene/support.py``), else the mean image-up of the training cameras.
"""
from dataclasses import dataclass
import math
from typing import List, Optional, Sequence

import numpy as np
import torch

from refersplat_ros.core.scene.cameras import Camera

#: Label of a Gaussian that belongs to no annotated object.
NO_OBJECT = -1

# Limits of the objects a checkpoint may record (:meth:`SceneObjects.from_meta`); beyond them
# loading fails, naming the entry (docs/ROBUSTNESS.md#checkpoint-metadata).
#: Most annotated objects.
MAX_OBJECTS = 4096
#: Most training sentences of one object.
MAX_SENTENCES_PER_OBJECT = 1024
#: Longest object name (characters).
MAX_NAME_CHARS = 256
#: Longest training sentence (characters).
MAX_SENTENCE_CHARS = 2048
#: Largest reference-view width or height (pixels).
MAX_VIEW_SIDE = 16384


def camera_to_dict(camera: Camera) -> dict:
    """JSON form of a camera (intrinsics, world-to-camera rows, name)."""
    return {'width': camera.width, 'height': camera.height, 'fx': camera.fx, 'fy': camera.fy,
            'cx': camera.cx, 'cy': camera.cy, 'name': camera.name,
            'world_to_camera': [[float(v) for v in row] for row in camera.world_to_camera]}


def camera_from_dict(data: dict) -> Camera:
    """Inverse of :func:`camera_to_dict`; raises ValueError on a malformed or non-finite camera.

    Width and height must be integers in 1..``MAX_VIEW_SIDE``, the focal lengths finite and
    positive, the principal point finite, the name a string of at most ``MAX_NAME_CHARS``.
    """
    matrix = np.asarray(data['world_to_camera'], dtype=np.float64)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError('reference view: world_to_camera must be a finite 4x4 matrix')
    size = [data[k] for k in ('width', 'height')]
    for key, value in zip(('width', 'height'), size):
        if isinstance(value, bool) or not isinstance(value, int) or \
                not 0 < value <= MAX_VIEW_SIDE:
            raise ValueError(f'reference view: {key} is {value!r}, not an integer in '
                             f'1..{MAX_VIEW_SIDE}')
    values = []
    for key in ('fx', 'fy', 'cx', 'cy'):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or (key in ('fx', 'fy') and value <= 0):
            raise ValueError(f'reference view: {key} is {value!r}, not a finite '
                             f"{'positive ' if key in ('fx', 'fy') else ''}number")
        values.append(float(value))
    name = data.get('name', '')
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise ValueError(f'reference view: name must be a string of at most {MAX_NAME_CHARS} '
                         'characters')
    return Camera(*size, *values, torch.as_tensor(matrix, dtype=torch.float32), name)


def camera_up(camera: Camera) -> np.ndarray:  # [3]
    """World direction of a camera's image-up (-y in the OpenCV convention)."""
    return -camera.world_to_camera[1, :3].double().numpy()


def mean_up(cameras: Sequence[Camera]) -> np.ndarray:  # [3] unit
    """Return the unit mean image-up of ``cameras`` (the first one's when they cancel out)."""
    ups = np.stack([camera_up(c) for c in cameras])
    mean = ups.mean(axis=0)
    if np.linalg.norm(mean) < 0.3:  # cameras rolled every way: no consensus
        mean = ups[0]
    return mean / np.linalg.norm(mean)


@dataclass
class SceneObjects:
    """Per-Gaussian object labels with each object's name and training sentences.

    Attributes:
        labels: Object index of every Gaussian, ``NO_OBJECT`` for none. [N] int32
        names: The dataset's name (category) of each object, e.g. ``'red-mug-2'`` or ``'kettle'``.
        sentences: The training sentences of each object (may be empty for names-only data).
        reference_view: The view for left / right / front / behind when a query gives none.
        up: Unit up direction of the scene. [3]
        reference_source: How the reference view was chosen (said with every answer).
    """

    labels: np.ndarray
    names: List[str]
    sentences: List[List[str]]
    reference_view: Optional[Camera]
    up: np.ndarray
    reference_source: str = 'first frame'

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        self.up = np.asarray(self.up, dtype=np.float64).reshape(-1)
        self.validate()

    @property
    def num_objects(self) -> int:
        return len(self.names)

    def members(self, index: int) -> np.ndarray:  # [P] int64
        """Return the indices of the Gaussians of object ``index``."""
        return np.flatnonzero(self.labels == index)

    def validate(self, num_gaussians: Optional[int] = None) -> None:
        """Raise ValueError when the parts disagree (sizes, label range, up vector)."""
        if len(self.sentences) != len(self.names):
            raise ValueError(f'{len(self.names)} object names but {len(self.sentences)} '
                             'sentence lists')
        if num_gaussians is not None and self.labels.shape[0] != num_gaussians:
            raise ValueError(f'object labels have {self.labels.shape[0]} entries, the scene '
                             f'{num_gaussians} Gaussians')
        if self.labels.size and (self.labels.min() < NO_OBJECT
                                 or self.labels.max() >= len(self.names)):
            raise ValueError(f'object labels outside [-1, {len(self.names) - 1}]')
        if self.up.shape != (3,) or not np.isfinite(self.up).all() or np.linalg.norm(
                self.up) < 1e-6:
            raise ValueError('up must be a finite non-zero 3-vector')
        if not isinstance(self.reference_source, str) or len(self.reference_source) > 200:
            raise ValueError('reference_source must be a string of at most 200 characters')

    def to_meta(self) -> dict:
        """JSON part (everything but ``labels``)."""
        return {'names': list(self.names), 'sentences': [list(s) for s in self.sentences],
                'reference_view': (None if self.reference_view is None
                                   else camera_to_dict(self.reference_view)),
                'up': [float(v) for v in self.up], 'reference_source': self.reference_source}

    @classmethod
    def from_meta(cls, meta: dict, labels) -> 'SceneObjects':
        """Invert :meth:`to_meta` with the labels tensor; ValueError/KeyError when malformed.

        Counts and lengths are bounded (``MAX_OBJECTS``, ``MAX_SENTENCES_PER_OBJECT``,
        ``MAX_NAME_CHARS``, ``MAX_SENTENCE_CHARS``); the error names the entry beyond them.
        """
        names = _strings(meta['names'], 'objects.names', MAX_OBJECTS, MAX_NAME_CHARS)
        groups = meta['sentences']
        if not isinstance(groups, list) or len(groups) > MAX_OBJECTS:
            raise ValueError(f'objects.sentences must be a list of at most {MAX_OBJECTS} lists')
        sentences = [_strings(group, f'objects.sentences[{k}]', MAX_SENTENCES_PER_OBJECT,
                              MAX_SENTENCE_CHARS) for k, group in enumerate(groups)]
        view = meta.get('reference_view')
        return cls(np.asarray(labels), names, sentences,
                   None if view is None else camera_from_dict(view), meta['up'],
                   str(meta.get('reference_source', 'first frame')))


def _strings(values, what: str, most: int, chars: int) -> List[str]:
    """Return ``values`` if it is a list of at most ``most`` strings of at most ``chars``."""
    if not isinstance(values, list):
        raise ValueError(f'{what} is a {type(values).__name__}, not a list')
    if len(values) > most:
        raise ValueError(f'{what} has {len(values)} entries (at most {most})')
    for k, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f'{what}[{k}] is a {type(value).__name__}, not a string')
        if len(value) > chars:
            raise ValueError(f'{what}[{k}] has {len(value)} characters (at most {chars})')
    return list(values)
