"""Referring field: per-Gaussian referring features, MLPs, PCMI and the response m_i.

Implements docs/METHOD.md#referring-field to #response. One field is trained per scene on
frozen Gaussians: the only per-Gaussian state is the learnable referring feature f_r [N, 16]
(zero-initialised, docs/METHOD.md#referring-field) and the frozen centres mu [N, 3] (a
non-persistent buffer; checkpoints fingerprint it instead).

Forward (one expression with L word features from the text encoder):

- w_j = MLP1(word_j)                        [L, 128]   (docs/METHOD.md#mlps)
- x_i = MLP2(f_r,i)                         [N, 128]
- p_i = MLP3(mu_i) / ||MLP3(mu_i)||         [N, 128]   (raw world centres)
- g'_i = PCMI(x, p, w)                      [N, 128]   (docs/METHOD.md#pcmi-code form by default,
                                                        docs/METHOD.md#pcmi-paper form)
- m_i = <g'_i, sum_j w_j>                   [N]        a logit, rasterized as one channel
                                                       (docs/METHOD.md#response)

Device handling: nothing is hard-coded. ``field.to(device)`` moves parameters and the centres;
word features given to ``forward``/``respond`` are moved to the field's device.

``precompute()`` returns the query-independent tensors (x, p and their projections
W_q x + W_gp p); ``respond(words, cache)`` then costs one pass over N per expression. This is the
reference form of the method. Training and serving use the same algebra on 129-wide per-Gaussian
tables instead of [N, D] tensors (``field/compact.py``), tested equal to it.
"""
from dataclasses import asdict, dataclass
import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import nn, Tensor
import torch.nn.functional as F

PCMI_FORMS = ('code', 'paper')


@dataclass
class ReferringFieldConfig:
    """Architecture of the referring field (defaults: docs/METHOD.md#paper-vs-code, "our choice").

    Attributes:
        text_dim: Width of the encoder word features (MLP1 input; 1024 for bert-large-uncased,
            384 for the bundled MiniLM). Read it from ``TextEncoder.hidden_size``.
        feature_dim: Per-Gaussian referring feature width d_r (16, paper Tab. 7).
        width: Common width D of MLP outputs and PCMI (128).
        use_pcmi: False gives the paper's baseline "referring field + m_i + BCE": g' = x.
        naive_attention: Cross-attention without the position terms (paper Tab. 4 ablation):
            no MLP3, no text-position keys, no W_gp/W_kp.
        pcmi_form: ``'code'`` = official Q/K/V form with residual and LayerNorm
            (docs/METHOD.md#pcmi-code); ``'paper'`` = parameter-free equations of
            docs/METHOD.md#pcmi-paper.
        text_position_scale: Divide the text-position logits w_j.x_i by sqrt(D). ``None`` = the
            form's own rule (code: no scaling, paper: 1/sqrt(D)).
    """

    text_dim: int = 384
    feature_dim: int = 16
    width: int = 128
    use_pcmi: bool = True
    naive_attention: bool = False
    pcmi_form: str = 'code'
    text_position_scale: Optional[bool] = None

    def __post_init__(self):
        if self.pcmi_form not in PCMI_FORMS:
            raise ValueError(f'ReferringFieldConfig.pcmi_form must be one of {PCMI_FORMS}, '
                             f'got {self.pcmi_form!r}')
        for name in ('text_dim', 'feature_dim', 'width'):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f'ReferringFieldConfig.{name} must be positive')

    @property
    def uses_positions(self) -> bool:
        """Whether MLP3 position embeddings take part (PCMI on, not naive)."""
        return self.use_pcmi and not self.naive_attention

    @property
    def scale_text_position(self) -> bool:
        """Resolved text-position scaling rule."""
        if self.text_position_scale is None:
            return self.pcmi_form == 'paper'
        return bool(self.text_position_scale)

    def to_dict(self) -> dict:
        return asdict(self)


