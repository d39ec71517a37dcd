"""Read and write Gaussian scenes: INRIA 3DGS ``.ply`` and 3DGS captures ``.pth``.

Formats (docs/METHOD.md#gaussians-input):

* ``.ply``: one ``vertex`` element of float32 properties ``x y z nx ny nz f_dc_0..2
  f_rest_0..(3K-4) opacity scale_0..2 rot_0..3``. ``f_rest`` is channel-major (all R
  coefficients, then G, then B); the SH degree follows from the number of ``f_rest_*``.
* ``.pth``: ``torch.save((model_args, iteration))`` where ``model_args`` is the 3DGS
  ``capture()`` tuple. Items 0-6 are the same in every variant: active_sh_degree, xyz [N,3],
  f_dc [N,1,3], f_rest [N,K-1,3], scaling [N,3] (log), rotation [N,4], opacity [N,1] (logit).
  Loaded with ``torch.load(weights_only=True)``: no pickled code is ever executed.

Every error is a ``SceneFormatError`` naming the file and the field. Before anything is
allocated the file must be a regular file within ``max_bytes`` (``core.files``), and what its
header declares must fit in it: a .ply's element counts times their row sizes, a .pth's records
(uncompressed, as ``torch.save`` writes them; a deflated record could expand a few MB into GB).
A scene without Gaussians is refused too (nothing downstream can use it).
"""
import io
import logging
import math
import os
from pathlib import Path
import pickle
from typing import BinaryIO, Union
import zipfile

import numpy as np
import torch
from torch import Tensor

from refersplat_ros.core.errors import SceneFormatError
from refersplat_ros.core.files import (atomic_write, DEFAULT_MAX_FILE_BYTES,
                                       open_regular_file, read_regular_file)
from refersplat_ros.core.scene.gaussians import GaussianScene, sh_degree_for_coeffs

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# capture() tuple lengths: 12 = vanilla 3DGS; 13 = LangSplat (language feature after opacity);
# 17 = ReferSplat (13 + mlp1/mlp2/mlp3/cross-attention state_dicts); 11 = the length named by
# ReferSplat's restore() (its branch unpacks 13 names; a real 11-tuple has the vanilla prefix).
CAPTURE_TUPLE_LENGTHS = (11, 12, 13, 17)


