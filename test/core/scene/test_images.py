"""Reading a capture's photographs: RGB at the camera's size, alpha over a background."""
import numpy as np
from PIL import Image
import pytest
import torch

from refersplat_ros.core.errors import DatasetError
from refersplat_ros.core.scene.images import read_rgb


def test_rgba_images_are_composited_over_the_background(tmp_path):
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)   # opaque red
    pixels[0, 1] = (255, 0, 0, 0)     # transparent (stored red)
    pixels[1, :] = (0, 0, 255, 128)   # half-transparent blue
    Image.fromarray(pixels, 'RGBA').save(tmp_path / 'a.png')
    image = read_rgb(tmp_path / 'a.png', 2, 2, background=(1.0, 1.0, 1.0))
    assert torch.allclose(image[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(image[:, 0, 1], torch.tensor([1.0, 1.0, 1.0]))
    assert torch.allclose(image[:, 1, 0], torch.tensor([127 / 255, 127 / 255, 1.0]), atol=0.01)
    stored = read_rgb(tmp_path / 'a.png', 2, 2)  # no background: the stored colour
    assert torch.allclose(stored[:, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert read_rgb(tmp_path / 'a.png', 4, 6).shape == (3, 6, 4)


def test_unreadable_images_are_named(tmp_path):
    with pytest.raises(DatasetError, match='not found'):
        read_rgb(tmp_path / 'absent.png', 2, 2)
    (tmp_path / 'bad.png').write_bytes(b'no image')
    with pytest.raises(DatasetError, match='cannot read image'):
        read_rgb(tmp_path / 'bad.png', 2, 2)