def _mlp(dims) -> nn.Sequential:
    """Linear layers of widths ``dims`` with ReLU between them (none after the last)."""
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


class PositionCrossAttention(nn.Module):
    """Official-code PCMI layer (docs/METHOD.md#pcmi-code): 5 Linear D x D + affine LayerNorm.

    With ``naive=True`` the position projections W_gp and W_kp are not created (Tab. 4 ablation).
    """

    def __init__(self, width: int, naive: bool = False):
        super().__init__()
        self.naive = naive
        self.q_linear = nn.Linear(width, width)
        self.k_linear = nn.Linear(width, width)
        self.v_linear = nn.Linear(width, width)
        if not naive:
            self.gp_linear = nn.Linear(width, width)  # Gaussian position -> query
            self.kp_linear = nn.Linear(width, width)  # text position -> key
        self.norm = nn.LayerNorm(width)


class FieldCache(NamedTuple):
    """Query-independent tensors of a field (``ReferringField.precompute``).

    Attributes:
        x: MLP2(f_r), ``[N, D]``.
        positions: Normalised MLP3(mu), ``[N, D]``; None when positions are unused.
        queries: Attention queries, ``[N, D]``: code form W_q x + b_q (+ W_gp p + b_gp);
            paper form x (+ p); None without PCMI.
    """

    x: Tensor
    positions: Optional[Tensor]
    queries: Optional[Tensor]


class FieldOutput(NamedTuple):
    """Result of one expression.

    Attributes:
        response: Per-Gaussian logit m, ``[N]``.
        enhanced: PCMI-enhanced features g', ``[N, D]`` (x without PCMI).
        words: MLP1 word projections w, ``[L, D]``.
    """

    response: Tensor
    enhanced: Tensor
    words: Tensor


