"""Referring-field checkpoints: one ``.safetensors`` file with a JSON description.

Format (version 1). A single safetensors file (never pickled, safe to load from anywhere):

- tensors ``field.<name>``: the field's ``state_dict`` (features [N, 16], MLPs, attention);
- tensors ``optim.<param index>.<key>``: tensor entries of the optimizer state (Adam ``exp_avg``,
  ``exp_avg_sq``, ``step``) when an optimizer is saved, so training can resume;
- optional tensors ``scene.visibility`` [N] and ``scene.view_direction`` [N, 3] float32
  (``ViewWeights.visibility_and_directions`` over the training views; the second orients the
  surface normals, absent in checkpoints saved before it was recorded) and
  ``scene.object_labels`` [N] int32;
- header ``__metadata__['refersplat']``: JSON with ``format``, ``version``, ``field_config``
  (ReferringFieldConfig), ``text_encoder_id``, ``training_config`` (free dict, e.g. the training
  and loss configs), ``scene`` (``num_gaussians`` and ``means_sha256``: sha256 of the centres as
  C-ordered little-endian float32 bytes), ``step``, ``optimizer`` (param groups and non-tensor
  state), ``extra`` and ``payload_sha256`` (checksum of every tensor, detects bit rot and
  truncation that leaves a parseable header).

Writes are atomic: temp file in the target folder, fsync, ``os.replace``, fsync of the folder; a
failed write leaves the previous checkpoint untouched and no temp file (a process killed during
the write leaves ``.<name>.*.tmp``, which :func:`remove_stale_temp_files` clears). Loading into a
scene with other centres or with another text encoder raises CheckpointError naming what differs
(defects c/d, docs/METHOD.md#defect-c and #defect-d: one checkpoint API with the full
config).

Loading checks before allocating: the file must be a regular file within ``max_bytes``
(``core.files``); every tensor of the header must have a known dtype and a byte range that fits
the file and equals its shape's size; the field's tensors must have the shapes its recorded
``field_config`` and Gaussian count give. After loading, NaN/inf field weights (what a diverged
run saves) are refused: every query of such a field would be NO_MATCH.

The JSON description is validated before use, within documented limits: the safetensors header
(the description included) is at most ``MAX_HEADER_BYTES`` and nests at most
``MAX_JSON_DEPTH`` deep (checked by a bracket scan before parsing: a 100,000-deep document is a
CheckpointError, not a RecursionError); ``step`` is an integer in 0..``MAX_STEP``,
``scene.num_gaussians`` one in 1..``MAX_GAUSSIANS``, the ``field_config`` sizes in
1..``MAX_FIELD_DIM``; the objects are bounded as ``core/scene/objects.py`` says
(``MAX_OBJECTS`` ...). Beyond them loading fails with a CheckpointError naming the entry.
"""
import dataclasses
from dataclasses import dataclass, field as dataclass_field
import hashlib
import json
import logging
import math
from pathlib import Path
import re
import struct
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import Tensor

from refersplat_ros.core.errors import CheckpointError
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.files import atomic_write, DEFAULT_MAX_FILE_BYTES, read_regular_file
from refersplat_ros.core.scene.objects import SceneObjects

logger = logging.getLogger(__name__)

#: Largest safetensors JSON header accepted (bytes), the refersplat description included.
MAX_HEADER_BYTES = 16 * 2**20
#: Deepest nesting of arrays and objects accepted in the header and in the description.
MAX_JSON_DEPTH = 64
#: Largest recorded ``step``.
MAX_STEP = 10**12
#: Largest recorded ``scene.num_gaussians`` (object labels are int32).
MAX_GAUSSIANS = 2**31 - 1
#: Largest ``field_config`` size (``text_dim``, ``feature_dim``, ``width``).
MAX_FIELD_DIM = 2**16

CHECKPOINT_FORMAT = 'refersplat-referring-field'
CHECKPOINT_VERSION = 1
_META_KEY = 'refersplat'
_FIELD_PREFIX = 'field.'
_OPTIM_PREFIX = 'optim.'
_VISIBILITY = 'scene.visibility'
_VIEW_DIRECTION = 'scene.view_direction'
_OBJECT_LABELS = 'scene.object_labels'

PathLike = Union[str, Path]


def means_sha256(means: Tensor) -> str:  # [N, 3]
    """Return the sha256 of the centres as C-ordered float32 bytes (the scene fingerprint)."""
    array = means.detach().to('cpu', torch.float32).contiguous().numpy()
    return hashlib.sha256(array.astype('<f4', copy=False).tobytes()).hexdigest()


