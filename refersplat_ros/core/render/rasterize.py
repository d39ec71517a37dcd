"""The differentiable Gaussian rasterizer: one public function, two backends.

``rasterize`` renders any per-Gaussian feature tensor (RGB, the ReferSplat logit m_i, 16-d
features, ...) through the alpha compositing of 3DGS (docs/METHOD.md#rasterized-logit). Backends:

* ``'cpu'``: the project's exact pure-torch compositor (``rasterize_cpu``), any device.
* ``'gsplat'``: ``gsplat.rasterization`` (CUDA only; never called without CUDA).

For training only features on frozen geometry, ``compositing_weights`` builds a per-view sparse
weight matrix once and ``WeightsCache`` keeps a bounded number of them (``compositing_weights``
module); their renders equal ``rasterize``.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from refersplat_ros.core.render.compositing import (compositing_weights, CompositingWeights,
                                                    WeightsCache)
from refersplat_ros.core.render.cpu import (ALPHA_MAX, ALPHA_MIN, EPS2D, NEAR_PLANE, rasterize_cpu,
                                            T_MIN)
from refersplat_ros.core.render.gsplat_internals import spherical_harmonics
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussians import GaussianScene

__all__ = [
    'ALPHA_MAX', 'ALPHA_MIN', 'EPS2D', 'NEAR_PLANE', 'T_MIN', 'BACKENDS', 'CompositingWeights',
    'RenderOutput', 'WeightsCache', 'compositing_weights', 'rasterize', 'render_scene',
    'resolve_backend', 'sh_colors',
]

BACKENDS = ('auto', 'cpu', 'gsplat')


@dataclass
class RenderOutput:
    """Result of ``rasterize``.

    Attributes:
        image: Composited features, plus ``(1 - alpha) * background`` if a background is given.
            [C, H, W]
        alpha: Accumulated opacity, 1 - final transmittance. [H, W]
        depth: Alpha-weighted expected camera-space depth ``sum(w z) / sum(w)`` (gsplat 'ED';
            0 where nothing is drawn), or None unless requested. [H, W]
        info: With ``return_info``, what gsplat's densification strategies read (gsplat's
            packed ``meta``): ``means2d`` [M, 2] pixel centres of the drawn Gaussians (a tensor
            in the graph: ``retain_grad`` gives their screen-space gradient), ``radii`` [M, 2],
            ``gaussian_ids`` [M] (index into the inputs), ``width``, ``height``,
            ``n_cameras`` (1). None otherwise.
    """

    image: Tensor  # [C, H, W]
    alpha: Tensor  # [H, W]
    depth: Optional[Tensor] = None  # [H, W]
    info: Optional[dict] = None


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map 'auto' to 'gsplat' for CUDA tensors with CUDA available, else 'cpu'."""
    if backend not in BACKENDS:
        raise ValueError(f'unknown rasterizer backend {backend!r}; choose one of {BACKENDS}')
    if backend == 'auto':
        return 'gsplat' if device.type == 'cuda' and torch.cuda.is_available() else 'cpu'
    if backend == 'gsplat' and not (torch.cuda.is_available() and device.type == 'cuda'):
        raise RuntimeError('rasterize backend "gsplat" needs CUDA tensors and '
                           'torch.cuda.is_available(); use backend="cpu"')
    return backend


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z), need not be normalised
    scales: Tensor,  # [N, 3] activated (not log)
    opacities: Tensor,  # [N] activated, in [0, 1]
    features: Tensor,  # [N, C] any per-Gaussian values
    camera: Camera,
    *,
    background: Optional[Tensor] = None,  # [C]; None: an empty pixel renders 0
    backend: str = 'auto',
    return_depth: bool = False,
    window: Optional[Tuple[int, int, int, int]] = None,
    check: Optional[Callable[[], None]] = None,
    return_info: bool = False,
) -> RenderOutput:
    """Alpha-composite per-Gaussian features for one pinhole camera.

    Differentiable w.r.t. means, quats, scales, opacities, features (and background).

    Args:
        means: Gaussian centres in world coordinates. [N, 3]
        quats: Rotations, (w, x, y, z). [N, 4]
        scales: Per-axis standard deviations. [N, 3]
        opacities: Opacities. [N]
        features: Values to composite, any channel count C >= 1. [N, C]
        camera: Pinhole camera (OpenCV convention); its size sets H x W.
        background: Value added as ``(1 - alpha) * background``. [C] ReferSplat uses None.
        backend: 'auto' (gsplat for CUDA tensors when CUDA is available, else 'cpu'), 'cpu' or
            'gsplat'.
        return_depth: Also render the alpha-weighted expected depth (gsplat 'ED').
        window: Render only the pixels (x0, y0, x1, y1) of the camera image (H = y1 - y0,
            W = x1 - x0): cost and memory follow the window, not the camera. On the CPU each
            window pixel equals the full image's (projection in the whole camera); gsplat
            renders the window as a camera of its own (principal point shifted), which differs
            only through the projection's off-screen clamp of Gaussians far outside it.
        check: Called between chunks of the CPU work; it may raise to stop the render (a
            caller's time budget).
        return_info: Also return the screen-space Gaussians that densification needs
            (``RenderOutput.info``).

    Returns:
        RenderOutput with image [C, H, W], alpha [H, W] and depth [H, W] or None.

    .. note::
        Conventions of the 3DGS CUDA kernel: pixel centres at integer + 0.5, alpha =
        min(0.99, o exp(-sigma)), pairs with alpha < 1/255 skipped, a pixel stops before the
        Gaussian that would bring its transmittance to <= 1e-4, eps2d 0.3 low-pass, near plane
        0.01. gsplat clamps alpha at 0.999 instead of 0.99.
    """
    n = means.shape[0]
    for name, value, shape in (('means', means, (n, 3)), ('quats', quats, (n, 4)),
                               ('scales', scales, (n, 3)), ('opacities', opacities, (n,))):
        if tuple(value.shape) != shape:
            raise ValueError(f'rasterize: {name} must have shape {shape}, '
                             f'got {tuple(value.shape)}')
    if features.dim() != 2 or features.shape[0] != n or features.shape[1] < 1:
        raise ValueError(f'rasterize: features must have shape ({n}, C), '
                         f'got {tuple(features.shape)}')
    if background is not None:
        background = torch.as_tensor(background, device=features.device).reshape(-1)
        if background.shape[0] != features.shape[1]:
            raise ValueError(f'rasterize: background must have {features.shape[1]} channels, '
                             f'got {background.shape[0]}')
    backend = resolve_backend(backend, means.device)
    viewmat = camera.world_to_camera.to(means)
    K = camera.intrinsics(means.dtype, means.device)
    if backend == 'gsplat':
        from refersplat_ros.core.render.gsplat_backend import rasterize_gsplat
        width, height = camera.width, camera.height
        if window is not None:
            x0, y0, x1, y1 = (int(v) for v in window)
            K = K.clone()
            K[0, 2] -= x0
            K[1, 2] -= y0
            width, height = x1 - x0, y1 - y0
        image, alpha, depth, info = rasterize_gsplat(means, quats, scales, opacities, features,
                                                     viewmat, K, width, height,
                                                     background=background,
                                                     return_depth=return_depth,
                                                     return_info=return_info)
    else:
        image, alpha, depth, info = rasterize_cpu(means, quats, scales, opacities, features,
                                                  viewmat, K, camera.width, camera.height,
                                                  background=background,
                                                  return_depth=return_depth, window=window,
                                                  check=check, return_info=return_info)
    return RenderOutput(image, alpha, depth, info)


def sh_colors(
    scene: GaussianScene,
    camera: Camera,
) -> Tensor:  # [N, 3]
    """View-dependent RGB of each Gaussian: ``max(SH(dir) + 0.5, 0)`` as in 3DGS / gsplat."""
    center = camera.center.to(scene.means)
    dirs = scene.means - center[None]
    return torch.clamp_min(spherical_harmonics(scene.sh_degree, dirs, scene.sh) + 0.5, 0.0)


def render_scene(
    scene: GaussianScene,
    camera: Camera,
    features: Optional[Tensor] = None,  # [N, C]; None = RGB from SH for this view
    **kwargs,
) -> RenderOutput:
    """Render a ``GaussianScene``: its features (or its view-dependent RGB) via ``rasterize``.

    Keyword arguments are passed to ``rasterize`` (``background``, ``backend``,
    ``return_depth``).
    """
    if features is None:
        features = sh_colors(scene, camera)
    return rasterize(scene.means, scene.quats, scene.scales, scene.opacities, features, camera,
                     **kwargs)
