"""Pinhole cameras (OpenCV convention) and their readers/writers: COLMAP, transforms.json.

Convention: x right, y down, z forward; ``world_to_camera`` maps world points to camera
coordinates, ``K`` maps camera coordinates to pixels whose centres sit at integer + 0.5.
"""
from dataclasses import dataclass, replace
import json
import logging
import math
from pathlib import Path
import struct
from typing import Optional, Sequence

import torch
from torch import Tensor

from refersplat_ros.core.errors import CameraFormatError

logger = logging.getLogger(__name__)


@dataclass
class Camera:
    """A pinhole camera, OpenCV convention (x right, y down, z forward).

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        fx: Focal length along x, in pixels.
        fy: Focal length along y, in pixels.
        cx: Principal point x, in pixels (pixel centres at integer + 0.5).
        cy: Principal point y, in pixels.
        world_to_camera: Rigid transform world -> camera. [4, 4] float32
        name: Image name (e.g. COLMAP image name) or ''.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: Tensor  # [4, 4]
    name: str = ''

    def __post_init__(self):
        self.width = int(self.width)
        self.height = int(self.height)
        self.fx, self.fy, self.cx, self.cy = (float(v) for v in (self.fx, self.fy, self.cx,
                                                                 self.cy))
        w2c = torch.as_tensor(self.world_to_camera, dtype=torch.float32)
        if tuple(w2c.shape) != (4, 4):
            raise ValueError(f'Camera.world_to_camera must be [4, 4], got {tuple(w2c.shape)}')
        self.world_to_camera = w2c
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'Camera size must be positive, got {self.width}x{self.height}')
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f'Camera focal lengths must be positive, got {self.fx}, {self.fy}')

    @property
    def K(self) -> Tensor:  # [3, 3]
        """Intrinsic matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (float32)."""
        return self.intrinsics()

    def intrinsics(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:  # [3, 3]
        """Intrinsic matrix built directly in ``dtype`` (no float32 rounding for float64)."""
        return torch.tensor([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]],
                            dtype=dtype, device=device)

    @property
    def camera_to_world(self) -> Tensor:  # [4, 4]
        """Inverse of ``world_to_camera`` (float32)."""
        return rigid_inverse(self.world_to_camera)

    @property
    def center(self) -> Tensor:  # [3]
        """Camera centre in world coordinates."""
        return self.camera_to_world[:3, 3]

    @property
    def rotation(self) -> Tensor:  # [3, 3]
        """World -> camera rotation."""
        return self.world_to_camera[:3, :3]

    def resized(self, width: int, height: int) -> 'Camera':
        """Return the camera for an image resized to ``width`` x ``height`` (scales intrinsics)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, width=width, height=height, fx=self.fx * sx, fy=self.fy * sy,
                       cx=self.cx * sx, cy=self.cy * sy,
                       world_to_camera=self.world_to_camera.clone())

    @classmethod
    def look_at(
        cls,
        eye: Sequence[float],  # [3]
        target: Sequence[float],  # [3]
        up: Sequence[float] = (0.0, 0.0, 1.0),  # [3] world up
        *,
        width: int = 640,
        height: int = 480,
        fov_y_deg: float = 60.0,
        fx: Optional[float] = None,
        fy: Optional[float] = None,
        name: str = '',
    ) -> 'Camera':
        """Build a camera at ``eye`` looking at ``target`` with image-up along world ``up``.

        The principal point is the image centre; focal lengths come from ``fov_y_deg`` unless
        given (``fx`` defaults to ``fy``).
        """
        eye_t = torch.as_tensor(eye, dtype=torch.float64)
        forward = torch.as_tensor(target, dtype=torch.float64) - eye_t
        if float(forward.norm()) == 0.0:
            raise ValueError('look_at: eye and target coincide')
        z = forward / forward.norm()
        x = torch.linalg.cross(z, torch.as_tensor(up, dtype=torch.float64))
        if float(x.norm()) < 1e-9:
            raise ValueError('look_at: viewing direction is parallel to up')
        x = x / x.norm()
        y = torch.linalg.cross(z, x)
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye_t
        if fy is None:
            fy = 0.5 * height / torch.tan(torch.deg2rad(torch.tensor(fov_y_deg / 2.0))).item()
        fx = fy if fx is None else fx
        return cls(width, height, fx, fy, width / 2.0, height / 2.0,
                   rigid_inverse(c2w).float(), name)