@dataclass(frozen=True)
class SceneFingerprint:
    """Identity of the frozen Gaussians a field was trained on."""

    num_gaussians: int
    means_sha256: str

    @classmethod
    def of(cls, means: Tensor) -> 'SceneFingerprint':  # [N, 3]
        return cls(num_gaussians=int(means.shape[0]), means_sha256=means_sha256(means))


@dataclass
class ReferringCheckpoint:
    """Content of a loaded checkpoint (tensors on CPU)."""

    path: Path
    field_config: ReferringFieldConfig
    field_state: Dict[str, Tensor]
    text_encoder_id: str
    scene: SceneFingerprint
    step: int
    training_config: Dict[str, Any] = dataclass_field(default_factory=dict)
    optimizer_state: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = dataclass_field(default_factory=dict)
    visibility: Optional[Tensor] = None  # [N] compositing weight over the training views
    objects: Optional[SceneObjects] = None  # annotated objects lifted onto the Gaussians
    # [N, 3] weighted sum of unit vectors to the training cameras (orients the normals);
    # None in checkpoints saved before it was recorded
    view_direction: Optional[Tensor] = None

    def check_scene(self, means: Tensor) -> None:  # [N, 3]
        """Raise CheckpointError unless ``means`` are the centres the field was trained on."""
        num = int(means.shape[0])
        if num != self.scene.num_gaussians:
            raise CheckpointError(
                f'checkpoint {self.path}: trained on a scene with {self.scene.num_gaussians} '
                f'Gaussians, the given scene has {num} (scene.num_gaussians differs)')
        digest = means_sha256(means)
        if digest != self.scene.means_sha256:
            raise CheckpointError(
                f'checkpoint {self.path}: the Gaussian centres differ from the training scene '
                f'(scene.means_sha256 {self.scene.means_sha256[:12]}... vs {digest[:12]}...)')

    def check_encoder(self, text_encoder_id: str) -> None:
        """Raise CheckpointError unless the text encoder is the one used in training."""
        if text_encoder_id != self.text_encoder_id:
            raise CheckpointError(
                f'checkpoint {self.path}: trained with text encoder {self.text_encoder_id!r}, '
                f'the configured encoder is {text_encoder_id!r} (text_encoder_id differs)')

    def build_field(self, means: Tensor) -> ReferringField:  # [N, 3]
        """Return a ReferringField with the saved weights on ``means.device`` (scene checked)."""
        self.check_scene(means)
        field = ReferringField(means, self.field_config)
        try:
            field.load_state_dict({k: v.to(means.device) for k, v in self.field_state.items()})
        except RuntimeError as exc:
            raise CheckpointError(f'checkpoint {self.path}: field weights do not match its '
                                  f'field_config: {exc}') from exc
        return field

    def load_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Load the saved optimizer state into ``optimizer`` built like the saved one."""
        if self.optimizer_state is None:
            raise CheckpointError(f'checkpoint {self.path}: holds no optimizer state')
        # torch casts the CPU tensors to each parameter's device (Adam's step stays on CPU).
        try:
            optimizer.load_state_dict({'state': self.optimizer_state['state'],
                                       'param_groups': self.optimizer_state['param_groups']})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f'checkpoint {self.path}: optimizer state does not fit the '
                                  f'optimizer: {exc}') from exc


def _payload_sha256(tensors: Dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
        digest.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()


def _json_value(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_value(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, Tensor):
        raise TypeError('tensors must not be stored in the JSON description')
    return value


def save_checkpoint(
    path: PathLike,
    field: ReferringField,
    *,
    text_encoder_id: str,
    step: int,
    training_config: Optional[Dict[str, Any]] = None,
    optimizer: Optional[torch.optim.Optimizer] = None,
    extra: Optional[Dict[str, Any]] = None,
    visibility: Optional[Tensor] = None,  # [N]
    objects: Optional[SceneObjects] = None,
    view_direction: Optional[Tensor] = None,  # [N, 3]
) -> Path:
    """Save a field (and optionally its optimizer) to one safetensors file, atomically.

    Args:
        path: Target file (conventionally ``*.safetensors``); parent folders are created.
        field: The trained field; its centres give the scene fingerprint.
        text_encoder_id: ``TextEncoder.encoder_id`` of the encoder used in training.
        step: Number of optimisation steps done.
        training_config: JSON-serialisable description of the run (dataclass configs and
            paths are converted, e.g. ``{'loss': ReferringLossConfig(), ...}``).
        optimizer: Optimizer over the field's parameters, saved for resuming.
        extra: Further JSON-serialisable values (e.g. best-checkpoint mIoU).
        visibility: Total compositing weight of each Gaussian over the training views
            (``ViewWeights.visibility``); the 3D selection trusts well-seen Gaussians.
        objects: The scene's annotated objects (``labels/objects.py``), for the language layer.
        view_direction: Per-Gaussian view direction over the training views
            (``ViewWeights.view_directions``), which orients the surface normals
            (``scene/normals.py``).

    Returns:
        The path written.
    """
    path = Path(path)
    tensors = {_FIELD_PREFIX + k: v.detach().to('cpu').contiguous().clone()
               for k, v in field.state_dict().items()}
    if visibility is not None:
        visibility = visibility.detach().to('cpu', torch.float32).reshape(-1)
        if visibility.shape[0] != field.num_gaussians:
            raise CheckpointError(f'checkpoint {path}: visibility has {visibility.shape[0]} '
                                  f'entries, the field {field.num_gaussians} Gaussians')
        tensors[_VISIBILITY] = visibility.contiguous().clone()
    if view_direction is not None:
        view_direction = view_direction.detach().to('cpu', torch.float32)
        if tuple(view_direction.shape) != (field.num_gaussians, 3):
            raise CheckpointError(f'checkpoint {path}: view_direction has shape '
                                  f'{list(view_direction.shape)}, expected '
                                  f'[{field.num_gaussians}, 3]')
        if not bool(torch.isfinite(view_direction).all()):
            raise CheckpointError(f'checkpoint {path}: view_direction holds non-finite values')
        tensors[_VIEW_DIRECTION] = view_direction.contiguous().clone()
    if objects is not None:
        try:
            objects.validate(field.num_gaussians)
            SceneObjects.from_meta(objects.to_meta(), objects.labels)  # within the limits
        except ValueError as exc:
            raise CheckpointError(f'checkpoint {path}: objects: {exc}') from exc
        tensors[_OBJECT_LABELS] = torch.from_numpy(objects.labels.astype('int32')).contiguous()
    optim_meta = None
    if optimizer is not None:
        state_dict = optimizer.state_dict()
        plain_state = {}
        for index, entry in state_dict['state'].items():
            for key, value in entry.items():
                if isinstance(value, Tensor):
                    name = f'{_OPTIM_PREFIX}{index}.{key}'
                    tensors[name] = value.detach().to('cpu').contiguous().clone()
                else:
                    plain_state.setdefault(str(index), {})[key] = _json_value(value)
        optim_meta = {'class': type(optimizer).__name__,
                      'param_groups': _json_value(state_dict['param_groups']),
                      'plain_state': plain_state,
                      'state_indices': [int(i) for i in state_dict['state']]}
    meta = {
        'format': CHECKPOINT_FORMAT,
        'version': CHECKPOINT_VERSION,
        'field_config': field.config.to_dict(),
        'text_encoder_id': text_encoder_id,
        'training_config': _json_value(training_config or {}),
        'scene': {'num_gaussians': field.num_gaussians,
                  'means_sha256': means_sha256(field.means)},
        'step': int(step),
        'optimizer': optim_meta,
        'extra': _json_value(extra or {}),
        'objects': None if objects is None else objects.to_meta(),
        'payload_sha256': _payload_sha256(tensors),
    }
    try:
        text = json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'checkpoint {path}: training_config/extra are not JSON '
                              f'serialisable: {exc}') from exc
    if len(text) > MAX_HEADER_BYTES // 2 or json_depth(text.encode()) > MAX_JSON_DEPTH:
        raise CheckpointError(f'checkpoint {path}: the description is over '
                              f'{MAX_HEADER_BYTES // 2} characters or nests over '
                              f'{MAX_JSON_DEPTH} deep (it could not be loaded)')
    from safetensors.torch import save as safetensors_save
    data = safetensors_save(tensors, metadata={_META_KEY: text})
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise CheckpointError(f'checkpoint {path}: write failed: {exc}') from exc
    logger.info('saved checkpoint %s (step %d, %d tensors)', path, step, len(tensors))
    return path


# Bytes per element of each safetensors dtype.
_DTYPE_BYTES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E5M2': 1, 'F8_E4M3': 1, 'I16': 2, 'U16': 2,
                'F16': 2, 'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'I64': 8, 'U64': 8, 'F64': 8}


# A JSON string (escapes included): removed before the bracket scan. Linear: no nested choice.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = bytes(range(256)).translate(None, b'[]{}')   # every byte but the brackets


def json_depth(text: bytes) -> int:
    """Return the deepest nesting of arrays and objects in a JSON text, without parsing it.

    Linear in the length; brackets inside strings do not count.
    """
    brackets = _JSON_STRING.sub(b'', text).translate(None, _BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, np.uint8)
    delta = np.where((steps == ord('[')) | (steps == ord('{')), 1, -1).astype(np.int32)
    return int(np.cumsum(delta, dtype=np.int32).max())


def _bounded_json(path: Path, text: bytes, what: str):
    """Parse ``text`` if it nests at most MAX_JSON_DEPTH deep; else CheckpointError."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f'checkpoint {path}: {what} nests {depth} deep (at most '
                              f'{MAX_JSON_DEPTH})')
    try:
        return json.loads(text.decode('utf-8'))
    except RecursionError:  # not reached within the depth limit; kept as the last guard
        raise CheckpointError(f'checkpoint {path}: {what} nests too deep') from None


