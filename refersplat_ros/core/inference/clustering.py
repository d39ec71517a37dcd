"""DBSCAN of 3D points whose cost does not grow with the radius.

The selection splits a query's seed Gaussians into instances with it
(``inference/selection.py``). open3d's DBSCAN lists every neighbour within eps: a large eps made
one query quadratic (40 s and 2.9 GB for 20k points at eps = 1e6). :func:`cluster_points` gives
the same labels (tested against the definition) from k-nearest-neighbour searches and a grid.
"""
import math
from typing import Callable, Optional

import numpy as np
import open3d as o3d


def _auto_eps_from(dist2: np.ndarray) -> float:
    """3 x the median distance to the nearest other point, from squared k-nearest (k >= 2)."""
    if dist2.shape[1] < 2:
        return 0.0
    second = np.partition(dist2, 1, axis=1)[:, 1]  # the nearest other point (0 if a duplicate)
    return 3.0 * float(np.median(np.sqrt(second)))


def _nearest_first(index: np.ndarray, dist2: np.ndarray, k: int):
    """Keep the k nearest of each k-nearest row, sorted by distance (the search's are not)."""
    order = np.argsort(dist2, axis=1, kind='stable')[:, :k]
    return (np.take_along_axis(index, order, axis=1), np.take_along_axis(dist2, order, axis=1))


