"""From per-Gaussian referring probabilities to a target: selected Gaussians, clusters, pose, box.

The referring field gives every Gaussian a logit m_i for the query (docs/METHOD.md#response); its
probability is sigmoid(m_i), and the paper's mask rule is sigmoid >= 0.5
(docs/METHOD.md#inference). The paper checks only 2D masks, and the 2D loss constrains a
Gaussian's response only as much as the training views show it: inner layers and hidden sides
answer almost anything, and on a cluttered scene they put 10-36 % of every other object above
the threshold (docs/RESULTS.md#3d-target). So the 3D target is selected as the rendered masks
see it (docs/METHOD.md#target-selection):

1. Seeds: Gaussians with probability >= ``threshold``, opacity >= ``min_opacity`` and, when the
   scene's visibility is known (``Visibility``: each Gaussian's total compositing weight over the
   training views, saved with the checkpoint), *well seen*: visibility >= ``seen_fraction`` times
   the scene's 90th percentile.
2. Optional clustering (DBSCAN, :func:`cluster_points`) splits the seeds into instances;
   clusters smaller than ``min_gaussians`` are noise. The DBSCAN here is exact but its cost does
   not grow with the radius (open3d's lists every neighbour within eps: a large eps made one
   query quadratic, 40 s and 2.9 GB for 20k points at eps = 1e6). Instances are ranked by their
   rendered support, the sum of probability x visibility (what they contribute to the rendered
   mask), or by probability mass (``rank_by='mass'``, the rule without visibility); the best
   ``top_k`` are kept.
3. Label propagation (``propagate``): a poorly seen Gaussian joins an instance when its nearest
   well-seen Gaussian (within ``propagation_radius``) belongs to it, or, deeper inside, when it
   is within that radius of a Gaussian that joined in the step before (``propagation_hops``
   steps), so the published cloud is the whole object, back side and inside included, as a
   grasp planner needs it.
4. Each kept instance gets an oriented bounding box. Box axis convention (stable, documented for
   grasp planners): with ``upright=True`` (default) z is the scene's up axis and x, y are the
   principal directions of the instance's footprint in the horizontal plane, x along the longer
   one; otherwise the box axes are the 3D principal axes and z is the one closest to up. x is then
   signed to point along +x of the scene frame (+y when x is perpendicular to it), z upward, and
   y = z × x (right-handed). The box is computed here with numpy (PCA), not open3d's qhull-based
   box, which fails on fewer than 4 or coplanar points.
5. Positions and sizes are scaled by ``metric_scale`` (metres per scene unit) for the output.

Fewer than ``min_gaussians`` seeds (in the best instance) is a NO_MATCH. Without visibility
(``seen_fraction = 0``, or a checkpoint that has none) every Gaussian counts as well seen and the
selection is the paper's threshold followed by clustering.
"""
from dataclasses import dataclass, field
import math
from typing import Callable, List, Optional

import numpy as np
import open3d as o3d

from refersplat_ros.core.scene.frames import rotation_to_quaternion_xyzw

RANKINGS = ('support', 'mass')
#: Percentile of the scene's visibility that ``seen_fraction`` scales.
SEEN_REFERENCE_PERCENTILE = 90.0


