"""A referring field with hand-set weights whose answer is a given set of Gaussians.

For pipeline tests and latency benchmarks, where a trained field is not the point but a known,
object-sized answer is: every expression selects exactly ``selected``, while the full forward
(MLP1/MLP2/MLP3, PCMI text-position softmax over all N, attention, LayerNorm) still runs, so its
cost is that of a trained field of the same size.

Construction (code-form PCMI, docs/METHOD.md#pcmi-code): MLP2 passes feature channels 0 and 1
through (ReLU keeps them), f_r = e0 on ``selected`` and e1 elsewhere; the attention values are
zero, so g' = LayerNorm(x); MLP1 outputs the constant w = (b, -b, 0, ...). Then
m_i = <LayerNorm(x_i), L w> is about +11.4 b L on ``selected`` and -11.4 b L elsewhere (L = number
of word pieces): sigmoid(m) > 0.5 exactly on ``selected``, approaching 1 for longer expressions.
"""
import torch
from torch import Tensor

from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig


def fixed_answer_field(
    means: Tensor,     # [N, 3]
    selected: Tensor,  # [N] bool
    text_dim: int,
    word_weight: float = 0.1,
) -> ReferringField:
    """Build the field described in the module docstring (default architecture, PCMI on)."""
    if selected.shape != (means.shape[0],) or selected.dtype != torch.bool:
        raise ValueError(f'selected must be a bool tensor [{means.shape[0]}]')
    field = ReferringField(means, ReferringFieldConfig(text_dim=text_dim))
    with torch.no_grad():
        for module in [*field.mlp1, *field.mlp2]:
            if isinstance(module, torch.nn.Linear):
                module.weight.zero_()
                module.bias.zero_()
        for layer in field.mlp2:
            if isinstance(layer, torch.nn.Linear):
                layer.weight[:2, :2] = torch.eye(2)
        field.mlp1[-1].bias[:2] = torch.tensor([word_weight, -word_weight])
        field.attention.v_linear.weight.zero_()
        field.attention.v_linear.bias.zero_()
        field.features.zero_()
        field.features[selected, 0] = 1.0
        field.features[~selected, 1] = 1.0
    return field
