"""Edits of a captured scene: the objects a robot moved or took away (docs/ROBOT.md#scene-edits).

A capture is frozen; the world it shows is not. An edit states where an annotated object is now,
relative to where the capture saw it:

- **moved**: a rigid transform of the object's Gaussians (means and rotations), in scene units
  of the scene frame. Several moves compose into one total transform from the captured place;
- **removed**: the object is gone (picked up); it keeps its last transform, so a query can still
  say what was removed and where it last stood.

Edits are a pure function of the capture: applying the same ``SceneEdits`` to the same capture
gives the same world, whatever happened before (a restart, a ``load_scene``). They are kept in a
small JSON file beside the checkpoint (``edits_path``), written atomically, read back with every
entry checked::

    {"format": "refersplat-edits", "version": 1,
     "objects": {"red-mug": {"translation": [0.1, 0.0, 0.0],
                             "rotation_xyzw": [0.0, 0.0, 0.0, 1.0], "removed": false}}}
"""
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
from typing import Dict, Iterable, Optional

import numpy as np

from refersplat_ros.core.errors import ReferSplatError
from refersplat_ros.core.files import atomic_write, read_regular_file
from refersplat_ros.core.scene.frames import (FrameError, RigidTransform,
                                              rotation_to_quaternion_xyzw)

EDITS_FORMAT = 'refersplat-edits'
EDITS_VERSION = 1
#: Suffix of the edits file that sits beside a checkpoint (``last.safetensors`` ->
#: ``last.edits.json``).
EDITS_SUFFIX = '.edits.json'
#: An edits file is small: one entry per object. Larger is refused before it is parsed.
MAX_EDITS_BYTES = 1 << 20
#: Largest translation of an edit, in scene units (a move of over a kilometre is a unit error).
MAX_TRANSLATION = 1000.0


class EditError(ReferSplatError, ValueError):
    """An edit of the scene cannot be made (unknown object, bad transform, corrupt file)."""


def edits_path(checkpoint) -> Path:
    """Return the edits file beside a checkpoint (``last.safetensors`` -> ``last.edits.json``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + EDITS_SUFFIX)


@dataclass(frozen=True)
class ObjectEdit:
    """Where one object is relative to its captured place, and whether it is still there."""

    transform: RigidTransform = field(default_factory=RigidTransform.identity)
    removed: bool = False

    @property
    def moved(self) -> bool:
        return not self.transform.is_identity

    def same_place(self, other: 'ObjectEdit') -> bool:
        """Tell whether ``other`` puts the object at the same place, present or not alike."""
        return (self.removed == other.removed
                and np.array_equal(self.transform.translation, other.transform.translation)
                and np.array_equal(self.transform.quaternion_xyzw,
                                   other.transform.quaternion_xyzw))

    def apply_points(self, points: np.ndarray) -> np.ndarray:  # [P, 3] -> [P, 3] float32
        """Map captured positions (scene units) to the object's present place."""
        return self.transform.apply_points(np.asarray(points, np.float32))

    def apply_quats_wxyz(self, quats: np.ndarray) -> np.ndarray:  # [P, 4] -> [P, 4]
        """Rotate captured Gaussian rotations (w, x, y, z; 3DGS's order) with the object."""
        return rotate_quats_wxyz(self.transform.quaternion_xyzw, quats)


def rotate_quats_wxyz(rotation_xyzw, quats: np.ndarray) -> np.ndarray:  # [P, 4] -> [P, 4]
    """Return ``r * q`` for each (w, x, y, z) quaternion ``q``; ``r`` is (x, y, z, w)."""
    x1, y1, z1, w1 = (float(v) for v in rotation_xyzw)
    q = np.asarray(quats)
    w2, x2, y2, z2 = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    out = np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                    w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                    w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                    w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=1)
    return out.astype(q.dtype if q.dtype in (np.float32, np.float64) else np.float32)


def compose(outer: RigidTransform, inner: RigidTransform) -> RigidTransform:
    """Return ``outer`` after ``inner``: ``p -> outer(inner(p))``."""
    rotation = outer.rotation @ inner.rotation
    return RigidTransform(outer.rotation @ inner.translation + outer.translation,
                          rotation_to_quaternion_xyzw(rotation))


def checked_transform(translation, quaternion_xyzw, what: str = 'edit',
                      bounded: bool = True) -> RigidTransform:
    """Return a rigid transform from user values; EditError when not finite, unit or bounded.

    ``bounded``: its translation at most ``MAX_TRANSLATION`` (values in scene units; a request
    in metres is bounded once converted, by :meth:`SceneEdits.move`).
    """
    try:
        transform = RigidTransform.create(translation, quaternion_xyzw, what)
    except FrameError as exc:
        raise EditError(str(exc)) from None
    if bounded and float(np.linalg.norm(transform.translation)) > MAX_TRANSLATION:
        raise EditError(f'{what} translation {transform.translation.tolist()} is over '
                        f'{MAX_TRANSLATION:g} scene units: not a move on a table')
    return transform


