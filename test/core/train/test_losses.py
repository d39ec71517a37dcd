"""Tests of the mask BCE and GTCL losses and the tau schedule.

Method: docs/METHOD.md#mask-loss, #gtcl and #total-loss.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.train.losses import (gtcl_anchor, gtcl_loss, mask_bce_loss,
                                              referring_loss, ReferringLossConfig, tau_at,
                                              top_tau_count)


@pytest.mark.parametrize('step,expected', [
    (0, 0.1), (999, 0.1), (1000, 0.06), (1999, 0.06), (2000, 0.036), (3000, 0.0216),
    (4000, 0.01296), (5000, 0.007776), (5999, 0.007776), (6000, 0.005), (45000, 0.005)])
def test_tau_schedule_paper_period(step, expected):
    assert tau_at(step) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize('step,expected', [
    (0, 0.1), (1999, 0.1), (2000, 0.06), (4000, 0.036), (6000, 0.0216), (8000, 0.01296),
    (10000, 0.007776), (11999, 0.007776), (12000, 0.005), (20000, 0.005)])
def test_tau_schedule_official_period(step, expected):
    config = ReferringLossConfig.official()
    assert config.tau_period == 2000 and config.gtcl_weight == 0.1
    assert tau_at(step, config) == pytest.approx(expected, rel=1e-9)


def test_defaults_follow_paper():
    config = ReferringLossConfig()
    assert (config.gtcl_weight, config.tau_period, config.temperature) == (0.02, 1000, 0.1)
    assert not config.buggy_top_tau


def test_top_tau_count():
    assert top_tau_count(1000, 0.036) == 36
    assert top_tau_count(100, 0.06) == 6
    assert top_tau_count(10, 0.005) == 1  # at least one Gaussian
    assert top_tau_count(3, 0.9) == 2


def test_anchor_uses_highest_responses():
    torch.manual_seed(0)
    num = 100
    response = torch.randn(num, 1)  # N x 1 like the official renderer output
    enhanced = torch.randn(num, 8, requires_grad=True)
    anchor = gtcl_anchor(response, enhanced, tau=0.05)
    top = torch.argsort(response.reshape(-1), descending=True)[:5]
    expected = F.normalize(enhanced[top].mean(0), dim=0)
    torch.testing.assert_close(anchor, expected)
    # Regression test for the official bug: a correct anchor is not g'_0 ...
    assert 0 not in top.tolist()
    assert not torch.allclose(anchor, F.normalize(enhanced[0], dim=0))
    # ... and the buggy flag reproduces it exactly, whatever tau is.
    for tau in (0.1, 0.5):
        torch.testing.assert_close(gtcl_anchor(response, enhanced, tau, buggy_top_tau=True),
                                   F.normalize(enhanced[0], dim=0))
    anchor.sum().backward()
    assert set(torch.nonzero(enhanced.grad.abs().sum(1)).reshape(-1).tolist()) == set(top.tolist())


def test_gtcl_hand_example():
    anchor = torch.tensor([1.0, 0.0])
    c60 = math.cos(math.pi / 3)
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [c60, math.sin(math.pi / 3)],
                               [-1.0, 0.0]])
    positive = torch.tensor([True, False, True, False])
    # s = [10, 0, 5, -10]; pairs (p, n): exp(0-10) + exp(-10-10) + exp(0-5) + exp(-10-5)
    expected = math.log(1 + math.exp(-10) + math.exp(-20) + math.exp(-5) + math.exp(-15))
    value = gtcl_loss(anchor, embeddings, positive, temperature=0.1)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # A negative more similar than a positive dominates: log(1 + e^{0 - (-10)}) ~ 10.
    flipped = gtcl_loss(anchor, embeddings, torch.tensor([False, False, False, True]))
    assert flipped.item() == pytest.approx(math.log(1 + math.exp(20) + math.exp(10)
                                                    + math.exp(15)), rel=1e-5)


def test_gtcl_without_negatives_is_zero():
    anchor = F.normalize(torch.randn(4, requires_grad=True), dim=0)
    embeddings = F.normalize(torch.randn(3, 4), dim=1)
    value = gtcl_loss(anchor, embeddings, torch.ones(3, dtype=torch.bool))
    assert value.item() == 0.0
    assert value.requires_grad
    with pytest.raises(ValueError, match='positive'):
        gtcl_loss(anchor, embeddings, torch.zeros(3, dtype=torch.bool))


def test_mask_bce_loss_values():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)  # 0/255 PNG values
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    expected = -(target * torch.log(torch.sigmoid(logits))
                 + (1 - target) * torch.log(1 - torch.sigmoid(logits))).mean()
    value = mask_bce_loss(logits[None], mask)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert logits.grad.shape == (2, 2)
    with pytest.raises(ValueError, match='differ'):
        mask_bce_loss(torch.zeros(2, 3), torch.zeros(3, 2))


def test_referring_loss_end_to_end_gradients():
    torch.manual_seed(1)
    field = ReferringField(torch.randn(40, 3), ReferringFieldConfig(text_dim=12))
    sentences = [torch.randn(n, 12) for n in (3, 4, 5)]
    out = field(sentences[0])
    embeddings = torch.stack([field.sentence_embedding(s) for s in sentences])
    positive = torch.tensor([True, True, False])
    # Stand-in for the rasterized map: a differentiable function of the response.
    logits = out.response[:16].reshape(4, 4)
    mask = torch.zeros(4, 4)
    mask[:2] = 1
    config = ReferringLossConfig()
    loss = referring_loss(logits, mask, out.response, out.enhanced, embeddings, positive,
                          step=2500, config=config)
    assert loss.tau == pytest.approx(0.036)
    anchor = gtcl_anchor(out.response, out.enhanced, loss.tau)
    torch.testing.assert_close(loss.gtcl, gtcl_loss(anchor, embeddings, positive))
    torch.testing.assert_close(loss.total, loss.bce + 0.02 * loss.gtcl)
    loss.total.backward()
    assert field.features.grad.abs().sum() > 0
    assert field.mlp1[0].weight.grad.abs().sum() > 0
    without = referring_loss(logits, mask, out.response, out.enhanced, None, None, step=0)
    assert without.gtcl.item() == 0.0
    torch.testing.assert_close(without.total, without.bce)
