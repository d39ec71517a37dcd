"""The target's mask and depth in any camera (the robot's), with occlusion (docs/ROBOT.md).

``render_target`` renders only what is needed: the target's footprint on the image is bounded
from its Gaussians (3.33 sigma, perspective-widened, plus the rasterizer's low-pass), and only the
Gaussians whose footprint reaches that window are rasterized, in the full camera (so each one
projects exactly as in a full render). Inside the window the result equals a full-image render of
the whole scene (tested, occluders off to the side included); outside it the target is not.

A pixel is the target's when the target makes more of it than the other Gaussians together and
more than the empty rest (the transmittance): the ground-truth rule of Ref-Synth (the most
weighted label, the background a label of its own) for a target against everything else. So an
object in front hides the target, a faint fringe over nothing is not the target (a depth pixel
there would be the background's), and the mask is what the camera sees of it. The depth is the
target's alpha-weighted expected depth along the optical axis (z of the optical frame) in
metres, NaN off the mask (REP 118: no value).

The cost of one render is bounded whatever the camera (:class:`RenderBudget`): a window of more
than ``max_pixels`` pixels, or one whose Gaussian-pixel candidates (the CPU rasterizer's work)
exceed ``max_candidates``, is rendered in the same camera at a lower resolution and upsampled
(nearest pixel) to the camera's size; ``TargetView.scale`` and ``note`` say so. A ``check``
callback (a query's time budget) may stop the render between chunks of work.
"""
import array
from dataclasses import dataclass, replace
import math
import time
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from refersplat_ros.core.render.budget import RenderBudget
from refersplat_ros.core.render.rasterize import EPS2D, NEAR_PLANE, rasterize
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussians import GaussianScene

#: Extra pixels around the target's bounded footprint.
MARGIN_PX = 2
#: Sigmas of a Gaussian's drawn footprint (the rasterizer's opacity-aware extent is at most 3.33).
EXTENT = 3.33


@dataclass
class TargetView:
    """The target as one camera sees it.

    Attributes:
        mask: 255 where the camera sees the target, else 0. [H, W] uint8
        depth: Target depth along the optical axis in metres, NaN off the mask. [H, W] float32
        pixels: Number of mask pixels (0: not visible; ``reason`` says why).
        reason: Why nothing of the target is visible ('' when some is).
        window: Pixel window rendered (x0, y0, x1, y1), empty when nothing was rendered.
        gaussians: Gaussians rasterized (the target's and those in front of / around it).
        render_ms: Wall time.
        scale: Resolution the window was rendered at, relative to the camera's (1: full; less
            when the render budget asked for it; the mask and depth are upsampled to the
            camera's size).
        note: Said in the answer's message when the render was not the plain one ('' when it
            was), e.g. the lower resolution.
    """

    mask: np.ndarray
    depth: np.ndarray
    pixels: int = 0
    reason: str = ''
    window: Tuple[int, int, int, int] = (0, 0, 0, 0)
    gaussians: int = 0
    render_ms: float = 0.0
    scale: float = 1.0
    note: str = ''

    @property
    def visible(self) -> bool:
        return self.pixels > 0


def image_buffer(height: int, width: int, dtype, fill) -> np.ndarray:  # [H, W]
    """Return an [H, W] array filled with ``fill``, its memory a bytes ``array.array``.

    A message (``sensor_msgs/Image``) can take that buffer as its data without a copy
    (``conversions.py``): for an 8192 x 8192 camera the depth alone is 268 MB.
    """
    buffer = array.array('B', bytes(1)) * (height * width * np.dtype(dtype).itemsize)
    values = np.frombuffer(buffer, dtype).reshape(height, width)
    if fill != 0:
        values.fill(fill)
    return values


def empty_view(camera: Camera, reason: str = 'no target') -> TargetView:
    """Return a view with nothing of the target (all-zero mask, NaN depth) in ``camera``."""
    return TargetView(image_buffer(camera.height, camera.width, np.uint8, 0),
                      image_buffer(camera.height, camera.width, np.float32, np.nan),
                      reason=reason)