def rigid_inverse(transform: Tensor) -> Tensor:  # [4, 4] -> [4, 4]
    """Invert a rigid 4x4 transform [R t; 0 1] exactly as [R^T, -R^T t; 0 1]."""
    rot = transform[:3, :3]
    out = torch.eye(4, dtype=transform.dtype, device=transform.device)
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ transform[:3, 3]
    return out


# ------------------------------------------------------------------------------------ COLMAP
# COLMAP camera models: id -> (name, number of params). Pose is world -> camera (OpenCV axes),
# q = (w, x, y, z); the upper-left pixel centre is (0.5, 0.5), as in our convention.
COLMAP_MODELS = {
    0: ('SIMPLE_PINHOLE', 3), 1: ('PINHOLE', 4), 2: ('SIMPLE_RADIAL', 4), 3: ('RADIAL', 5),
    4: ('OPENCV', 8), 5: ('OPENCV_FISHEYE', 8), 6: ('FULL_OPENCV', 12), 7: ('FOV', 5),
    8: ('SIMPLE_RADIAL_FISHEYE', 4), 9: ('RADIAL_FISHEYE', 5), 10: ('THIN_PRISM_FISHEYE', 12),
}
COLMAP_MODEL_IDS = {name: (model_id, n) for model_id, (name, n) in COLMAP_MODELS.items()}
# Models read as pinhole; the distortion ones lose their distortion (warned once per model).
_PINHOLE_MODELS = ('SIMPLE_PINHOLE', 'PINHOLE')
_DISTORTED_MODELS = ('SIMPLE_RADIAL', 'RADIAL', 'OPENCV')


@dataclass
class _ColmapCamera:
    model: str
    width: int
    height: int
    params: list


def qvec_to_rotmat(qvec: Sequence[float]) -> Tensor:  # [4] (w, x, y, z) -> [3, 3] float64
    """Rotation matrix of a (normalised) w-first quaternion."""
    q = torch.as_tensor(qvec, dtype=torch.float64)
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float64)


def rotmat_to_qvec(rot: Tensor) -> Tensor:  # [3, 3] -> [4] (w, x, y, z), w >= 0
    """Quaternion of a rotation matrix (eigenvector method, as COLMAP's scripts)."""
    r = torch.as_tensor(rot, dtype=torch.float64)
    rxx, ryx, rzx, rxy, ryy, rzy, rxz, ryz, rzz = r.reshape(-1).tolist()
    k = torch.tensor([
        [rxx - ryy - rzz, 0, 0, 0],
        [ryx + rxy, ryy - rxx - rzz, 0, 0],
        [rzx + rxz, rzy + ryz, rzz - rxx - ryy, 0],
        [ryz - rzy, rzx - rxz, rxy - ryx, rxx + ryy + rzz]], dtype=torch.float64) / 3.0
    vals, vecs = torch.linalg.eigh(k, UPLO='L')
    q = vecs[[3, 0, 1, 2], torch.argmax(vals)]
    return -q if q[0] < 0 else q


def _intrinsics(path: Path, cam_id: int, cam: _ColmapCamera, warned: set):
    model, p = cam.model, cam.params
    if model not in _PINHOLE_MODELS + _DISTORTED_MODELS:
        raise CameraFormatError(f'{path}: camera {cam_id} has unsupported model {model} '
                                f'(supported: {", ".join(_PINHOLE_MODELS + _DISTORTED_MODELS)})')
    if model in _DISTORTED_MODELS and model not in warned:
        warned.add(model)
        logger.warning('%s: camera model %s: distortion parameters are ignored (read as a '
                       'pinhole camera); undistort the images for exact results', path, model)
    if model in ('PINHOLE', 'OPENCV'):
        return p[0], p[1], p[2], p[3]
    return p[0], p[0], p[1], p[2]


