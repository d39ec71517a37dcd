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
"""
from dataclasses import dataclass
import math
import time
from typing import Tuple

import numpy as np
import torch

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
    """

    mask: np.ndarray
    depth: np.ndarray
    pixels: int = 0
    reason: str = ''
    window: Tuple[int, int, int, int] = (0, 0, 0, 0)
    gaussians: int = 0
    render_ms: float = 0.0

    @property
    def visible(self) -> bool:
        return self.pixels > 0


def empty_view(camera: Camera, reason: str = 'no target') -> TargetView:
    """Return a view with nothing of the target (all-zero mask, NaN depth) in ``camera``."""
    return TargetView(np.zeros((camera.height, camera.width), np.uint8),
                      np.full((camera.height, camera.width), np.nan, np.float32), reason=reason)


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


@torch.no_grad()
def render_target(scene: GaussianScene, indices, camera: Camera, metric_scale: float = 1.0,
                  backend: str = 'auto', full_image: bool = False) -> TargetView:
    """Render the mask and depth of the Gaussians ``indices`` in ``camera``.

    Never raises on a target out of view: ``reason`` says why the mask is empty.
    ``full_image`` rasterizes the whole image with every Gaussian (the reference the window
    path is tested against).
    """
    start = time.perf_counter()
    height, width = camera.height, camera.width
    mask = np.zeros((height, width), np.uint8)
    depth = np.full((height, width), np.nan, np.float32)
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
    if full_image:
        x0, y0, x1, y1 = 0, 0, width, height
        keep = torch.ones_like(in_front)
    else:
        t = idx[in_front[idx]]
        x0 = max(0, int(math.floor(float((u[t] - radius[t]).min()))) - MARGIN_PX)
        y0 = max(0, int(math.floor(float((v[t] - radius[t]).min()))) - MARGIN_PX)
        x1 = min(width, int(math.ceil(float((u[t] + radius[t]).max()))) + MARGIN_PX)
        y1 = min(height, int(math.ceil(float((v[t] + radius[t]).max()))) + MARGIN_PX)
        if x0 >= x1 or y0 >= y1:
            return TargetView(mask, depth, reason=_outside(u, v, idx, in_front, camera),
                              render_ms=(time.perf_counter() - start) * 1e3)
        keep = in_front & (u + radius >= x0) & (u - radius <= x1) & (v + radius >= y0) & \
            (v - radius <= y1)
    sub = torch.nonzero(keep).squeeze(1)
    target = is_target[sub].to(scene.means.dtype)
    features = torch.stack([target, target * means_cam[sub, 2]], dim=1)
    # The whole camera (its projection, clamps included, is the full image's) with only the
    # Gaussians that reach the window: inside the window every pixel equals the full render.
    out = rasterize(scene.means[sub], scene.quats[sub], scales[sub], scene.opacities[sub],
                    features, camera, backend=backend)
    weight = out.image[0, y0:y1, x0:x1]
    weighted_z = out.image[1, y0:y1, x0:x1]
    alpha = out.alpha[y0:y1, x0:x1]
    # the target makes more of the pixel than the other Gaussians together and than the empty
    # rest (transmittance): a faint fringe over nothing is not the target
    seen = (weight >= alpha - weight) & (weight >= 1.0 - alpha) & (weight > 0)
    z = (weighted_z / weight.clamp(min=1e-12)) * metric_scale
    seen_np = seen.cpu().numpy()
    mask[y0:y1, x0:x1] = seen_np.astype(np.uint8) * 255
    depth[y0:y1, x0:x1] = np.where(seen_np, z.float().cpu().numpy(), np.nan)
    pixels = int(seen_np.sum())
    reason = ''
    if not pixels:
        t = idx[in_front[idx]]
        inside = (u[t] >= 0) & (u[t] < width) & (v[t] >= 0) & (v[t] < height)
        reason = ('the target is hidden behind other objects in this camera' if bool(inside.any())
                  else _outside(u, v, idx, in_front, camera))
    return TargetView(mask, depth, pixels, reason, (x0, y0, x1, y1), int(sub.numel()),
                      (time.perf_counter() - start) * 1e3)
