"""Tests of the Ref-LERF mIoU protocol and 3D selection metrics (docs/METHOD.md#evaluation)."""
import math

import numpy as np
import pytest
import torch

from refersplat_ros.core.evaluate.metrics import (evaluate_mask, gaussian_selection_metrics,
                                                  mask_iou, subset_summaries, summarize)


def _mask(rows, cols, shape=(4, 4), value=255):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[rows, cols] = value
    return mask


def test_mask_iou_binarises_above_zero():
    pred = _mask(slice(0, 2), slice(0, 2), value=1)      # 4 pixels
    gt = _mask(slice(0, 2), slice(0, 4), value=255)      # 8 pixels, contains pred
    assert mask_iou(pred, gt) == pytest.approx(0.5)
    assert mask_iou(torch.tensor(pred), torch.tensor(gt)) == pytest.approx(0.5)
    assert mask_iou(np.zeros((4, 4)), gt) == 0.0
    assert mask_iou(pred, np.zeros((4, 4))) is None  # empty GT: pair skipped
    with pytest.raises(ValueError, match='differ'):
        mask_iou(np.zeros((3, 4)), gt)


def test_protocol_on_hand_made_masks():
    full = np.ones((4, 4), dtype=np.uint8)
    half = _mask(slice(0, 2), slice(0, 4))
    quarter = _mask(slice(0, 2), slice(0, 2))
    empty = np.zeros((4, 4), dtype=np.uint8)
    records = [
        # scene a: IoUs 1.0 and 0.5, plus one skipped pair (object not visible).
        evaluate_mask(half, half, scene='a', frame='f1', expression='e1', category='mug',
                      subsets=['attribute']),
        evaluate_mask(quarter, half, scene='a', frame='f1', expression='e2', category='bowl',
                      subsets=['spatial']),
        evaluate_mask(full, empty, scene='a', frame='f2', expression='e1', category='mug',
                      subsets=['spatial']),
        # scene b: IoU 0.25 (prediction covers everything, GT a quarter).
        evaluate_mask(full, quarter, scene='b', frame='f1', expression='e3', category='cup',
                      subsets=['spatial', 'distractor']),
    ]
    assert records[2].iou is None
    summary = summarize(records)
    assert summary.per_scene == {'a': pytest.approx(0.75), 'b': pytest.approx(0.25)}
    assert summary.num_pairs == {'a': 2, 'b': 1}
    assert summary.num_skipped == 1
    # Mean of scene means (0.5), not of the three pairs (0.5833).
    assert summary.average == pytest.approx(0.5)

    subsets = subset_summaries(records)
    assert set(subsets) == {'attribute', 'spatial', 'distractor'}
    assert subsets['attribute'].per_scene == {'a': pytest.approx(1.0)}
    assert subsets['spatial'].per_scene == {'a': pytest.approx(0.5), 'b': pytest.approx(0.25)}
    assert subsets['spatial'].average == pytest.approx(0.375)
    assert subsets['spatial'].num_skipped == 1
    assert subsets['distractor'].average == pytest.approx(0.25)
    assert math.isnan(summarize([records[2]]).average)


def test_gaussian_selection_metrics():
    object_ids = np.array([1, 1, 1, 2, 2, 0])
    selected = torch.tensor([True, True, False, True, False, False])
    scores = gaussian_selection_metrics(selected, object_ids, target_id=1)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.iou == pytest.approx(2 / 4)
    assert (scores.num_selected, scores.num_target) == (3, 3)
    none = gaussian_selection_metrics(np.zeros(6, dtype=bool), object_ids, target_id=1)
    assert math.isnan(none.precision) and none.recall == 0.0 and none.iou == 0.0
    absent = gaussian_selection_metrics(selected, object_ids, target_id=7)
    assert math.isnan(absent.recall) and absent.iou == 0.0 and absent.precision == 0.0
    with pytest.raises(ValueError, match='entries'):
        gaussian_selection_metrics(selected[:5], object_ids, target_id=1)