def _read_header(path: Path, data: bytes):
    """Return ``(refersplat description, tensor entries)`` of the safetensors header."""
    if len(data) < 8:
        raise CheckpointError(f'checkpoint {path}: file too short ({len(data)} bytes)')
    (header_len,) = struct.unpack('<Q', data[:8])
    if header_len > len(data) - 8:
        raise CheckpointError(f'checkpoint {path}: truncated or not a safetensors file')
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointError(f'checkpoint {path}: safetensors header of {header_len} bytes '
                              f'(at most {MAX_HEADER_BYTES})')
    try:
        header = _bounded_json(path, data[8:8 + header_len], 'the safetensors header')
        meta = _bounded_json(path, header['__metadata__'][_META_KEY].encode('utf-8'),
                             'the refersplat description')
    except (UnicodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f'checkpoint {path}: no refersplat description in the '
                              f'safetensors header (not a referring-field checkpoint)') from exc
    if not isinstance(meta, dict) or meta.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'checkpoint {path}: format is not {CHECKPOINT_FORMAT!r}')
    if meta.get('version') != CHECKPOINT_VERSION:
        raise CheckpointError(f'checkpoint {path}: version {meta.get("version")!r} not supported '
                              f'(expected {CHECKPOINT_VERSION})')
    if not isinstance(header, dict):
        raise CheckpointError(f'checkpoint {path}: malformed safetensors header')
    entries = {k: v for k, v in header.items() if k != '__metadata__'}
    _check_entries(path, entries, len(data) - 8 - header_len)
    _check_numbers(path, meta)
    return meta, entries