def _check_finite(path: Path, field: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise SceneFormatError(f'{path}: field {field!r} holds {bad} NaN/inf value(s)')


def _property_names(vertex) -> list:
    return [p.name for p in vertex.properties]


def _indexed(names: list, prefix: str) -> list:
    """Names ``prefix<i>`` sorted by i."""
    found = [n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return sorted(found, key=lambda n: int(n[len(prefix):]))


# Bytes of each PLY scalar type.
_PLY_TYPE_BYTES = {'char': 1, 'int8': 1, 'uchar': 1, 'uint8': 1, 'short': 2, 'int16': 2,
                   'ushort': 2, 'uint16': 2, 'int': 4, 'int32': 4, 'uint': 4, 'uint32': 4,
                   'float': 4, 'float32': 4, 'double': 8, 'float64': 8}
_PLY_HEADER_LIMIT = 1 << 16


def _check_ply_header(path: Path, handle: BinaryIO) -> None:
    """Refuse a .ply whose declared element counts cannot fit in the file.

    Checked before plyfile allocates arrays of the declared length; ``handle`` is left at the
    start. The smallest possible row is counted: the scalar sizes (a list property: its count) in a
    binary file, two characters per value (a digit and a separator) in an ASCII one.
    """
    size = os.fstat(handle.fileno()).st_size
    head = handle.read(_PLY_HEADER_LIMIT)
    handle.seek(0)
    end = head.find(b'end_header')
    newline = head.find(b'\n', end)
    if not head.startswith(b'ply') or end < 0 or newline < 0:
        return  # plyfile reports the malformed header
    ascii_format = False
    elements = []  # [name, count, smallest row in bytes]
    for line in head[:end].decode('ascii', errors='replace').splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == 'format':
            ascii_format = words[1] == 'ascii'
        elif len(words) >= 3 and words[0] == 'element':
            try:
                count = int(words[2])
            except ValueError:
                return
            if count < 0:
                raise SceneFormatError(f'{path}: element {words[1]!r} declares {count} rows')
            elements.append([words[1], count, 0])
        elif len(words) >= 3 and words[0] == 'property' and elements:
            kind = words[2] if words[1] == 'list' else words[1]
            elements[-1][2] += 2 if ascii_format else _PLY_TYPE_BYTES.get(kind, 1)
    body = size - (newline + 1)
    needed = sum(count * row for _name, count, row in elements)
    if needed > body:
        declared = ', '.join(f'{count} {name}' for name, count, _row in elements)
        raise SceneFormatError(f'{path}: header declares {declared} rows, at least {needed} '
                               f'bytes, but the file holds {body} bytes after its header '
                               '(truncated or forged)')


def load_ply(path: PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> GaussianScene:
    """Load an INRIA 3DGS ``.ply``; raises SceneFormatError on any malformed content.

    ``max_bytes`` limits the file size (``core.files``); an empty scene is refused.
    """
    from plyfile import PlyData

    path = Path(path)
    with open_regular_file(path, max_bytes, SceneFormatError, 'scene') as handle:
        _check_ply_header(path, handle)
        try:
            ply = PlyData.read(handle)
        except Exception as exc:  # plyfile raises many types for truncated/garbled files
            raise SceneFormatError(f'{path}: not a readable PLY file (truncated or malformed): '
                                   f'{type(exc).__name__}: {exc}') from exc
    if 'vertex' not in [e.name for e in ply.elements]:
        raise SceneFormatError(f'{path}: missing element "vertex"')
    vertex = ply['vertex']
    n = vertex.count
    if n == 0:
        raise SceneFormatError(f'{path}: the scene has no Gaussians (element "vertex" is empty)')
    try:
        data = vertex.data
        if len(data) != n:
            raise ValueError(f'{len(data)} rows')
    except Exception as exc:
        raise SceneFormatError(f'{path}: vertex data is truncated ({exc})') from exc
    columns = _VertexColumns(path, data, _property_names(vertex))
    sh = _ply_sh(path, columns, n)
    logger.debug('%s: %d Gaussians, SH degree %d', path, n, sh_degree_for_coeffs(sh.shape[1]))
    return GaussianScene(
        means=torch.from_numpy(columns(['x', 'y', 'z'])),
        quats=torch.from_numpy(columns(['rot_0', 'rot_1', 'rot_2', 'rot_3'])),
        log_scales=torch.from_numpy(columns(['scale_0', 'scale_1', 'scale_2'])),
        opacity_logits=torch.from_numpy(np.ascontiguousarray(columns(['opacity'])[:, 0])),
        sh=torch.from_numpy(sh),
    )


class _VertexColumns:
    """Float32 columns of a PLY vertex element, checked present and finite."""

    def __init__(self, path: Path, data, names):
        self.path, self.data, self.names = path, data, names

    def __call__(self, fields: list) -> np.ndarray:  # -> [N, len(fields)]
        missing = [f for f in fields if f not in self.names]
        if missing:
            raise SceneFormatError(f'{self.path}: missing field(s) {", ".join(missing)} in '
                                   'element "vertex"')
        arr = np.stack([np.asarray(self.data[f], dtype=np.float32) for f in fields], axis=1)
        for f, col in zip(fields, arr.T):
            _check_finite(self.path, f, col)
        return arr


def _ply_sh(path: Path, columns: _VertexColumns, n: int) -> np.ndarray:  # -> [N, K, 3]
    """SH coefficients from f_dc_* and the channel-major f_rest_* of an INRIA .ply."""
    rest_names = _indexed(columns.names, 'f_rest_')
    if rest_names != [f'f_rest_{i}' for i in range(len(rest_names))]:
        raise SceneFormatError(f'{path}: fields f_rest_* are not numbered 0..{len(rest_names)-1}')
    num_rest = len(rest_names)
    if num_rest % 3 != 0:
        raise SceneFormatError(f'{path}: {num_rest} f_rest_* fields is not a multiple of 3')
    k = num_rest // 3 + 1
    try:
        sh_degree_for_coeffs(k)
    except ValueError:
        raise SceneFormatError(f'{path}: {num_rest} f_rest_* fields matches no SH degree '
                               '(expected 0, 9, 24 or 45)') from None
    f_rest = columns(rest_names) if num_rest else np.zeros((n, 0), np.float32)
    sh = np.empty((n, k, 3), dtype=np.float32)
    sh[:, 0] = columns(['f_dc_0', 'f_dc_1', 'f_dc_2'])
    # Channel-major on disk: (N, 3, K-1) -> (N, K-1, 3).
    sh[:, 1:] = f_rest.reshape(n, 3, k - 1).transpose(0, 2, 1)
    return sh


def save_ply(scene: GaussianScene, path: PathLike) -> None:
    """Write ``scene`` as an INRIA 3DGS binary ``.ply`` (float32, the standard field order).

    Written atomically: a reader never sees half a file.
    """
    import io

    from plyfile import PlyData, PlyElement

    path = Path(path)
    n, k = scene.num_gaussians, scene.sh.shape[1]

    def arr(t: Tensor) -> np.ndarray:
        return t.detach().to('cpu', torch.float32).numpy().reshape(n, -1)

    f_rest = arr(scene.sh[:, 1:].transpose(1, 2))  # channel-major
    fields = (['x', 'y', 'z', 'nx', 'ny', 'nz', 'f_dc_0', 'f_dc_1', 'f_dc_2']
              + [f'f_rest_{i}' for i in range(3 * (k - 1))]
              + ['opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3'])
    values = np.concatenate([
        arr(scene.means), np.zeros((n, 3), np.float32), arr(scene.sh[:, 0]), f_rest,
        arr(scene.opacity_logits), arr(scene.log_scales), arr(scene.quats)], axis=1)
    records = np.empty(n, dtype=[(f, 'f4') for f in fields])
    for i, f in enumerate(fields):
        records[f] = values[:, i]
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(records, 'vertex')]).write(buffer)
    atomic_write(path, buffer.getvalue())


def _tensor_field(path: Path, field: str, value, shape: tuple) -> Tensor:
    """Check a capture tensor's shape (-1 = any) and values; return it as float32 CPU."""
    if not isinstance(value, Tensor):
        raise SceneFormatError(f'{path}: capture field {field!r} is a '
                               f'{type(value).__name__}, expected a tensor')
    if value.dim() != len(shape) or any(s not in (-1, v) for s, v in zip(shape, value.shape)):
        raise SceneFormatError(f'{path}: capture field {field!r} has shape '
                               f'{tuple(value.shape)}, expected {shape}')
    value = value.detach().to('cpu', torch.float32)
    if not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise SceneFormatError(f'{path}: capture field {field!r} holds {bad} NaN/inf value(s)')
    return value


def _check_torch_archive(path: Path, data: bytes) -> None:
    """Refuse a .pth whose records would expand beyond the file when loaded.

    ``torch.save`` writes a zip archive of uncompressed ("stored") records, and ``torch.load``
    checks each tensor storage against its record's size; but it also inflates deflated
    records, so a 2 MB archive may hold a 2 GiB record. Only stored records whose sizes add up
    to no more than the file are accepted (torch's own files always are). The pre-1.6 non-zip
    format declares its storage sizes in the stream and is refused.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise SceneFormatError(
            f'{path}: not a readable zip-format torch capture (truncated, corrupt, or the '
            f'pre-1.6 legacy format, which is not supported): {exc}') from exc
    packed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise SceneFormatError(
            f'{path}: {len(packed)} compressed record(s) (e.g. {packed[0]!r}); torch.save '
            'writes them uncompressed, and a compressed one may expand far beyond the file')
    total = sum(r.file_size for r in records)
    if total > len(data):
        raise SceneFormatError(f'{path}: records declare {total} bytes, more than the '
                               f'{len(data)}-byte file holds')


def load_capture_pth(path: PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> GaussianScene:
    """Load the Gaussians of a 3DGS / LangSplat / ReferSplat capture ``chkpnt*.pth``.

    Accepts ``(model_args, iteration)`` or a bare ``model_args`` tuple of length 11, 12, 13
    or 17; only items 0-6 (the Gaussians) are used. All SH coefficients stored are kept.
    ``max_bytes`` limits the file size; records must fit in the file (no inflation).
    """
    path = Path(path)
    data = read_regular_file(path, max_bytes, SceneFormatError, 'scene')
    _check_torch_archive(path, data)
    try:
        obj = torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()
                       if 'Unsupported' in line or 'unpickler error' in line.lower()), '')
        raise SceneFormatError(
            f'{path}: refused to load: the capture holds objects other than tensors and '
            f'plain containers, and loading it would execute pickled code '
            f'(torch.load weights_only=True failed; {detail})') from exc
    except Exception as exc:
        raise SceneFormatError(f'{path}: not a readable torch capture (truncated or '
                               f'corrupt): {type(exc).__name__}: {exc}') from exc
    model_args = obj
    if (isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[0], (tuple, list))):
        model_args, iteration = obj
        logger.debug('%s: capture of iteration %s', path, iteration)
    if not isinstance(model_args, (tuple, list)):
        raise SceneFormatError(f'{path}: expected (model_args, iteration) or a capture() tuple, '
                               f'got {type(model_args).__name__}')
    if len(model_args) not in CAPTURE_TUPLE_LENGTHS:
        raise SceneFormatError(f'{path}: capture() tuple has {len(model_args)} items, expected '
                               f'one of {CAPTURE_TUPLE_LENGTHS}')
    active_sh_degree = model_args[0]
    if not isinstance(active_sh_degree, int) or not 0 <= active_sh_degree <= 3:
        raise SceneFormatError(f"{path}: capture field 'active_sh_degree' is "
                               f'{active_sh_degree!r}, expected an int in 0..3')
    xyz = _tensor_field(path, 'xyz', model_args[1], (-1, 3))
    n = xyz.shape[0]
    if n == 0:
        raise SceneFormatError(f"{path}: the scene has no Gaussians (checkpoint field 'xyz' "
                               'is empty)')
    f_dc = _tensor_field(path, 'features_dc', model_args[2], (n, 1, 3))
    f_rest = _tensor_field(path, 'features_rest', model_args[3], (n, -1, 3))
    k = f_rest.shape[1] + 1
    if (round(math.sqrt(k)) ** 2 != k) or k > 16:
        raise SceneFormatError(f"{path}: capture field 'features_rest' has {k - 1} "
                               'coefficients per channel, expected 0, 3, 8 or 15')
    scaling = _tensor_field(path, 'scaling', model_args[4], (n, 3))
    rotation = _tensor_field(path, 'rotation', model_args[5], (n, 4))
    opacity = _tensor_field(path, 'opacity', model_args[6], (n, 1))
    if active_sh_degree != sh_degree_for_coeffs(k):
        logger.info('%s: active_sh_degree %d < stored SH degree %d; keeping all coefficients',
                    path, active_sh_degree, sh_degree_for_coeffs(k))
    return GaussianScene(means=xyz, quats=rotation, log_scales=scaling,
                         opacity_logits=opacity[:, 0].contiguous(),
                         sh=torch.cat([f_dc, f_rest], dim=1))


def load_scene(path: PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> GaussianScene:
    """Load a Gaussian scene, choosing the reader by suffix (``.ply``, ``.pth`` / ``.pt``).

    ``max_bytes`` limits the file size (a regular file only, see ``core.files``).
    """
    suffix = Path(path).suffix.lower()
    if suffix == '.ply':
        return load_ply(path, max_bytes)
    if suffix in ('.pth', '.pt'):
        return load_capture_pth(path, max_bytes)
    raise SceneFormatError(f'{path}: unknown scene format {suffix!r} (expected .ply or .pth)')
