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
2. Optional clustering (DBSCAN, ``clustering.py``) splits the seeds into instances;
   clusters smaller than ``min_gaussians`` are noise. Instances are ranked by their
   rendered support, the sum of probability x visibility (what they contribute to the rendered
   mask), or by probability mass (``rank_by='mass'``, the rule without visibility); the best
   ``top_k`` are kept.
3. Label propagation (``propagate``): a poorly seen Gaussian joins an instance when its nearest
   well-seen Gaussian (within ``propagation_radius``) belongs to it, or, deeper inside, when it
   is within that radius of a Gaussian that joined in the step before (``propagation_hops``
   steps), so the published cloud is the whole object, back side and inside included, as a
   grasp planner needs it.
4. Each kept instance gets an oriented bounding box (``boxes.py``, which documents the box axis
   convention for grasp planners: z up, x along the footprint's longer side, right-handed).
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

from refersplat_ros.core.inference.boxes import oriented_box
from refersplat_ros.core.inference.clustering import cluster_points
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
    # Box z = scene up axis (the convention: ``boxes.py``); False = free 3D box.
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
    normals: Optional[np.ndarray] = None  # [P, 3] unit surface normals (None = unknown)
    curvature: Optional[np.ndarray] = None  # [P] how little each is a surface (PCL's curvature)

    @property
    def best(self) -> Instance:
        return self.instances[0]

    @property
    def score(self) -> float:
        """Mean probability over the target cloud (0 when nothing is selected)."""
        return float(self.scores.mean()) if len(self.scores) else 0.0


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
        self._groups, self._group_links = None, None  # set_groups

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

    def set_groups(self, groups: Optional[np.ndarray]) -> None:
        """Let a Gaussian inherit a label only from one of its own group (None: any).

        ``groups`` [N] int: 0 for the captured scene, an object's own number for the Gaussians
        of an object a scene edit moved or removed: their links to the rest were made where
        the capture saw them.
        """
        self._groups = None if groups is None else np.asarray(groups).reshape(-1)
        self._group_links = None

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
            self._group_links = None
        if self._groups is None:
            return self._links
        if self._group_links is None:
            unseen, source = self._links
            same = self._groups[unseen] == self._groups[source]
            self._group_links = (unseen[same], source[same])
        return self._group_links


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
