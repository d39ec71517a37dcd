"""Tests of the pseudo-mask selection and the ``pseudo-labels`` CLI.

Selection rule: docs/METHOD.md#pseudo-labels.
"""
import json

import numpy as np
from PIL import Image
import pytest

from refersplat_ros.cli.main import main as refersplat
from refersplat_ros.core.errors import DatasetError
from refersplat_ros.core.labels.pseudo_labels import (pairwise_iou, select_confidence_weighted,
                                                      select_folder, select_pseudo_mask,
                                                      select_top1)


def _box(x0, y0, x1, y1, shape=(20, 20)):
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _candidates():
    # Two agreeing medium-confidence masks of the object and one confident outlier elsewhere.
    consistent_a = _box(2, 2, 8, 8)
    consistent_b = _box(3, 2, 8, 8)
    outlier = _box(12, 12, 18, 18)
    return np.stack([outlier, consistent_a, consistent_b]), [0.9, 0.4, 0.45]


def test_consistent_candidate_beats_confident_outlier():
    masks, scores = _candidates()
    assert select_top1(masks, scores) == 0
    # S = [0, 0.4*0.45*IoU, 0.45*0.4*IoU]: tie between 1 and 2 -> higher confidence (2).
    assert select_confidence_weighted(masks, scores) == 2
    np.testing.assert_array_equal(select_pseudo_mask(masks, scores), masks[2])
    np.testing.assert_array_equal(select_pseudo_mask(masks, scores, method='top1'), masks[0])


def test_weighted_score_hand_example():
    a = _box(0, 0, 10, 10)  # area 100
    b = _box(0, 0, 10, 5)   # area 50, IoU(a, b) = 0.5
    c = _box(0, 5, 10, 10)  # area 50, IoU(a, c) = 0.5, IoU(b, c) = 0
    masks = np.stack([a, b, c])
    iou = pairwise_iou(masks)
    np.testing.assert_allclose(iou, [[1, 0.5, 0.5], [0.5, 1, 0], [0.5, 0, 1]])
    # S_a = .2*(.9*.5 + .8*.5) = .17, S_b = .9*.2*.5 = .09, S_c = .8*.2*.5 = .08 -> a,
    # although it has the lowest confidence.
    assert select_confidence_weighted(masks, [0.2, 0.9, 0.8]) == 0


def test_confidence_changes_the_choice():
    # Pair A/A' agrees best (IoU 0.9) but is unconfident; pair B/B' (IoU 0.8) is confident.
    masks = np.stack([_box(0, 0, 10, 10), _box(0, 0, 10, 9), _box(12, 0, 20, 10),
                      _box(12, 0, 20, 8)])
    np.testing.assert_allclose(pairwise_iou(masks)[[0, 2], [1, 3]], [0.9, 0.8])
    assert select_confidence_weighted(masks, [1.0, 1.0, 1.0, 1.0]) == 0  # IoU only
    # S = [.3*.3*.9, .3*.3*.9, .9*.8*.8, .8*.9*.8] -> tie of B/B', higher confidence B.
    assert select_confidence_weighted(masks, [0.3, 0.3, 0.9, 0.8]) == 2


def test_single_and_no_candidate():
    mask = _box(1, 1, 4, 4, shape=(6, 7))
    assert select_confidence_weighted(mask[None], [0.3]) == 0
    assert select_top1(mask[None], [0.3]) == 0
    assert select_confidence_weighted(np.zeros((0, 6, 7)), []) is None
    empty = select_pseudo_mask(np.zeros((0, 6, 7)), [], image_size=(7, 6))
    assert empty.shape == (6, 7) and not empty.any()
    with pytest.raises(ValueError, match='image_size'):
        select_pseudo_mask([], [])
    with pytest.raises(ValueError, match='scores'):
        select_confidence_weighted(mask[None], [0.3, 0.4])


def test_area_cap_filters_masks_and_scores_together():
    big = _box(0, 0, 20, 10)      # 50 % of the image
    small_a = _box(2, 12, 5, 15)  # 2.25 %
    small_b = _box(2, 12, 6, 15)  # 3 %
    masks = np.stack([big, small_a, small_b])
    scores = [0.95, 0.3, 0.5]
    assert select_top1(masks, scores) == 0
    # Indices refer to the original list; the score of b stays b's (no misalignment).
    assert select_top1(masks, scores, area_cap=0.15) == 2
    assert select_confidence_weighted(masks, scores, area_cap=0.15) == 2
    # A cap that would drop every candidate is not applied.
    assert select_top1(masks, scores, area_cap=0.01) == 0


def _write_candidate(folder, masks, scores, image_size=None):
    folder.mkdir(parents=True)
    entries = []
    for k, (mask, score) in enumerate(zip(masks, scores)):
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f'{k}.png')
        entries.append({'mask': f'{k}.png', 'score': score})
    description = {'candidates': entries}
    if image_size is not None:
        description['image_size'] = image_size
    (folder / 'scores.json').write_text(json.dumps(description))


def _read(path):
    return np.asarray(Image.open(path))


def test_select_folder_and_cli(tmp_path):
    masks, scores = _candidates()
    cand = tmp_path / 'candidates'
    _write_candidate(cand / 'frame_00001' / 'mug', masks, scores)
    _write_candidate(cand / 'frame_00001' / 'bowl', [], [], image_size=[20, 20])
    _write_candidate(cand / 'frame_00006' / 'mug', masks, scores)  # a test frame
    out = tmp_path / 'gt_mask'
    records = select_folder(cand, out, exclude_frames=[6])
    written = {(r.frame, r.category) for r in records}
    assert written == {('frame_00001', 'mug'), ('frame_00001', 'bowl')}
    mug = _read(out / 'frame_00001' / 'mug.png')
    assert mug.dtype == np.uint8 and set(np.unique(mug)) == {0, 255}
    np.testing.assert_array_equal(mug > 0, masks[2])
    bowl = _read(out / 'frame_00001' / 'bowl.png')
    assert bowl.shape == (20, 20) and not bowl.any()
    assert not (out / 'frame_00006').exists()
    record = next(r for r in records if r.category == 'mug')
    assert (record.selected, record.score, record.num_candidates) == ('2.png', 0.45, 3)

    # Existing masks are kept unless overwrite; the CLI runs top-1 with overwrite.
    assert select_folder(cand, out, exclude_frames=[6]) == []
    code = refersplat(['pseudo-labels', str(cand), str(out), '--method', 'top1', '--overwrite',
                       '--test-frames', 'frame_00006'])
    assert code == 0
    np.testing.assert_array_equal(_read(out / 'frame_00001' / 'mug.png') > 0, masks[0])


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        select_folder(tmp_path / 'none', tmp_path / 'out')
    cand = tmp_path / 'c'
    _write_candidate(cand / 'frame_00002' / 'cup', [], [])
    with pytest.raises(DatasetError, match='image_size'):
        select_folder(cand, tmp_path / 'out')
    bad = cand / 'frame_00003' / 'plate'
    bad.mkdir(parents=True)
    (bad / 'scores.json').write_text('{"candidates": [{"mask": "0.png"}]}')
    with pytest.raises(DatasetError, match='scores.json'):
        select_folder(cand, tmp_path / 'out', exclude_frames=[2])
