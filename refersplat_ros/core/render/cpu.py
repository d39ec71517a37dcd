"""Exact alpha compositing of 3D Gaussians in pure torch (the CPU backend of ``rasterize``).

Algorithm (docs/SETUP.md#cpu-rasterizer): project with gsplat's pure-torch helpers, enumerate every
Gaussian-pixel pair inside each Gaussian's opacity-aware 3-sigma box (no Python loop over
Gaussians), prune pairs with alpha < 1/255, order pairs by (pixel, depth), then compute the
differentiable weights w = alpha * T with T the exclusive per-pixel transmittance, and
scatter-add w * feature into the pixels.

The compositing rules are those of the CUDA kernels (docs/METHOD.md#rasterized-logit; gsplat
``RasterizeToPixels3DGSFwd.cu``): pixel centre at integer + 0.5, alpha = min(0.99, o exp(-sigma)),
pairs with sigma < 0 or alpha < 1/255 skipped, and a pixel stops at the Gaussian that would bring
its transmittance to <= 1e-4 (that Gaussian excluded). No background term: an empty pixel
renders 0. The code is device-agnostic torch, so it also runs on CUDA tensors.
"""
from dataclasses import dataclass, replace
import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from refersplat_ros.core.render.gsplat_internals import (fully_fused_projection,
                                                         quat_scale_to_covar_preci)

# 3DGS / ReferSplat clamp alpha at 0.99 (forward.cu); gsplat 1.5.3 clamps at 0.999.
ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
# A pixel is done once its transmittance would fall to <= T_MIN (both CUDA kernels).
T_MIN = 1e-4
EPS2D = 0.3
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
# Candidate Gaussian-pixel pairs evaluated per chunk while enumerating (bounds peak memory).
_CHUNK_PAIRS = 1 << 22
# Gaussians whose rows are enumerated together (bounds the row stage's memory).
_CHUNK_GAUSSIANS = 1 << 17


@dataclass
class Projection:
    """Screen-space Gaussians for one camera: the M Gaussians in front of the near plane."""

    ids: Tensor  # [M] int64 index of each projected Gaussian in the input arrays
    means2d: Tensor  # [M, 2] pixel coordinates
    conics: Tensor  # [M, 3] upper triangle (a, b, c) of the inverse blurred 2D covariance
    depths: Tensor  # [M] camera-space z
    opacities: Tensor  # [M]
    radii: Tensor  # [M, 2] int64 pixel half-extent of the opacity-aware box; 0 = not drawn


@dataclass
class Pairs:
    """Gaussian-pixel pairs that contribute, sorted by pixel then front-to-back depth."""

    pixel: Tensor  # [P] int64 flat pixel index y * W + x
    local: Tensor  # [P] int64 index into the Projection arrays
    gaussian: Tensor  # [P] int64 index into the input Gaussians
    width: int
    height: int
    # Values the enumeration computed anyway (detached): each pair's alpha and the log of the
    # transmittance in front of it. ``pair_weights`` uses them when the geometry needs no
    # gradient instead of computing both again.
    alpha: Optional[Tensor] = None  # [P]
    log_transmittance: Optional[Tensor] = None  # [P] float64

    @property
    def num_pairs(self) -> int:
        return self.pixel.shape[0]


