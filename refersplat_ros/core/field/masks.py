"""The mask rule: where the field's answer counts as "the object" (docs/METHOD.md#inference).

The paper predicts sigmoid(M) >= 0.5, i.e. logit M >= 0, on the rendered logit map, and the same
rule on the per-Gaussian logits m_i. M has no background term, so a pixel no Gaussian covers
renders M = 0 exactly and the literal rule calls it foreground (docs/METHOD.md#rasterized-logit).
LERF views are fully covered, so this never matters there; synthetic or cropped views leave the
sky empty. ``empty_pixels='background'`` (the default everywhere) keeps the threshold on covered
pixels (accumulated alpha > 0) and calls the uncovered ones background; ``'paper'`` applies
M >= 0 everywhere. Evaluation, stage-2 pseudo masks and the node's mask all call this module.
"""
from torch import Tensor

#: sigmoid(x) >= 0.5  <=>  x >= LOGIT_THRESHOLD.
LOGIT_THRESHOLD = 0.0
EMPTY_PIXEL_RULES = ('background', 'paper')


def predicted_mask(
    logits: Tensor,  # [H, W] rendered logit map M
    alpha: Tensor,  # [H, W] accumulated opacity of the view
    empty_pixels: str = 'background',
) -> Tensor:  # [H, W] bool
    """Return sigmoid(M) >= 0.5 (M >= 0), uncovered pixels (alpha = 0) background by default."""
    if empty_pixels not in EMPTY_PIXEL_RULES:
        raise ValueError(f'empty_pixels must be one of {EMPTY_PIXEL_RULES}, got {empty_pixels!r}')
    mask = logits >= LOGIT_THRESHOLD
    if empty_pixels == 'background':
        mask = mask & (alpha > 0)
    return mask


def selected_gaussians(logits: Tensor) -> Tensor:  # [N] per-Gaussian logits m -> [N] bool
    """Return the Gaussians whose response passes the mask rule, sigmoid(m_i) >= 0.5."""
    return logits >= LOGIT_THRESHOLD
