"""Tests of the referring field, PCMI and the response (docs/METHOD.md#mlps to #response)."""
import math

import pytest
import torch
import torch.nn.functional as F

from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig

TEXT_DIM = 24


def _field(num=50, seed=0, **config):
    torch.manual_seed(seed)
    means = torch.randn(num, 3) * 2.0
    field = ReferringField(means, ReferringFieldConfig(text_dim=TEXT_DIM, **config))
    # Non-zero referring features so the Gaussians differ (zero init makes them identical).
    with torch.no_grad():
        field.features.normal_()
    return field


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_section_4_2():
    field = ReferringField(torch.zeros(7, 3), ReferringFieldConfig(text_dim=1024))
    assert _count(field.mlp1) == 689_024
    assert _count(field.mlp2) == 10_976
    assert _count(field.mlp3) == 9_472
    assert _count(field.attention) == 82_816
    assert field.features.shape == (7, 16)
    assert torch.count_nonzero(field.features) == 0  # zero-initialised
    assert _count(field) - field.features.numel() == 689_024 + 10_976 + 9_472 + 82_816
    assert 'means' not in field.state_dict()


def test_forward_shapes_and_gradients():
    field = _field()
    words = torch.randn(6, TEXT_DIM)
    out = field(words)
    assert out.response.shape == (50,)
    assert out.enhanced.shape == (50, 128)
    assert out.words.shape == (6, 128)
    torch.testing.assert_close(out.response, out.enhanced @ out.words.sum(0))
    out.response.square().mean().backward()
    for name, param in field.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_zero_init_features_still_get_gradient():
    field = ReferringField(torch.randn(20, 3), ReferringFieldConfig(text_dim=TEXT_DIM))
    out = field(torch.randn(3, TEXT_DIM))
    (out.response * torch.linspace(-1, 1, 20)).sum().backward()
    assert field.features.grad.abs().sum() > 0


def _reference_code_form(field, words_in, scale_text=False):
    """Independent, loop-based computation of docs/METHOD.md#pcmi-code for comparison."""
    att = field.attention
    x = field.mlp2(field.features)
    p = F.normalize(field.mlp3(field.means), dim=-1)
    w = field.mlp1(words_in)
    n, length = x.shape[0], w.shape[0]
    k_pos = torch.zeros(length, 128)
    for j in range(length):
        logits = torch.stack([w[j] @ x[i] for i in range(n)])
        if scale_text:
            logits = logits / math.sqrt(128)
        e = torch.exp(logits - logits.max())
        weights = e / e.sum()  # softmax over ALL N Gaussians
        k_pos[j] = (weights[:, None] * p).sum(0)
    q = att.q_linear(x) + att.gp_linear(p)
    k = att.k_linear(w) + att.kp_linear(k_pos)
    v = att.v_linear(w)
    a = torch.softmax(q @ k.t() / math.sqrt(128), dim=1)
    g = att.norm(x + a @ v)
    return g, g @ w.sum(0)


@pytest.mark.parametrize('scale_text', [False, True])
def test_code_form_matches_hand_computation(scale_text):
    field = _field(num=12, text_position_scale=scale_text)
    words = torch.randn(4, TEXT_DIM)
    with torch.no_grad():
        out = field(words)
        g_ref, m_ref = _reference_code_form(field, words, scale_text)
    torch.testing.assert_close(out.enhanced, g_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.response, m_ref, atol=1e-4, rtol=1e-5)


def test_text_position_softmax_spans_all_gaussians():
    # Changing one far-away Gaussian's position changes every Gaussian's output through the
    # text-position keys (softmax over all N), although its own query is not involved.
    field = _field(num=10)
    words = torch.randn(3, TEXT_DIM)
    with torch.no_grad():
        before = field(words).enhanced[:9].clone()
        field.means[9] += 100.0
        after = field(words).enhanced[:9]
    assert (before - after).abs().max() > 1e-6


def test_paper_form_matches_equations():
    field = _field(num=15, pcmi_form='paper')
    assert field.attention is None
    assert sum(p.numel() for p in field.parameters()) == (
        field.features.numel() + _count(field.mlp1) + _count(field.mlp2) + _count(field.mlp3))
    words = torch.randn(5, TEXT_DIM)
    with torch.no_grad():
        out = field(words)
        x = field.mlp2(field.features)
        p = F.normalize(field.mlp3(field.means), dim=-1)
        w = field.mlp1(words)
        f_pw = torch.softmax(w @ x.t() / math.sqrt(128), dim=1) @ p  # paper form, 1/sqrt(D)
        expected = x + torch.softmax((x + p) @ (w + f_pw).t() / math.sqrt(128), dim=1) @ w
    torch.testing.assert_close(out.enhanced, expected, atol=1e-5, rtol=1e-5)


def test_no_pcmi_baseline():
    field = _field(use_pcmi=False)
    assert field.mlp3 is None and field.attention is None
    words = torch.randn(4, TEXT_DIM)
    with torch.no_grad():
        out = field(words)
        x = field.mlp2(field.features)
    torch.testing.assert_close(out.enhanced, x)
    torch.testing.assert_close(out.response, x @ field.mlp1(words).sum(0))


def test_naive_attention_has_no_position_terms():
    field = _field(naive_attention=True)
    assert field.mlp3 is None
    assert not hasattr(field.attention, 'gp_linear') and not hasattr(field.attention, 'kp_linear')
    words = torch.randn(4, TEXT_DIM)
    with torch.no_grad():
        out = field(words)
        att = field.attention
        x = field.mlp2(field.features)
        w = field.mlp1(words)
        a = torch.softmax(att.q_linear(x) @ att.k_linear(w).t() / math.sqrt(128), dim=1)
        expected = att.norm(x + a @ att.v_linear(w))
    torch.testing.assert_close(out.enhanced, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('config', [{}, {'pcmi_form': 'paper'}, {'use_pcmi': False},
                                    {'naive_attention': True}])
def test_inference_cache_equals_training_forward(config):
    field = _field(**config)
    sentences = [torch.randn(length, TEXT_DIM) for length in (3, 7)]
    with torch.no_grad():
        cache = field.precompute()
        for words in sentences:
            fast = field.respond(words, cache)
            slow = field(words)
            torch.testing.assert_close(fast.response, slow.response)
            torch.testing.assert_close(fast.enhanced, slow.enhanced)


def test_sentence_embedding_and_input_checks():
    field = _field()
    words = torch.randn(5, TEXT_DIM, dtype=torch.float64)  # converted to the field's dtype
    emb = field.sentence_embedding(words)
    assert emb.shape == (128,)
    torch.testing.assert_close(emb.norm(), torch.tensor(1.0))
    torch.testing.assert_close(emb, F.normalize(field.mlp1(words.float()).mean(0), dim=0))
    with pytest.raises(ValueError, match='word features'):
        field(torch.randn(5, TEXT_DIM + 1))
    with pytest.raises(ValueError, match='at least one'):
        field(torch.randn(0, TEXT_DIM))
    with pytest.raises(ValueError, match='pcmi_form'):
        ReferringFieldConfig(pcmi_form='other')
    with pytest.raises(ValueError, match='means'):
        ReferringField(torch.zeros(4, 2))


def test_network_parameters_exclude_features():
    field = _field()
    names = {id(p) for p in field.network_parameters()}
    assert id(field.features) not in names
    assert len(names) == len(list(field.parameters())) - 1
