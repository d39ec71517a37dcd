"""The field's response in compact form: 129-wide per-Gaussian tables, no [N, D] tensor.

MLP2 and MLP3 end in a Linear layer: x_i = A h_i + b and MLP3(mu_i) = B v_i + c, with h_i and
v_i the outputs of their hidden layers (64 wide, docs/METHOD.md#mlps). Every per-Gaussian product
an expression needs (x_i . w_j, the attention logits Q_i . K_j, x_i . V_j, the text-position
average of p_i) is linear in the row [h_i, v_i / n_i, 1 / n_i] with n_i = ||MLP3(mu_i)||. So
instead of x, p and the queries (3 x 128 wide, ``ReferringField.precompute``) a field keeps that
129-wide table, and one expression is one product of the table with a small [2L + 1, 129]
coefficient matrix plus element-wise work on [N, L] arrays. For the code-form PCMI,
g'_i = LayerNorm(z_i), z_i = x_i + a_i V (a_i: attention row [L], V: values [L, D]), so
m_i = ((z_i - mu_i) / sigma_i) . (gamma * s) + beta . s with s = sum_j w_j,
z_i . u = x_i . u + a_i . (V u), mu_i = mean(x_i) + a_i . mean_cols(V) and
mean(z_i^2) = (||x_i||^2 + 2 a_i . (V x_i) + a_i^T (V V^T) a_i) / D. The paper form and the
no-PCMI baseline are linear in x and reduce the same way. Both uses equal
``ReferringField.respond`` up to float rounding (tested):

- serving: ``inference_cache`` + ``response_only``, no gradient, blocks of rows worked in place
  in the CPU cache, the text-position softmax over all N accumulated across blocks (online
  softmax), optional 16-bit tables;
- training: ``training_tables`` + ``respond_compact``, the same algebra with autograd over all
  N at once. The GTCL anchor needs g' only for the top-tau Gaussians: ``CompactOutput.enhanced``
  computes those rows alone (docs/METHOD.md#gtcl).
"""
import math
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
import torch.nn.functional as F

from refersplat_ros.core.field.referring_field import ReferringField

#: Shifted logits (max = 0) are clamped here before ``exp``: exp(-80) = 1.8e-35 is still a normal
#: float32 and contributes nothing next to the max term's 1, but CPU ``exp`` of far more negative
#: inputs (underflow to 0) is ~9x slower than of ordinary ones, and attention logits of unrelated
#: Gaussians sit hundreds below the max.
EXP_FLOOR = -80.0

#: Rows of the inference table processed together by ``response_only`` (a [block, 2L + 1] float32
#: product is ~3 MB at L = 12: it stays in the CPU cache for the element-wise steps).
RESPONSE_BLOCK = 1 << 15

#: Storage types of the inference table (``inference_cache(dtype=...)``). Not bfloat16: its 8-bit
#: mantissa moved a Gaussian across the threshold (selection IoU 0.976 with float32 on the hard
#: tiny scene's training sentences; float16: identical selections there).
TABLE_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