@dataclass(frozen=True)
class SceneEdits:
    """The edits of one scene, by object label (only edited objects have an entry)."""

    objects: Dict[str, ObjectEdit] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.objects)

    def get(self, label: str) -> ObjectEdit:
        """Return the object's edit (the identity, present, for an unedited object)."""
        return self.objects.get(label, ObjectEdit())

    @property
    def removed(self) -> list:
        return sorted(k for k, e in self.objects.items() if e.removed)

    @property
    def moved(self) -> list:
        return sorted(k for k, e in self.objects.items() if e.moved and not e.removed)

    def _with(self, label: str, edit: Optional[ObjectEdit]) -> 'SceneEdits':
        objects = dict(self.objects)
        if edit is None or (not edit.removed and not edit.moved):
            objects.pop(label, None)
        else:
            objects[label] = edit
        return SceneEdits(objects)

    def move(self, label: str, transform: RigidTransform) -> 'SceneEdits':
        """Move the object by ``transform`` (scene units) from where it is now; it is present."""
        total = compose(transform, self.get(label).transform)
        if not np.isfinite(total.translation).all() or float(
                np.linalg.norm(total.translation)) > MAX_TRANSLATION:
            raise EditError(f"{label}'s transform from its captured place would translate by "
                            f'{np.linalg.norm(total.translation):.4g} scene units (at most '
                            f'{MAX_TRANSLATION:g}: not a move on a table)')
        return self._with(label, ObjectEdit(total, False))

    def remove(self, label: str) -> 'SceneEdits':
        """Mark the object gone (it keeps its last place)."""
        return self._with(label, ObjectEdit(self.get(label).transform, True))

    def restore(self, label: str) -> 'SceneEdits':
        """Put the object back where the capture saw it (its edits dropped)."""
        return self._with(label, None)

    def to_json(self) -> dict:
        return {'format': EDITS_FORMAT, 'version': EDITS_VERSION, 'objects': {
            label: {'translation': [float(v) for v in e.transform.translation],
                    'rotation_xyzw': [float(v) for v in e.transform.quaternion_xyzw],
                    'removed': bool(e.removed)}
            for label, e in sorted(self.objects.items())}}

    @classmethod
    def from_json(cls, data, labels: Iterable[str], what: str = 'edits') -> 'SceneEdits':
        """Read :meth:`to_json`'s form; EditError naming the first bad entry."""
        known = set(labels)
        if not isinstance(data, dict) or data.get('format') != EDITS_FORMAT:
            raise EditError(f'{what}: not a refersplat edits file (format {EDITS_FORMAT!r})')
        if data.get('version') != EDITS_VERSION:
            raise EditError(f'{what}: version {data.get("version")!r}, this build reads '
                            f'{EDITS_VERSION}')
        entries = data.get('objects')
        if not isinstance(entries, dict) or len(entries) > max(len(known), 1):
            raise EditError(f'{what}: "objects" must map at most {len(known)} object labels to '
                            'edits')
        objects = {}
        for label, entry in entries.items():
            if label not in known:
                raise EditError(f'{what}: object {label!r} is not in this scene')
            if not isinstance(entry, dict) or set(entry) != {'translation', 'rotation_xyzw',
                                                             'removed'}:
                raise EditError(f'{what}: {label!r} must have exactly translation, '
                                'rotation_xyzw and removed')
            if not isinstance(entry['removed'], bool) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in list(entry['translation']) + list(entry['rotation_xyzw'])):
                raise EditError(f'{what}: {label!r} holds a value of the wrong type')
            transform = checked_transform(entry['translation'], entry['rotation_xyzw'],
                                          f'{what}: {label!r}')
            objects[label] = ObjectEdit(transform, entry['removed'])
        return cls(objects)._normalised()

    def _normalised(self) -> 'SceneEdits':
        out = SceneEdits()
        for label, edit in self.objects.items():
            out = out._with(label, edit)
        return out


def load_edits(path, labels: Iterable[str]) -> SceneEdits:
    """Read the edits file at ``path`` (no file: no edits); EditError when it is not valid."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return SceneEdits()
    raw = read_regular_file(path, MAX_EDITS_BYTES, EditError, 'edits file')
    try:
        data = json.loads(raw.decode('utf-8'), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EditError(f'edits file {path}: not valid JSON ({exc}); fix or delete it') from None
    return SceneEdits.from_json(data, labels, f'edits file {path}')


def save_edits(path, edits: SceneEdits) -> None:
    """Write ``edits`` to ``path`` atomically (no edits: the file is removed)."""
    path = Path(path)
    try:
        if not edits:
            if path.exists():
                path.unlink()
            return
        atomic_write(path, (json.dumps(edits.to_json(), indent=1) + '\n').encode())
    except OSError as exc:
        raise EditError(f'cannot write the edits file {path}: {exc.strerror or exc}') from None


def _no_constant(name: str):
    raise ValueError(f'{name} is not a number')


def rotation_angle_deg(transform: RigidTransform) -> float:
    """Rotation angle of a transform in degrees (for messages)."""
    w = min(1.0, abs(float(transform.quaternion_xyzw[3])))
    return math.degrees(2.0 * math.acos(w))