def project(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z), any norm
    scales: Tensor,  # [N, 3] activated
    opacities: Tensor,  # [N] activated
    viewmat: Tensor,  # [4, 4] world -> camera
    K: Tensor,  # [3, 3]
    width: int,
    height: int,
) -> Projection:
    """Project Gaussians with gsplat's pure-torch EWA projection (eps2d 0.3, near 0.01).

    The box radius is gsplat's CUDA one: ``ceil(min(3.33, sqrt(2 ln(255 o))) * sigma_axis)``,
    which contains every pixel where alpha >= 1/255 can hold. Gaussians behind the near plane
    are dropped before projecting, so they get exactly zero gradient (never NaN).
    """
    viewmat = viewmat.to(means)
    with torch.no_grad():
        z = means.detach() @ viewmat[2, :3] + viewmat[2, 3]
        ids = torch.nonzero((z > NEAR_PLANE) & (z < FAR_PLANE)).squeeze(1)
    opacities = opacities[ids]
    covars, _ = quat_scale_to_covar_preci(quats[ids], scales[ids], compute_covar=True,
                                          compute_preci=False)
    radii, means2d, depths, conics, _ = fully_fused_projection(
        means[ids], covars, viewmat[None], K.to(means)[None], width, height, eps2d=EPS2D,
        near_plane=NEAR_PLANE, far_plane=FAR_PLANE)
    means2d, depths, conics = means2d[0], depths[0], conics[0]
    with torch.no_grad():
        a, b, c = conics.unbind(-1)
        det = (a * c - b * b).clamp(min=1e-30)
        sigma_xy = torch.stack([c / det, a / det], dim=-1).clamp(min=0).sqrt()  # [N, 2]
        # Opacity-aware extent (gsplat ProjectionEWA3DGSFused.cu, arXiv 2402.00525 App. B.2).
        o = opacities.detach()
        extent = torch.sqrt(2.0 * torch.log((o / ALPHA_MIN).clamp(min=1.0))).clamp(max=3.33)
        box = torch.ceil(extent[:, None] * sigma_xy)
        drawn = (radii[0] > 0).all(dim=-1) & (o >= ALPHA_MIN) & (box > 0).any(dim=-1)
        box = torch.where(drawn[:, None], box, torch.zeros_like(box)).to(torch.int64)
    return Projection(ids, means2d, conics, depths, opacities, box)


