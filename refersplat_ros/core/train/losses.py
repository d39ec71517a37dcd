"""ReferSplat losses: mask BCE and GTCL, total L = BCE + lambda*GTCL.

Method: docs/METHOD.md#mask-loss, #gtcl and #total-loss.

GTCL follows the official-code form (cosine logits / 0.1, multi-positive pairwise softplus,
negatives from the same view) with the top-tau anchor FIXED: Gaussians are ranked over the
flattened response m [N]. The official release argsorts an N x 1 tensor along its size-1 axis, so
its anchor is always g'_0 and tau has no effect (docs/METHOD.md#gtcl, defect a:
docs/METHOD.md#defect-a); ``buggy_top_tau`` reproduces that for ablations only.
"""
from dataclasses import asdict, dataclass
import math
from typing import Callable, NamedTuple, Optional, Union

import torch
from torch import Tensor
import torch.nn.functional as F

#: g' of every Gaussian [N, D], or a function returning the rows at an index (``gtcl_anchor``).
Enhanced = Union[Tensor, Callable[[Tensor], Tensor]]


@dataclass
class ReferringLossConfig:
    """Loss weights and the tau schedule (defaults: the paper's values).

    Defaults are the "our choice" column of docs/METHOD.md#paper-vs-code.

    Attributes:
        gtcl_weight: lambda of L = L_bce + lambda * L_con (paper 0.02; official code 0.1).
        use_gtcl: False drops the contrastive term (baseline / +PCMI ablations).
        temperature: Cosine-logit temperature of GTCL (0.1, official code).
        tau_initial: Top-tau fraction at step 0 (0.1).
        tau_decay: Factor applied every ``tau_period`` steps (0.6).
        tau_period: Steps between decays (paper 1000; official code 2000).
        tau_floor: Lowest tau (0.005).
        buggy_top_tau: Reproduce the official bug (anchor = g'_0). Ablation only.
    """

    gtcl_weight: float = 0.02
    use_gtcl: bool = True
    temperature: float = 0.1
    tau_initial: float = 0.1
    tau_decay: float = 0.6
    tau_period: int = 1000
    tau_floor: float = 0.005
    buggy_top_tau: bool = False

    def __post_init__(self):
        if self.tau_period <= 0:
            raise ValueError('ReferringLossConfig.tau_period must be positive')
        if self.temperature <= 0:
            raise ValueError('ReferringLossConfig.temperature must be positive')

    @classmethod
    def official(cls) -> 'ReferringLossConfig':
        """Official-code recipe: lambda 0.1, tau decays every 2000 steps (top-tau bug fixed)."""
        return cls(gtcl_weight=0.1, tau_period=2000)

    def to_dict(self) -> dict:
        return asdict(self)


