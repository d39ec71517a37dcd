"""The ``refersplat`` command: one entry point, one sub-command per job, one error path.

Sub-commands are registered in ``COMMANDS`` as ``name -> (module, help)``; each module of this
package provides ``configure_parser(parser)`` and ``run(args) -> int`` and raises the library's
named errors instead of printing them. Only the module of the sub-command being run is imported,
so ``refersplat --help`` stays fast and the ROS-free commands never import rclpy.

Exit codes (docs/CLI.md#exit-codes): 0 done; 1 done, but a query found nothing (``query``,
``ask``); 2 bad input (usage, a missing or malformed file, an invalid setting; the message goes to
stderr as ``refersplat <command>: error: ...``); 3 the node gave no answer (``ask``); 130
interrupted.
"""
import argparse
import importlib
import logging
import sys

EXIT_OK = 0
EXIT_NO_MATCH = 1
EXIT_BAD_INPUT = 2
EXIT_NO_ANSWER = 3
EXIT_INTERRUPTED = 130

COMMANDS = {
    # name: (module implementing configure_parser/run, one-line help)
    'ask': ('refersplat_ros.cli.ask',
            'ask a running refersplat node for a referring expression (ROS 2)'),
    'pseudo-labels': ('refersplat_ros.cli.pseudo_labels',
                      'select one pseudo mask per (frame, object) from detector candidates'),
    'make-scene': ('refersplat_ros.cli.make_scene',
                   'write a Ref-Synth referring scene (exact masks) in the Ref-LERF layout'),
    'reconstruct': ('refersplat_ros.cli.reconstruct',
                    'fit an RGB 3D Gaussian Splatting scene to posed images (COLMAP, '
                    'transforms.json)'),
    'train': ('refersplat_ros.cli.train',
              'train a referring field on a scene folder (optionally two-stage)'),
    'eval': ('refersplat_ros.cli.evaluate',
             'Ref-LERF mIoU of every checkpoint of a run (last and best)'),
    'query': ('refersplat_ros.cli.query',
              'select the Gaussians a referring expression names, with a checkpoint'),
    'edit': ('refersplat_ros.cli.edit',
             'move, remove or restore an object of a trained scene (the node re-applies it)'),
}


def build_parser(command=None) -> argparse.ArgumentParser:
    """Build the parser; the sub-parser of ``command`` (if any) gets its full argument set."""
    parser = argparse.ArgumentParser(
        prog='refersplat',
        description='ReferSplat referring segmentation in 3D Gaussian Splatting.',
        epilog='exit codes: 0 done, 1 a query found nothing, 2 bad input, 3 no answer from the '
               'node, 130 interrupted')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).configure_parser(sub_parser)
    return parser


def fail(command: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print ``refersplat <command>: error: <message>`` to stderr and return ``code``."""
    print(f'refersplat {command}: error: {message}', file=sys.stderr)
    return code


def main(argv=None) -> int:
    from refersplat_ros.core.errors import ReferSplatError

    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith('-')), None)
    if command not in COMMANDS:
        command = None
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format='%(levelname)s %(name)s: %(message)s')
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or EXIT_OK)
    except ReferSplatError as exc:
        return fail(args.command, str(exc), exc.exit_code)
    except (ValueError, OSError) as exc:
        # A setting rejected by a config's validation; an output folder that exists or cannot
        # be written.
        return fail(args.command, str(exc))
    except KeyboardInterrupt:
        return fail(args.command, 'interrupted', EXIT_INTERRUPTED)


if __name__ == '__main__':
    sys.exit(main())
