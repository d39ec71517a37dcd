"""Options shared by several ``refersplat`` commands, each defined once.

Flags are named like the config fields they set (``--text-encoder`` sets ``text_encoder``,
``--num-threads`` sets ``num_threads``, ``--test-frames`` sets ``test_frames``).
"""
import argparse
from pathlib import Path
from typing import List, Union


def frame_list(text: str) -> List[Union[int, str]]:
    """Parse ``'6,24,frame_00060'`` into ``[6, 24, 'frame_00060']`` (argparse type)."""
    frames: List[Union[int, str]] = []
    for item in text.split(','):
        item = item.strip()
        if not item:
            continue
        frames.append(int(item) if item.isdigit() else item)
    if not frames:
        raise argparse.ArgumentTypeError(f'no frame in {text!r}')
    return frames


def add_test_frames(parser: argparse.ArgumentParser, what: str) -> None:
    """``--test-frames 6,24,frame_00060``: frame numbers or image stems."""
    parser.add_argument('--test-frames', type=frame_list, default=None, metavar='FRAMES',
                        help=f'comma-separated frame numbers or names; {what}')


def add_text_encoder(parser: argparse.ArgumentParser, default: str) -> None:
    """``--text-encoder``: a Hugging Face name in the local cache or a model folder."""
    parser.add_argument('--text-encoder', default=None, metavar='MODEL',
                        help=f'text encoder: HF name in the local cache or model folder '
                             f'(default: {default})')


def text_encoder_config(model):
    """Return the TextEncoderConfig of ``--text-encoder`` (a folder made absolute), or None."""
    if model is None:
        return None
    from refersplat_ros.core.text.encoder import TextEncoderConfig
    path = Path(model)
    return TextEncoderConfig(model=str(path.resolve()) if path.is_dir() else model)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda, cuda:1, ...')


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def add_grounding(parser) -> None:
    """``--grounding graph|field``: the object graph (default) or the paper's field alone."""
    from refersplat_ros.core.language.ground import GROUNDINGS
    parser.add_argument('--grounding', choices=GROUNDINGS, default='graph',
                        help='graph: ground queries in the object graph (default, '
                             'docs/LANGUAGE.md); field: the referring field alone (the paper)')
