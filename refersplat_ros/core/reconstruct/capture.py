"""A user's capture: photographs, their cameras, and the sparse points the cameras came with.

Two layouts, the ones every 3DGS tool writes (docs/RECONSTRUCT.md#input):

- **COLMAP**: ``sparse/0/{cameras,images,points3D}.{bin,txt}`` and ``images/``; the sparse points
  (``points3D``) initialise the Gaussians;
- **transforms.json** (nerfstudio, Blender): camera-to-world poses and intrinsics; no points,
  so the Gaussians start at random inside the cameras' bounding box.

Held-out views (for PSNR) are named by the caller, or every ``test_every``-th image in name order
(the 3DGS ``--eval`` convention, ``llffhold`` = 8).
"""
from dataclasses import dataclass
import logging
from pathlib import Path
import re
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from refersplat_ros.core.errors import CameraFormatError, DatasetError
from refersplat_ros.core.scene.cameras import (Camera, read_colmap_model, read_colmap_points,
                                               read_transforms_json)
from refersplat_ros.core.scene.images import read_rgb

logger = logging.getLogger(__name__)

#: Image file extensions tried for a camera whose name has none (transforms.json).
IMAGE_SUFFIXES = ('', '.png', '.jpg', '.jpeg', '.JPG', '.PNG')


@dataclass
class Capture:
    """Posed photographs of one scene.

    Attributes:
        cameras: One camera per image, sorted by name.
        images: RGB in [0, 1] at each camera's resolution. [3, H, W] each
        points: Sparse 3D points (COLMAP ``points3D``), or None. [M, 3]
        point_colors: Their colours in [0, 1], or None. [M, 3]
        test: Indices of the held-out views (never fitted; PSNR is measured on them).
    """

    cameras: List[Camera]
    images: List[Tensor]
    points: Optional[Tensor] = None
    point_colors: Optional[Tensor] = None
    test: Sequence[int] = ()

    @property
    def train(self) -> List[int]:
        held = set(self.test)
        return [i for i in range(len(self.cameras)) if i not in held]

    def __post_init__(self):
        if len(self.cameras) != len(self.images):
            raise ValueError(f'Capture: {len(self.cameras)} cameras but {len(self.images)} '
                             'images')
        for camera, image in zip(self.cameras, self.images):
            if tuple(image.shape) != (3, camera.height, camera.width):
                raise ValueError(f'Capture: image of {camera.name} has shape '
                                 f'{tuple(image.shape)}, camera is {camera.width}x'
                                 f'{camera.height}')
        if not self.train:
            raise DatasetError('the capture has no view left to fit (every view is held out)')


def _find_image(root: Path, images_dir: str, name: str) -> Path:
    for folder in (root / images_dir, root):
        for suffix in IMAGE_SUFFIXES:
            path = folder / (name + suffix)
            if path.is_file():
                return path
    raise DatasetError(f'{root}: no image file for camera {name!r} in {images_dir}/')


def _is_frame(name: str, item: Union[int, str]) -> bool:
    """Tell whether an image is a held-out frame.

    Named by its stem (``frame_00019``) or name, or by the number its stem ends with (19).
    """
    stem = Path(name).stem
    if isinstance(item, int):
        digits = re.search(r'(\d+)$', stem)
        return digits is not None and int(digits.group(1)) == item
    return item in (name, stem) or Path(item).stem == stem


def load_capture(root, *, images_dir: str = 'images',
                 held_out: Optional[Sequence[Union[int, str]]] = None,
                 test_every: int = 8, max_height: Optional[int] = None,
                 background: Optional[Sequence[float]] = None) -> Capture:
    """Read a COLMAP or transforms.json capture folder.

    Args:
        root: The capture folder.
        images_dir: Image folder under ``root``.
        held_out: The held-out views: image names (with or without extension) or frame
            numbers (the number an image's stem ends with); None: every ``test_every``-th
            view (0: none).
        test_every: See ``held_out``.
        max_height: Cameras taller than this are scaled down to it (and their images).
        background: RGB in [0, 1] that transparent pixels of RGBA images are composited over
            (the fit's background); None: their stored colour.

    Raises:
        CameraFormatError: no camera file, or a malformed one.
        DatasetError: a missing or unreadable image, or no view left to fit.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'{root}: capture folder not found')
    sparse = root / 'sparse' / '0'
    points = colors = None
    if sparse.is_dir():
        cameras = read_colmap_model(sparse)
        try:
            xyz, rgb = read_colmap_points(sparse)
        except CameraFormatError as exc:
            logger.warning('%s: no usable sparse points (%s): the Gaussians start at random',
                           sparse, exc)
            xyz = rgb = None
        if xyz is not None and len(xyz):
            points, colors = xyz.float(), rgb.float() / 255.0
    elif (root / 'transforms.json').is_file():
        cameras = read_transforms_json(root / 'transforms.json')
    else:
        raise CameraFormatError(f'{root}: neither sparse/0 (COLMAP) nor transforms.json')
    if not cameras:
        raise CameraFormatError(f'{root}: the camera file lists no image')
    names = sorted(cameras)
    cams, images = [], []
    for name in names:
        camera = cameras[name]
        if max_height is not None and camera.height > max_height:
            width = max(1, round(camera.width * max_height / camera.height))
            camera = camera.resized(width, max_height)
        cams.append(camera)
        images.append(read_rgb(_find_image(root, images_dir, name), camera.width,
                               camera.height, background=background))
    if held_out is not None:
        test, missing = [], []
        for item in held_out:
            found = [i for i, n in enumerate(names) if _is_frame(n, item)]
            (test.extend(found) if found else missing.append(str(item)))
        if missing:
            raise DatasetError(f'{root}: held-out views not in the capture: '
                               f'{", ".join(missing)}')
        test = sorted(set(test))
    else:
        test = [i for i in range(len(names)) if test_every > 0 and i % test_every == 0]
        if len(test) == len(names):
            test = []
    logger.info('%s: %d views (%d held out), %s sparse points', root, len(names), len(test),
                'no' if points is None else len(points))
    return Capture(cams, images, points, colors, test)


def camera_centres(cameras: Sequence[Camera]) -> Tensor:  # [C, 3]
    return torch.stack([c.center.float() for c in cameras])
