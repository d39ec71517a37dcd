"""Frozen-geometry fast path: per-view compositing weights as a sparse matrix, and their cache.

ReferSplat trains only per-Gaussian features on a frozen pretrained scene
(docs/METHOD.md#rasterized-logit: geometry gradients are discarded), so for one view the rendered
image is linear in the features: ``image[p] = sum_g W[p, g] * feature[g]`` with
``W[p, g] = alpha_g(p) T_g(p)``. The
weights are built once per view with the exact CPU compositor and each training step is one
sparse-dense product, equal to ``rasterize`` up to float summation order.
"""
from collections import OrderedDict
from dataclasses import dataclass
import logging
import time
from typing import Callable, Hashable, Optional
import warnings

import torch
from torch import Tensor

from refersplat_ros.core.render.cpu import enumerate_pairs, pair_weights, project
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussians import GaussianScene

logger = logging.getLogger(__name__)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, num_rows: int, num_cols: int) -> Tensor:
    """CSR matrix from (row, col, value) triplets already sorted by row (int32 indices)."""
    counts = torch.bincount(rows, minlength=num_rows)
    crow = torch.zeros(num_rows + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(counts, dim=0)
    index_dtype = torch.int32 if max(num_rows, num_cols, values.shape[0]) < 2**31 else torch.int64
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), values,
                                       size=(num_rows, num_cols), check_invariants=False)


class _SparseComposite(torch.autograd.Function):
    """image = W @ features with the gradient W^T @ grad (W^T kept, so no transpose per step)."""

    @staticmethod
    def forward(ctx, features: Tensor, weights: Tensor, weights_t: Tensor) -> Tensor:
        ctx.weights_t = weights_t
        return torch.sparse.mm(weights, features)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_features = None
        if ctx.needs_input_grad[0]:
            grad_features = torch.sparse.mm(ctx.weights_t, grad.contiguous())
        return grad_features, None, None


