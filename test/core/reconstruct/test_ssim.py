"""SSIM and PSNR of the reconstruction loss."""
import math

import pytest
import torch

from refersplat_ros.core.reconstruct.ssim import psnr, ssim


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 32, 40, generator=g)
    assert ssim(image, image).item() == pytest.approx(1.0, abs=1e-5)
    values = [ssim(image, (image + s * torch.randn(3, 32, 40, generator=g)).clamp(0, 1)).item()
              for s in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]


def test_ssim_is_differentiable_and_checks_shapes():
    a = torch.rand(3, 16, 16, requires_grad=True)
    (1 - ssim(a, torch.rand(3, 16, 16))).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='shapes differ'):
        ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 9))


def test_psnr_of_a_known_error():
    a = torch.zeros(3, 4, 4)
    assert psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-4)  # mse 0.01
    assert math.isinf(psnr(a, a))
