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

Inference: ``precompute()`` returns the query-independent tensors (x, p and their projections
W_q x + W_gp p); ``respond(words, cache)`` then costs one pass over N per expression. For
serving, ``inference_cache(field)`` keeps a compact table instead and ``response_only`` returns
only m (no [N, D] tensor per query).
"""
from dataclasses import asdict, dataclass
import math
from typing import Callable, NamedTuple, Optional

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
            scale = 1.0 / math.sqrt(cfg.width)
            if cfg.pcmi_form == 'code':
                att = self.attention
                keys = att.k_linear(words)
                if keys_pos is not None:
                    keys = keys + att.kp_linear(keys_pos)
                values = att.v_linear(words)  # [L, D]
                weights = torch.softmax(cache.queries @ keys.t() * scale, dim=-1)  # [N, L]
                enhanced = att.norm(x + weights @ values)
            else:
                # Paper form (docs/METHOD.md#pcmi-paper):
                # f' = f + softmax_j((f + f_p)(f_w + f_pw)^T / sqrt(D)) f_w.
                keys = words if keys_pos is None else words + keys_pos
                weights = torch.softmax(cache.queries @ keys.t() * scale, dim=-1)  # [N, L]
                enhanced = x + weights @ words
        # Code form of docs/METHOD.md#response: m_i = <g'_i, sum_j w_j>, a logit; summed, not
        # averaged, over words.
        response = enhanced @ words.sum(dim=0)  # [N]
        return FieldOutput(response=response, enhanced=enhanced, words=words)

    def forward(self, word_features: Tensor) -> FieldOutput:  # [L, text_dim]
        """Training forward of one expression: response [N], g' [N, D], w [L, D]."""
        return self.respond(word_features, self.precompute())


#: Shifted logits (max = 0) are clamped here before ``exp``: exp(-80) = 1.8e-35 is still a normal
#: float32 and contributes nothing next to the max term's 1, but CPU ``exp`` of far more negative
#: inputs (underflow to 0) is ~9x slower than of ordinary ones, and attention logits of unrelated
#: Gaussians sit hundreds below the max.
EXP_FLOOR = -80.0

#: Rows of the inference table processed together by ``response_only`` (a [block, 2L + 1] float32
#: product is ~3 MB at L = 12: it stays in the CPU cache for the element-wise steps).
RESPONSE_BLOCK = 1 << 15


class InferenceCache(NamedTuple):
    """Compact query-independent tensors of a field for ``response_only`` (inference).

    MLP2 and MLP3 end in a Linear layer: x_i = A h_i + b and MLP3(mu_i) = B v_i + c, with h_i and
    v_i the outputs of their hidden layers (64 wide, docs/METHOD.md#mlps). Every per-Gaussian
    product a query needs (x_i . w_j, the attention logits Q_i . K_j, x_i . V_j, the
    text-position average of p_i) is linear in [h_i, v_i / n_i, 1 / n_i] with
    n_i = ||MLP3(mu_i)||, so inference keeps
    that 129-wide table instead of x, p and the queries (3 x 128 wide): a third of the memory
    and of the bytes read per query.

    Attributes:
        table: ``[N, H2]`` = h without positions, ``[N, H2 + H3 + 1]`` = [h, v / n, 1 / n] with.
        hidden_width: H2, the width of h.
        mean: Mean over channels of x_i, ``[N]``.
        sq_norm: ||x_i||^2, ``[N]``.
    """

    table: Tensor
    hidden_width: int
    mean: Tensor
    sq_norm: Tensor


#: Storage types of the inference table (``inference_cache(dtype=...)``). Not bfloat16: its 8-bit
#: mantissa moved a Gaussian across the threshold (selection IoU 0.976 with float32 on the hard
#: tiny scene's training sentences; float16: identical selections there).
TABLE_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def inference_cache(field: ReferringField, chunk: int = 1 << 18,
                    dtype: str = 'float32') -> InferenceCache:
    """Compute the compact inference tables of ``field`` (``chunk`` rows at a time).

    ``dtype`` ('float32' or 'float16', ``TABLE_DTYPES``) is how the [N, 129] table
    is stored: 16 bits halve its memory and the bytes a query reads; each block is widened to
    float32 in the CPU cache before its products, so only the table's rounding differs
    (``mean`` and ``sq_norm`` stay float32). On this CPU the pass is compute-bound: float16 saved
    memory but not time (docs/BENCHMARKS.md#query-latency, field-f16 rows).
    """
    if dtype not in TABLE_DTYPES:
        raise ValueError(f'table dtype must be one of {sorted(TABLE_DTYPES)}, got {dtype!r}')
    with torch.no_grad():
        last2 = field.mlp2[-1]
        parts, means, sq_norms = [], [], []
        for start in range(0, field.num_gaussians, chunk):
            hidden = field.mlp2[:-1](field.features[start:start + chunk])  # [n, H2]
            x = last2(hidden)  # [n, D]
            means.append(x.mean(dim=1))
            sq_norms.append((x * x).sum(dim=1))
            row = [hidden]
            if field.mlp3 is not None:
                inner = field.mlp3[:-1](field.means[start:start + chunk])  # [n, H3]
                # F.normalize divides by max(||.||, 1e-12): keep exactly that rule.
                inv = 1.0 / field.mlp3[-1](inner).norm(dim=1).clamp_min(1e-12)  # [n]
                row += [inner * inv[:, None], inv[:, None]]
            part = torch.cat(row, dim=1) if len(row) > 1 else hidden
            # per chunk: never a full-width copy besides the table (a float64 field keeps
            # float64 unless 16 bits are asked for)
            parts.append(part.to(TABLE_DTYPES[dtype]) if dtype != 'float32' else part)
        table = torch.cat(parts).contiguous()
        return InferenceCache(table, int(last2.in_features), torch.cat(means),
                              torch.cat(sq_norms))