def _bounded_int(value, what: str, low: int, high: int) -> int:
    """Return ``value`` if it is an integer in low..high; else ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f'{what} is {value!r}, not an integer in {low}..{high}')
    return value


def _check_numbers(path: Path, meta: Dict[str, Any]) -> None:
    """Check the description's numbers (step, Gaussian count, field sizes) are in range."""
    try:
        _bounded_int(meta.get('step'), 'step', 0, MAX_STEP)
        scene = meta.get('scene')
        if not isinstance(scene, dict):
            raise ValueError(f'scene is {type(scene).__name__}, not an object')
        _bounded_int(scene.get('num_gaussians'), 'scene.num_gaussians', 1, MAX_GAUSSIANS)
        config = meta.get('field_config')
        if not isinstance(config, dict):
            raise ValueError(f'field_config is {type(config).__name__}, not an object')
        for name in ('text_dim', 'feature_dim', 'width'):
            if name in config:
                _bounded_int(config[name], f'field_config.{name}', 1, MAX_FIELD_DIM)
    except ValueError as exc:
        raise CheckpointError(f'checkpoint {path}: malformed description: {exc}') from None


def _check_entries(path: Path, entries: Dict[str, Any], payload: int) -> None:
    """Each tensor: a known dtype, a shape whose size equals its byte range, inside the file."""
    total = 0
    for name, entry in entries.items():
        try:
            dtype, shape, (begin, end) = entry['dtype'], entry['shape'], entry['data_offsets']
            size = _DTYPE_BYTES[dtype]
            if not all(isinstance(v, int) and v >= 0 for v in (*shape, begin, end)):
                raise ValueError('negative or non-integer shape or offsets')
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f'checkpoint {path}: tensor {name!r} has a malformed header '
                                  f'entry ({type(exc).__name__}: {exc})') from None
        count = math.prod(shape)
        if end < begin or end > payload or (end - begin) != count * size:
            raise CheckpointError(
                f'checkpoint {path}: tensor {name!r} declares shape {shape} ({count * size} '
                f'bytes) at bytes {begin}..{end} of a {payload}-byte payload (corrupt or forged)')
        total += end - begin
    if total > payload:
        raise CheckpointError(f'checkpoint {path}: tensors declare {total} bytes, the payload '
                              f'holds {payload}')


