"""``refersplat query``: select the Gaussians a referring expression names, with a checkpoint.

Example::

    refersplat query --checkpoint runs/full/checkpoints/last.safetensors --text "the red mug"
    refersplat query --checkpoint ... --text "the red mug" --text "the bowl" --json | jq .status

The scene and the text encoder default to those recorded in the checkpoint. The selection is
the node's (``ReferringModel.query``). Per text one line: the target's Gaussian count, score,
centroid and time (AMBIGUOUS: the best candidate, then every candidate indented), or the status
and why there is none; then, indented, how the query was understood when the model says.
Names, sentences and messages are printed escaped (``queries.printable``: a terminal escape
sequence in an object name from a file is shown as text, it does not act).
``--json`` prints instead one JSON object per text and line (:func:`outcome_record`), and
nothing else on stdout (logs go to stderr). Exit code 0 when every text got a target (OK or
AMBIGUOUS), 1 when one did not.
"""
import argparse
import contextlib
import json
from pathlib import Path
import sys

from refersplat_ros.cli.main import EXIT_NO_MATCH, EXIT_OK
from refersplat_ros.cli.options import (add_device, add_grounding, add_text_encoder,
                                        text_encoder_config)
from refersplat_ros.core.errors import DatasetError
from refersplat_ros.core.inference.queries import ANSWERED, printable, QueryStatus, status_name


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--checkpoint', required=True, type=Path,
                        help='referring-field checkpoint (.safetensors)')
    parser.add_argument('--scene', type=Path, default=None,
                        help='Gaussians (.ply/.pth); default: recorded in the checkpoint')
    parser.add_argument('--text', required=True, action='append',
                        help='referring expression (repeat for several)')
    add_text_encoder(parser, 'recorded in the checkpoint')
    parser.add_argument('--threshold', type=float, default=0.5,
                        help='select Gaussians with sigmoid(m) >= this (default 0.5)')
    parser.add_argument('--no-cluster', action='store_true',
                        help='keep every selected Gaussian (no DBSCAN instance split)')
    parser.add_argument('--json', action='store_true',
                        help='one JSON object per text on stdout (status, score, box, '
                             'interpretation, candidates, timings), nothing else')
    parser.add_argument('--no-edits', action='store_true',
                        help='ignore the scene edits kept beside the checkpoint (refersplat '
                             'edit, ~/edit_scene of the node): answer on the capture as is')
    add_grounding(parser)
    add_device(parser)


def _floats(values) -> list:
    return [float(v) for v in values]


def outcome_record(outcome) -> dict:
    """Return the ``--json`` object of one ``QueryOutcome`` (positions and sizes in scene units).

    Keys: ``text``, ``status`` (name), ``message``, ``score`` (mean probability of the target
    cloud, 0 without a target), ``centroid`` [3] and ``box`` {``center`` [3],
    ``quaternion_xyzw`` [4], ``size`` [3]} of the best instance (null without a target),
    ``num_gaussians``, ``interpretation``, ``confidence`` (docs/LANGUAGE.md#confidence),
    ``candidates`` [{``label``, ``score``, ``centroid``,
    ``center``, ``size``}] best first, ``targets`` (the same form: the objects in the target
    cloud; every object of a plural such as "all the cans"), ``timings_ms`` {stage: ms}.
    """
    answered = outcome.status in ANSWERED
    selection = outcome.selection if answered else None
    best = selection.best if selection is not None else None
    return {
        'text': outcome.text,
        'status': status_name(outcome.status),
        'message': outcome.message,
        'score': float(selection.score) if selection is not None else 0.0,
        'centroid': _floats(best.centroid) if best is not None else None,
        'box': None if best is None else {'center': _floats(best.center),
                                          'quaternion_xyzw': _floats(best.quaternion_xyzw),
                                          'size': _floats(best.extent)},
        'num_gaussians': len(selection.indices) if selection is not None else 0,
        'interpretation': outcome.interpretation,
        'confidence': float(outcome.confidence),
        'candidates': [_candidate(c) for c in outcome.candidates],
        'targets': [_candidate(c) for c in outcome.targets],
        'timings_ms': {stage: float(ms) for stage, ms in outcome.timings_ms.items()},
    }


