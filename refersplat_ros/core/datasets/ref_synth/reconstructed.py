"""Ref-SynthCapture: a Ref-Synth scene as a user's capture (``make-scene --reconstructed``).

What a user has after photographing a tabletop is images, cameras and the sparse points
structure-from-motion left behind; the Gaussians come from optimising on the images. This module
makes the same from a generated scene:

1. **SfM-like points** (``sfm_points``): a few thousand surface points that at least two
   training views see (depth test against the rendered depth), moved by Gaussian noise of
   ``point_noise`` metres (a pixel of reprojection error at these distances is ~1 cm), colours
   with noise, plus ``outlier_fraction`` of outliers anywhere in the scene's box: what COLMAP
   writes to ``points3D``;
2. **reconstruction** (``core.reconstruct``) on the training views only, the scene's test views
   held out for PSNR;
3. **ids** from the true surface (``reconstruct.transfer``) within ``id_tolerance``; the rest
   are floaters with the background's id.

Masks and sentences stay those of the true scene: they are what annotators drew on the images.
"""
from dataclasses import dataclass, field
from typing import Sequence, Tuple

import numpy as np
import torch

from refersplat_ros.core.reconstruct.fit import ReconstructConfig
from refersplat_ros.core.render.rasterize import rasterize
from refersplat_ros.core.scene.cameras import Camera


@dataclass
class CaptureConfig:
    """How a Ref-Synth scene becomes a capture (``RefSynthConfig.capture``).

    Attributes:
        sfm_points: Sparse points written to ``sparse/0/points3D.txt``.
        point_noise: Standard deviation of their position noise (metres).
        colour_noise: Standard deviation of their colour noise (0-1 scale).
        outlier_fraction: Share of extra points placed uniformly in the scene's box.
        min_views: Views that must see a surface point for it to be a sparse point.
        id_tolerance: A reconstructed Gaussian farther than this (metres, or twice the
            nearest true Gaussian's largest scale when that is more) from the true surface
            Gaussians is a floater.
        reconstruct: The fit (steps, schedule); its background is the scene's.
    """

    sfm_points: int = 3000
    point_noise: float = 0.005
    colour_noise: float = 0.03
    outlier_fraction: float = 0.03
    min_views: int = 2
    id_tolerance: float = 0.02
    reconstruct: ReconstructConfig = field(default_factory=lambda: ReconstructConfig(
        steps=1500, refine_start=150, refine_stop=1200, sh_degree_interval=500))


def seen_counts(means: np.ndarray, quats: np.ndarray, scales: np.ndarray,
                opacities: np.ndarray, cameras: Sequence[Camera],
                depth_tolerance: float = 0.02) -> np.ndarray:  # [N] int
    """Count the cameras that see each Gaussian's centre unoccluded.

    Seen: inside the image and within ``depth_tolerance`` (plus 2 % of the depth) of the
    rendered depth at its pixel.
    """
    m, q, s, o = (torch.from_numpy(np.asarray(a, np.float32)) for a in
                  (means, quats, scales, opacities))
    counts = np.zeros(len(means), dtype=np.int64)
    ones = torch.ones(len(m), 1)
    with torch.no_grad():
        for camera in cameras:
            depth = rasterize(m, q, s, o, ones, camera, backend='cpu', return_depth=True).depth
            w2c = camera.world_to_camera.float()
            cam = m @ w2c[:3, :3].T + w2c[:3, 3]
            z = cam[:, 2]
            K = camera.intrinsics(torch.float32)
            u = (K[0, 0] * cam[:, 0] / z.clamp_min(1e-6) + K[0, 2]).floor().long()
            v = (K[1, 1] * cam[:, 1] / z.clamp_min(1e-6) + K[1, 2]).floor().long()
            inside = (z > 0.01) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
            d = torch.zeros_like(z)
            d[inside] = depth[v[inside], u[inside]]
            seen = inside & ((z - d).abs() < depth_tolerance + 0.02 * z)
            counts += seen.numpy()
    return counts


def sfm_points(means: np.ndarray, colors: np.ndarray, counts: np.ndarray,
               config: CaptureConfig, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Sparse points as SfM leaves them: xyz [M, 3] float64 and rgb [M, 3] uint8."""
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(counts >= config.min_views)
    if len(candidates) == 0:
        raise ValueError('no surface point is seen by enough views for a sparse point')
    take = rng.choice(candidates, size=min(config.sfm_points, len(candidates)), replace=False)
    xyz = means[take] + rng.normal(0.0, config.point_noise, (len(take), 3))
    rgb = np.clip(colors[take] + rng.normal(0.0, config.colour_noise, (len(take), 3)), 0, 1)
    n_out = int(round(config.outlier_fraction * len(take)))
    if n_out:
        lo, hi = means[candidates].min(0), means[candidates].max(0)
        pad = 0.1 * (hi - lo)
        xyz = np.concatenate([xyz, rng.uniform(lo - pad, hi + pad, (n_out, 3))])
        rgb = np.concatenate([rgb, rng.uniform(0.0, 1.0, (n_out, 3))])
    return xyz.astype(np.float64), np.round(rgb * 255.0).astype(np.uint8)