@dataclass
class CompositingWeights:
    """Compositing weights of one view: ``render(features)`` equals ``rasterize(...).image``.

    Attributes:
        width: Image width.
        height: Image height.
        num_gaussians: N, the number of columns of the weight matrix.
        weights: Sparse CSR matrix W. [H * W, N]
        weights_t: Its transpose, CSR, for the backward pass. [N, H * W]; None for weights
            built for inference only (``compositing_weights(..., transpose=False)``: half the
            memory, no gradient).
        alpha: Accumulated opacity. [H, W]
        depth: Alpha-weighted expected depth (0 where alpha is 0). [H, W]
    """

    width: int
    height: int
    num_gaussians: int
    weights: Tensor  # sparse CSR [H*W, N]
    weights_t: Optional[Tensor]  # sparse CSR [N, H*W], None = inference only
    alpha: Tensor  # [H, W]
    depth: Tensor  # [H, W]

    @property
    def num_pairs(self) -> int:
        """Number of stored non-zero weights (Gaussian-pixel pairs)."""
        return int(self.weights.values().shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the tensors of this object."""
        total = self.alpha.numel() * self.alpha.element_size()
        total += self.depth.numel() * self.depth.element_size()
        for mat in (self.weights, self.weights_t):
            if mat is None:
                continue
            for t in (mat.crow_indices(), mat.col_indices(), mat.values()):
                total += t.numel() * t.element_size()
        return total

    def gaussian_weight(self) -> Tensor:  # [N]
        """Total compositing weight of each Gaussian in this view (its share of the pixels).

        Sum over pixels of T * alpha: how much of the rendered image the Gaussian makes. 0 for
        a Gaussian that is hidden, outside the view or below the alpha floor.
        """
        if self.weights_t is None:
            values = self.weights.values()
            rows = self.weights.col_indices().to(torch.int64)
        else:
            crow, values = self.weights_t.crow_indices(), self.weights_t.values()
            counts = (crow[1:] - crow[:-1]).to(torch.int64)
            rows = torch.repeat_interleave(
                torch.arange(self.num_gaussians, device=values.device), counts)
        return torch.zeros(self.num_gaussians, dtype=values.dtype,
                           device=values.device).index_add_(0, rows, values)

    def render(
        self,
        features: Tensor,  # [N, C]
        background: Optional[Tensor] = None,  # [C]
    ) -> Tensor:  # [C, H, W]
        """Composite per-Gaussian features; differentiable w.r.t. ``features`` (and background)."""
        if features.dim() != 2 or features.shape[0] != self.num_gaussians:
            raise ValueError(f'features must be [{self.num_gaussians}, C], '
                             f'got {tuple(features.shape)}')
        vals = self.weights.values()
        weights, weights_t = self.weights, self.weights_t
        if features.dtype != vals.dtype:
            features = features.to(vals.dtype)
        if weights_t is None:
            if torch.is_grad_enabled() and features.requires_grad:
                raise ValueError('these compositing weights were built for inference only '
                                 '(transpose=False): no gradient')
            image = torch.sparse.mm(weights, features.contiguous())  # [H*W, C]
        else:
            image = _SparseComposite.apply(features.contiguous(), weights, weights_t)
        if background is not None:
            transmittance = (1.0 - self.alpha).reshape(-1, 1)
            image = image + transmittance * background.to(image.dtype)[None]
        return image.T.reshape(features.shape[1], self.height, self.width)


@torch.no_grad()
def compositing_weights(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3] activated
    opacities: Tensor,  # [N] activated
    camera: Camera,
    transpose: bool = True,
) -> CompositingWeights:
    """Build the frozen-geometry compositing weights of ``camera`` (exact CPU compositor rules).

    Runs on the device of ``means`` (pure torch). Geometry gets no gradient through this path.
    ``transpose=False`` skips the transposed copy that only the backward pass needs
    (inference: half the memory).
    """
    width, height = camera.width, camera.height
    viewmat = camera.world_to_camera.to(means)
    K = camera.intrinsics(means.dtype, means.device)
    proj = project(means, quats, scales, opacities, viewmat, K, width, height)
    pairs = enumerate_pairs(proj, width, height)
    w = pair_weights(pairs, proj)
    num_pixels = width * height
    n = means.shape[0]
    weights = _csr(pairs.pixel, pairs.gaussian, w, num_pixels, n)
    weights_t = None
    if transpose:
        order = torch.argsort(pairs.gaussian, stable=True)
        weights_t = _csr(pairs.gaussian[order], pairs.pixel[order], w[order], n, num_pixels)
    alpha = torch.zeros(num_pixels, dtype=w.dtype, device=w.device).index_add_(0, pairs.pixel, w)
    acc = torch.zeros_like(alpha).index_add_(0, pairs.pixel, w * proj.depths[pairs.local])
    depth = acc / alpha.clamp(min=1e-10)
    return CompositingWeights(width, height, n, weights, weights_t,
                              alpha.reshape(height, width), depth.reshape(height, width))


class WeightsCache:
    """LRU cache of ``CompositingWeights`` bounded by total bytes.

    ``get(key, build_fn)`` returns the cached entry or builds it; least recently used entries
    are evicted until the total is within ``max_bytes``. An entry larger than ``max_bytes`` on
    its own is returned but not kept.
    """

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f'max_bytes must be >= 0, got {max_bytes}')
        self.max_bytes = int(max_bytes)
        self._entries: 'OrderedDict[Hashable, CompositingWeights]' = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached entries."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keys(self) -> list:
        """Keys from least to most recently used."""
        return list(self._entries.keys())

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._bytes = 0

    def get(self, key: Hashable, build_fn: Callable[[], CompositingWeights]) -> CompositingWeights:
        """Return the entry for ``key``, building it with ``build_fn()`` on a miss."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry
        self.misses += 1
        entry = build_fn()
        size = entry.nbytes
        if size > self.max_bytes:
            logger.warning('compositing weights for %r need %.1f MB, more than the cache bound '
                           '%.1f MB: not cached', key, size / 1e6, self.max_bytes / 1e6)
            return entry
        self._entries[key] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.nbytes
        return entry


def _view_key(camera: Camera) -> tuple:
    """Cache key of a camera's compositing weights (frozen geometry, so the camera suffices)."""
    return (camera.name, camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy,
            tuple(camera.world_to_camera.reshape(-1).tolist()))


class ViewWeights:
    """Compositing weights of views of one scene, built on demand into an LRU cache."""

    def __init__(self, scene: GaussianScene, device: torch.device, max_bytes: int):
        self.scene = scene.to(device)
        self.cache = WeightsCache(max_bytes)
        self.build_seconds = 0.0

    def get(self, camera: Camera) -> CompositingWeights:
        def build():
            start = time.perf_counter()
            s = self.scene
            weights = compositing_weights(s.means, s.quats, s.scales, s.opacities, camera)
            self.build_seconds += time.perf_counter() - start
            return weights
        return self.cache.get(_view_key(camera), build)

    def visibility(self, cameras) -> Tensor:  # [N] float32
        """Total compositing weight of each Gaussian over ``cameras`` (how much it is seen).

        The rendered masks constrain a Gaussian's response in proportion to this weight: a
        Gaussian the views never show (an inner layer, a hidden back side) has visibility 0 and
        a response no loss ever checked.
        """
        return self.visibility_and_directions(cameras, directions=False)[0]

    def view_directions(self, cameras) -> Tensor:  # [N, 3] float32
        """Weighted sum of the unit vectors from each Gaussian to the cameras that see it.

        ``d_i = sum_c w_ic (o_c - mu_i) / |o_c - mu_i|`` with ``w_ic`` the Gaussian's total
        compositing weight in camera c (``gaussian_weight``) and ``o_c`` the camera centre:
        the side of the surface the views showed, occlusion included; its norm is at most the
        visibility. Zero for a Gaussian no camera shows. It orients the surface normals
        (``core/scene/normals.py``) and reuses the cached per-view weights.
        """
        return self.visibility_and_directions(cameras)[1]

    def visibility_and_directions(self, cameras, directions: bool = True):
        """Return ``(visibility [N], view_directions [N, 3] or None)`` in one pass over views."""
        means = self.scene.means.to(torch.float64)
        total = torch.zeros(self.scene.num_gaussians, dtype=torch.float64, device=means.device)
        toward = torch.zeros_like(means) if directions else None
        for camera in cameras:
            weight = self.get(camera).gaussian_weight().to(torch.float64)
            total += weight
            if directions:
                offset = camera.center.to(means) - means
                offset /= offset.norm(dim=1, keepdim=True).clamp(min=1e-12)
                toward += weight[:, None] * offset
        return total.to(torch.float32), None if toward is None else toward.to(torch.float32)
