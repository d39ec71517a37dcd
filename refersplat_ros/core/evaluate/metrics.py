"""Evaluation metrics: the Ref-LERF mIoU protocol and 3D selection scores.

Ref-LERF protocol (docs/METHOD.md#evaluation): for each (scene, test frame, test expression,
object), IoU = |P n G| / |P u G| with both masks binarised at > 0; pairs whose GT is empty
(object not visible) are skipped. Scene mIoU = plain mean over its remaining pairs; Average =
mean of the scene mIoUs. Subset scores (attribute / spatial / distractor) apply the same
protocol to the pairs tagged with the subset, averaged over the scenes that have such pairs.

Inputs may be numpy arrays or torch tensors (any device); everything is computed in numpy.
"""
from dataclasses import dataclass
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np


def _numpy(array) -> np.ndarray:
    if hasattr(array, 'detach'):  # torch.Tensor without importing torch here
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def binarize(mask) -> np.ndarray:  # [H, W] any numeric/bool -> bool
    """Return ``mask > 0`` (the protocol's binarisation of predictions and GT)."""
    return _numpy(mask) > 0


def mask_iou(pred, gt) -> Optional[float]:  # [H, W], [H, W]
    """Return IoU of the binarised masks, or None when the GT is empty (pair skipped)."""
    pred_b, gt_b = binarize(pred), binarize(gt)
    if pred_b.shape != gt_b.shape:
        raise ValueError(f'mask_iou: prediction {pred_b.shape} and GT {gt_b.shape} differ; '
                         'resize the prediction to the GT size first')
    gt_area = int(gt_b.sum())
    if gt_area == 0:
        return None
    inter = int(np.logical_and(pred_b, gt_b).sum())
    union = int(pred_b.sum()) + gt_area - inter
    return inter / union


@dataclass(frozen=True)
class MaskRecord:
    """IoU of one (scene, frame, expression, object) pair; ``iou`` None = empty GT, skipped."""

    scene: str
    frame: str
    expression: str
    category: str
    iou: Optional[float]
    subsets: Tuple[str, ...] = ()


def evaluate_mask(pred, gt, *, scene: str, frame: str, expression: str, category: str,
                  subsets: Sequence[str] = ()) -> MaskRecord:
    """Return the record of one predicted mask against its GT (both ``[H, W]``)."""
    return MaskRecord(scene=scene, frame=frame, expression=expression, category=category,
                      iou=mask_iou(pred, gt), subsets=tuple(subsets))


@dataclass
class MiouSummary:
    """Aggregated mIoU. ``average`` is the mean of ``per_scene`` (NaN when no pair counted)."""

    per_scene: Dict[str, float]
    average: float
    num_pairs: Dict[str, int]
    num_skipped: int


def summarize(records: Iterable[MaskRecord], subset: Optional[str] = None) -> MiouSummary:
    """Apply the Ref-LERF protocol to records (optionally only those tagged with ``subset``).

    Protocol: docs/METHOD.md#evaluation.
    """
    ious: Dict[str, List[float]] = {}
    skipped = 0
    for record in records:
        if subset is not None and subset not in record.subsets:
            continue
        if record.iou is None:
            skipped += 1
            continue
        ious.setdefault(record.scene, []).append(record.iou)
    per_scene = {scene: float(np.mean(values)) for scene, values in sorted(ious.items())}
    average = float(np.mean(list(per_scene.values()))) if per_scene else math.nan
    return MiouSummary(per_scene=per_scene, average=average,
                       num_pairs={scene: len(v) for scene, v in sorted(ious.items())},
                       num_skipped=skipped)


def subset_summaries(records: Iterable[MaskRecord]) -> Dict[str, MiouSummary]:
    """Return one summary per subset tag found in the records (e.g. attribute/spatial)."""
    records = list(records)
    tags = sorted({tag for record in records for tag in record.subsets})
    return {tag: summarize(records, subset=tag) for tag in tags}


@dataclass
class SelectionMetrics:
    """3D scores of a Gaussian selection against one object; NaN where undefined.

    ``right_object`` (1 or 0) and ``centroid_error`` (distance from the published target's
    centroid to the object's, scene units) score a published target (:func:`target_metrics`);
    they are NaN for a bare selection.
    """

    precision: float
    recall: float
    iou: float
    num_selected: int
    num_target: int
    right_object: float = math.nan
    centroid_error: float = math.nan


def gaussian_selection_metrics(
    selected,  # [N] bool (or > 0) selected Gaussians
    object_ids,  # [N] int per-Gaussian object id
    target_id: int,
) -> SelectionMetrics:
    """Return precision, recall and IoU of selected Gaussians vs those with ``target_id``.

    Precision is NaN with an empty selection; recall and IoU are NaN when no Gaussian carries
    ``target_id`` (IoU is then defined only if something is selected: 0).
    """
    chosen = binarize(selected).reshape(-1)
    target = (_numpy(object_ids).reshape(-1) == target_id)
    if chosen.shape != target.shape:
        raise ValueError(f'selection has {chosen.shape[0]} entries, object ids {target.shape[0]}')
    tp = int(np.logical_and(chosen, target).sum())
    num_selected, num_target = int(chosen.sum()), int(target.sum())
    union = num_selected + num_target - tp
    return SelectionMetrics(
        precision=tp / num_selected if num_selected else math.nan,
        recall=tp / num_target if num_target else math.nan,
        iou=tp / union if union else math.nan,
        num_selected=num_selected, num_target=num_target)


def target_metrics(
    indices,  # [P] int Gaussians of the published target (empty: no match)
    position,  # [3] centroid of the published target, scene units; None with no match
    object_ids,  # [N] int per-Gaussian object id
    means,  # [N, 3] Gaussian centres
    target_id: int,
) -> SelectionMetrics:
    """Score a published 3D target against the object ``target_id``.

    The target is the right object when most of its Gaussians belong to it; a query without a
    match scores recall 0, right_object 0 and NaN precision and centroid error.
    """
    ids = _numpy(object_ids).reshape(-1)
    chosen = np.zeros(len(ids), bool)
    indices = _numpy(indices).astype(np.int64).reshape(-1)
    chosen[indices] = True
    scores = gaussian_selection_metrics(chosen, ids, target_id)
    if len(indices) == 0 or position is None:
        scores.right_object = 0.0
        return scores
    values, counts = np.unique(ids[indices], return_counts=True)
    scores.right_object = float(values[np.argmax(counts)] == target_id)
    members = _numpy(means).reshape(-1, 3)[ids == target_id]
    if len(members):
        centroid = members.astype(np.float64).mean(axis=0)
        scores.centroid_error = float(np.linalg.norm(np.asarray(position, np.float64) - centroid))
    return scores