def _check_params(path: Path, cam_id: int, model: str, params: list) -> None:
    n = COLMAP_MODEL_IDS[model][1]
    if len(params) != n:
        raise CameraFormatError(f'{path}: camera {cam_id} ({model}) has {len(params)} params, '
                                f'expected {n}')


def _read_cameras_text(path: Path) -> dict:
    cams = {}
    for lineno, line in _data_lines(path):
        elems = line.split()
        try:
            cam_id, model = int(elems[0]), elems[1]
            width, height = int(elems[2]), int(elems[3])
            params = [float(v) for v in elems[4:]]
        except (IndexError, ValueError) as exc:
            raise CameraFormatError(f'{path}:{lineno}: malformed camera line ({exc})') from exc
        if model not in COLMAP_MODEL_IDS:
            raise CameraFormatError(f'{path}:{lineno}: unknown camera model {model!r}')
        _check_params(path, cam_id, model, params)
        cams[cam_id] = _ColmapCamera(model, width, height, params)
    return cams


def _data_lines(path: Path):
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith('#'):
                yield lineno, line


def _read_images_text(path: Path) -> list:
    """List of (image_id, qvec, tvec, camera_id, name)."""
    images = []
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith('#'):
            continue
        elems = line.split()
        try:
            image_id = int(elems[0])
            qvec = [float(v) for v in elems[1:5]]
            tvec = [float(v) for v in elems[5:8]]
            cam_id = int(elems[8])
            name = ' '.join(elems[9:])
            if len(qvec) != 4 or len(tvec) != 3 or not name:
                raise ValueError('expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME')
        except (IndexError, ValueError) as exc:
            raise CameraFormatError(f'{path}:{i}: malformed image line ({exc})') from exc
        images.append((image_id, qvec, tvec, cam_id, name))
        i += 1  # the POINTS2D line that follows every image line (may be empty)
    return images


class _BinaryReader:
    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        self.pos = 0

    def read(self, fmt: str, field: str):
        size = struct.calcsize('<' + fmt)
        if self.pos + size > len(self.data):
            raise CameraFormatError(f'{self.path}: truncated file while reading {field}')
        values = struct.unpack_from('<' + fmt, self.data, self.pos)
        self.pos += size
        return values

    def read_string(self, field: str) -> str:
        end = self.data.find(b'\x00', self.pos)
        if end < 0:
            raise CameraFormatError(f'{self.path}: truncated file while reading {field}')
        text = self.data[self.pos:end].decode('utf-8')
        self.pos = end + 1
        return text


def _read_cameras_binary(path: Path) -> dict:
    reader = _BinaryReader(path)
    cams = {}
    (num,) = reader.read('Q', 'number of cameras')
    for _ in range(num):
        cam_id, model_id, width, height = reader.read('iiQQ', 'camera header')
        if model_id not in COLMAP_MODELS:
            raise CameraFormatError(f'{path}: camera {cam_id} has unknown model id {model_id}')
        model, n = COLMAP_MODELS[model_id]
        params = list(reader.read('d' * n, f'params of camera {cam_id}'))
        cams[cam_id] = _ColmapCamera(model, width, height, params)
    return cams


def _read_images_binary(path: Path) -> list:
    reader = _BinaryReader(path)
    images = []
    (num,) = reader.read('Q', 'number of images')
    for _ in range(num):
        values = reader.read('idddddddi', 'image header')
        image_id, qvec, tvec, cam_id = values[0], values[1:5], values[5:8], values[8]
        name = reader.read_string(f'name of image {image_id}')
        (num_points,) = reader.read('Q', f'number of 2D points of image {image_id}')
        reader.read('ddq' * num_points, f'2D points of image {image_id}')
        images.append((image_id, list(qvec), list(tvec), cam_id, name))
    return images