@dataclass
class SelectionConfig:
    """Parameters of :func:`select_target` (defaults follow the paper's 0.5 mask threshold)."""

    # Select Gaussians with sigmoid(m) >= threshold (docs/METHOD.md#inference uses 0.5).
    threshold: float = 0.5
    # Ignore Gaussians whose activated opacity is below this.
    min_opacity: float = 0.05
    # Fewer selected Gaussians than this in the best instance is a NO_MATCH.
    min_gaussians: int = 10
    # Split the selection into instances with DBSCAN (else one instance).
    cluster: bool = True
    # DBSCAN radius in scene units; <= 0 = automatic: 3 x the median nearest-neighbour spacing.
    cluster_eps: float = 0.0
    # DBSCAN core-point neighbourhood size.
    cluster_min_points: int = 5
    # Number of instances (best first) merged into the target cloud.
    top_k: int = 1
    # Box z = scene up axis (see the module docstring); False = free 3D box.
    upright: bool = True
    # Scene up direction (scene frame).
    up_axis: tuple = (0.0, 0.0, 1.0)
    # Metres per scene unit, applied to output positions and box sizes.
    metric_scale: float = 1.0
    # Well seen: visibility >= seen_fraction x the scene's 90th percentile (0 = trust all).
    seen_fraction: float = 0.05
    # Instance ranking: 'support' (sum of probability x visibility) or 'mass' (of probability).
    rank_by: str = 'support'
    # Poorly seen Gaussians take the instance of their nearest well-seen Gaussian.
    propagate: bool = True
    # Largest distance of that neighbour, scene units; <= 0 = automatic: 4 x the median spacing.
    propagation_radius: float = 0.0
    # Steps of propagation: a poorly seen Gaussian with no well-seen one within the radius takes
    # the instance of its nearest Gaussian labelled in the step before (the inside of a thick
    # object, layer by layer); 1 = from well-seen Gaussians only.
    propagation_hops: int = 8

    def validate(self):
        """Raise ValueError naming the first parameter that is out of range."""
        checks = [
            (0.0 < self.threshold < 1.0, 'threshold must be in (0, 1)'),
            (0.0 <= self.min_opacity < 1.0, 'min_opacity must be in [0, 1)'),
            (self.min_gaussians >= 1, 'min_gaussians must be >= 1'),
            (self.cluster_min_points >= 1, 'cluster_min_points must be >= 1'),
            (self.top_k >= 1, 'top_k must be >= 1'),
            (self.metric_scale > 0.0, 'metric_scale must be > 0'),
            (0.0 <= self.seen_fraction <= 1.0, 'seen_fraction must be in [0, 1]'),
            (self.rank_by in RANKINGS, f'rank_by must be one of {RANKINGS}'),
            (math.isfinite(self.propagation_radius), 'propagation_radius must be finite'),
            (self.propagation_hops >= 1, 'propagation_hops must be >= 1'),
            (np.linalg.norm(self.up_axis) > 0.0, 'up_axis must be non-zero'),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class Instance:
    """One selected object instance, in metric units of the scene frame."""

    indices: np.ndarray     # [P] int64 Gaussian indices: seeds, then propagated ones
    score: float            # mean probability of its seeds
    mass: float             # ranking key: rendered support (or probability mass)
    centroid: np.ndarray    # [3]
    center: np.ndarray      # [3] box centre
    rotation: np.ndarray    # [3, 3] box axes as columns (x, y, z)
    extent: np.ndarray      # [3] box size along x, y, z

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        """Box orientation as a unit quaternion (x, y, z, w), the ROS order."""
        return rotation_to_quaternion_xyzw(self.rotation)


@dataclass
class Selection:
    """Result of :func:`select_target`."""

    ok: bool
    reason: str                           # why not ok ('' when ok)
    indices: np.ndarray                   # [P] Gaussians of the kept instances (the target cloud)
    points: np.ndarray                    # [P, 3] metric positions
    colors: np.ndarray                    # [P, 3] float RGB in [0, 1]
    scores: np.ndarray                    # [P] probabilities (inherited by propagated ones)
    instances: List[Instance] = field(default_factory=list)  # best first
    num_candidates: int = 0               # Gaussians above threshold before clustering

    @property
    def best(self) -> Instance:
        return self.instances[0]

    @property
    def score(self) -> float:
        """Mean probability over the target cloud (0 when nothing is selected)."""
        return float(self.scores.mean()) if len(self.scores) else 0.0


def _auto_eps(points: np.ndarray) -> float:
    """3 x the median distance of a point to its nearest other point (0 for < 2 points)."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(points) < 2:
        return 0.0
    return _auto_eps_from(_knn(points, points, 2)[1])


def _auto_eps_from(dist2: np.ndarray) -> float:
    """:func:`_auto_eps` from squared distances to the k >= 2 nearest points (self included)."""
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


def _signed_axis(axis: np.ndarray, reference: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Flip ``axis`` to point along ``reference`` (``fallback`` when nearly perpendicular)."""
    dot = float(axis @ reference)
    if abs(dot) < 1e-3:
        dot = float(axis @ fallback)
    return axis if dot >= 0.0 else -axis


def oriented_box(points: np.ndarray, up=(0.0, 0.0, 1.0), upright: bool = True):
    """PCA oriented bounding box with the module's axis convention.

    Args:
        points: [P, 3] positions, P >= 1.
        up: [3] scene up direction.
        upright: z = up (footprint PCA in the horizontal plane) instead of free 3D PCA.

    Returns:
        (center [3], rotation [3, 3] with the box axes x, y, z as columns, extent [3]).
    """
    points = np.asarray(points, np.float64)
    up = np.asarray(up, np.float64)
    up = up / np.linalg.norm(up)
    # A reference "scene x" orthogonal to up, used to sign the box x axis deterministically.
    ref_x = np.array([1.0, 0.0, 0.0]) - up * up[0]
    if np.linalg.norm(ref_x) < 1e-6:
        ref_x = np.array([0.0, 1.0, 0.0]) - up * up[1]
    ref_x /= np.linalg.norm(ref_x)
    ref_y = np.cross(up, ref_x)
    centred = points - points.mean(axis=0)
    if upright:
        z = up
        planar = centred @ np.stack([ref_x, ref_y], axis=1)      # [P, 2] footprint
        cov = planar.T @ planar if len(points) > 1 else np.eye(2)
        _, vecs = np.linalg.eigh(cov)
        major = vecs[:, -1]                                         # largest variance
        x = major[0] * ref_x + major[1] * ref_y
    else:
        cov = centred.T @ centred if len(points) > 1 else np.eye(3)
        _, vecs = np.linalg.eigh(cov)
        z = vecs[:, int(np.argmax(np.abs(vecs.T @ up)))]
        z = z if z @ up >= 0 else -z
        rest = [vecs[:, i] for i in range(3) if not np.allclose(np.abs(vecs[:, i] @ z), 1.0)]
        spans = [np.ptp(centred @ v) for v in rest]
        x = rest[int(np.argmax(spans))] if rest else ref_x
    x = x - z * (x @ z)
    x = _signed_axis(x / np.linalg.norm(x), ref_x, ref_y)
    y = np.cross(z, x)
    rotation = np.stack([x, y, z], axis=1)
    local = points @ rotation                                       # coordinates in box axes
    low, high = local.min(axis=0), local.max(axis=0)
    center = rotation @ ((low + high) / 2.0)
    return center, rotation, high - low


class Visibility:
    """How much the training views show each Gaussian, and what the selection derives from it.

    Args:
        weight: [N] total compositing weight of each Gaussian over the training views
            (``ViewWeights.visibility``, saved with the checkpoint).
        means: [N, 3] Gaussian centres.
        opacities: [N] activated opacities.

    The well-seen set and each poorly seen Gaussian's nearest well-seen neighbour depend only
    on the scene and two settings; they are computed once per setting and kept.
    """

    def __init__(self, weight: np.ndarray, means: np.ndarray, opacities: np.ndarray):
        self.weight = np.asarray(weight, np.float32).reshape(-1)
        self.means = np.asarray(means, np.float32)
        self.opacities = np.asarray(opacities, np.float32).reshape(-1)
        if self.means.shape != (len(self.weight), 3) or self.opacities.shape != self.weight.shape:
            raise ValueError(f'visibility [{len(self.weight)}] does not match means '
                             f'{list(self.means.shape)} / opacities {list(self.opacities.shape)}')
        if not np.isfinite(self.weight).all() or (self.weight < 0).any():
            raise ValueError('visibility must be finite and >= 0')
        positive = self.weight[self.weight > 0]
        self.reference = float(np.percentile(positive, SEEN_REFERENCE_PERCENTILE)) \
            if len(positive) else 0.0
        self._seen_key, self._seen = None, None
        self._links_key, self._links = None, None

    @property
    def nbytes(self) -> int:
        arrays = [self.weight, self._seen] + list(self._links or ())
        return int(sum(a.nbytes for a in arrays if a is not None))

    def seen(self, fraction: float) -> np.ndarray:  # [N] bool
        """Gaussians with visibility >= ``fraction`` x the scene's 90th percentile."""
        if self._seen_key != fraction:
            self._seen = self.weight >= fraction * self.reference if fraction > 0 \
                else np.ones(len(self.weight), bool)
            self._seen_key = fraction
            self._links_key = None
        return self._seen

    def links(self, fraction: float, radius: float, min_opacity: float, hops: int = 1):
        """Poorly seen Gaussians that can inherit a label, and the well-seen one they inherit from.

        Step 1 links each poorly seen Gaussian with opacity >= ``min_opacity`` to its nearest
        well-seen Gaussian within ``radius`` (<= 0: automatic, 4 x the median spacing of the
        well-seen Gaussians). Each further step (up to ``hops``) links the ones still unlinked
        to their nearest Gaussian linked in the step before, within the same radius, and so to
        that one's well-seen source: the inside of an object, layer by layer. (Only the last
        step's Gaussians can be within the radius: older ones were farther, or the Gaussian
        would have been linked then.)

        Returns:
            ``(unseen, source)``: [U] indices of the linked poorly seen Gaussians and [U] the
            well-seen Gaussian each inherits from.
        """
        key = (fraction, radius, min_opacity, hops)
        if self._links_key != key:
            seen = self.seen(fraction)
            seen_index = np.flatnonzero(seen)
            remaining = np.flatnonzero(~seen & (self.opacities >= min_opacity))
            linked, sources = [], []
            if len(seen_index) and len(remaining):
                if radius <= 0:
                    radius = 4.0 * _median_spacing(self.means[seen_index])
                front, front_source = seen_index, seen_index  # labelled in the step before
                for _ in range(hops):
                    if not len(front) or not len(remaining):
                        break
                    search = o3d.core.nns.NearestNeighborSearch(
                        o3d.core.Tensor(self.means[front]))
                    search.knn_index()
                    found, dist2 = search.knn_search(o3d.core.Tensor(self.means[remaining]), 1)
                    found, dist2 = found.numpy()[:, 0], dist2.numpy()[:, 0]
                    close = dist2 <= radius * radius
                    front, front_source = remaining[close], front_source[found[close]]
                    linked.append(front)
                    sources.append(front_source.astype(np.int64))
                    remaining = remaining[~close]
            empty = np.zeros(0, np.int64)
            self._links = (np.concatenate(linked) if linked else empty,
                           np.concatenate(sources) if sources else empty)
            self._links_key = key
        return self._links


def _median_spacing(points: np.ndarray, sample: int = 20000) -> float:
    """Median nearest-neighbour distance of ``points`` (on a fixed subsample of large sets)."""
    if len(points) > sample:
        points = points[np.random.default_rng(0).choice(len(points), sample, replace=False)]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    spacing = np.asarray(cloud.compute_nearest_neighbor_distance())
    return float(np.median(spacing)) if len(spacing) else 0.0


def _no_selection(reason: str, num_candidates: int = 0) -> Selection:
    """Return a Selection that found nothing (``ok`` False, empty arrays), saying why."""
    return Selection(False, reason, np.zeros(0, np.int64), np.zeros((0, 3), np.float32),
                     np.zeros((0, 3), np.float32), np.zeros(0, np.float32),
                     num_candidates=num_candidates)


def select_target(probabilities: np.ndarray, means: np.ndarray, opacities: np.ndarray,
                  colors: np.ndarray, config: SelectionConfig = None,
                  visibility: Optional[Visibility] = None,
                  check: Optional[Callable[[], None]] = None) -> Selection:
    """Select the query's target Gaussians and fit its pose and box.

    Args:
        probabilities: [N] sigmoid of the referring logits.
        means: [N, 3] Gaussian centres (scene units).
        opacities: [N] activated opacities.
        colors: [N, 3] RGB in [0, 1] (SH DC colour).
        config: thresholds and clustering; defaults to ``SelectionConfig()``.
        visibility: the scene's ``Visibility``; None = every Gaussian counts as well seen.
        check: called between the clustering steps; it may raise to abandon the work (the
            model's per-query time budget).

    Returns:
        A :class:`Selection`; ``ok`` is False (with ``reason``) on no match.
    """
    config = config or SelectionConfig()
    config.validate()
    probabilities = np.asarray(probabilities, np.float32).reshape(-1)
    means = np.asarray(means, np.float32)
    n = len(probabilities)
    if means.shape != (n, 3) or np.shape(opacities) != (n,) or np.shape(colors) != (n, 3):
        raise ValueError(f'shape mismatch: probabilities [{n}], means {list(means.shape)}, '
                         f'opacities {list(np.shape(opacities))}, colors {list(np.shape(colors))}')
    if visibility is not None and len(visibility.weight) != n:
        raise ValueError(f'visibility has {len(visibility.weight)} entries, probabilities {n}')
    use_visibility = visibility is not None and config.seen_fraction > 0
    # Non-finite probabilities and centres are dropped among the (few) candidates rather than
    # checked over all N every query (NaN never passes the threshold; +inf would).
    keep = (probabilities >= config.threshold) & (np.asarray(opacities) >= config.min_opacity)
    if use_visibility:
        keep &= visibility.seen(config.seen_fraction)
    candidates = np.flatnonzero(keep)
    candidates = candidates[np.isfinite(probabilities[candidates])
                            & np.isfinite(means[candidates]).all(axis=1)]
    empty = _no_selection('', len(candidates))
    if len(candidates) < config.min_gaussians:
        seen = ' well-seen' if use_visibility else ''
        empty.reason = (f'{len(candidates)}{seen} Gaussians have probability >= '
                        f'{config.threshold:g} (minimum {config.min_gaussians})')
        return empty
    groups = _instances(probabilities, means, candidates, config,
                        visibility if config.rank_by == 'support' else None, check)
    if not groups:
        empty.reason = (f'{len(candidates)} Gaussians above threshold but no cluster has '
                        f'{config.min_gaussians} or more')
        return empty
    scale = config.metric_scale
    instances, cloud_scores = [], []
    for support, seeds in groups[:config.top_k]:
        members, scores = seeds, probabilities[seeds]
        if use_visibility and config.propagate:
            joined, sources = _propagate(seeds, n, visibility, config)
            members = np.concatenate([seeds, joined])
            scores = np.concatenate([scores, probabilities[sources]])
        instances.append(instance_of(members, means, float(probabilities[seeds].mean()),
                                     config, support))
        cloud_scores.append(scores)
    indices = np.concatenate([inst.indices for inst in instances])
    return Selection(True, '', indices, (means[indices] * scale).astype(np.float32),
                     np.asarray(colors, np.float32)[indices],
                     np.concatenate(cloud_scores).astype(np.float32),
                     instances, num_candidates=len(candidates))


def select_object(members: np.ndarray, score: float, means: np.ndarray, opacities: np.ndarray,
                  colors: np.ndarray, config: SelectionConfig = None,
                  visibility: Optional[Visibility] = None) -> Selection:
    """Select a known object's Gaussians (an object-graph answer) as one instance.

    The same result as :func:`select_target` given probabilities ``score`` on ``members`` and 0
    elsewhere, with no clustering, one instance and ``min_gaussians`` 1 (tested), in time that
    grows with the object and the scene's poorly seen Gaussians instead of with N.
    """
    config = config or SelectionConfig()
    config.validate()
    means = np.asarray(means, np.float32)
    n = len(means)
    use_visibility = visibility is not None and config.seen_fraction > 0
    members = np.unique(np.asarray(members, np.int64))  # sorted, as select_target's candidates
    if len(members) and (members[0] < 0 or members[-1] >= n):
        raise ValueError(f'object members outside [0, {n})')
    score = np.float32(score)
    keep = np.asarray(opacities)[members] >= config.min_opacity
    if use_visibility:
        keep &= visibility.seen(config.seen_fraction)[members]
    candidates = members[keep] if score >= config.threshold else members[:0]
    candidates = candidates[np.isfinite(means[candidates]).all(axis=1)] if np.isfinite(score) \
        else candidates[:0]
    if not len(candidates):
        seen = ' well-seen' if use_visibility else ''
        return _no_selection(f'0{seen} Gaussians have probability >= {config.threshold:g} '
                             '(minimum 1)')
    weight = np.full(len(candidates), score, np.float32)
    if visibility is not None and config.rank_by == 'support':
        weight = weight * visibility.weight[candidates]
    indices = candidates
    if use_visibility and config.propagate:
        joined, _ = _propagate(candidates, n, visibility, config)
        indices = np.concatenate([candidates, joined])
    instance = instance_of(indices, means, float(score), config, float(weight.sum()))
    return Selection(True, '', indices, (means[indices] * config.metric_scale).astype(np.float32),
                     np.asarray(colors, np.float32)[indices],
                     np.full(len(indices), score, np.float32), [instance],
                     num_candidates=len(candidates))


def instance_of(members: np.ndarray, means: np.ndarray, score: float,
                config: SelectionConfig, mass: float = 0.0) -> Instance:
    """Build the :class:`Instance` of a set of Gaussians: centroid, oriented box, metres."""
    scale = config.metric_scale
    center, rotation, extent = oriented_box(means[members], config.up_axis, config.upright)
    return Instance(indices=members, score=score, mass=mass,
                    centroid=means[members].mean(axis=0).astype(np.float64) * scale,
                    center=center * scale, rotation=rotation, extent=extent * scale)


def _instances(probabilities: np.ndarray, means: np.ndarray, candidates: np.ndarray,
               config: SelectionConfig, visibility: Optional[Visibility],
               check: Optional[Callable[[], None]]) -> list:
    """``(rank key, members)`` of each instance of the candidates, best first.

    The key is the rendered support (sum of probability x visibility) with ``visibility``, else
    the probability mass.
    """
    if config.cluster:
        labels = cluster_points(means[candidates], config.cluster_eps, config.cluster_min_points,
                                check)
    else:
        labels = np.zeros(len(candidates), np.int64)
    groups = []
    for label in np.unique(labels[labels >= 0]):
        members = candidates[labels == label]
        if len(members) >= config.min_gaussians:
            weight = probabilities[members]
            if visibility is not None:
                weight = weight * visibility.weight[members]
            groups.append((float(weight.sum()), members))
    groups.sort(key=lambda g: -g[0])
    return groups


def _propagate(members: np.ndarray, num_gaussians: int, visibility: Visibility,
               config: SelectionConfig):
    """Poorly seen Gaussians whose well-seen source (``Visibility.links``) is in ``members``.

    Returns:
        ``(joined, sources)``: their indices and that source of each (whose probability it
        inherits: its own response was never checked by a view).
    """
    unseen, nearest = visibility.links(config.seen_fraction, config.propagation_radius,
                                       config.min_opacity, config.propagation_hops)
    member = np.zeros(num_gaussians, bool)
    member[members] = True
    chosen = member[nearest]
    return unseen[chosen], nearest[chosen]