def _text_position_keys(field: ReferringField, words: Tensor,  # [L, D]
                        cache: InferenceCache, block: int,
                        check: Callable[[], None]) -> Tensor:  # -> [L, D]
    """Text positions of the words (docs/METHOD.md#pcmi-code, step 1), from the compact table.

    Word j's position is the mean of the Gaussians' positions p_i = (v_i B^T + c) / n_i weighted
    by softmax_i(w_j . x_i) over ALL N Gaussians: one product with the table's [v / n, 1 / n]
    columns, accumulated over blocks of rows with a running maximum (online softmax).
    """
    cfg = field.config
    last2, last3 = field.mlp2[-1], field.mlp3[-1]
    table, width2 = cache.table, cache.hidden_width
    coeff_t = (words @ last2.weight).t().contiguous()  # [H2, L]: w_j . x_i = h_i . (w_j A)
    bias_t = words @ last2.bias  # [L]
    if cfg.scale_text_position:
        coeff_t /= math.sqrt(cfg.width)
        bias_t /= math.sqrt(cfg.width)
    run_max = None
    run_sum = words.new_zeros(words.shape[0])  # [L]
    pooled = words.new_zeros(words.shape[0], table.shape[1] - width2)  # [L, H3 + 1]
    for start in range(0, table.shape[0], block):
        check()
        rows = table[start:start + block].to(cache.mean.dtype)  # 16-bit: widened here
        logits = torch.addmm(bias_t, rows[:, :width2], coeff_t)  # [b, L]
        top = logits.max(dim=0).values  # [L]
        if run_max is None:
            run_max = top
        else:
            new_max = torch.maximum(run_max, top)
            rescale = torch.exp(run_max - new_max)  # [L], <= 1
            run_sum *= rescale
            pooled *= rescale[:, None]
            run_max = new_max
        logits -= run_max
        exps = logits.clamp_min_(EXP_FLOOR).exp_()  # [b, L], unnormalised
        run_sum += exps.sum(dim=0)
        pooled.addmm_(exps.t(), rows[:, width2:])
    pooled /= run_sum[:, None]
    return pooled[:, :-1] @ last3.weight.t() + pooled[:, -1:] * last3.bias  # [L, D]


