"""The one mask rule (``core/field/masks.py``), shared by evaluation, stage 2 and the node."""
import pytest
import torch

from refersplat_ros.core.field.masks import predicted_mask, selected_gaussians


def test_predicted_mask_rules():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, -3.0]])
    alpha = torch.tensor([[1.0, 0.0, 1.0], [0.5, 1.0, 1.0]])
    assert predicted_mask(logits, alpha).tolist() == [[True, False, False], [True, True, False]]
    assert predicted_mask(logits, alpha, 'paper').tolist() == [[True, True, False],
                                                               [True, True, False]]
    with pytest.raises(ValueError, match='empty_pixels'):
        predicted_mask(logits, alpha, 'strict')


def test_selected_gaussians_is_sigmoid_at_least_one_half():
    logits = torch.tensor([-0.5, 0.0, 1e-6, 3.0])
    assert selected_gaussians(logits).tolist() == (torch.sigmoid(logits) >= 0.5).tolist()
