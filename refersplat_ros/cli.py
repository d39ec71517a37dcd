"""The ``refersplat`` command: one entry point, one sub-command per job.

Sub-commands are registered in ``COMMANDS`` as ``name -> (module, help)``; each module provides
``configure_parser(parser: argparse.ArgumentParser)`` and ``run(args) -> int``. Only the module of
the sub-command being run is imported, so ``refersplat --help`` stays fast and the ROS-free
commands never import rclpy.
"""
import argparse
import importlib
import logging
import sys

COMMANDS = {
    # name: (module implementing configure_parser/run, one-line help)
    'ask': ('refersplat_ros.client',
            'ask a running refersplat node for a referring expression (ROS 2)'),
    'pseudo-labels': ('refersplat_ros.core.pseudo_labels',
                      'select one pseudo mask per (frame, object) from detector candidates'),
    'make-scene': ('refersplat_ros.core.datasets.make_scene',
                   'write a Ref-Synth referring scene (exact masks) in the Ref-LERF layout'),
    'train': ('refersplat_ros.core.train_command',
              'train a referring field on a scene folder (optionally two-stage)'),
    'eval': ('refersplat_ros.core.evaluate_command',
             'Ref-LERF mIoU of every checkpoint of a run (last and best)'),
    'query': ('refersplat_ros.core.query_command',
              'select the Gaussians a referring expression names, with a checkpoint'),
}


def build_parser(command=None) -> argparse.ArgumentParser:
    """Build the parser; the sub-parser of ``command`` (if any) gets its full argument set."""
    parser = argparse.ArgumentParser(
        prog='refersplat',
        description='ReferSplat referring segmentation in 3D Gaussian Splatting.')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).configure_parser(sub_parser)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith('-')), None)
    if command not in COMMANDS:
        command = None
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format='%(levelname)s %(name)s: %(message)s')
    return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
