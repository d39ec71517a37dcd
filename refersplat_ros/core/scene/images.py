"""Reading the photographs of a capture: RGB in [0, 1] at a camera's resolution."""
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from refersplat_ros.core.errors import DatasetError


def read_rgb(path, width: int, height: int) -> Tensor:  # [3, H, W] float32 in [0, 1]
    """Read an image file as RGB, resized (bilinear) to ``width`` x ``height`` if it differs.

    Raises:
        DatasetError: the file is missing or not an image PIL can read.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as img:
            rgb = img.convert('RGB')
    except FileNotFoundError:
        raise DatasetError(f'{path}: image file not found') from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f'{path}: cannot read image ({exc})') from exc
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