def _build_cameras(sparse_dir: Path, cams: dict, images: list) -> dict:
    warned: set = set()
    out = {}
    for image_id, qvec, tvec, cam_id, name in images:
        if cam_id not in cams:
            raise CameraFormatError(f'{sparse_dir}: image {image_id} ({name}) refers to missing '
                                    f'camera {cam_id}')
        cam = cams[cam_id]
        fx, fy, cx, cy = _intrinsics(sparse_dir, cam_id, cam, warned)
        w2c = torch.eye(4, dtype=torch.float64)
        w2c[:3, :3] = qvec_to_rotmat(qvec)
        w2c[:3, 3] = torch.tensor(tvec, dtype=torch.float64)
        if not torch.isfinite(w2c).all():
            raise CameraFormatError(f'{sparse_dir}: image {name} has a non-finite pose')
        out[name] = Camera(cam.width, cam.height, fx, fy, cx, cy, w2c.float(), name)
    return out


def read_colmap_model(sparse_dir) -> 'dict[str, Camera]':
    """Read a COLMAP model folder (``sparse/0``): binary if present, else text.

    Returns cameras keyed by image name, in image-id order. Models SIMPLE_PINHOLE and PINHOLE
    are exact; SIMPLE_RADIAL, RADIAL and OPENCV are read with their distortion ignored (a
    warning is logged); other models raise CameraFormatError.
    """
    sparse_dir = Path(sparse_dir)
    if (sparse_dir / 'cameras.bin').is_file() and (sparse_dir / 'images.bin').is_file():
        cams = _read_cameras_binary(sparse_dir / 'cameras.bin')
        images = _read_images_binary(sparse_dir / 'images.bin')
    elif (sparse_dir / 'cameras.txt').is_file() and (sparse_dir / 'images.txt').is_file():
        cams = _read_cameras_text(sparse_dir / 'cameras.txt')
        images = _read_images_text(sparse_dir / 'images.txt')
    else:
        raise CameraFormatError(f'{sparse_dir}: no COLMAP model (cameras.bin + images.bin or '
                                'cameras.txt + images.txt)')
    images.sort(key=lambda item: item[0])
    return _build_cameras(sparse_dir, cams, images)


def read_colmap_points(sparse_dir) -> 'tuple[Tensor, Tensor]':
    """Read ``points3D.bin`` (or ``.txt``): xyz [M, 3] float32 and rgb [M, 3] uint8."""
    sparse_dir = Path(sparse_dir)
    xyz, rgb = [], []
    if (sparse_dir / 'points3D.bin').is_file():
        reader = _BinaryReader(sparse_dir / 'points3D.bin')
        (num,) = reader.read('Q', 'number of points')
        for _ in range(num):
            values = reader.read('QdddBBBd', 'point')
            xyz.append(values[1:4])
            rgb.append(values[4:7])
            (track,) = reader.read('Q', 'track length')
            reader.read('ii' * track, 'track')
    elif (sparse_dir / 'points3D.txt').is_file():
        path = sparse_dir / 'points3D.txt'
        for lineno, line in _data_lines(path):
            elems = line.split()
            try:
                xyz.append([float(v) for v in elems[1:4]])
                rgb.append([int(v) for v in elems[4:7]])
            except (IndexError, ValueError) as exc:
                raise CameraFormatError(f'{path}:{lineno}: malformed point ({exc})') from exc
    else:
        raise CameraFormatError(f'{sparse_dir}: no points3D.bin or points3D.txt')
    return (torch.tensor(xyz, dtype=torch.float32).reshape(-1, 3),
            torch.tensor(rgb, dtype=torch.uint8).reshape(-1, 3))


