"""The run folder: where training writes and evaluation, the CLI and the demo read.

One definition of every name in it::

    RUN/config.json                              the TrainConfig of the run
    RUN/checkpoints/step_XXXXXX.safetensors      stage 1, every ``checkpoint_every`` steps
    RUN/checkpoints/last.safetensors             stage 1, latest (training resumes from it)
    RUN/checkpoints/train_log.csv                mean losses every ``log_every`` steps
    RUN/stage2/pseudo_masks/gt_mask/<frame>/<category>.png   stage-2 pseudo masks
    RUN/stage2/checkpoints/...                   stage 2, same layout as stage 1
    RUN/eval*/                                   what ``evaluate_run`` writes

Each checkpoint also records where it came from (``training_config`` of the checkpoint, written
by training): the scene folder, the Gaussians file and the text encoder, so that evaluation and
``refersplat query`` need only the checkpoint. :func:`run_info` reads that record.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.field.checkpoint import load_checkpoint, ReferringCheckpoint
from refersplat_ros.core.text.encoder import TextEncoderConfig

PathLike = Union[str, Path]

#: Where ``make demo`` and the CLI examples keep the default scene and its run (relative to the
#: working directory).
DEFAULT_SCENE_DIR = Path('scenes') / 'default'
DEFAULT_RUN_DIR = Path('runs') / 'default'

CONFIG_NAME = 'config.json'
CHECKPOINT_DIR = 'checkpoints'
STAGE2_DIR = 'stage2'
PSEUDO_MASK_DIR = 'pseudo_masks'
LAST_CHECKPOINT = 'last.safetensors'
TRAIN_LOG = 'train_log.csv'
STEP_CHECKPOINT_GLOB = 'step_*.safetensors'
#: Most test frames a run record may list.
MAX_TEST_FRAMES = 100_000


def step_checkpoint_name(step: int) -> str:
    """File name of the checkpoint written at ``step``."""
    return f'step_{step:06d}.safetensors'


def checkpoint_dir(run_dir: PathLike, stage: int = 1) -> Path:
    """Checkpoint folder of a stage (1 or 2) of a run."""
    if stage not in (1, 2):
        raise ValueError(f'stage must be 1 or 2, got {stage}')
    run_dir = Path(run_dir)
    return run_dir / CHECKPOINT_DIR if stage == 1 else run_dir / STAGE2_DIR / CHECKPOINT_DIR


def pseudo_mask_dir(run_dir: PathLike) -> Path:
    """Folder holding stage 2's pseudo masks (its ``gt_mask/`` is read like a dataset's)."""
    return Path(run_dir) / STAGE2_DIR / PSEUDO_MASK_DIR


def last_checkpoint(run_dir: PathLike, stage: int = 1) -> Path:
    """``last.safetensors`` of a stage of a run (the file may not exist yet)."""
    return checkpoint_dir(run_dir, stage) / LAST_CHECKPOINT


def step_checkpoints(folder: PathLike) -> List[Path]:
    """``step_*.safetensors`` of a checkpoint folder, in step order."""
    return sorted(Path(folder).glob(STEP_CHECKPOINT_GLOB))


def stage_checkpoint_dirs(run_dir: PathLike) -> List[Tuple[int, Path]]:
    """``(stage, folder)`` of each stage of a run that holds step checkpoints."""
    return [(stage, checkpoint_dir(run_dir, stage)) for stage in (1, 2)
            if step_checkpoints(checkpoint_dir(run_dir, stage))]


@dataclass
class RunInfo:
    """What a checkpoint records about its run (``None``: not recorded)."""

    scene_path: Optional[str]
    data: Optional[str]
    text_encoder: TextEncoderConfig
    stage: int
    step: int
    test_frames: Optional[List[Union[int, str]]] = None


def run_info(checkpoint: Union[PathLike, ReferringCheckpoint]) -> RunInfo:
    """Scene path, data folder, text encoder, stage and step recorded in a checkpoint.

    A checkpoint written outside training (no record) gets the default text encoder.

    Raises:
        CheckpointError: the record is malformed (wrong types, unknown text-encoder settings,
            a text-encoder setting outside ``SETTING_RANGES``, e.g. ``num_threads`` 100000),
            naming the checkpoint and the entry.
    """
    if not isinstance(checkpoint, ReferringCheckpoint):
        checkpoint = load_checkpoint(checkpoint)
    record = checkpoint.training_config or {}
    try:
        if not isinstance(record, dict):
            raise TypeError(f'training_config is a {type(record).__name__}, not an object')
        for key in ('scene_path', 'data'):
            if not isinstance(record.get(key), (str, type(None))):
                raise TypeError(f'{key} is {record[key]!r}, not a path')
        encoder = record.get('text_encoder')
        text_encoder = _text_encoder_config(encoder) if encoder else TextEncoderConfig()
        stage = record.get('stage', 1)
        if stage not in (1, 2) or isinstance(stage, bool):
            raise ValueError(f'stage is {stage!r}, not 1 or 2')
        train = record.get('train') or {}
        if not isinstance(train, dict):
            raise TypeError(f'train is a {type(train).__name__}, not an object')
        test_frames = train.get('test_frames')
        if not isinstance(test_frames, (list, type(None))):
            raise TypeError(f'train.test_frames is {test_frames!r}, not a list')
        if test_frames is not None and (len(test_frames) > MAX_TEST_FRAMES or not all(
                isinstance(f, str) and len(f) <= 256
                or isinstance(f, int) and not isinstance(f, bool) and 0 <= f < 2**31
                for f in test_frames)):
            raise ValueError(f'train.test_frames must be at most {MAX_TEST_FRAMES} frame '
                             'numbers (0..2**31-1) or names (at most 256 characters)')
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'checkpoint {checkpoint.path}: malformed run record '
                              f'(training_config): {exc}') from exc
    return RunInfo(scene_path=record.get('scene_path'), data=record.get('data'),
                   text_encoder=text_encoder, stage=stage, step=checkpoint.step,
                   test_frames=test_frames)


def _text_encoder_config(recorded) -> TextEncoderConfig:
    """Build a TextEncoderConfig from a recorded dict: known keys, the defaults' types only."""
    if not isinstance(recorded, dict):
        raise TypeError(f'text_encoder is {recorded!r}, not an object')
    defaults = TextEncoderConfig()
    for key, value in recorded.items():
        if not hasattr(defaults, key):
            raise ValueError(f'text_encoder has an unknown setting {key!r}')
        expected = type(getattr(defaults, key))
        if not isinstance(value, expected) or isinstance(value, bool):
            raise TypeError(f'text_encoder.{key} is {value!r}, not a {expected.__name__}')
    config = TextEncoderConfig(**recorded)
    problem = config.problem()
    if problem:
        raise ValueError(f'text_encoder.{problem}')
    return config