def _pair_alpha(
    pixel: Tensor,  # [P] int64
    gaussian: Tensor,  # [P] int64
    means2d: Tensor,  # [N, 2]
    conics: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    width: int,
):
    """Return (sigma [P], alpha [P]) of each pair, alpha clamped at ALPHA_MAX."""
    px = (pixel % width).to(means2d.dtype) + 0.5
    py = torch.div(pixel, width, rounding_mode='floor').to(means2d.dtype) + 0.5
    mean = means2d.index_select(0, gaussian)
    dx = px - mean[:, 0]
    dy = py - mean[:, 1]
    conic = conics.index_select(0, gaussian)
    sigma = 0.5 * (conic[:, 0] * dx * dx + conic[:, 2] * dy * dy) + conic[:, 1] * dx * dy
    alpha = (opacities.index_select(0, gaussian) * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
    return sigma, alpha


def _segment_starts(pixel: Tensor, num_pixels: int) -> Tensor:  # [P] -> [P]
    """Index of the first pair of each pair's pixel, for pairs sorted by pixel."""
    counts = torch.bincount(pixel, minlength=num_pixels)
    first = torch.cumsum(counts, dim=0) - counts  # [num_pixels]
    return first.index_select(0, pixel)


def _exclusive_log_transmittance(log1m: Tensor, starts: Tensor) -> Tensor:
    """Per-pixel exclusive cumsum of log(1 - alpha), as one float64 cumsum minus each base."""
    total = torch.cumsum(log1m, dim=0) - log1m
    return total - total[starts]


@torch.no_grad()
def _block_pairs(block: Tensor, first: int, means2d: Tensor, conics: Tensor, opac: Tensor,
                 radii: Tensor, width: int, height: int, check: Callable[[], None]
                 ) -> Optional[Tuple[Tensor, Tensor, Tensor]]:
    """Return the (pixel, depth rank, alpha) pairs of the Gaussians ``block`` that pass alpha.

    ``block`` holds projection indices in front-to-back order; their depth ranks are
    ``first + position``. The pairs come in depth-rank order; None when there are none.
    ``check`` is called before each chunk of candidates (it may raise to stop the render).
    """
    device, dtype = means2d.device, means2d.dtype
    num = block.shape[0]
    mx, my = means2d.index_select(0, block).unbind(-1)
    a, b, c = conics.index_select(0, block).unbind(-1)
    o = opac.index_select(0, block)
    rad = radii.index_select(0, block)
    y0 = torch.floor(my - rad[:, 1]).clamp(0, height - 1).to(torch.int64)
    y1 = torch.floor(my + rad[:, 1]).clamp(0, height - 1).to(torch.int64)
    x0 = torch.floor(mx - rad[:, 0]).clamp(0, width - 1)
    x1 = torch.floor(mx + rad[:, 0]).clamp(0, width - 1)
    # Row stage: one entry per (Gaussian, image row) of the box.
    rows_per = y1 - y0 + 1
    row_rank = torch.repeat_interleave(torch.arange(num, device=device), rows_per)
    row_start = torch.cumsum(rows_per, 0) - rows_per
    row_y = y0[row_rank] + torch.arange(row_rank.shape[0], device=device) - row_start[row_rank]
    row_dy = (row_y.to(dtype) + 0.5) - my[row_rank]
    # sigma(dx) <= L = ln(255 o) on this row: 0.5 a dx^2 + b dy dx + 0.5 c dy^2 - L <= 0.
    ra, rb, rc = a[row_rank].double(), b[row_rank].double(), c[row_rank].double()
    dy64 = row_dy.double()
    level = torch.log(o[row_rank].double() / ALPHA_MIN).clamp(min=0.0)
    disc = (rb * dy64) ** 2 - ra * (rc * dy64 * dy64 - 2.0 * level)
    root = torch.sqrt(disc.clamp(min=0.0))
    inv_a = 1.0 / ra.clamp(min=1e-30)
    cx = mx[row_rank].double() - 0.5  # pixel x whose centre is the mean
    xs = torch.ceil(cx + (-rb * dy64 - root) * inv_a - 0.5)
    xe = torch.floor(cx + (-rb * dy64 + root) * inv_a + 0.5)
    xs = torch.maximum(xs, x0[row_rank].double()).to(torch.int64)
    xe = torch.minimum(xe, x1[row_rank].double()).to(torch.int64)
    counts = torch.where(disc >= 0, (xe - xs + 1).clamp(min=0), torch.zeros_like(xs))
    keep_rows = counts > 0
    row_rank, row_y, row_dy = row_rank[keep_rows], row_y[keep_rows], row_dy[keep_rows]
    xs, counts = xs[keep_rows], counts[keep_rows]
    # Per-row values, gathered per candidate with one index_select each; the per-pixel test
    # uses the same expression as _pair_alpha, so enumeration and the differentiable weights
    # agree bit for bit.
    ends = torch.cumsum(counts, dim=0)
    x_offset = xs - (ends - counts)
    int_table = torch.stack([row_y * width, row_rank + first], dim=1)
    float_table = torch.stack([mx[row_rank], row_dy, a[row_rank], b[row_rank], c[row_rank],
                               o[row_rank]], dim=1)
    pixels, ranks, alphas = [], [], []
    start, total_rows = 0, counts.shape[0]
    while start < total_rows:
        check()
        # Chunk of rows whose candidate count stays under _CHUNK_PAIRS (at least one row).
        base = int(ends[start - 1]) if start > 0 else 0
        stop = int(torch.searchsorted(ends, base + _CHUNK_PAIRS, right=True))
        stop = min(max(stop, start + 1), total_rows)
        cnt = counts[start:stop]
        row = torch.repeat_interleave(torch.arange(start, stop, device=device), cnt)
        vals = float_table.index_select(0, row)
        x = x_offset.index_select(0, row)
        x += torch.arange(base, base + row.shape[0], device=device)
        dx = (x.to(dtype) + 0.5) - vals[:, 0]
        dy = vals[:, 1]
        sigma = 0.5 * (vals[:, 2] * dx * dx + vals[:, 4] * dy * dy) + vals[:, 3] * dx * dy
        alpha = (vals[:, 5] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
        idx = torch.nonzero((sigma >= 0) & (alpha >= ALPHA_MIN)).squeeze(1)
        kept = int_table.index_select(0, row.index_select(0, idx))
        pixels.append(kept[:, 0] + x.index_select(0, idx))
        ranks.append(kept[:, 1])
        alphas.append(alpha.index_select(0, idx))
        start = stop
    return (_cat(pixels), _cat(ranks), _cat(alphas)) if pixels else None


def _no_check() -> None:
    return None


@torch.no_grad()
def enumerate_pairs(proj: Projection, width: int, height: int,
                    check: Callable[[], None] = _no_check) -> Pairs:
    """List the contributing Gaussian-pixel pairs, sorted by (pixel, depth), no autograd.

    Candidates are enumerated per image row of each Gaussian's box, restricted to the span
    where the conic can reach alpha >= 1/255 (plus a half-pixel margin), then tested exactly.
    ``check`` is called between chunks of candidates: a caller's time budget raises there.
    """
    device = proj.means2d.device
    means2d, conics = proj.means2d.detach(), proj.conics.detach()
    opac = proj.opacities.detach()
    drawn = torch.nonzero(proj.radii[:, 0] > 0).squeeze(1)
    # Front to back; candidates enumerated in this order keep depth order inside each pixel.
    drawn = drawn[torch.sort(proj.depths.detach()[drawn], stable=True).indices]
    num = drawn.shape[0]
    # Blocks of Gaussians, front to back: the row stage's temporaries stay bounded for scenes of
    # millions of Gaussians, and each block's pairs are cut by early termination (the pair that
    # brings T to <= T_MIN and all behind it) against the log-transmittance the blocks in front
    # left in each pixel, so only contributing pairs are kept (a dense 1M scene enumerates
    # ~27x more candidates than contribute). Ranks are global: with several blocks one more
    # stable sort by pixel merges them.
    log_t = torch.zeros(width * height, dtype=torch.float64, device=device)  # blocks in front
    kept = []  # (pixel, rank, alpha, log transmittance) of each block's contributing pairs
    for first in range(0, num, _CHUNK_GAUSSIANS):
        found = _block_pairs(drawn[first:first + _CHUNK_GAUSSIANS], first, means2d, conics,
                             opac, proj.radii, width, height, check)
        if found is None:
            continue
        pix, rank, alpha = found
        # Candidates come in depth-rank order: a stable sort by pixel orders them by
        # (pixel, depth).
        order = _by_pixel(pix, width * height)
        pix, rank, alpha = (t.index_select(0, order) for t in (pix, rank, alpha))
        log1m = torch.log1p(-alpha.double())
        exclusive = log_t.index_select(0, pix) + _exclusive_log_transmittance(
            log1m, _segment_starts(pix, width * height))
        live = torch.nonzero(exclusive + log1m > math.log(T_MIN)).squeeze(1)
        log_t.index_add_(0, pix, log1m)
        parts = [pix, rank, alpha, exclusive]
        kept.append(parts if live.shape[0] == pix.shape[0]
                    else [t.index_select(0, live) for t in parts])
    if not kept:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return Pairs(empty, empty.clone(), empty.clone(), width, height,
                     means2d.new_zeros(0), torch.zeros(0, dtype=torch.float64, device=device))
    pix, rank, alpha, log_trans = (_cat(parts) for parts in zip(*kept))
    if len(kept) > 1:
        # Each block is in (pixel, depth) order and the blocks in depth order: a stable sort by
        # pixel merges them.
        order = _by_pixel(pix, width * height)
        pix, rank, alpha, log_trans = (t.index_select(0, order)
                                       for t in (pix, rank, alpha, log_trans))
    local = drawn.index_select(0, rank)
    return Pairs(pix, local, proj.ids.index_select(0, local), width, height, alpha, log_trans)


def _cat(parts: list) -> Tensor:
    """torch.cat without the copy of a single part."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _by_pixel(pixel: Tensor, num_pixels: int) -> Tensor:  # [P] -> [P] int64 permutation
    """Stable order of the pairs by pixel (32-bit keys where they fit: half the sort time)."""
    keys = pixel.to(torch.int32) if num_pixels < 2 ** 31 else pixel
    return torch.sort(keys, stable=True).indices


def pair_weights(pairs: Pairs, proj: Projection) -> Tensor:  # [P]
    """Differentiable compositing weights w = alpha * T of the sorted pairs.

    When no gradient can reach the geometry (frozen Gaussians: ReferSplat's training and every
    render without autograd) the weights come from the alpha and transmittance the enumeration
    computed; otherwise both are computed again here, differentiably, from the projection.
    """
    geometry = (proj.means2d, proj.conics, proj.opacities)
    frozen = not (torch.is_grad_enabled() and any(t.requires_grad for t in geometry))
    if frozen and pairs.alpha is not None and pairs.log_transmittance is not None:
        return pairs.alpha * torch.exp(pairs.log_transmittance).to(pairs.alpha.dtype)
    _, alpha = _pair_alpha(pairs.pixel, pairs.local, proj.means2d, proj.conics, proj.opacities,
                           pairs.width)
    log1m = torch.log1p(-alpha.double())
    log_t = _exclusive_log_transmittance(
        log1m, _segment_starts(pairs.pixel, pairs.width * pairs.height))
    return alpha * torch.exp(log_t).to(alpha.dtype)


def composite(
    pairs: Pairs,
    weights: Tensor,  # [P]
    values: Tensor,  # [N, C]
) -> Tensor:  # [H * W, C]
    """Scatter-add w * value of every pair into its pixel."""
    num_pixels = pairs.width * pairs.height
    dtype = torch.promote_types(weights.dtype, values.dtype)
    out = torch.zeros(num_pixels, values.shape[1], dtype=dtype, device=values.device)
    contrib = weights.to(dtype)[:, None] * values.to(dtype).index_select(0, pairs.gaussian)
    return out.index_add(0, pairs.pixel, contrib)


def rasterize_cpu(
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
    window: Optional[Tuple[int, int, int, int]] = None,
    check: Optional[Callable[[], None]] = None,
    return_info: bool = False,
):
    """Render features; returns (image [C, H, W], alpha [H, W], depth [H, W] or None, info).

    With ``window`` = (x0, y0, x1, y1) only those pixels are rendered (H = y1 - y0,
    W = x1 - x0): the Gaussians are projected in the whole camera, exactly as for the full
    image, and only the pixel grid is cropped, so each window pixel equals the full render's.
    ``check`` is called between chunks of the work (it may raise to stop the render).
    ``info`` (None unless ``return_info``) holds the projected Gaussians as gsplat's packed
    ``meta`` does: ``means2d``, ``radii``, ``gaussian_ids``, ``width``, ``height``,
    ``n_cameras``.
    """
    proj = project(means, quats, scales, opacities, viewmat, K, width, height)
    if window is not None:
        x0, y0, x1, y1 = (int(v) for v in window)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f'rasterize: window {window} is not inside the {width}x{height} '
                             f'image')
        proj = replace(proj, means2d=proj.means2d - proj.means2d.new_tensor([x0, y0]))
        width, height = x1 - x0, y1 - y0
    if return_info:  # only the drawn Gaussians, as gsplat's packed meta lists them
        drawn = (proj.radii > 0).all(dim=-1)
        fields = (proj.ids, proj.means2d, proj.conics, proj.depths, proj.opacities, proj.radii)
        proj = Projection(*(t[drawn] for t in fields))
    pairs = enumerate_pairs(proj, width, height, check or _no_check)
    weights = pair_weights(pairs, proj)
    image = composite(pairs, weights, features)  # [H*W, C]
    alpha = torch.zeros(width * height, dtype=weights.dtype, device=weights.device)
    alpha = alpha.index_add(0, pairs.pixel, weights)
    depth = None
    if return_depth:
        acc = torch.zeros_like(alpha).index_add(
            0, pairs.pixel, weights * proj.depths.index_select(0, pairs.local))
        # Expected depth, gsplat 'ED': sum(w z) / sum(w).
        depth = (acc / alpha.clamp(min=1e-10)).reshape(height, width)
    if background is not None:
        image = image + (1.0 - alpha)[:, None] * background.to(image.dtype)[None]
    image = image.T.reshape(features.shape[1], height, width)
    info = None
    if return_info:
        info = {'means2d': proj.means2d, 'radii': proj.radii, 'gaussian_ids': proj.ids,
                'width': width, 'height': height, 'n_cameras': 1}
    return image, alpha.reshape(height, width), depth, info