class ReferringField(nn.Module):
    """Per-scene referring field (docs/METHOD.md#referring-field).

    Args:
        means: Frozen Gaussian centres, ``[N, 3]`` (raw world coordinates, MLP3 input of
            docs/METHOD.md#mlps).
        config: Architecture; ``config.text_dim`` must equal the encoder's hidden size.
    """

    def __init__(self, means: Tensor, config: Optional[ReferringFieldConfig] = None):  # [N, 3]
        super().__init__()
        if means.ndim != 2 or means.shape[1] != 3:
            raise ValueError(f'ReferringField: means must be [N, 3], got {tuple(means.shape)}')
        self.config = config or ReferringFieldConfig()
        cfg = self.config
        num = means.shape[0]
        self.register_buffer('means', means.detach().float().clone(), persistent=False)
        # Learnable 16-d referring feature per Gaussian, zero-initialised
        # (docs/METHOD.md#referring-field).
        self.features = nn.Parameter(torch.zeros(num, cfg.feature_dim, device=means.device))
        self.mlp1 = _mlp((cfg.text_dim, 512, 256, cfg.width))  # words
        self.mlp2 = _mlp((cfg.feature_dim, 32, 64, cfg.width))  # referring features
        self.mlp3 = _mlp((3, 16, 64, cfg.width)) if cfg.uses_positions else None
        self.attention = None
        if cfg.use_pcmi and cfg.pcmi_form == 'code':
            self.attention = PositionCrossAttention(cfg.width, naive=cfg.naive_attention)
        self.to(means.device)

    @property
    def num_gaussians(self) -> int:
        return int(self.features.shape[0])

    @property
    def device(self) -> torch.device:
        return self.features.device

    def network_parameters(self):
        """Parameters of the MLPs and the attention (lr 1e-4), without ``features``.

        Learning rates: docs/METHOD.md#training.
        """
        return [p for name, p in self.named_parameters() if name != 'features']

    def project_words(self, word_features: Tensor) -> Tensor:  # [L, text_dim]
        """Return w = MLP1(word features), ``[L, D]``."""
        if word_features.ndim != 2 or word_features.shape[1] != self.config.text_dim:
            raise ValueError(
                f'ReferringField: word features must be [L, {self.config.text_dim}], '
                f'got {tuple(word_features.shape)}')
        if word_features.shape[0] == 0:
            raise ValueError('ReferringField: an expression needs at least one word feature')
        return self.mlp1(word_features.to(self.device, self.features.dtype))

    def sentence_embedding(self, word_features: Tensor) -> Tensor:  # [L, text_dim]
        """Return e_s = normalise(mean_j MLP1(word_j)), ``[D]`` (GTCL candidates).

        GTCL: docs/METHOD.md#gtcl.
        """
        return F.normalize(self.project_words(word_features).mean(dim=0), dim=0)

    def precompute(self) -> FieldCache:
        """Compute the query-independent tensors (x, p, queries) once for many expressions.

        Call under ``torch.no_grad()`` for inference; the cache is valid until the parameters
        change.
        """
        cfg = self.config
        x = self.mlp2(self.features)  # [N, D]
        positions = None
        if self.mlp3 is not None:
            positions = F.normalize(self.mlp3(self.means), dim=-1)  # [N, D]
        queries = None
        if cfg.use_pcmi:
            if cfg.pcmi_form == 'code':
                queries = self.attention.q_linear(x)
                if positions is not None:
                    queries = queries + self.attention.gp_linear(positions)
            else:
                queries = x if positions is None else x + positions
        return FieldCache(x=x, positions=positions, queries=queries)

    def keys_values(self, words: Tensor,  # [L, D]
                    keys_pos: Optional[Tensor]) -> Tuple[Tensor, Tensor]:  # [L, D]
        """Return the PCMI keys and values of projected words w with text positions ``keys_pos``.

        Code form: keys W_k w + b_k (+ W_kp pos + b_kp), values W_v w + b_v
        (docs/METHOD.md#pcmi-code); paper form: keys w (+ pos), values w
        (docs/METHOD.md#pcmi-paper).
        """
        if self.config.pcmi_form == 'code':
            att = self.attention
            keys = att.k_linear(words)
            if keys_pos is not None:
                keys = keys + att.kp_linear(keys_pos)
            return keys, att.v_linear(words)
        return (words if keys_pos is None else words + keys_pos), words

    def respond(self, word_features: Tensor, cache: FieldCache) -> FieldOutput:  # [L, text_dim]
        """Return the response of one expression using precomputed tensors.

        PCMI and response: docs/METHOD.md#pcmi-paper to #response.
        """
        cfg = self.config
        words = self.project_words(word_features)  # [L, D]
        x = cache.x
        if not cfg.use_pcmi:
            enhanced = x
        else:
            keys_pos = None
            if cache.positions is not None:
                # Text position (docs/METHOD.md#pcmi-code, step 1): each word soft-averages
                # the Gaussian position embeddings, softmax over ALL N Gaussians, no 1/sqrt(D)
                # unless configured.
                logits = words @ x.t()  # [L, N]
                if cfg.scale_text_position:
                    logits = logits / math.sqrt(cfg.width)
                keys_pos = torch.softmax(logits, dim=-1) @ cache.positions  # [L, D]
            keys, values = self.keys_values(words, keys_pos)
            weights = torch.softmax(cache.queries @ keys.t() * (1.0 / math.sqrt(cfg.width)),
                                    dim=-1)  # [N, L]
            enhanced = x + weights @ values
            if cfg.pcmi_form == 'code':
                enhanced = self.attention.norm(enhanced)
        # Code form of docs/METHOD.md#response: m_i = <g'_i, sum_j w_j>, a logit; summed, not
        # averaged, over words.
        response = enhanced @ words.sum(dim=0)  # [N]
        return FieldOutput(response=response, enhanced=enhanced, words=words)

    def forward(self, word_features: Tensor) -> FieldOutput:  # [L, text_dim]
        """Training forward of one expression: response [N], g' [N, D], w [L, D]."""
        return self.respond(word_features, self.precompute())