class CompactTables(NamedTuple):
    """Query-independent per-Gaussian tables of a field (module docstring).

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


class TrainingTables(NamedTuple):
    """The columns of ``CompactTables`` for training, one row per column: ``[C, N]``.

    Word-major: every element-wise step of a batch of expressions then runs along N, contiguous
    in memory (softmax over 12 words of [N, 12] rows is ~4x slower on the CPU than over the
    rows of [12, N]); separate tensors because autograd turns each column slice of one table
    into a zero-filled copy of the whole.

    Attributes:
        hidden: h, ``[H2, N]``.
        positions: [v / n, 1 / n], ``[H3 + 1, N]``; None without positions.
        mean: Mean over channels of x_i, ``[N]``.
        sq_norm: ||x_i||^2, ``[N]``.
    """

    hidden: Tensor
    positions: Optional[Tensor]
    mean: Tensor
    sq_norm: Tensor


def _mlp_columns(mlp: torch.nn.Sequential, inputs: Tensor) -> Tensor:  # [n, C_in] -> [C_out, n]
    """Apply Linear / ReLU layers to the rows of ``inputs``, returning one column per row."""
    out = inputs.t()
    for layer in mlp:
        if isinstance(layer, torch.nn.Linear):
            out = torch.addmm(layer.bias[:, None], layer.weight, out)
        else:
            out = layer(out)
    return out


def training_tables(field: ReferringField, rows=slice(None)) -> TrainingTables:  # slice | [R]
    """Compute the compact tables of ``field`` (of the Gaussians ``rows``) with autograd.

    Training calls it once per step; gradients reach the referring features and MLP2/MLP3
    through the tables. ``inference_cache`` calls it per chunk without gradient.
    """
    hidden = _mlp_columns(field.mlp2[:-1], field.features[rows])  # [H2, n]
    last2 = field.mlp2[-1]
    positions = None
    if field.mlp3 is not None:
        inner = _mlp_columns(field.mlp3[:-1], field.means[rows])  # [H3, n]
        last3 = field.mlp3[-1]
        # F.normalize divides by max(||.||, 1e-12): keep exactly that rule.
        sq = _squared_norms(last3.weight, last3.bias, inner).clamp_min(1e-24)
        inv = torch.rsqrt(sq)[None]  # [1, n]
        positions = torch.cat([inner * inv, inv], dim=0)
    mean = last2.weight.mean(dim=0) @ hidden + last2.bias.mean()  # mean of x = A h + b
    return TrainingTables(hidden, positions, mean,
                          _squared_norms(last2.weight, last2.bias, hidden))


def _squared_norms(weight: Tensor, bias: Tensor, columns: Tensor) -> Tensor:
    """||W c + b||^2 of every column c of ``columns`` [H, n] without the [D, n] product.

    Equal to c^T (W^T W) c + 2 (W^T b) . c + b . b: products with H-wide columns only.
    """
    return (((weight.t() @ weight) @ columns) * columns).sum(dim=0) + \
        (2.0 * (bias @ weight)) @ columns + bias @ bias


def inference_cache(field: ReferringField, chunk: int = 1 << 18,
                    dtype: str = 'float32', rows: Optional[Tensor] = None) -> CompactTables:
    """Compute the compact tables of ``field`` for serving (``chunk`` rows at a time, no grad).

    ``dtype`` ('float32' or 'float16', ``TABLE_DTYPES``) is how the [N, 129] table
    is stored: 16 bits halve its memory and the bytes a query reads; each block is widened to
    float32 in the CPU cache before its products, so only the table's rounding differs
    (``mean`` and ``sq_norm`` stay float32). On this CPU the pass is compute-bound: float16 saved
    memory but not time (docs/BENCHMARKS.md#query-latency, field-f16 rows). ``rows`` (int64
    indices [R]): the tables of those Gaussians only, in that order; ``response_only`` then
    answers for them, with PCMI's text positions pooled over those rows instead of all N (the
    soft grounding's per-object sample: the rows where the scene's objects are).
    """
    if dtype not in TABLE_DTYPES:
        raise ValueError(f'table dtype must be one of {sorted(TABLE_DTYPES)}, got {dtype!r}')
    with torch.no_grad():
        parts, means, sq_norms = [], [], []
        total = field.num_gaussians if rows is None else int(rows.numel())
        for start in range(0, total, chunk):
            part_rows = slice(start, start + chunk) if rows is None else rows[start:start + chunk]
            tables = training_tables(field, part_rows)
            means.append(tables.mean)
            sq_norms.append(tables.sq_norm)
            part = (tables.hidden if tables.positions is None
                    else torch.cat([tables.hidden, tables.positions])).t()
            # per chunk: never a full-width copy besides the table (a float64 field keeps
            # float64 unless 16 bits are asked for)
            parts.append(part.to(TABLE_DTYPES[dtype]) if dtype != 'float32' else part)
        return CompactTables(torch.cat(parts).contiguous(), int(field.mlp2[-1].in_features),
                             torch.cat(means), torch.cat(sq_norms))


def _position_coefficients(field: ReferringField, words: Tensor) -> Tuple[Tensor, Tensor]:
    """Text-position logits w_j . x_i = h_i . (w_j A) + w_j . b: ([H2, L], [L])."""
    last2 = field.mlp2[-1]
    coeff_t = (words @ last2.weight).t()  # [H2, L]
    bias = words @ last2.bias  # [L]
    if field.config.scale_text_position:
        coeff_t = coeff_t / math.sqrt(field.config.width)
        bias = bias / math.sqrt(field.config.width)
    return coeff_t.contiguous(), bias


def _pooled_positions(field: ReferringField, pooled: Tensor) -> Tensor:  # [L, H3 + 1]
    """Weighted mean of p_i = (v_i B^T + c) / n_i from the pooled [v / n, 1 / n] columns."""
    last3 = field.mlp3[-1]
    return pooled[:, :-1] @ last3.weight.t() + pooled[:, -1:] * last3.bias  # [L, D]


def _text_position_keys(field: ReferringField, words: Tensor,  # [L, D]
                        cache: CompactTables, block: int,
                        check: Callable[[], None]) -> Tensor:  # -> [L, D]
    """Text positions of the words (docs/METHOD.md#pcmi-code, step 1), from the compact table.

    Word j's position is the mean of the Gaussians' positions weighted by softmax_i(w_j . x_i)
    over ALL N Gaussians: one product with the table's [v / n, 1 / n] columns, accumulated over
    blocks of rows with a running maximum (online softmax).
    """
    table, width2 = cache.table, cache.hidden_width
    coeff_t, bias_t = _position_coefficients(field, words)
    run_max = None
    run_sum = words.new_zeros(words.shape[0])  # [L]
    pooled = words.new_zeros(words.shape[0], table.shape[1] - width2)  # [L, H3 + 1]
    coeff, bias = coeff_t.t(), bias_t[:, None]  # [L, H2], [L, 1]
    for start in range(0, table.shape[0], block):
        check()
        rows = table[start:start + block].to(cache.mean.dtype)  # 16-bit: widened here
        logits = torch.addmm(bias, coeff, rows[:, :width2].t())  # [L, b], word-major
        top = logits.amax(dim=1)  # [L]
        if run_max is None:
            run_max = top
        else:
            new_max = torch.maximum(run_max, top)
            rescale = torch.exp(run_max - new_max)  # [L], <= 1
            run_sum *= rescale
            pooled *= rescale[:, None]
            run_max = new_max
        logits -= run_max[:, None]
        exps = logits.clamp_min_(EXP_FLOOR).exp_()  # [L, b], unnormalised
        run_sum += exps.sum(dim=1)
        pooled.addmm_(exps, rows[:, width2:])
    pooled /= run_sum[:, None]
    return _pooled_positions(field, pooled)


class _Coefficients(NamedTuple):
    """Small tensors of the compact response of E expressions with T words in all."""

    coefficients: Tensor  # [2T + E, W]: attention logits (scaled), x . v_j, x . u_e
    const: Tensor  # [2T + E]
    keys: Tensor  # [T, D] PCMI keys
    values: Tensor  # [T, D] PCMI values
    u: Tensor  # [E, D]: gamma * s_e (code form), s_e (paper form)


def _coefficients(field: ReferringField, words: Tensor,  # [T, D]
                  sums: Tensor,  # [E, D]
                  keys_pos: Optional[Tensor], table_width: int) -> _Coefficients:
    """Coefficients of the products of the table rows with expressions (PCMI on).

    ``words`` are the projected words of every expression, ``sums`` each expression's s.
    """
    cfg = field.config
    last2 = field.mlp2[-1]
    a_mat, b_vec = last2.weight, last2.bias  # x = h A^T + b: [D, H2], [D]
    att = field.attention if cfg.pcmi_form == 'code' else None
    keys, values = field.keys_values(words, keys_pos)
    u = att.norm.weight * sums if att is not None else sums  # [E, D]
    if att is not None:
        # queries_i = W_q x_i + b_q (+ W_gp p_i + b_gp)
        keys_q = keys @ att.q_linear.weight  # [T, D] rows W_q^T k_j
        const_q = keys @ att.q_linear.bias + keys_q @ b_vec
        keys_p = keys @ att.gp_linear.weight if field.mlp3 is not None else None
        if keys_p is not None:
            const_q = const_q + keys @ att.gp_linear.bias
    else:  # paper: queries = x (+ p)
        keys_q, const_q, keys_p = keys, keys @ b_vec, keys
    scale = 1.0 / math.sqrt(cfg.width)
    # Attention logits scaled here once instead of per row: rows [0, T) of the coefficients.
    rows_h = torch.cat([keys_q * scale, values, u]) @ a_mat  # [2T + E, H2]
    const = torch.cat([const_q * scale, values @ b_vec, u @ b_vec])  # [2T + E]
    if field.mlp3 is not None:
        last3 = field.mlp3[-1]
        zeros = rows_h.new_zeros(words.shape[0] + sums.shape[0], table_width - rows_h.shape[1])
        rows_p = torch.cat([keys_p @ last3.weight, (keys_p @ last3.bias)[:, None]], dim=1)
        coefficients = torch.cat([rows_h, torch.cat([rows_p * scale, zeros])], dim=1)
    else:
        coefficients = rows_h
    return _Coefficients(coefficients, const, keys, values, u)


def response_only(field: ReferringField, word_features: Tensor,  # [L, text_dim]
                  cache: CompactTables, block: int = RESPONSE_BLOCK,
                  check: Optional[Callable[[], None]] = None) -> Tensor:  # -> [N]
    """Return the logits m [N] of ``field.respond`` for serving (module docstring; no grad).

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
    table, width2 = cache.table, cache.hidden_width
    num = table.shape[0]
    block = max(1, int(block))
    if not cfg.use_pcmi:
        return torch.mv(table[:, :width2].to(s.dtype), s @ last2.weight) + last2.bias @ s
    num_words = words.shape[0]
    keys_pos = (_text_position_keys(field, words, cache, block, check)
                if field.mlp3 is not None else None)
    coeffs = _coefficients(field, words, s[None], keys_pos, table.shape[1])
    const, values, u = coeffs.const, coeffs.values, coeffs.u[0]
    coefficients = coeffs.coefficients.contiguous()  # [2L + 1, W]
    att = field.attention if cfg.pcmi_form == 'code' else None
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
    const = const[:, None]
    out = cache.mean.new_empty(num)
    for start in range(0, num, block):
        check()
        stop = min(num, start + block)
        # Word-major [2L + 1, b]: every element-wise step below runs along the block's rows,
        # contiguous (a softmax over the 12 entries of [b, 12] rows is several times slower).
        products = torch.addmm(const, coefficients, table[start:stop].to(const.dtype).t())
        weights = products[:num_words]  # [L, b] attention logits (a view)
        weights -= weights.amax(dim=0)
        weights.clamp_min_(EXP_FLOOR).exp_()
        weights /= weights.sum(dim=0)
        x_u = products[-1]  # [b] = x . u
        if att is None:
            torch.addmv(x_u, weights.t(), word_s, out=out[start:stop])
            continue
        x_values = products[num_words:2 * num_words]  # [L, b] = x . v_j
        z_dot_u = torch.addmv(x_u, weights.t(), values_u)  # [b]
        mu = torch.addmv(cache.mean[start:stop], weights.t(), values_mean)  # [b]
        # (2 x . v + a V V^T) . a, summed over the L words
        x_values.mul_(2.0).addmm_(gram, weights)
        z_sq = (x_values.mul_(weights).sum(dim=0) + cache.sq_norm[start:stop]) * inv_width
        var = z_sq.sub_(mu * mu).clamp_min_(0.0)  # biased variance, as LayerNorm
        # m = (z . u - mu * sum(u)) / sqrt(var + eps) + beta . s
        numerator = z_dot_u.sub_(mu.mul_(u_sum))
        torch.div(numerator, var.add_(norm.eps).sqrt_(), out=out[start:stop])
        out[start:stop] += beta_s
    return out


class CompactOutput(NamedTuple):
    """The training response of a batch of E expressions (``respond_compact``).

    Attributes:
        responses: Per-Gaussian logits m of each expression, ``[E, N]``.
        enhanced: ``enhanced(e, index)`` = the PCMI-enhanced features g' of expression e for the
            Gaussians ``index`` alone, ``[k, D]`` (rows of ``FieldOutput.enhanced``).
        words: MLP1 word projections w of each expression, each ``[L_e, D]``.
    """

    responses: Tensor
    enhanced: Callable[[int, Tensor], Tensor]
    words: List[Tensor]


def _padded(rows: Tensor, lengths: List[int], fill: float) -> Tensor:
    """Stack segments of ``rows`` (``lengths`` rows each) as [E, max length, ...], padded."""
    longest = max(lengths)
    parts = []
    for part in rows.split(lengths):
        if part.shape[0] < longest:
            pad = part.new_full((longest - part.shape[0],) + part.shape[1:], fill)
            part = torch.cat([part, pad])
        parts.append(part)
    return torch.stack(parts)


def respond_compact(field: ReferringField, word_features: Sequence[Tensor],  # E x [L, text_dim]
                    tables: TrainingTables) -> CompactOutput:
    """Training form of ``field.respond`` for E expressions at once, with autograd.

    Same values and gradients as ``field.respond`` per expression up to float rounding
    (tested). The [N, D] tensors of the reference form (x, p, queries, attention output,
    LayerNorm) become [E, L, N] ones laid out along N, every step is done once for the batch,
    and g' is computed only for the rows asked (the GTCL anchor's top-tau Gaussians).
    """
    cfg = field.config
    lengths = [int(w.shape[0]) for w in word_features]
    if not lengths:
        raise ValueError('respond_compact: no expression')
    words = field.project_words(torch.cat(list(word_features)))  # [T, D]
    per_expression = list(words.split(lengths))
    sums = torch.stack([w.sum(dim=0) for w in per_expression])  # [E, D]
    last2 = field.mlp2[-1]
    hidden, positions = tables.hidden, tables.positions  # [H2, N], [H3 + 1, N]
    width2 = hidden.shape[0]

    def x_rows(index: Tensor) -> Tensor:  # x = A h + b of the Gaussians ``index``, [k, D]
        return torch.addmm(last2.bias, hidden[:, index].t(), last2.weight.t())

    if not cfg.use_pcmi:
        responses = torch.addmm((sums @ last2.bias)[:, None], sums @ last2.weight, hidden)
        return CompactOutput(responses, lambda e, index: x_rows(index), per_expression)
    keys_pos = None
    if positions is not None:
        coeff_t, bias = _position_coefficients(field, words)  # [H2, T], [T]
        # text positions: softmax over all N of every word at once
        softmax = torch.softmax(torch.addmm(bias[:, None], coeff_t.t(), hidden), dim=1)
        keys_pos = _pooled_positions(field, softmax @ positions.t())  # [T, D]
    width = width2 + (0 if positions is None else positions.shape[0])
    coeffs = _coefficients(field, words, sums, keys_pos, width)
    num = words.shape[0]
    coefficients, const = coeffs.coefficients, coeffs.const  # [2T + E, W], [2T + E]
    # attention logits [T, N], x . v_j [T, N], x . u_e [E, N] in one product with h
    logits, x_values, x_u = torch.addmm(const[:, None], coefficients[:, :width2], hidden).split(
        [num, num, len(lengths)])
    if positions is not None:  # (the positions' coefficients are zero but for the logits)
        logits = logits.addmm(coefficients[:num, width2:], positions)
    # attention over each expression's words: [E, Lmax, N], padded words get weight 0
    weights = torch.softmax(_padded(logits, lengths, float('-inf')), dim=1)
    values = coeffs.values.split(lengths)  # each expression's PCMI values
    att = field.attention if cfg.pcmi_form == 'code' else None
    if att is None:  # paper form: m = x . s + a . (W s)
        word_s = _padded(torch.cat([w @ sm for w, sm in zip(per_expression, sums)]), lengths, 0.0)
        responses = x_u + (weights * word_s[:, :, None]).sum(dim=1)
    else:
        values_u = _padded(torch.cat([v @ u for v, u in zip(values, coeffs.u)]), lengths, 0.0)
        values_mean = _padded(coeffs.values.mean(dim=1), lengths, 0.0)  # [E, Lmax]
        longest = max(lengths)
        gram = torch.stack([F.pad(v @ v.t(), (0, longest - len(v), 0, longest - len(v)))
                            for v in values])  # V V^T of each expression, [E, Lmax, Lmax]
        z_dot_u = x_u + (weights * values_u[:, :, None]).sum(dim=1)  # [E, N]
        mu = tables.mean + (weights * values_mean[:, :, None]).sum(dim=1)  # [E, N]
        spread = 2.0 * _padded(x_values, lengths, 0.0) + torch.bmm(gram, weights)
        z_sq = ((spread * weights).sum(dim=1) + tables.sq_norm) / float(cfg.width)
        var = (z_sq - mu * mu).clamp_min(0.0)  # biased variance, as LayerNorm
        responses = ((z_dot_u - mu * coeffs.u.sum(dim=1)[:, None])
                     / torch.sqrt(var + att.norm.eps) + (sums @ att.norm.bias)[:, None])

    def enhanced(e: int, index: Tensor) -> Tensor:  # [k] -> [k, D]
        # g' = LayerNorm(x + a V) (code form) or x + a w (paper) from the columns of these
        # Gaussians: h and the attention weights a already computed above
        z = x_rows(index) + weights[e, :lengths[e], index].t() @ values[e]
        return att.norm(z) if att is not None else z

    return CompactOutput(responses, enhanced, per_expression)
