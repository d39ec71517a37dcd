"""Lift the training masks of each annotated object onto the Gaussians (``SceneObjects``).

Every training view renders each Gaussian with a known compositing weight per pixel
(``render/compositing.py``). An object's share of a Gaussian is the weight the Gaussian puts
inside the object's masks divided by all the weight it puts into the views where that object is
annotated (a view that does not annotate the object says nothing about it: Ref-LERF frames
annotate a few objects each). A Gaussian belongs to the object with the largest share when that
share is at least ``min_share``; a Gaussian no view shows belongs to none (the 3D selection
propagates to it at query time, ``inference/selection.py``).

These are the masks the referring field is fitted to, so the labels are the field's supervision in
3D: what the language layer's objects are made of (docs/LANGUAGE.md#objects).
"""
import logging
from typing import Dict, Optional

import numpy as np
import torch

from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.scene.objects import mean_up, NO_OBJECT, SceneObjects
from refersplat_ros.core.scene.support import support_up

logger = logging.getLogger(__name__)

#: Smallest share of a Gaussian's weight inside an object's masks for it to join the object.
MIN_SHARE = 0.5


@torch.no_grad()
def lift_objects(dataset, weights: ViewWeights, min_share: float = MIN_SHARE) -> SceneObjects:
    """Label every Gaussian with the annotated object whose training masks cover it.

    Args:
        dataset: A ``ReferringDataset``: its training views' annotations (category, sentence,
            mask) are lifted; the first view in frame order becomes the reference view.
        weights: Compositing weights of the scene (built on demand, shared with training).
        min_share: See the module docstring.

    Returns:
        The scene's objects, in the order of the dataset's categories.
    """
    names = [c for c in dataset.categories
             if any(c == a.category for v in dataset.train_views for a in v.annotations)]
    index = {name: i for i, name in enumerate(names)}
    sentences: Dict[str, list] = {name: [] for name in names}
    num = weights.scene.num_gaussians
    device = weights.scene.means.device
    inside = torch.zeros(len(names), num, dtype=torch.float64, device=device)
    shown = torch.zeros(len(names), num, dtype=torch.float64, device=device)
    for view in dataset.train_views:
        if not view.annotations:
            continue
        composite = weights.get(view.camera)
        total = composite.gaussian_weight().to(torch.float64)
        for annotation in view.annotations:
            sentences[annotation.category].append(annotation.sentence)
        for category in view.categories:
            annotation = next(a for a in view.annotations if a.category == category)
            mask = view.load_mask(annotation).to(device, composite.weights_t.dtype).reshape(-1, 1)
            row = index[category]
            inside[row] += torch.sparse.mm(composite.weights_t, mask)[:, 0].to(torch.float64)
            shown[row] += total
    labels = _assign(inside, shown, min_share)
    cameras = [v.camera for v in dataset.views]
    ordered = sorted(dataset.views, key=lambda v: (v.frame_number is None, v.frame_number or 0,
                                                   v.frame))
    reference = ordered[0].camera if ordered else None
    means = weights.scene.means.detach().cpu().numpy()
    up, _, source = support_up(means[labels == NO_OBJECT],
                               mean_up([v.camera for v in dataset.train_views] or cameras))
    logger.info('scene up %s from the %s', np.round(up, 3).tolist(), source)
    objects = SceneObjects(labels, names, [list(dict.fromkeys(sentences[n])) for n in names],
                           reference, up)
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    logger.info('lifted %d objects onto %d of %d Gaussians (smallest object %d Gaussians)',
                len(names), int(counts.sum()), num, int(counts.min()) if len(names) else 0)
    return objects


def _assign(inside: torch.Tensor, shown: torch.Tensor,
            min_share: float) -> np.ndarray:  # [K, N], [K, N] -> [N] int32
    """Object of largest share per Gaussian, ``NO_OBJECT`` below ``min_share`` or never shown."""
    if inside.shape[0] == 0:
        return np.full(inside.shape[1], NO_OBJECT, np.int32)
    share = torch.where(shown > 0, inside / shown.clamp_min(1e-12), torch.zeros_like(shown))
    best, which = share.max(dim=0)
    labels = torch.where(best >= min_share, which, torch.full_like(which, NO_OBJECT))
    return labels.to(torch.int32).cpu().numpy()


def object_label_agreement(objects: SceneObjects, true_ids, category_ids: Dict[str, int],
                           ) -> Optional[float]:
    """Fraction of labelled Gaussians whose label names their true object (Ref-Synth only).

    ``true_ids`` [N] are the generator's object ids (0 = background), ``category_ids`` maps the
    dataset's category to its id. None when nothing is labelled.
    """
    truth = np.asarray(true_ids).reshape(-1)
    lookup = np.array([category_ids.get(n, -2) for n in objects.names] + [0])
    labelled = objects.labels >= 0
    if not labelled.any():
        return None
    return float((lookup[objects.labels[labelled]] == truth[labelled]).mean())


def names_only(objects: SceneObjects) -> SceneObjects:
    """Return the same objects without their sentences (a robot team's labels only)."""
    return SceneObjects(objects.labels, objects.names, [[] for _ in objects.names],
                        objects.reference_view, objects.up, objects.reference_source)