def _colmap_records(cameras: 'list[Camera]', points_xyz, points_rgb):
    names = [c.name for c in cameras]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError('COLMAP writers need a unique, non-empty name for every camera')
    if any(any(ch.isspace() for ch in n) for n in names):
        raise ValueError('COLMAP image names must not contain whitespace')
    records = []
    for i, cam in enumerate(cameras, 1):
        w2c = cam.world_to_camera.double()
        records.append((i, rotmat_to_qvec(w2c[:3, :3]).tolist(), w2c[:3, 3].tolist(), cam))
    xyz = (torch.zeros(0, 3) if points_xyz is None
           else torch.as_tensor(points_xyz, dtype=torch.float64).reshape(-1, 3))
    if points_rgb is None:
        rgb = torch.full((xyz.shape[0], 3), 128, dtype=torch.uint8)
    else:
        rgb = torch.as_tensor(points_rgb).reshape(-1, 3)
        if rgb.is_floating_point():
            rgb = (rgb.double().clamp(0, 1) * 255).round()
        rgb = rgb.to(torch.uint8)
    if rgb.shape[0] != xyz.shape[0]:
        raise ValueError(f'points_rgb has {rgb.shape[0]} rows, points_xyz {xyz.shape[0]}')
    return records, xyz, rgb


def write_colmap_text(sparse_dir, cameras: 'list[Camera]', points_xyz=None,
                      points_rgb=None) -> None:
    """Write cameras.txt / images.txt / points3D.txt (one PINHOLE camera per image).

    ``points_xyz`` [M, 3] and ``points_rgb`` [M, 3] (uint8, or float in [0, 1]) are optional;
    points get an empty track and error 0.
    """
    sparse_dir = Path(sparse_dir)
    records, xyz, rgb = _colmap_records(cameras, points_xyz, points_rgb)
    sparse_dir.mkdir(parents=True, exist_ok=True)
    with open(sparse_dir / 'cameras.txt', 'w', encoding='utf-8') as f:
        f.write('# Camera list with one line of data per camera:\n'
                '#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n'
                f'# Number of cameras: {len(records)}\n')
        for i, _, _, cam in records:
            f.write(f'{i} PINHOLE {cam.width} {cam.height} {cam.fx!r} {cam.fy!r} '
                    f'{cam.cx!r} {cam.cy!r}\n')
    with open(sparse_dir / 'images.txt', 'w', encoding='utf-8') as f:
        f.write('# Image list with two lines of data per image:\n'
                '#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n'
                '#   POINTS2D[] as (X, Y, POINT3D_ID)\n'
                f'# Number of images: {len(records)}\n')
        for i, q, t, cam in records:
            f.write(' '.join([str(i)] + [repr(v) for v in q + t] + [str(i), cam.name]) + '\n\n')
    with open(sparse_dir / 'points3D.txt', 'w', encoding='utf-8') as f:
        f.write('# 3D point list with one line of data per point:\n'
                '#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n'
                f'# Number of points: {xyz.shape[0]}\n')
        for j, (p, c) in enumerate(zip(xyz.tolist(), rgb.tolist()), 1):
            f.write(f'{j} {p[0]!r} {p[1]!r} {p[2]!r} {c[0]} {c[1]} {c[2]} 0\n')


def write_colmap_binary(sparse_dir, cameras: 'list[Camera]', points_xyz=None,
                        points_rgb=None) -> None:
    """Write cameras.bin / images.bin / points3D.bin (one PINHOLE camera per image)."""
    sparse_dir = Path(sparse_dir)
    records, xyz, rgb = _colmap_records(cameras, points_xyz, points_rgb)
    sparse_dir.mkdir(parents=True, exist_ok=True)
    model_id = COLMAP_MODEL_IDS['PINHOLE'][0]
    with open(sparse_dir / 'cameras.bin', 'wb') as f:
        f.write(struct.pack('<Q', len(records)))
        for i, _, _, cam in records:
            f.write(struct.pack('<iiQQdddd', i, model_id, cam.width, cam.height,
                                cam.fx, cam.fy, cam.cx, cam.cy))
    with open(sparse_dir / 'images.bin', 'wb') as f:
        f.write(struct.pack('<Q', len(records)))
        for i, q, t, cam in records:
            f.write(struct.pack('<idddddddi', i, *q, *t, i))
            f.write(cam.name.encode('utf-8') + b'\x00')
            f.write(struct.pack('<Q', 0))
    with open(sparse_dir / 'points3D.bin', 'wb') as f:
        f.write(struct.pack('<Q', xyz.shape[0]))
        for j, (p, c) in enumerate(zip(xyz.tolist(), rgb.tolist()), 1):
            f.write(struct.pack('<QdddBBBdQ', j, *p, *c, 0.0, 0))


