"""Tests of the compact form of the field (serving and training) against ``field.respond``."""
import functools

import pytest
import torch

from refersplat_ros.core.field.compact import (inference_cache, respond_compact, response_only,
                                               training_tables)
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.train.losses import gtcl_anchor

CONFIGS = [{}, {'pcmi_form': 'paper'}, {'use_pcmi': False}, {'naive_attention': True},
           {'text_position_scale': True}, {'pcmi_form': 'paper', 'naive_attention': True}]


def _random_field(num, seed, overrides, spread=0.3, text_dim=24):
    gen = torch.Generator().manual_seed(seed)
    field = ReferringField(torch.rand(num, 3, generator=gen),
                           ReferringFieldConfig(text_dim=text_dim, **overrides))
    with torch.no_grad():
        for param in field.parameters():                # move off the zero/default init
            param.add_(spread * torch.randn(param.shape, generator=gen))
    return field, gen


@pytest.mark.parametrize('overrides', CONFIGS)
def test_response_only_equals_the_full_forward(overrides):
    field, gen = _random_field(700, 3, overrides)
    with torch.no_grad():
        words = torch.randn(9, 24, generator=gen)
        expected = field.respond(words, field.precompute()).response
        compact = inference_cache(field, chunk=256)
        fast = response_only(field, words, compact)
        # The algebra is exact: in float64 both paths agree to rounding.
        field64 = field.double()
        expected64 = field64.respond(words.double(), field64.precompute()).response
        compact64 = inference_cache(field64, chunk=256)
        fast64 = response_only(field64, words.double(), compact64)
        # Row blocks (online softmax across blocks) give the same logits as one block.
        blocked64 = response_only(field64, words.double(), compact64, block=96)
    # Compact: [h, v / n, 1 / n] (64 + 64 + 1) with positions, h (64) without.
    assert compact.table.shape == (700, 129 if field.mlp3 is not None else 64)
    scale = expected64.abs().max()
    torch.testing.assert_close(fast64, expected64, rtol=1e-9, atol=1e-9 * scale)
    torch.testing.assert_close(blocked64, expected64, rtol=1e-9, atol=1e-9 * scale)
    # In float32 each path is as close to the float64 value as the other (logits of these
    # random weights reach thousands: the tolerance is relative to the largest one).
    for float32 in (fast, expected):
        torch.testing.assert_close(float32.double(), expected64, rtol=1e-4, atol=2e-4 * scale)


@pytest.mark.parametrize('dtype', ['float16'])
def test_16_bit_tables_give_the_float32_logits_to_their_rounding(dtype):
    field, gen = _random_field(900, 5, {}, spread=0.1)
    with torch.no_grad():
        words = torch.randn(7, 24, generator=gen)
        full = response_only(field, words, inference_cache(field))
        cache = inference_cache(field, dtype=dtype)
        half = response_only(field, words, cache, block=128)
    assert cache.table.dtype == torch.float16
    assert cache.mean.dtype == torch.float32 and half.dtype == torch.float32
    error = (half - full).abs().max() / full.abs().max()
    assert 0 < error < 0.01
    assert ((half > 0) == (full > 0)).float().mean() >= 0.97
    with pytest.raises(ValueError, match='table dtype'):
        inference_cache(field, dtype='bfloat16')


@pytest.mark.parametrize('overrides', CONFIGS)
def test_training_form_equals_the_reference_forward_and_gradients(overrides):
    """respond_compact on a batch: each m, its g' rows and every parameter's gradient."""
    field, gen = _random_field(300, 11, overrides, spread=0.1)
    field = field.double()  # the algebra is exact: float64 shows it to rounding
    # three expressions of different lengths (the batch pads the shorter ones)
    batch = [torch.randn(length, 24, generator=gen, dtype=torch.float64) for length in (7, 3, 5)]
    weight = torch.randn(3, 300, generator=gen, dtype=torch.float64)
    index = torch.tensor([5, 0, 299, 17])

    def loss_and_grads(compact):
        field.zero_grad()
        if compact:
            out = respond_compact(field, batch, training_tables(field))
            responses = out.responses
            rows = torch.stack([out.enhanced(e, index) for e in range(len(batch))])
        else:
            cache = field.precompute()
            outs = [field.respond(words, cache) for words in batch]
            responses = torch.stack([o.response for o in outs])
            rows = torch.stack([o.enhanced[index] for o in outs])
        # a loss that uses both outputs, as BCE + GTCL do
        ((responses * weight).sum() + rows.square().sum()).backward()
        grads = {n: p.grad.clone() for n, p in field.named_parameters() if p.grad is not None}
        return responses.detach(), rows.detach(), grads

    responses, rows, grads = loss_and_grads(True)
    expected_responses, expected_rows, expected_grads = loss_and_grads(False)
    assert responses.shape == (3, 300)
    torch.testing.assert_close(responses, expected_responses, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(rows, expected_rows, rtol=1e-9, atol=1e-9)
    assert grads.keys() == expected_grads.keys()
    assert 'features' in grads
    # (the key bias gets no gradient in exact arithmetic: softmax ignores a shift per row)
    scale = max(float(g.abs().max()) for g in expected_grads.values())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-7, atol=1e-9 * scale,
                                   msg=name)


def test_training_form_in_float32_and_the_gtcl_anchor():
    """In float32 the compact form stays as close to float64 as the reference form does."""
    field, gen = _random_field(500, 4, {}, spread=0.1)
    words = torch.randn(9, 24, generator=gen)
    with torch.no_grad():
        out = respond_compact(field, [words], training_tables(field))
        reference = field.respond(words, field.precompute())
        field64 = ReferringField(field.means.double(), field.config).double()
        field64.load_state_dict({k: v.double() for k, v in field.state_dict().items()})
        exact = field64.respond(words.double(), field64.precompute()).response
    scale = exact.abs().max()
    for float32 in (out.responses[0], reference.response):
        torch.testing.assert_close(float32.double(), exact, rtol=1e-4, atol=1e-4 * scale)
    # The anchor over the top-tau rows is the same whether g' comes whole or by rows.
    rows = functools.partial(out.enhanced, 0)
    torch.testing.assert_close(gtcl_anchor(reference.response, reference.enhanced, 0.1),
                               gtcl_anchor(reference.response, rows, 0.1))
    torch.testing.assert_close(gtcl_anchor(out.responses[0], rows, 0.0, buggy_top_tau=True),
                               torch.nn.functional.normalize(reference.enhanced[0], dim=0))
    with pytest.raises(ValueError, match='no expression'):
        respond_compact(field, [], training_tables(field))


def test_tables_of_chosen_rows_answer_for_those_rows():
    # without PCMI's text positions (pooled over every row) a row's response is its own
    field, gen = _random_field(700, 4, {'use_pcmi': False})
    rows = torch.tensor([650, 3, 3, 299, 0, 512])
    with torch.no_grad():
        words = torch.randn(6, 24, generator=gen)
        full = response_only(field.double(), words.double(), inference_cache(field.double()))
        part = response_only(field.double(), words.double(),
                             inference_cache(field.double(), chunk=4, rows=rows))
    torch.testing.assert_close(part, full[rows], rtol=1e-9, atol=1e-9 * full.abs().max())