def cluster_points(points: np.ndarray, eps: float, min_points: int,
                   check: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Label [P, 3] points with DBSCAN (-1 = noise); eps <= 0 picks eps automatically.

    Exact DBSCAN (a point is core with ``min_points`` points, itself included, within ``eps``;
    core points within ``eps`` of each other share a cluster; a border point joins the cluster
    of its nearest core point) computed with k-nearest-neighbour searches and a grid, so that
    the work is O(P log P) whatever ``eps`` is:

    1. core points from each point's ``min_points`` nearest neighbours;
    2. clusters: core points linked to core neighbours among those, and core points sharing a
       grid cell of side eps / sqrt(3) (any two are within eps); then each pair of neighbouring
       cells whose core points are still apart is joined if its closest pair of core points is
       within eps (one nearest-neighbour search per point of the smaller cell);
    3. border points from a nearest-core-point search.

    ``check`` (if given) is called between the steps; it may raise to abandon the work.
    """
    check = check or (lambda: None)
    points = np.asarray(points, np.float64).reshape(-1, 3)
    n = len(points)
    if n == 0:
        return np.zeros(0, np.int64)
    min_points = max(1, int(min_points))
    local = points - points.min(axis=0)
    index, dist2 = _knn(local, local, max(min_points, 2))
    if eps <= 0.0:
        eps = _auto_eps_from(dist2)
        if eps <= 0.0:  # all points coincide
            return np.zeros(n, np.int64)
    labels = np.full(n, -1, np.int64)
    if n < min_points:
        return labels
    index, dist2 = _nearest_first(index, dist2, min_points)
    eps2 = float(eps) ** 2
    core = dist2[:, -1] <= eps2  # the min_points-th nearest, the point itself included
    check()
    if not core.any():
        return labels
    core_ids = np.flatnonzero(core)
    grid = _core_grid(local[core_ids], eps)
    if grid is None:  # eps far below the point spacing: open3d's neighbour lists are short
        return _open3d_dbscan(points, eps, min_points)
    cell_of, lookup, cell_keys, shifts, first = grid
    # Core-core links among the nearest neighbours, and every core point to its cell's first.
    position = np.full(n, -1, np.int64)
    position[core_ids] = np.arange(len(core_ids))
    rows = np.repeat(np.arange(n), min_points)
    linked = (core[rows] & core[index.ravel()] & (dist2.ravel() <= eps2))
    link_a = position[rows[linked]]
    link_b = position[index.ravel()[linked]]
    link_a = np.concatenate([link_a, np.arange(len(core_ids))])
    link_b = np.concatenate([link_b, first[cell_of]])
    component = _components(len(core_ids), link_a, link_b)
    check()
    # Neighbouring cells (offsets within two cells) whose core points are still apart.
    cell_component = component[first]
    pairs_a, pairs_b = [], []
    for shift in shifts:
        found = lookup(cell_keys + shift)
        a = np.flatnonzero(found >= 0)
        b = found[a]
        apart = cell_component[a] != cell_component[b]
        pairs_a.append(a[apart])
        pairs_b.append(b[apart])
    pairs_a, pairs_b = np.concatenate(pairs_a), np.concatenate(pairs_b)
    check()
    if len(pairs_a):
        joined_a, joined_b = _close_cell_pairs(local[core_ids], cell_of, pairs_a, pairs_b, eps)
        component = _components(len(core_ids), np.concatenate([link_a, first[joined_a]]),
                                np.concatenate([link_b, first[joined_b]]))
    check()
    _, labels[core_ids] = np.unique(component, return_inverse=True)
    # Border points: the cluster of the nearest core point within eps.
    border = np.flatnonzero(~core)
    if len(border):
        nearest, nearest2 = _knn(local[core_ids], local[border], 1)
        reach = nearest2[:, 0] <= eps2
        labels[border[reach]] = labels[core_ids[nearest[reach, 0]]]
    return labels


# Offsets to the neighbouring cells that may hold a point within eps (cell side eps / sqrt(3):
# up to two cells away per axis), one of each +/- pair.
_CELL_OFFSETS = np.array([(i, j, k) for i in range(-2, 3) for j in range(-2, 3)
                          for k in range(-2, 3) if (i, j, k) > (0, 0, 0)], np.int64)


def _knn(data: np.ndarray, queries: np.ndarray, k: int):
    """Return indices [Q, k] into ``data`` and squared distances [Q, k] of the k nearest."""
    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(np.ascontiguousarray(data)))
    search.knn_index()
    k = min(k, len(data))
    index, dist2 = search.knn_search(o3d.core.Tensor(np.ascontiguousarray(queries)), k)
    return index.numpy().astype(np.int64), dist2.numpy()


def _core_grid(core_points: np.ndarray, eps: float):
    """Put the core points in grid cells of side eps / sqrt(3), with integer keys.

    Returns ``(cell of each point, lookup(keys) -> cell index or -1, cell keys, offsets of the
    neighbouring cells' keys per offset of _CELL_OFFSETS, first point of each cell)``, or None
    when the keys would overflow int64 (eps below ~1e-6 of the extent with millions of points).
    """
    side = eps / math.sqrt(3.0)
    scaled = np.floor(core_points / side)
    if not np.isfinite(scaled).all() or scaled.max() > 2.0 ** 52:
        return None
    coords = scaled.astype(np.int64)
    coords -= coords.min(axis=0) - 2         # every coordinate and its +/-2 neighbours >= 0
    dims = coords.max(axis=0) + 3
    if math.prod(int(d) for d in dims) >= 2 ** 62:
        return None
    keys = (coords[:, 0] * dims[1] + coords[:, 1]) * dims[2] + coords[:, 2]
    cell_keys, first, cell_of = np.unique(keys, return_index=True, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    shifts = (_CELL_OFFSETS[:, 0] * dims[1] + _CELL_OFFSETS[:, 1]) * dims[2] + _CELL_OFFSETS[:, 2]
    size = int(math.prod(int(d) for d in dims))
    if size <= max(8 * len(cell_keys), 1 << 22):  # a dense table: one gather per lookup
        table = np.full(size, -1, np.int64)
        table[cell_keys] = np.arange(len(cell_keys))

        def lookup(wanted):
            return table[wanted]
    else:
        def lookup(wanted):
            found = np.minimum(np.searchsorted(cell_keys, wanted), len(cell_keys) - 1)
            return np.where(cell_keys[found] == wanted, found, -1)
    return cell_of, lookup, cell_keys, shifts, first


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label ``count`` nodes with edges a-b by component: the smallest node id of each."""
    label = np.arange(count)
    while True:
        low = np.minimum(label[a], label[b])
        hooked = label.copy()
        np.minimum.at(hooked, label[a], low)
        np.minimum.at(hooked, label[b], low)
        while True:  # pointer jumping: every node to its root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, label):
            return label
        label = hooked


def _close_cell_pairs(core_points: np.ndarray, cell_of: np.ndarray, pairs_a: np.ndarray,
                      pairs_b: np.ndarray, eps: float):
    """Return the cell pairs whose closest pair of core points is within eps.

    One nearest-neighbour search answers all pairs: the core points get a fourth coordinate,
    4 eps times their cell number, so a query point given the fourth coordinate of cell B finds
    its nearest point in B (any other cell is at least 4 eps away). Each pair is queried with
    the points of its smaller cell.
    """
    counts = np.bincount(cell_of)
    swap = counts[pairs_a] > counts[pairs_b]
    small = np.where(swap, pairs_b, pairs_a)
    large = np.where(swap, pairs_a, pairs_b)
    order = np.argsort(cell_of, kind='stable')
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sizes = counts[small]
    pair_of_query = np.repeat(np.arange(len(small)), sizes)
    within = np.arange(len(pair_of_query)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    members = order[np.repeat(starts[small], sizes) + within]
    lift = 4.0 * eps
    data = np.concatenate([core_points, (cell_of * lift)[:, None]], axis=1)
    queries = np.concatenate([core_points[members],
                              (large[pair_of_query] * lift)[:, None]], axis=1)
    _, dist2 = _knn(data, queries, 1)
    close = np.zeros(len(small), bool)
    close[pair_of_query[dist2[:, 0] <= eps * eps]] = True
    return pairs_a[close], pairs_b[close]


def _open3d_dbscan(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return np.asarray(cloud.cluster_dbscan(eps=eps, min_points=min_points), dtype=np.int64)
