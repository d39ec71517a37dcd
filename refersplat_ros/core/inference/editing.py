"""Scene edit requests: MOVE, MOVE_TO, REMOVE, RESTORE, RESET (docs/ROBOT.md#scene-edits).

The one place where a request becomes new ``SceneEdits`` (``core/scene/edits.py``), is written
beside the checkpoint and is applied to a ``ReferringModel``; the node's ``~/edit_scene`` and
``refersplat edit`` both call :func:`edit_scene`. In that order: every check first (the object,
the transform), then the model, then the file (atomic); a failure at the file puts the model
back exactly (edits are applied from the captured state). A request that fails at any step
changes nothing: not the file, not the scene.

Requests are in metres, in a frame whose pose relative to the scene frame (in metres) is
``frame`` (the node's output frame, or the identity for the scene frame): a MOVE's transform is
a motion expressed in that frame (its rotation turns about that frame's origin, as any rigid
motion of points does); a MOVE_TO's pose is where the object's box (the pose the node publishes
for it: ``ReferResult.pose`` of an answer about it) is to be.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from refersplat_ros.core.inference.selection import Instance, SelectionConfig
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


#: The turns that map a box onto itself (its axes are known up to these: ``boxes.py``): none,
#: half a turn about z, x or y.
_BOX_SYMMETRIES = (np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, -1.0]),
                   np.diag([-1.0, 1.0, -1.0]))


def _scene_motion(request: EditRequest, operation: str, box: Instance,
                  config: SelectionConfig) -> Tuple[RigidTransform, np.ndarray]:
    """Return the request's motion of the object in the scene frame, in scene units.

    ``move``: the motion given in the request's frame. ``move_to``: the motion that puts the
    object's box (``box``: ``ReferringModel.object_box``, the box its answers publish) at the
    pose given; of the box's equivalent orientations (half turns: a box's axes have no sign of
    their own) the one nearest the present box is taken, so the same pose sent twice does not
    turn the object. Also returns where the box centre is to be (metres, scene frame).
    """
    given = checked_transform(request.translation, request.rotation_xyzw, operation,
                              bounded=False)
    to_scene = request.frame.inverse()
    if operation == 'move':
        motion = compose(to_scene, compose(given, request.frame))
        target = motion.apply_points(np.asarray(box.center, np.float64)[None])[0]
    else:  # move_to: the box's new pose after its present pose's inverse
        wanted = compose(to_scene, given)
        rotation = min((wanted.rotation @ turn for turn in _BOX_SYMMETRIES),
                       key=lambda r: -np.trace(r @ box.rotation.T))
        present = RigidTransform(np.asarray(box.center, np.float64),
                                 rotation_to_quaternion_xyzw(box.rotation))
        motion = compose(RigidTransform(wanted.translation,
                                        rotation_to_quaternion_xyzw(rotation)),
                         present.inverse())
        target = wanted.translation
    scale = config.metric_scale
    return RigidTransform(motion.translation / scale, motion.quaternion_xyzw), target


def _settle(model, label: str, target: np.ndarray, before: SceneEdits, after: SceneEdits,
            config: SelectionConfig) -> SceneEdits:
    """Put a MOVE_TO's box centre exactly at ``target`` (metres), once the object is edited.

    An edited object no longer lends its place to the poorly seen Gaussians of its neighbours
    (``Visibility.set_groups``), so its selected Gaussians, and with them its box, can differ by
    a few millimetres from the box the motion was computed from; the translation is corrected
    by that difference (the set of Gaussians stays the same).
    """
    centre = np.asarray(model.object_box(label, config).center, np.float64)
    residual = (np.asarray(target, np.float64) - centre) / config.metric_scale
    if float(np.abs(residual).max()) <= 1e-9:
        return after
    settled = before.move(label, compose(
        RigidTransform(residual, np.array([0.0, 0.0, 0.0, 1.0])),
        compose(after.get(label).transform, before.get(label).transform.inverse())))
    model.apply_edits(settled)
    return settled


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
        box = model.object_box(label, config)  # EditError for an unknown object
        edit = before.get(label)
        if operation == 'remove':
            after = before.remove(label)
            message = f'{label} is already removed' if edit.removed else f'removed {label}'
        elif operation == 'restore':
            after = before.restore(label)
            message = (f'restored {label} where the capture saw it' if label in before.objects
                       else f'{label} was not edited')
        else:
            motion, target = _scene_motion(request, operation, box, config)
            after = before.move(label, motion)
            shift = float(np.linalg.norm(target - np.asarray(box.center, np.float64)))
            message = (f'moved {label} {shift:.3f} m, turned {rotation_angle_deg(motion):.1f} '
                       'deg' + (' (it was removed: it is back)' if edit.removed else ''))
    try:  # on the model first (exactly undone below), then the file
        model.apply_edits(after)
        if operation == 'move_to':
            after = _settle(model, label, target, before, after, config)
        if path is not None:
            save_edits(path, after)
    except BaseException:
        model.apply_edits(before)
        raise
    return EditReply(label, message, after)
