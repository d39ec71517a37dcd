"""The fixed-answer field selects exactly its set for any expression, via the full PCMI path."""
import torch

from helpers.fixed_answer_field import fixed_answer_field


def test_fixed_answer_field_selects_its_set_for_any_words():
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(500, 3, generator=gen)
    selected = torch.rand(500, generator=gen) < 0.2
    field = fixed_answer_field(means, selected, text_dim=32)
    assert field.config.use_pcmi and field.attention is not None and field.mlp3 is not None
    for length in (1, 3, 12):
        words = torch.randn(length, 32, generator=gen)
        out = field(words)
        assert torch.equal(out.response > 0, selected)
        # Longer expressions give more confident answers (m grows with L).
        expected = 11.3 * 0.1 * length
        assert abs(out.response[selected].mean().item() - expected) < 0.05 * expected
    cache = field.precompute()
    torch.testing.assert_close(field.respond(words, cache).response, out.response)
