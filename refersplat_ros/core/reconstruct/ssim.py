"""SSIM with an 11x11 Gaussian window (sigma 1.5), as the 3DGS loss uses it (``loss_utils.ssim``).

gsplat 1.5 ships no SSIM of its own (its trainer imports the CUDA ``fused_ssim`` package); this
is the reference definition in a few torch ops, differentiable, any device.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW = 11
SIGMA = 1.5
C1 = 0.01 ** 2
C2 = 0.03 ** 2


def _window(channels: int, dtype, device) -> Tensor:  # [C, 1, 11, 11]
    x = torch.arange(WINDOW, dtype=dtype, device=device) - WINDOW // 2
    g = torch.exp(-x ** 2 / (2 * SIGMA ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, WINDOW, WINDOW).contiguous()


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM of two images [C, H, W] (or [B, C, H, W]) in [0, 1]; zero padding at borders."""
    if a.shape != b.shape:
        raise ValueError(f'ssim: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    if a.dim() == 3:
        a, b = a[None], b[None]
    channels = a.shape[1]
    w = _window(channels, a.dtype, a.device)

    def blur(x):
        return F.conv2d(x, w, padding=WINDOW // 2, groups=channels)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + C1) * (2 * cov + C2)
    den = (mu_a ** 2 + mu_b ** 2 + C1) * (var_a + var_b + C2)
    return (num / den).mean()


def psnr(a: Tensor, b: Tensor) -> float:
    """Peak signal-to-noise ratio (dB) of two images in [0, 1]."""
    a = a.detach().float().clamp(0, 1)
    mse = torch.mean((a - b.detach().float().to(a.device)) ** 2).item()
    return float('inf') if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()