def _footprints(means_cam: torch.Tensor, scales: torch.Tensor, camera: Camera):
    """Centre (u, v) and a radius (px) that bounds each Gaussian's drawn footprint."""
    z = means_cam[:, 2].clamp(min=NEAR_PLANE)
    x, y = means_cam[:, 0] / z, means_cam[:, 1] / z
    u = camera.fx * x + camera.cx
    v = camera.fy * y + camera.cy
    focal = max(camera.fx, camera.fy)
    widen = torch.sqrt(1.0 + x * x + y * y)  # the perspective Jacobian off the optical axis
    # the rasterizer draws up to 3.33 sigma (rounded up) of the low-passed 2D covariance
    sigma = scales.max(dim=1).values * focal / z * widen + math.sqrt(EPS2D)
    return u, v, EXTENT * sigma + 1.0


def _outside(u, v, idx, in_front, camera: Camera) -> str:
    t = idx[in_front[idx]]
    return (f'the target is outside the camera image (its centre projects to pixel '
            f'({float(u[t].mean()):.0f}, {float(v[t].mean()):.0f}) of a '
            f'{camera.width}x{camera.height} image)')


def _window(u, v, radius, t, width: int, height: int):
    """Pixel window (x0, y0, x1, y1) of the footprints of the Gaussians ``t``, in the image."""
    x0 = max(0, int(math.floor(float((u[t] - radius[t]).min()))) - MARGIN_PX)
    y0 = max(0, int(math.floor(float((v[t] - radius[t]).min()))) - MARGIN_PX)
    x1 = min(width, int(math.ceil(float((u[t] + radius[t]).max()))) + MARGIN_PX)
    y1 = min(height, int(math.ceil(float((v[t] + radius[t]).max()))) + MARGIN_PX)
    return x0, y0, x1, y1


def _reaching(u, v, radius, in_front, window):
    """Mask of the Gaussians in front whose footprint reaches ``window``; their candidates."""
    x0, y0, x1, y1 = window
    across = (torch.minimum(u + radius, torch.full_like(u, x1))
              - torch.maximum(u - radius, torch.full_like(u, x0))).clamp(min=0)
    down = (torch.minimum(v + radius, torch.full_like(v, y1))
            - torch.maximum(v - radius, torch.full_like(v, y0))).clamp(min=0)
    keep = in_front & (across > 0) & (down > 0)
    # the footprint box clipped to the window; the drawn ellipse inside it is about pi/4 of it
    candidates = float((across * down)[keep].sum()) * (math.pi / 4.0)
    return keep, candidates


def _scaled(camera: Camera, factor: float) -> Camera:
    """Return the same camera at ``factor`` of its resolution (pixel u maps to u * factor)."""
    return replace(camera, width=max(1, math.ceil(camera.width * factor)),
                   height=max(1, math.ceil(camera.height * factor)), fx=camera.fx * factor,
                   fy=camera.fy * factor, cx=camera.cx * factor, cy=camera.cy * factor,
                   world_to_camera=camera.world_to_camera.clone())


def _upsample_index(start: int, stop: int, factor: float, low_start: int, low_size: int):
    """Index into a low-resolution window of each full-resolution pixel in [start, stop)."""
    centres = (np.arange(start, stop, dtype=np.float64) + 0.5) * factor
    return np.clip(np.floor(centres).astype(np.int64) - low_start, 0, low_size - 1)


