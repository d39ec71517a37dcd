"""Scene edit requests: MOVE, MOVE_TO, REMOVE, RESTORE, RESET (docs/ROBOT.md#scene-edits).

The one place where a request becomes new ``SceneEdits`` (``core/scene/edits.py``), is written
beside the checkpoint and is applied to a ``ReferringModel``; the node's ``~/edit_scene`` and
``refersplat edit`` both call :func:`edit_scene`. In that order: every check first (the object,
the transform), then the file (atomic), then the model. A request that fails at any step
changes nothing: not the file, not the scene.

Requests are in metres, in a frame whose pose relative to the scene frame (in metres) is
``frame`` (the node's output frame, or the identity for the scene frame): a MOVE's transform is
a motion expressed in that frame; a MOVE_TO's pose is where the object's box (the pose the node
published for it: ``ReferResult.pose``) is to be.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from refersplat_ros.core.inference.selection import SelectionConfig
from refersplat_ros.core.scene.edits import (checked_transform, compose, EditError,
                                             rotation_angle_deg, save_edits, SceneEdits)
from refersplat_ros.core.scene.frames import RigidTransform, rotation_to_quaternion_xyzw

OPERATIONS = ('move', 'move_to', 'remove', 'restore', 'reset')


@dataclass
class EditRequest:
    """One edit of the scene, as a user gives it (checked by :func:`edit_scene`)."""

    operation: str                                   # one of OPERATIONS
    label: str = ''                                  # the object (not for reset)
    translation: Sequence[float] = (0.0, 0.0, 0.0)   # metres: move's motion / move_to's position
    rotation_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0)
    #: Pose of the scene frame (metres) in the request's frame; identity = the scene frame.
    frame: RigidTransform = field(default_factory=RigidTransform.identity)


@dataclass
class EditReply:
    """What an edit did: the object, a sentence for people, and the edits now in force."""

    label: str
    message: str
    edits: SceneEdits


def _scene_motion(request: EditRequest, model, config: SelectionConfig) -> RigidTransform:
    """Return the request's motion of the object in the scene frame, in scene units."""
    given = checked_transform(request.translation, request.rotation_xyzw, request.operation)
    to_scene = request.frame.inverse()
    if request.operation == 'move':
        motion = compose(to_scene, compose(given, request.frame))
    else:  # move_to: the box's new pose after its present pose's inverse
        box = model.object_box(request.label, config)
        present = RigidTransform(np.asarray(box.center, np.float64),
                                 rotation_to_quaternion_xyzw(box.rotation))
        motion = compose(compose(to_scene, given), present.inverse())
    scale = config.metric_scale
    return RigidTransform(motion.translation / scale, motion.quaternion_xyzw)


def edit_scene(model, request: EditRequest, path: Optional[Path],
               config: Optional[SelectionConfig] = None) -> EditReply:
    """Make ``request`` on ``model``; keep the edits in ``path`` (None: not kept).

    ``config`` gives the metric scale and the box convention (the node's selection settings).
    Raises EditError, with nothing changed, on an unknown operation or object, a NaN or
    non-unit transform, a move too far, or a file that cannot be written.
    """
    config = config or SelectionConfig()
    operation = str(request.operation).lower()
    if operation not in OPERATIONS:
        raise EditError(f'unknown edit operation {request.operation!r} (one of '
                        f'{", ".join(OPERATIONS)})')
    if not model.object_labels:
        raise EditError('the checkpoint records no objects: there is nothing to edit')
    before = model.edits
    label = request.label
    if operation == 'reset':
        after, label = SceneEdits(), ''
        message = (f'reset: {len(before.objects)} edited objects back where the capture saw '
                   'them' if before else 'reset: nothing was edited')
    else:
        model.object_box(label, config)  # EditError for an unknown object
        edit = before.get(label)
        if operation == 'remove':
            after = before.remove(label)
            message = f'{label} is already removed' if edit.removed else f'removed {label}'
        elif operation == 'restore':
            after = before.restore(label)
            message = (f'restored {label} where the capture saw it' if label in before.objects
                       else f'{label} was not edited')
        else:
            request.operation = operation
            motion = _scene_motion(request, model, config)
            after = before.move(label, motion)
            scale = config.metric_scale
            centre = np.asarray(model.object_box(label, config).center, np.float64) / scale
            shift = float(np.linalg.norm(motion.apply_points(centre[None])[0] - centre)) * scale
            message = (f'moved {label} {shift:.3f} m, turned {rotation_angle_deg(motion):.1f} '
                       'deg' + (' (it was removed: it is back)' if edit.removed else ''))
    if path is not None:
        save_edits(path, after)
    model.apply_edits(after)
    return EditReply(label, message, after)
