"""Pseudo-mask selection from detector candidates, CLI ``pseudo-labels``.

Method: docs/METHOD.md#pseudo-labels.

Per training (frame, object), a detector (Grounded-SAM) yields K candidate masks M_k with
confidences gamma_k, pooled over all the object's training expressions. The selection keeps the
candidate that agrees most with the others, weighted by confidence ("Ours" in
docs/METHOD.md#pseudo-labels):

    S_k = sum_{j != k} gamma_k * gamma_j * IoU(M_k, M_j),    k* = argmax_k S_k

K = 1 gives that mask, K = 0 an empty mask; ties (always the case for K = 2) go to the higher
confidence, then the lower index. The optional area cap drops masks covering more than a fraction
of the image (15 % in the dormant official ``get_best_mask``), filtering masks and scores together
(the official code misaligns them, defect e); if the cap would drop every candidate it is not
applied. ``select_top1`` is the released script's top-1-by-confidence baseline.

Candidate folder layout (input of ``select_folder`` and the CLI)::

    <candidates>/<frame>/<category>/scores.json     one folder per training (frame, object)
    <candidates>/<frame>/<category>/<mask>.png      candidate masks, any value > 0 is foreground

    scores.json = {"candidates": [{"mask": "0.png", "score": 0.47}, ...],
                   "image_size": [width, height]}   # image_size needed only with no candidate

``<frame>`` is the image stem (``frame_00012``), ``<category>`` the object id of the annotation
JSON (no underscore, docs/METHOD.md#annotation-json). Output:
``<output>/<frame>/<category>.png``, uint8 0/255 (the scene's ``gt_mask`` folder).
"""
from dataclasses import dataclass
import json
import logging
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from refersplat_ros.core.datasets.reflerf.layout import FrameSelector
from refersplat_ros.core.errors import DatasetError

logger = logging.getLogger(__name__)

SCORES_FILE = 'scores.json'
METHODS = ('weighted', 'top1')


def _as_masks(masks) -> np.ndarray:
    array = np.asarray(masks)
    if array.ndim != 3:
        raise ValueError(f'masks must be [K, H, W], got shape {array.shape}')
    return array > 0


def _as_scores(scores, count: int) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.shape[0] != count:
        raise ValueError(f'{count} masks but {array.shape[0]} scores')
    return array


def pairwise_iou(masks) -> np.ndarray:  # [K, H, W] -> [K, K]
    """Return the IoU matrix of binary masks; two empty masks have IoU 0."""
    flat = _as_masks(masks).reshape(len(masks), -1).astype(np.float64)
    inter = flat @ flat.T
    area = flat.sum(axis=1)
    union = area[:, None] + area[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _area_filter(masks: np.ndarray, area_cap: Optional[float]) -> np.ndarray:
    """Return indices of masks within the area cap (all of them if none is)."""
    index = np.arange(masks.shape[0])
    if area_cap is None:
        return index
    fraction = masks.reshape(masks.shape[0], -1).mean(axis=1)
    kept = index[fraction <= area_cap]
    if kept.size == 0:
        logger.debug('area cap %.3f drops all %d candidates: cap not applied',
                     area_cap, masks.shape[0])
        return index
    return kept


def _candidates(masks, scores, area_cap):
    """Validate candidates: (masks, scores, indices kept by the area cap), or None if K = 0."""
    masks = _as_masks(masks)
    scores = _as_scores(scores, masks.shape[0])
    if masks.shape[0] == 0:
        return None
    return masks, scores, _area_filter(masks, area_cap)


def select_confidence_weighted(
    masks,  # [K, H, W] candidate masks (bool or 0/255), numpy or anything np.asarray accepts
    scores: Sequence[float],  # [K] detector confidences gamma_k
    area_cap: Optional[float] = None,
) -> Optional[int]:
    """Return the index of the confidence-weighted IoU choice, or None for K = 0.

    Rule: docs/METHOD.md#pseudo-labels.
    """
    prepared = _candidates(masks, scores, area_cap)
    if prepared is None:
        return None
    masks, scores, kept = prepared
    if kept.size == 1:
        return int(kept[0])
    gamma = scores[kept]
    iou = pairwise_iou(masks[kept])
    np.fill_diagonal(iou, 0.0)
    agreement = gamma * (iou @ gamma)  # S_k = gamma_k * sum_{j != k} gamma_j IoU_kj
    # Largest S, then largest confidence, then smallest index.
    order = np.lexsort((np.arange(kept.size), -gamma, -agreement))
    return int(kept[order[0]])


def select_top1(
    masks,  # [K, H, W]
    scores: Sequence[float],  # [K]
    area_cap: Optional[float] = None,
) -> Optional[int]:
    """Return the index of the most confident candidate (released script), None for K = 0."""
    prepared = _candidates(masks, scores, area_cap)
    if prepared is None:
        return None
    _, scores, kept = prepared
    return int(kept[np.argmax(scores[kept])])


def select_pseudo_mask(
    masks,  # [K, H, W]
    scores: Sequence[float],  # [K]
    image_size: Optional[Sequence[int]] = None,  # (width, height), needed when K = 0
    method: str = 'weighted',
    area_cap: Optional[float] = None,
) -> np.ndarray:
    """Return the selected pseudo mask as bool ``[H, W]`` (all False without candidates)."""
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    masks_array = np.asarray(masks)
    if masks_array.ndim == 3 and masks_array.shape[0] > 0:
        select = select_confidence_weighted if method == 'weighted' else select_top1
        return masks_array[select(masks_array, scores, area_cap)] > 0
    if image_size is None:
        raise ValueError('no candidate mask: image_size is needed for the empty mask')
    width, height = (int(v) for v in image_size)
    return np.zeros((height, width), dtype=bool)


@dataclass
class SelectionRecord:
    """One written pseudo mask."""

    frame: str
    category: str
    num_candidates: int
    selected: Optional[str]  # candidate file name, None for an empty mask
    score: Optional[float]
    foreground_fraction: float


def _read_candidates(folder: Path):
    scores_path = folder / SCORES_FILE
    try:
        description = json.loads(scores_path.read_text())
        entries = description.get('candidates', [])
        names = [str(entry['mask']) for entry in entries]
        scores = [float(entry['score']) for entry in entries]
        image_size = description.get('image_size')
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f'{scores_path}: unreadable candidate description '
                           f'(fields candidates[].mask, candidates[].score): {exc}') from exc
    from PIL import Image
    masks = []
    for name in names:
        mask_path = folder / name
        try:
            with Image.open(mask_path) as image:
                masks.append(np.asarray(image.convert('L')) > 0)
        except OSError as exc:
            raise DatasetError(f'{scores_path}: candidate mask {mask_path} unreadable: '
                               f'{exc}') from exc
    if masks and len({m.shape for m in masks}) > 1:
        raise DatasetError(f'{scores_path}: candidate masks differ in size')
    return names, masks, scores, image_size