def _check_field_shapes(path: Path, meta: Dict[str, Any], entries: Dict[str, Any]) -> int:
    """Check the field's tensors against its recorded config and Gaussian count; return the count.

    Checked on the header alone (shapes built on the meta device), before the payload is read.
    """
    try:
        config = ReferringFieldConfig(**meta['field_config'])
        num = int(meta['scene']['num_gaussians'])
        if num <= 0:
            raise ValueError(f'scene.num_gaussians is {num}')
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CheckpointError(f'checkpoint {path}: malformed description: {exc}') from exc
    with torch.device('meta'):  # shapes only: nothing is allocated
        expected = {k: tuple(v.shape) for k, v in
                    ReferringField(torch.empty((num, 3)), config).state_dict().items()}
    found = {k[len(_FIELD_PREFIX):]: tuple(v['shape']) for k, v in entries.items()
             if k.startswith(_FIELD_PREFIX)}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f'checkpoint {path}: field weights do not match its field_config '
                              f'(missing {missing[:3]}, unexpected {unexpected[:3]})')
    wrong = [f'{k} {list(found[k])} (expected {list(v)})' for k, v in expected.items()
             if found[k] != v]
    if wrong:
        raise CheckpointError(f'checkpoint {path}: field weights do not match its field_config '
                              f'and {num} Gaussians: {", ".join(wrong[:3])}')
    return num


def _check_finite(path: Path, field_state: Dict[str, Tensor]) -> None:
    """Refuse NaN/inf field weights, naming the first few tensors (by name) that hold them."""
    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in sorted(field_state.items())
           if v.is_floating_point() and not bool(torch.isfinite(v).all())}
    if bad:
        listed = ', '.join(f'{k!r} ({n})' for k, n in sorted(bad.items())[:3])
        raise CheckpointError(
            f'checkpoint {path}: NaN/inf values in {len(bad)} field weight(s): {listed}; the '
            'run that saved it diverged (every query would be NO_MATCH)')


def _checked_visibility(visibility: Optional[Tensor], num: int) -> Optional[Tensor]:
    """Return the stored visibility if it is [N], finite and >= 0; else raise ValueError."""
    if visibility is None:
        return None
    if tuple(visibility.shape) != (num,):
        raise ValueError(f'scene.visibility has shape {tuple(visibility.shape)}, expected [{num}]')
    if not bool(torch.isfinite(visibility).all()) or bool((visibility < 0).any()):
        raise ValueError('scene.visibility holds negative or non-finite values')
    return visibility


def _checked_view_direction(direction: Optional[Tensor], num: int) -> Optional[Tensor]:
    """Return the stored view directions if they are [N, 3] float32 and finite; else raise."""
    if direction is None:
        return None
    if tuple(direction.shape) != (num, 3):
        raise ValueError(f'{_VIEW_DIRECTION} has shape {tuple(direction.shape)}, '
                         f'expected [{num}, 3]')
    if direction.dtype != torch.float32:
        raise ValueError(f'{_VIEW_DIRECTION} must be float32, got {direction.dtype}')
    if not bool(torch.isfinite(direction).all()):
        raise ValueError(f'{_VIEW_DIRECTION} holds non-finite values')
    return direction


def _checked_objects(meta: Optional[dict], labels: Optional[Tensor],
                     num: int) -> Optional[SceneObjects]:
    """Return the stored objects when both parts are present and agree; else raise ValueError."""
    if meta is None and labels is None:
        return None
    if meta is None or labels is None:
        raise ValueError('objects: the labels tensor and the object list must come together')
    if labels.dtype != torch.int32:
        raise ValueError(f'{_OBJECT_LABELS} must be int32, got {labels.dtype}')
    objects = SceneObjects.from_meta(meta, labels.numpy())
    objects.validate(num)
    return objects