def tau_at(step: int, config: Optional[ReferringLossConfig] = None) -> float:
    """Return tau = max(floor, initial * decay ** floor(step / period)) at a 0-based step."""
    cfg = config or ReferringLossConfig()
    return max(cfg.tau_floor, cfg.tau_initial * cfg.tau_decay ** (int(step) // cfg.tau_period))


def mask_bce_loss(
    logits: Tensor,  # [H, W] or [1, H, W] rendered logit map M
    mask: Tensor,  # [H, W] or [1, H, W]; any value > 0 is foreground
) -> Tensor:
    """Return the pixel-mean BCE-with-logits of a rendered logit map against a mask.

    Mask loss: docs/METHOD.md#mask-loss; any mask value > 0 is foreground
    (docs/METHOD.md#annotation-json).
    """
    logits = logits.reshape(logits.shape[-2:]) if logits.ndim == 3 else logits
    mask = mask.reshape(mask.shape[-2:]) if mask.ndim == 3 else mask
    if logits.shape != mask.shape:
        raise ValueError(f'mask_bce_loss: logits {tuple(logits.shape)} and mask '
                         f'{tuple(mask.shape)} differ')
    target = (mask > 0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target)


def top_tau_count(num_gaussians: int, tau: float) -> int:
    """Return max(1, floor(tau * N)); a tiny epsilon absorbs float error of tau * N."""
    return max(1, min(num_gaussians, int(math.floor(tau * num_gaussians + 1e-6))))


def gtcl_anchor(
    response: Tensor,  # [N] or [N, 1] per-Gaussian logits m
    enhanced: Enhanced,  # [N, D] PCMI-enhanced features g', or index -> their rows
    tau: float,
    buggy_top_tau: bool = False,
) -> Tensor:
    """Return the GTCL anchor f_g: normalised mean of g' over the top-tau Gaussians, ``[D]``.

    Ranking is over the flattened response (our fix). With ``buggy_top_tau`` the anchor is
    g'_0, exactly what the official argsort over the size-1 axis produces
    (docs/METHOD.md#defect-a). ``enhanced`` may be a function returning the rows of g' at an
    index (training computes g' for the top-tau Gaussians only, ``field/compact.py``).
    """
    flat = response.reshape(-1)
    if isinstance(enhanced, Tensor) and flat.shape[0] != enhanced.shape[0]:
        raise ValueError(f'gtcl_anchor: response has {flat.shape[0]} entries, enhanced '
                         f'{enhanced.shape[0]} rows')
    if buggy_top_tau:
        index = torch.zeros(1, dtype=torch.int64, device=flat.device)
    else:
        index = torch.topk(flat.detach(), top_tau_count(flat.shape[0], tau)).indices  # [k]
    rows = enhanced[index] if isinstance(enhanced, Tensor) else enhanced(index)  # [k, D]
    return F.normalize(rows.mean(dim=0), dim=0)


def gtcl_loss(
    anchor: Tensor,  # [D] normalised f_g
    sentence_embeddings: Tensor,  # [S, D] normalised e_s of every expression of the view
    positive: Tensor,  # [S] bool, same object as the current expression (including it)
    temperature: float = 0.1,
) -> Tensor:
    """Return L_con = log(1 + sum_p sum_n exp(s_n - s_p)), s = <f_g, e_s> / T.

    Code form of docs/METHOD.md#gtcl.

    Returns 0 (differentiable, keeps the graph) when the view has no negative.
    """
    positive = positive.to(torch.bool).reshape(-1)
    if positive.shape[0] != sentence_embeddings.shape[0]:
        raise ValueError('gtcl_loss: positive mask and sentence embeddings differ in length')
    if not bool(positive.any()):
        raise ValueError('gtcl_loss: at least one positive (the current expression) is needed')
    scores = sentence_embeddings @ anchor / temperature  # [S]
    if bool(positive.all()):
        return scores.sum() * 0.0
    diffs = scores[~positive][None, :] - scores[positive][:, None]  # [P, Nn]
    # log(1 + sum exp(d)) = softplus(logsumexp(d)): stable, and log1p keeps small losses exact.
    return F.softplus(torch.logsumexp(diffs.reshape(-1), dim=0))


class ReferSplatLoss(NamedTuple):
    """Loss terms of one step."""

    total: Tensor
    bce: Tensor
    gtcl: Tensor
    tau: float


def referring_loss(
    logits: Tensor,  # [H, W] rendered logit map of the current expression
    mask: Tensor,  # [H, W] mask of its object
    response: Tensor,  # [N] m of the current expression
    enhanced: Enhanced,  # [N, D] g' of the current expression (or index -> rows)
    sentence_embeddings: Optional[Tensor],  # [S, D] e_s of the view's expressions, or None
    positive: Optional[Tensor],  # [S] bool, True for the current object's expressions
    step: int,
    config: Optional[ReferringLossConfig] = None,
) -> ReferSplatLoss:
    """Return L = L_bce + lambda * L_con of one (view, expression) step.

    Total loss: docs/METHOD.md#total-loss.

    ``sentence_embeddings``/``positive`` may be None (or GTCL disabled): L_con is then 0.
    """
    cfg = config or ReferringLossConfig()
    bce = mask_bce_loss(logits, mask)
    tau = tau_at(step, cfg)
    if cfg.use_gtcl and sentence_embeddings is not None and positive is not None:
        anchor = gtcl_anchor(response, enhanced, tau, cfg.buggy_top_tau)
        con = gtcl_loss(anchor, sentence_embeddings, positive, cfg.temperature)
    else:
        con = bce.new_zeros(())
    return ReferSplatLoss(total=bce + cfg.gtcl_weight * con, bce=bce, gtcl=con, tau=tau)