def response_only(field: ReferringField, word_features: Tensor,  # [L, text_dim]
                  cache: InferenceCache, block: int = RESPONSE_BLOCK,
                  check: Optional[Callable[[], None]] = None) -> Tensor:  # -> [N]
    """Return the logits m [N] of ``field.respond`` without materialising any [N, D] tensor.

    Inference needs only m_i = <g'_i, s> with s = sum_j w_j. For the code-form PCMI,
    g'_i = LayerNorm(z_i), z_i = x_i + a_i V (a_i: attention row [L], V: values [L, D]), so
    m_i = ((z_i - mu_i) / sigma_i) . (gamma * s) + beta . s with
    z_i . u = x_i . u + a_i . (V u), mu_i = mean(x_i) + a_i . mean_cols(V) and
    mean(z_i^2) = (||x_i||^2 + 2 a_i . (V x_i) + a_i^T (V V^T) a_i) / D. With the compact table
    (``InferenceCache``) the products with x_i, p_i and the queries are one matrix product of
    the table with a small [2L + 1, 129] coefficient matrix, and the text-position average is
    one [L, N] x [N, 65] product. The paper form and the no-PCMI baseline are linear in x and
    reduce the same way. Equal to ``field.respond(...).response`` up to float rounding (tested).

    The work runs over ``block`` rows of the table at a time, so that the [block, L]
    intermediates of the element-wise steps stay in the CPU cache instead of making a dozen
    passes over [N, L] arrays in memory; the text-position softmax over all N
    (docs/METHOD.md#pcmi-code, step 1) is accumulated across blocks with a running maximum
    (online softmax).

    ``check`` (if given) is called before each block; it may raise to abandon the work (the
    model's per-query time budget).
    """
    cfg = field.config
    check = check or (lambda: None)
    words = field.project_words(word_features)  # [L, D]
    s = words.sum(dim=0)  # [D]
    last2 = field.mlp2[-1]
    a_mat, b_vec = last2.weight, last2.bias  # x = h A^T + b: [D, H2], [D]
    table, width2 = cache.table, cache.hidden_width
    num = table.shape[0]
    block = max(1, int(block))
    if not cfg.use_pcmi:
        return torch.mv(table[:, :width2].to(s.dtype), s @ a_mat) + b_vec @ s
    num_words = words.shape[0]
    att = field.attention if cfg.pcmi_form == 'code' else None
    values = att.v_linear(words) if att is not None else words  # [L, D]
    u = att.norm.weight * s if att is not None else s  # [D]
    with_positions = field.mlp3 is not None
    keys_pos = (_text_position_keys(field, words, cache, block, check) if with_positions
                else None)
    last3 = field.mlp3[-1] if with_positions else None  # MLP3(mu) = v B^T + c
    if att is not None:
        keys = att.k_linear(words)
        if keys_pos is not None:
            keys = keys + att.kp_linear(keys_pos)
        # queries_i = W_q x_i + b_q (+ W_gp p_i + b_gp)
        keys_q = keys @ att.q_linear.weight  # [L, D] rows W_q^T k_j
        const_q = keys @ att.q_linear.bias + keys_q @ b_vec
        if with_positions:
            keys_p = keys @ att.gp_linear.weight
            const_q = const_q + keys @ att.gp_linear.bias
    else:
        keys = words if keys_pos is None else words + keys_pos  # paper: queries = x (+ p)
        keys_q, const_q, keys_p = keys, keys @ b_vec, keys
    scale = 1.0 / math.sqrt(cfg.width)
    # Attention logits scaled here once instead of per row: rows [0, L) of the coefficients.
    rows_h = torch.cat([keys_q * scale, values, u[None]]) @ a_mat  # [2L + 1, H2]
    const = torch.cat([const_q * scale, values @ b_vec, (u @ b_vec)[None]])  # [2L + 1]
    if with_positions:
        zeros = rows_h.new_zeros(num_words + 1, table.shape[1] - width2)
        rows_p = torch.cat([keys_p @ last3.weight, (keys_p @ last3.bias)[:, None]], dim=1)
        rows_p = rows_p * scale
        coefficients = torch.cat([rows_h, torch.cat([rows_p, zeros])], dim=1)  # [2L + 1, W]
    else:
        coefficients = rows_h
    coefficients_t = coefficients.t().contiguous()  # [W, 2L + 1]
    if att is None:  # paper form: m = x . s + a . (W s)
        word_s = words @ s  # [L]
    else:
        values_u = values @ u  # [L]
        values_mean = values.mean(dim=1)  # [L]
        gram = values @ values.t()  # [L, L]
        norm = att.norm
        u_sum = u.sum()
        beta_s = norm.bias @ s
        inv_width = 1.0 / float(cfg.width)
    out = cache.mean.new_empty(num)
    for start in range(0, num, block):
        check()
        stop = min(num, start + block)
        products = torch.addmm(const, table[start:stop].to(const.dtype), coefficients_t)
        weights = products[:, :num_words]  # [b, L] attention logits (a view)
        # Softmax over the L words by hand: torch.softmax over a short last dim is slow on CPU.
        weights -= weights.amax(dim=1, keepdim=True)
        weights.clamp_min_(EXP_FLOOR).exp_()
        weights /= weights.sum(dim=1, keepdim=True)
        x_u = products[:, -1]  # [b] = x . u
        if att is None:
            torch.addmv(x_u, weights, word_s, out=out[start:stop])
            continue
        x_values = products[:, num_words:2 * num_words]  # [b, L] = x . v_j
        z_dot_u = torch.addmv(x_u, weights, values_u)  # [b]
        mu = torch.addmv(cache.mean[start:stop], weights, values_mean)  # [b]
        # (2 x . v + a V V^T) . a, summed over the L words
        x_values.mul_(2.0).addmm_(weights, gram)
        z_sq = (x_values.mul_(weights).sum(dim=1) + cache.sq_norm[start:stop]) * inv_width
        var = z_sq.sub_(mu * mu).clamp_min_(0.0)  # biased variance, as LayerNorm
        # m = (z . u - mu * sum(u)) / sqrt(var + eps) + beta . s
        numerator = z_dot_u.sub_(mu.mul_(u_sum))
        torch.div(numerator, var.add_(norm.eps).sqrt_(), out=out[start:stop])
        out[start:stop] += beta_s
    return out
