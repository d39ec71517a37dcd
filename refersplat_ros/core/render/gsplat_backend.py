"""gsplat CUDA backend of ``rasterize``: only imported and called when CUDA is available.

gsplat 1.5.3 renders any channel count through ``rasterization(colors=[N, C], sh_degree=None)``:
``rasterize_to_pixels`` pads C up to the next supported size (1-5, 8, 9, 16, 17, 32, 33, ...,
513) with zero channels and slices them off again, and ``rasterization`` splits C > 32 into
chunks of ``channel_chunk`` = 32 (``gsplat/cuda/_wrapper.py``, ``gsplat/rendering.py``).
Differences from the CPU backend: alpha is clamped at 0.999 (CPU, like 3DGS: 0.99), and float32
summation order differs.
"""
from typing import Optional

import torch
from torch import Tensor

from refersplat_ros.core.render.cpu import EPS2D, FAR_PLANE, NEAR_PLANE


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, C]
    viewmat: Tensor,  # [4, 4]
    K: Tensor,  # [3, 3]
    width: int,
    height: int,
    background: Optional[Tensor] = None,  # [C]
    return_depth: bool = False,
    return_info: bool = False,
):
    """Render with ``gsplat.rasterization``.

    Returns (image [C,H,W], alpha [H,W], depth|None, info|None); ``return_info`` renders packed
    and returns gsplat's ``meta`` (the keys of ``RenderOutput.info``).
    """
    if not torch.cuda.is_available():
        raise RuntimeError('the gsplat backend needs CUDA (torch.cuda.is_available() is False)')
    from gsplat import rasterization  # noqa: imported lazily, CUDA only

    device = means.device
    if device.type != 'cuda':
        raise RuntimeError(f'the gsplat backend needs CUDA tensors, got {device}')
    f32 = dict(dtype=torch.float32, device=device)
    num_channels = features.shape[1]
    colors, alphas, meta = rasterization(
        means=means.to(**f32),
        quats=quats.to(**f32),
        scales=scales.to(**f32),
        opacities=opacities.to(**f32),
        colors=features.to(**f32),
        viewmats=viewmat.to(**f32)[None],
        Ks=K.to(**f32)[None],
        width=width,
        height=height,
        near_plane=NEAR_PLANE,
        far_plane=FAR_PLANE,
        eps2d=EPS2D,
        sh_degree=None,
        packed=return_info,
        backgrounds=None if background is None else background.to(**f32)[None],
        render_mode='RGB+ED' if return_depth else 'RGB',
        rasterize_mode='classic',
    )
    colors, alpha = colors[0], alphas[0, ..., 0]  # [H, W, C(+1)], [H, W]
    depth = colors[..., num_channels] if return_depth else None
    image = colors[..., :num_channels].permute(2, 0, 1)
    info = None
    if return_info:
        info = {key: meta[key] for key in ('means2d', 'radii', 'gaussian_ids', 'width',
                                           'height', 'n_cameras')}
    return image, alpha, depth, info