def select_folder(
    candidates_dir,
    output_dir,
    method: str = 'weighted',
    area_cap: Optional[float] = None,
    exclude_frames: Iterable[Union[int, str]] = (),
    overwrite: bool = False,
) -> List[SelectionRecord]:
    """Select one pseudo mask per (frame, object) folder and write ``<output>/<frame>/<cat>.png``.

    Args:
        candidates_dir: Folder in the layout of the module docstring.
        output_dir: Usually ``<scene>/gt_mask``.
        method: ``'weighted'`` (ours, docs/METHOD.md#pseudo-labels) or ``'top1'`` (released
            script).
        area_cap: Optional largest foreground fraction of a candidate (e.g. 0.15).
        exclude_frames: Frames to skip, as numbers or names (test frames keep their human GT,
            docs/METHOD.md#pseudo-labels).
        overwrite: Replace existing output PNGs (else they are kept and skipped).

    Returns:
        One record per written mask.
    """
    from PIL import Image
    candidates_dir, output_dir = Path(candidates_dir), Path(output_dir)
    if not candidates_dir.is_dir():
        raise DatasetError(f'{candidates_dir}: candidate folder does not exist')
    excluded = FrameSelector(exclude_frames)
    records = []
    for folder in sorted(p.parent for p in candidates_dir.glob(f'*/*/{SCORES_FILE}')):
        frame, category = folder.parent.name, folder.name
        if frame in excluded:
            continue
        if '_' in category:
            logger.warning('%s: category %r has an underscore; the Ref-LERF loader keys masks by '
                           'the name up to the first underscore', folder, category)
        target = output_dir / frame / f'{category}.png'
        if target.exists() and not overwrite:
            logger.info('%s exists, kept (use overwrite to replace)', target)
            continue
        names, masks, scores, image_size = _read_candidates(folder)
        if not masks and image_size is None:
            raise DatasetError(f'{folder / SCORES_FILE}: no candidate and no image_size '
                               '[width, height] for the empty mask')
        stack = np.stack(masks) if masks else np.zeros((0, 1, 1), dtype=bool)
        if masks:
            select = select_confidence_weighted if method == 'weighted' else select_top1
            index = select(stack, scores, area_cap)
            mask, chosen, score = stack[index], names[index], scores[index]
        else:
            mask = select_pseudo_mask(stack, [], image_size=image_size)
            chosen, score = None, None
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(target)
        records.append(SelectionRecord(frame, category, len(masks), chosen, score,
                                       float(mask.mean()) if mask.size else 0.0))
    return records