def _restore_param_groups(groups):
    for group in groups:
        if isinstance(group.get('betas'), list):
            group['betas'] = tuple(group['betas'])
    return groups


def load_checkpoint(
    path: PathLike,
    *,
    means: Optional[Tensor] = None,  # [N, 3] scene centres to check against
    text_encoder_id: Optional[str] = None,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ReferringCheckpoint:
    """Load and verify a checkpoint (tensors on CPU).

    Args:
        path: Checkpoint file written by ``save_checkpoint``.
        means: If given, the scene fingerprint must match (else CheckpointError).
        text_encoder_id: If given, must equal the saved encoder id (else CheckpointError).
        max_bytes: Largest accepted file (a regular file only, see ``core.files``).

    Raises:
        CheckpointError: missing, oversized, truncated or corrupt file, not a regular file,
            unknown format/version, header shapes that do not fit the file or the field config,
            checksum mismatch, NaN/inf field weights, or a scene / encoder mismatch.
    """
    path = Path(path)
    data = read_regular_file(path, max_bytes, CheckpointError, 'checkpoint')
    meta, entries = _read_header(path, data)
    num = _check_field_shapes(path, meta, entries)
    if means is not None and int(means.shape[0]) != num:
        raise CheckpointError(
            f'checkpoint {path}: trained on a scene with {num} Gaussians, the given scene has '
            f'{int(means.shape[0])} (scene.num_gaussians differs)')
    from safetensors.torch import load as safetensors_load
    try:
        tensors = safetensors_load(data)
    except Exception as exc:  # SafetensorError derives from Exception only
        raise CheckpointError(f'checkpoint {path}: corrupt safetensors data: {exc}') from exc
    if _payload_sha256(tensors) != meta.get('payload_sha256'):
        raise CheckpointError(f'checkpoint {path}: tensor checksum mismatch (corrupt file)')
    try:
        field_config = ReferringFieldConfig(**meta['field_config'])
        scene = SceneFingerprint(int(meta['scene']['num_gaussians']),
                                 str(meta['scene']['means_sha256']))
        optimizer_state = None
        if meta.get('optimizer') is not None:
            optim = meta['optimizer']
            state = {int(i): {} for i in optim['state_indices']}
            for index, entry in optim['plain_state'].items():
                state[int(index)].update(entry)
            for name, tensor in tensors.items():
                if name.startswith(_OPTIM_PREFIX):
                    index, key = name[len(_OPTIM_PREFIX):].split('.', 1)
                    state[int(index)][key] = tensor
            optimizer_state = {'class': optim['class'], 'state': state,
                               'param_groups': _restore_param_groups(optim['param_groups'])}
        checkpoint = ReferringCheckpoint(
            path=path,
            field_config=field_config,
            field_state={k[len(_FIELD_PREFIX):]: v for k, v in tensors.items()
                         if k.startswith(_FIELD_PREFIX)},
            text_encoder_id=str(meta['text_encoder_id']),
            scene=scene,
            step=int(meta['step']),
            training_config=meta.get('training_config') or {},
            optimizer_state=optimizer_state,
            extra=meta.get('extra') or {},
            visibility=_checked_visibility(tensors.get(_VISIBILITY), scene.num_gaussians),
            objects=_checked_objects(meta.get('objects'), tensors.get(_OBJECT_LABELS),
                                     scene.num_gaussians),
            view_direction=_checked_view_direction(tensors.get(_VIEW_DIRECTION),
                                                   scene.num_gaussians))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CheckpointError(f'checkpoint {path}: malformed description: {exc}') from exc
    _check_finite(path, checkpoint.field_state)
    if means is not None:
        checkpoint.check_scene(means)
    if text_encoder_id is not None:
        checkpoint.check_encoder(text_encoder_id)
    return checkpoint


def remove_stale_temp_files(folder: PathLike) -> list:
    """Remove the temp files (``.<name>.safetensors.*.tmp``) a killed save left in ``folder``.

    Call it only while nothing else writes checkpoints there (training does, as a stage starts).
    Returns the removed paths.
    """
    removed = []
    for stale in Path(folder).glob('.*.safetensors.*.tmp'):
        try:
            stale.unlink()
        except FileNotFoundError:
            continue
        removed.append(stale)
    if removed:
        logger.info('removed %d temp file(s) of interrupted checkpoint writes in %s',
                    len(removed), folder)
    return removed