# ---------------------------------------------------------------------------- transforms.json
# nerfstudio / Blender store camera-to-world in OpenGL axes (x right, y up, z back).
_OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def read_transforms_json(path) -> 'dict[str, Camera]':
    """Read a nerfstudio or Blender ``transforms.json`` (OpenGL camera-to-world poses).

    Intrinsics come from ``fl_x/fl_y/cx/cy/w/h`` (top level or per frame; ``camera_angle_x``
    for Blender files). When ``w``/``h`` are absent the image file is opened for its size.
    Distortion coefficients are ignored with a warning. Cameras are keyed by ``file_path``
    without a leading ``./``.
    """
    path = Path(path)
    try:
        meta = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise CameraFormatError(f'{path}: no such transforms file') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CameraFormatError(f'{path}: not valid JSON ({exc})') from exc
    if not isinstance(meta, dict) or not isinstance(meta.get('frames'), list):
        raise CameraFormatError(f'{path}: missing field "frames" (a list)')
    if any(k in meta for k in ('k1', 'k2', 'p1', 'p2', 'k3')) and any(
            float(meta.get(k, 0.0)) != 0.0 for k in ('k1', 'k2', 'p1', 'p2', 'k3')):
        logger.warning('%s: distortion coefficients are ignored (read as pinhole)', path)
    out = {}
    for index, frame in enumerate(meta['frames']):
        where = f'{path}: frames[{index}]'
        if not isinstance(frame, dict) or 'file_path' not in frame:
            raise CameraFormatError(f'{where}: missing field "file_path"')
        name = str(frame['file_path'])
        name = name[2:] if name.startswith('./') else name
        try:
            c2w = torch.tensor(frame['transform_matrix'], dtype=torch.float64)
        except KeyError:
            raise CameraFormatError(f'{where}: missing field "transform_matrix"') from None
        except (TypeError, ValueError) as exc:
            raise CameraFormatError(f'{where}: malformed "transform_matrix" ({exc})') from exc
        if c2w.shape == (3, 4):
            c2w = torch.cat([c2w, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)])
        if c2w.shape != (4, 4) or not torch.isfinite(c2w).all():
            raise CameraFormatError(f'{where}: "transform_matrix" must be a finite 4x4 matrix')

        def get(key, default=None):
            return frame.get(key, meta.get(key, default))

        width, height = get('w'), get('h')
        if width is None or height is None:
            width, height = _image_size(path.parent, name, where)
        width, height = int(width), int(height)
        fx, fy = get('fl_x'), get('fl_y')
        if fx is None and get('camera_angle_x') is not None:
            fx = 0.5 * width / math.tan(0.5 * float(get('camera_angle_x')))
        if fy is None and get('camera_angle_y') is not None:
            fy = 0.5 * height / math.tan(0.5 * float(get('camera_angle_y')))
        if fx is None and fy is None:
            raise CameraFormatError(f'{where}: missing field "fl_x" (or "camera_angle_x")')
        fx = fy if fx is None else fx
        fy = fx if fy is None else fy
        cx, cy = get('cx', width / 2.0), get('cy', height / 2.0)
        c2w_cv = c2w @ _OPENGL_TO_OPENCV
        out[name] = Camera(width, height, fx, fy, cx, cy, rigid_inverse(c2w_cv).float(), name)
    return out


def _image_size(root: Path, name: str, where: str):
    from PIL import Image

    candidates = [root / name] + [root / (name + ext) for ext in ('.png', '.jpg', '.jpeg')]
    for candidate in candidates:
        if candidate.is_file():
            with Image.open(candidate) as img:
                return img.size
    raise CameraFormatError(f'{where}: missing fields "w"/"h" and no image file {name} to '
                            'read the size from')