def _candidate(c) -> dict:
    return {'label': c.label, 'score': float(c.score), 'centroid': _floats(c.instance.centroid),
            'center': _floats(c.instance.center), 'size': _floats(c.instance.extent)}


def _point(values) -> str:
    return '(' + ', '.join(f'{v:.4f}' for v in values) + ')'


def format_outcome(outcome) -> str:
    """Return the human-readable lines of one ``QueryOutcome`` (see the module docstring)."""
    if outcome.status not in ANSWERED:
        lines = [f'{outcome.text!r}: {status_name(outcome.status)} '
                 f'{printable(outcome.message)}'.rstrip()]
    else:
        chosen = outcome.selection
        millis = outcome.timings_ms['encode'] + outcome.timings_ms['field']
        ambiguous = ''
        if outcome.status == QueryStatus.AMBIGUOUS:
            note = f' ({printable(outcome.message)})' if outcome.message else ''
            ambiguous = (f'AMBIGUOUS{note}, '
                         f'best of {len(outcome.candidates)}: ')
        lines = [f'{outcome.text!r}: {ambiguous}{len(chosen.indices)} Gaussians, score '
                 f'{chosen.score:.4f}, centroid {_point(chosen.best.centroid)}, '
                 f'{millis:.1f} ms']
        listed = outcome.candidates if outcome.status == QueryStatus.AMBIGUOUS else \
            outcome.targets if len(outcome.targets) > 1 else []
        if len(listed) and outcome.status == QueryStatus.OK:
            lines.append(f'  {len(listed)} targets:')
        lines += [f'  {rank}. {printable(c.label)}: score {c.score:.4f}, centroid '
                  f'{_point(c.instance.centroid)}' for rank, c in enumerate(listed, start=1)]
    if outcome.interpretation:
        lines.append(f'  understood: {printable(outcome.interpretation)}')
    if outcome.status in ANSWERED or outcome.status == QueryStatus.NO_MATCH:
        lines.append(f'  confidence: {outcome.confidence:.2f}')
    return '\n'.join(lines)


def run(args) -> int:
    from refersplat_ros.core.inference.model import ReferringModel
    from refersplat_ros.core.inference.selection import SelectionConfig
    from refersplat_ros.core.language.ground import GroundingConfig
    from refersplat_ros.core.runs import run_info
    from refersplat_ros.core.scene.edits import edits_path, load_edits

    out = sys.stdout
    # With --json, stdout carries the JSON lines alone: anything else printed goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with quiet:
        selection = SelectionConfig(threshold=args.threshold, cluster=not args.no_cluster)
        selection.validate()
        recorded = run_info(args.checkpoint)
        scene = args.scene or recorded.scene_path
        if scene is None:
            raise DatasetError(f'{args.checkpoint} records no scene; pass --scene')
        encoder = text_encoder_config(args.text_encoder) or recorded.text_encoder
        model = ReferringModel.load(scene, args.checkpoint, encoder, device=args.device,
                                    grounding=GroundingConfig(grounding=args.grounding))
        if not args.no_edits:  # the edits beside the checkpoint (refersplat edit, the node)
            path = edits_path(args.checkpoint)
            model.apply_edits(load_edits(path, model.object_labels))
            if model.edits:
                print(f'scene edits from {path}: {len(model.edits.removed)} removed, '
                      f'{len(model.edits.moved)} moved (--no-edits: the capture)',
                      file=sys.stderr)
        failed = 0
        for text in args.text:
            outcome = model.query(text, selection)
            failed += outcome.status not in ANSWERED
            report = (json.dumps(outcome_record(outcome), allow_nan=False) if args.json
                      else format_outcome(outcome))
            print(report, file=out, flush=True)
    return EXIT_OK if failed == 0 else EXIT_NO_MATCH