@torch.no_grad()
def render_target(scene: GaussianScene, indices, camera: Camera, metric_scale: float = 1.0,
                  backend: str = 'auto', full_image: bool = False,
                  budget: Optional[RenderBudget] = None,
                  check: Optional[Callable[[], None]] = None) -> TargetView:
    """Render the mask and depth of the Gaussians ``indices`` in ``camera``.

    Never raises on a target out of view: ``reason`` says why the mask is empty.
    ``full_image`` rasterizes the whole image with every Gaussian (the reference the window
    path is tested against; no budget). ``budget`` (default :class:`RenderBudget`) bounds the
    work; ``check`` is called between chunks of it and may raise (a time budget).
    """
    start = time.perf_counter()
    budget = budget or RenderBudget()
    height, width = camera.height, camera.width
    mask, depth = image_buffer(height, width, np.uint8, 0), image_buffer(height, width,
                                                                         np.float32, np.nan)
    device = scene.means.device
    idx = torch.as_tensor(np.asarray(indices, np.int64), device=device)
    if idx.numel() == 0:
        return TargetView(mask, depth, reason='the target has no Gaussians')
    w2c = camera.world_to_camera.to(device=device, dtype=scene.means.dtype)
    means_cam = scene.means @ w2c[:3, :3].T + w2c[:3, 3]
    scales = scene.scales
    is_target = torch.zeros(scene.num_gaussians, dtype=torch.bool, device=device)
    is_target[idx] = True
    in_front = means_cam[:, 2] > NEAR_PLANE
    if not bool(in_front[idx].any()):
        return TargetView(mask, depth, reason='the target is behind the camera',
                          render_ms=(time.perf_counter() - start) * 1e3)
    u, v, radius = _footprints(means_cam, scales, camera)
    t = idx[in_front[idx]]
    factor, render_camera, note = 1.0, camera, ''
    if full_image:
        window = (0, 0, width, height)
        keep = torch.ones_like(in_front)
    else:
        window = _window(u, v, radius, t, width, height)
        x0, y0, x1, y1 = window
        if x0 >= x1 or y0 >= y1:
            return TargetView(mask, depth, reason=_outside(u, v, idx, in_front, camera),
                              render_ms=(time.perf_counter() - start) * 1e3)
        keep, candidates = _reaching(u, v, radius, in_front, window)
        factor = budget.scale((x1 - x0) * (y1 - y0), candidates, int(keep.sum()),
                              count_candidates=device.type != 'cuda')
        if factor < 1.0:
            render_camera = _scaled(camera, factor)
            su, sv, sradius = _footprints(means_cam, scales, render_camera)
            low = _window(su, sv, sradius, t, render_camera.width, render_camera.height)
            keep, _ = _reaching(su, sv, sradius, in_front, low)
            note = (f'mask rendered at {factor:.2f} of the camera resolution and upsampled '
                    f'(render budget: {budget.max_pixels} pixels, {budget.max_candidates} '
                    f'candidates)')
    low = window if factor >= 1.0 else low
    sub = torch.nonzero(keep).squeeze(1)
    target = is_target[sub].to(scene.means.dtype)
    features = torch.stack([target, target * means_cam[sub, 2]], dim=1)
    # The whole camera (its projection, clamps included, is the full image's) with only the
    # Gaussians that reach the window: inside the window every pixel equals the full render.
    out = rasterize(scene.means[sub], scene.quats[sub], scales[sub], scene.opacities[sub],
                    features, render_camera, backend=backend, window=low, check=check)
    weight, weighted_z, alpha = out.image[0], out.image[1], out.alpha
    # the target makes more of the pixel than the other Gaussians together and than the empty
    # rest (transmittance): a faint fringe over nothing is not the target
    seen = (weight >= alpha - weight) & (weight >= 1.0 - alpha) & (weight > 0)
    z = (weighted_z / weight.clamp(min=1e-12)) * metric_scale
    seen_np = seen.cpu().numpy()
    z_np = np.where(seen_np, z.float().cpu().numpy(), np.nan).astype(np.float32)
    x0, y0, x1, y1 = window
    if factor < 1.0:  # nearest low-resolution pixel of each camera pixel in the window
        rows = _upsample_index(y0, y1, factor, low[1], low[3] - low[1])
        cols = _upsample_index(x0, x1, factor, low[0], low[2] - low[0])
        seen_np, z_np = seen_np[np.ix_(rows, cols)], z_np[np.ix_(rows, cols)]
    mask[y0:y1, x0:x1] = seen_np.astype(np.uint8) * 255
    depth[y0:y1, x0:x1] = z_np
    pixels = int(seen_np.sum())
    reason = ''
    if not pixels:
        inside = (u[t] >= 0) & (u[t] < width) & (v[t] >= 0) & (v[t] < height)
        reason = ('the target is hidden behind other objects in this camera' if bool(inside.any())
                  else _outside(u, v, idx, in_front, camera))
    return TargetView(mask, depth, pixels, reason, window, int(sub.numel()),
                      (time.perf_counter() - start) * 1e3, factor, note)
