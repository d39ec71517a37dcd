"""``refersplat edit``: tell a scene that an object moved, was taken away or came back.

Examples::

    refersplat edit --checkpoint runs/full/checkpoints/last.safetensors list
    refersplat edit --checkpoint ... remove red-mug-2
    refersplat edit --checkpoint ... move red-mug-2 --by 0.10 0.0 0.0 --yaw 90
    refersplat edit --checkpoint ... move-to red-mug-2 --to 0.2 -0.1 0.05 --yaw 0
    refersplat edit --checkpoint ... restore red-mug-2
    refersplat edit --checkpoint ... reset

The verbs of the node's ``~/edit_scene`` (docs/ROBOT.md#scene-edits), on the edits file beside
the checkpoint (``<checkpoint stem>.edits.json``, written atomically) that the node and
``refersplat query`` apply whenever they load the checkpoint. ``move`` moves the object by a
rigid motion (``--by`` metres, turned by ``--yaw`` degrees about the scene frame's z axis
through its origin, or by ``--rotation x y z w``); ``move-to`` puts the object's box (the pose
``refersplat query --json`` and the node give it) at ``--to`` with that orientation. Positions
in metres of the scene frame (scene units times ``--metric-scale``). A bad request changes
nothing and exits 2 with the reason.
"""
import argparse
import math
from pathlib import Path
import sys

from refersplat_ros.cli.options import add_device, add_text_encoder, text_encoder_config
from refersplat_ros.core.errors import DatasetError

VERBS = ('list', 'move', 'move-to', 'remove', 'restore', 'reset')


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--checkpoint', required=True, type=Path,
                        help='referring-field checkpoint (.safetensors) whose scene is edited')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: recorded in the checkpoint')
    parser.add_argument('verb', choices=VERBS, help='what to do')
    parser.add_argument('label', nargs='?', default='',
                        help="the object, as answers name it (e.g. 'red-mug-2')")
    parser.add_argument('--by', nargs=3, type=float, metavar=('X', 'Y', 'Z'),
                        default=(0.0, 0.0, 0.0), help='move: translation in metres')
    parser.add_argument('--to', nargs=3, type=float, metavar=('X', 'Y', 'Z'),
                        help='move-to: the box centre in metres')
    turn = parser.add_mutually_exclusive_group()
    turn.add_argument('--yaw', type=float, default=0.0,
                      help='rotation about the scene z axis in degrees (move: about the scene '
                           'origin; move-to: the box orientation; default 0)')
    turn.add_argument('--rotation', nargs=4, type=float, metavar=('X', 'Y', 'Z', 'W'),
                      help='rotation as a unit quaternion (x, y, z, w)')
    parser.add_argument('--metric-scale', type=float, default=1.0,
                        help='metres per scene unit (the node parameter metric_scale)')
    add_text_encoder(parser, 'recorded in the checkpoint')
    add_device(parser)


def _rotation(args):
    if args.rotation is not None:
        return tuple(args.rotation)
    half = math.radians(args.yaw) / 2.0
    return (0.0, 0.0, math.sin(half), math.cos(half))


def describe(edits) -> str:
    """Return one line per edited object (removed, or moved: metres and degrees)."""
    from refersplat_ros.core.scene.edits import rotation_angle_deg
    if not edits:
        return 'no edits: the scene is as captured'
    lines = []
    for label, edit in sorted(edits.objects.items()):
        shift = ', '.join(f'{v:.4f}' for v in edit.transform.translation)
        state = 'removed' if edit.removed else 'moved'
        lines.append(f'{label}: {state}; transform from the captured place: translation '
                     f'({shift}) scene units, rotation {rotation_angle_deg(edit.transform):.1f} '
                     'deg')
    return '\n'.join(lines)


def run(args) -> int:
    from refersplat_ros.core.inference.editing import edit_scene, EditRequest
    from refersplat_ros.core.inference.model import ReferringModel
    from refersplat_ros.core.inference.selection import SelectionConfig
    from refersplat_ros.core.runs import run_info
    from refersplat_ros.core.scene.edits import EditError, edits_path, load_edits

    selection = SelectionConfig(metric_scale=args.metric_scale)
    selection.validate()
    if args.verb in ('move', 'move-to', 'remove', 'restore') and not args.label:
        raise EditError(f'{args.verb} needs the object label')
    if args.verb == 'move-to' and args.to is None:
        raise EditError('move-to needs --to X Y Z')
    recorded = run_info(args.checkpoint)
    scene = args.scene or recorded.scene_path
    if scene is None:
        raise DatasetError(f'{args.checkpoint} records no scene; pass --scene')
    encoder = text_encoder_config(args.text_encoder) or recorded.text_encoder
    model = ReferringModel.load(scene, args.checkpoint, encoder, device=args.device)
    path = edits_path(args.checkpoint)
    model.apply_edits(load_edits(path, model.object_labels))
    if args.verb != 'list':
        operation = args.verb.replace('-', '_')
        translation = args.to if operation == 'move_to' else args.by
        reply = edit_scene(model, EditRequest(operation, args.label, translation,
                                              _rotation(args)), path, selection)
        print(reply.message)
    print(describe(model.edits))
    print(f'edits file: {path}' + ('' if path.exists() else ' (none)'), file=sys.stderr)
    return 0
