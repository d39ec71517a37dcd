"""Object ids for reconstructed Gaussians, from a known surface (how Ref-Synth scores a capture).

A reconstructed Gaussian takes the object id of the nearest true surface sample when its centre
lies within ``tolerance`` of it, or within twice that sample's largest scale when it is a large
one (sparse floor and table Gaussians cover more than their centre); farther ones are
**floaters** (id ``floater_id``, by default the background's 0: selecting one counts against
precision like selecting the table).
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

#: Distances computed at once (bounds memory: 2^25 floats, 128 MB).
_CHUNK_FLOATS = 1 << 25


@dataclass
class IdTransfer:
    """Ids of the reconstructed Gaussians and how far each lies from the true surface."""

    ids: np.ndarray  # [M] int32
    distance: np.ndarray  # [M] float32, metres to the nearest true Gaussian
    floater: np.ndarray  # [M] bool, farther than the tolerance

    @property
    def num_floaters(self) -> int:
        return int(self.floater.sum())


def nearest(query: Tensor, reference: Tensor):  # [M, 3], [N, 3] -> ([M] dist, [M] index)
    """Nearest reference point of each query point (exact, chunked)."""
    query, reference = query.float(), reference.float()
    dist = torch.empty(len(query))
    index = torch.empty(len(query), dtype=torch.int64)
    rows = max(1, _CHUNK_FLOATS // max(1, len(reference)))
    for start in range(0, len(query), rows):
        d = torch.cdist(query[start:start + rows], reference)
        value, arg = d.min(dim=1)
        dist[start:start + rows], index[start:start + rows] = value, arg
    return dist, index


def transfer_ids(means: Tensor, true_means: Tensor, true_ids: np.ndarray, *,
                 tolerance: float = 0.02, floater_id: int = 0,
                 true_extent: Optional[np.ndarray] = None) -> IdTransfer:
    """Give each of ``means`` [M, 3] the id of the nearest of ``true_means`` [N, 3].

    Within ``max(tolerance, 2 * true_extent)`` metres (``true_extent`` [N]: each true
    Gaussian's largest scale; None: ``tolerance`` alone), else ``floater_id``.
    """
    if len(true_means) != len(true_ids):
        raise ValueError(f'transfer_ids: {len(true_means)} true Gaussians but '
                         f'{len(true_ids)} ids')
    if len(true_means) == 0:
        raise ValueError('transfer_ids: no true Gaussians')
    dist, index = nearest(means, true_means)
    reach = np.full(len(index), tolerance, dtype=np.float64)
    if true_extent is not None:
        reach = np.maximum(reach, 2.0 * np.asarray(true_extent, np.float64)[index.numpy()])
    floater = dist.numpy() > reach
    ids = np.asarray(true_ids, dtype=np.int32)[index.numpy()]
    ids[floater] = floater_id
    return IdTransfer(ids, dist.numpy().astype(np.float32), floater)


def purity(ids: np.ndarray, labels: np.ndarray, num_objects: int) -> np.ndarray:
    """Return, per object k = 1..K, the share of the Gaussians labelled k whose true id is k.

    NaN when none is labelled k. ``labels`` are lifted labels (e.g. from the training masks).
    """
    out = np.full(num_objects, np.nan)
    for k in range(1, num_objects + 1):
        sel = labels == k
        if sel.any():
            out[k - 1] = float((ids[sel] == k).mean())
    return out
