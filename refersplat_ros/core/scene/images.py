"""Reading the photographs of a capture: RGB in [0, 1] at a camera's resolution."""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from refersplat_ros.core.errors import DatasetError


def read_rgb(path, width: int, height: int,
             background: Optional[Sequence[float]] = None) -> Tensor:  # [3, H, W] in [0, 1]
    """Read an image file as RGB, resized (bilinear) to ``width`` x ``height`` if it differs.

    With ``background`` (RGB in [0, 1]), an image with an alpha channel (Blender and nerfstudio
    captures) is composited over it; without, its transparent pixels keep their stored colour.

    Raises:
        DatasetError: the file is missing or not an image PIL can read.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as img:
            if background is not None and ('A' in img.getbands() or 'transparency' in img.info):
                rgba = img.convert('RGBA')
                under = Image.new('RGBA', rgba.size, tuple(round(255 * c) for c in background)
                                  + (255,))
                rgb = Image.alpha_composite(under, rgba).convert('RGB')
            else:
                rgb = img.convert('RGB')
    except FileNotFoundError:
        raise DatasetError(f'{path}: image file not found') from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f'{path}: cannot read image ({exc})') from exc
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
