"""Training a referring field on a frozen Gaussian scene, with stage 2.

One call, :func:`train`, runs the recipe of docs/METHOD.md#training on a Ref-LERF-layout scene
(``load_referring_dataset``):

- Trainable: the per-Gaussian referring features (lr 0.025) and the MLPs + attention (lr 1e-3),
  ten times the paper's (``PAPER_LR``, docs/METHOD.md#training), Adam with eps 1e-15. Trained
  until the fit stops improving (``steps`` None), a round that does not improve it halves both
  (reduce on plateau); with ``steps`` they stay constant. Frozen: the Gaussians (their
  compositing weights are built once per view, ``render/compositing.py``) and the text encoder
  (word features cached once).
- Loop: pop a random remaining training view; for each of its expressions, in an order shuffled
  once per view at start (as the official loader does at load), do one step: field -> response m
  -> render m as one channel with the view's weights -> BCE against the mask of the expression's
  object (docs/METHOD.md#mask-loss) + lambda * GTCL over all expressions of the view,
  positives = same object (docs/METHOD.md#gtcl) -> Adam step. Refill the pool when empty. tau
  follows the step count (``losses.tau_at``). ``expressions_per_step`` > 1 averages the losses of
  several expressions of the same view in one step; the query-independent part of the field (x,
  p, attention queries) is then computed and back-propagated once per step, which is what makes
  it faster.
- Checkpoints every ``checkpoint_every`` steps: ``step_000500.safetensors`` and
  ``last.safetensors`` (atomic, with Adam state, the sampler state and the full config incl. the
  scene path and the text-encoder reference). ``resume=True`` continues from
  ``last.safetensors`` exactly where it stopped (same result as an uninterrupted run on CPU).
- Two-stage refinement (docs/METHOD.md#two-stage, paper only): after stage 1, the stage-1
  field renders sigmoid(M) >= 0.5 for every training (view, object) as new pseudo masks, written
  in the Ref-LERF ``gt_mask/`` layout inside the run folder (never over the dataset); stage 2 then
  trains again with the same recipe on them. Stage 2 re-initialises the field by default
  (``stage2_init='reinit'``: "train again with the same recipe"; the paper leaves it open);
  ``'continue'`` starts from the stage-1 weights with a fresh optimizer and tau schedule.

Run folder::

    RUN/config.json                    the TrainConfig of the run
    RUN/checkpoints/step_XXXXXX.safetensors, last.safetensors, train_log.csv
    RUN/stage2/pseudo_masks/gt_mask/<frame>/<category>.png   (stage 2 only)
    RUN/stage2/checkpoints/...                                (stage 2 only)

Nothing here imports rclpy.
"""
import copy
import csv
import functools
from dataclasses import asdict, dataclass, field as dataclass_field, replace
import json
import logging
import math
import os
from pathlib import Path
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
import torch.nn.functional as F

from refersplat_ros.core import runs
from refersplat_ros.core.datasets.reflerf.layout import category_phrase
from refersplat_ros.core.devices import resolve_device
from refersplat_ros.core.errors import CheckpointError, DatasetError
from refersplat_ros.core.field.checkpoint import (load_checkpoint, remove_stale_temp_files,
                                                  save_checkpoint)
from refersplat_ros.core.field.compact import respond_compact, training_tables
from refersplat_ros.core.field.masks import predicted_mask
from refersplat_ros.core.field.referring_field import ReferringField, ReferringFieldConfig
from refersplat_ros.core.labels.objects import lift_objects, names_only
from refersplat_ros.core.language.viewpoint import annotators_view
from refersplat_ros.core.render.compositing import CompositingWeights, ViewWeights
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.scene.gaussians import GaussianScene
from refersplat_ros.core.scene.objects import SceneObjects
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoder, TextEncoderConfig
from refersplat_ros.core.train.losses import referring_loss, ReferringLossConfig

logger = logging.getLogger(__name__)

#: The paper's learning rates (features, networks), docs/METHOD.md#training.
PAPER_LR = (0.0025, 1e-4)
#: Longest run when training until the fit stops improving: the paper's schedule length
#: (docs/METHOD.md#training).
MAX_STEPS = 45000
#: Expressions of one view per step when not set (fewer if the views have fewer). They share
#: the query-independent forward and backward, the larger part of a step's cost; the paper's
#: one pair per step is ``expressions_per_step=1``.
EXPRESSIONS_PER_STEP = 4
#: A round whose fit (mask IoU) falls this far below the best round's is a collapse.
COLLAPSE_DROP = 0.1
STAGE2_INITS = ('reinit', 'continue')
#: Most torch threads a run may ask for (``num_threads``; 100,000 crashed torch).
MAX_THREADS = 1024


@dataclass
class TrainConfig:
    """One training run (docs/METHOD.md#training defaults; ``None`` = chosen from the scene).

    Attributes:
        data: Scene folder in the Ref-LERF layout (Ref-LERF or Ref-Synth).
        out: Run folder (checkpoints, logs, stage-2 pseudo masks).
        scene: Gaussians (.ply / .pth); None = the one found in ``data``.
        test_frames: Frames held out from training, as numbers or names; None = the scene's own
            split (manifest, ``json/test_json``, or the built-in list of a Ref-LERF scene).
        steps: Adam steps. None = until the fit stops improving: the training views' mask IoU
            is measured over each round (one pass over every training expression); training
            stops when ``fit_patience`` rounds in a row improve the best round by less than
            ``fit_min_delta``, or at ``max_steps``. Each such round also halves the learning
            rates (reduce on plateau: a round that gets worse is often a step too large). A run
            that stops so ends with the best round's field (the last round's when it is the
            best).
        max_steps: Cap of a run without ``steps`` (``MAX_STEPS``, the paper's schedule).
        fit_patience: Rounds without improvement before stopping. 1 (was 3 until 2026-12-07:
            on 4 scenes the 2 more rounds without a 0.005 gain cost 22-43 % of the training time
            for at most 0.6 point of fit and no change of the right object; measured in
            docs/RESULTS.md#stopping-rule, ``bench/stopping.py``).
        fit_min_delta: Smallest improvement of the round fit (mask IoU) that counts (0.005).
        lr_features: Learning rate of the per-Gaussian referring features: 0.025, ten times the
            paper's 0.0025 (``PAPER_LR``), which needs its 45k steps; this fits in hundreds
            (docs/RESULTS.md#learning-rate).
        lr_networks: Learning rate of MLP1-3 and the attention: 1e-3 (paper 1e-4).
        adam_eps: Adam epsilon (1e-15, as 3DGS).
        seed: Seed of torch (field initialisation) and of the view/expression sampling (42).
        expressions_per_step: Expressions of one view per step (losses averaged). None =
            ``EXPRESSIONS_PER_STEP``, at most the median expressions of a training view; 1 = the
            paper's one (view, expression) pair per step; 0 = all expressions of the view.
        checkpoint_every: Steps between checkpoints; None = every round without ``steps``,
            steps / 10 with them (the fork's 10 checkpoints).
        log_every: Steps between rows of ``train_log.csv`` (mean losses of the window).
        weights_cache_bytes: Bound of the per-view compositing-weights cache (LRU).
        device: 'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...
        num_threads: torch CPU threads during training (None = torch's default). On a machine
            whose cores are busy with other work, 1 thread can be several times faster than an
            oversubscribed 2 (OpenMP threads wait on each other).
        flush_denormal: Treat denormal floats (below 1.2e-38) as zero while training
            (``torch.set_flush_denormal``, restored to torch's default after). Late in a run the
            tiny gradients and softmax tails of well-fitted Gaussians reach that range, where
            CPU arithmetic takes a slow path: a 33k-Gaussian scene went from 5.7 to 2.4
            steps/s after 1700 steps; with flushing the same 100 steps ran at 6.9 steps/s
            instead of 2.1 (docs/RESULTS.md#3d-target-what-the-table-says).
        text_encoder: The frozen text encoder (default: the bundled MiniLM).
        field: Referring-field architecture; ``text_dim`` is set from the encoder.
        loss: BCE + GTCL weights and tau schedule.
        stage: 1 = train on the dataset masks; 2 = stage 1, then pseudo masks, then stage 2.
        stage2_init: 'reinit' (fresh field, default) or 'continue' (from the stage-1 weights).
        train_category_names: Also train on each object's category name ("small-blue-bowl" ->
            "small blue bowl") as one more expression per (view, object): the open-vocabulary
            recipe (docs/METHOD.md#ovs-protocol), off for Ref-LERF.
        names_only: Train on each object's category name only, none of its sentences (what a
            robot team labels: "kettle", "red can 2"); the language layer then knows the objects
            by name alone (docs/LANGUAGE.md).
        resume: Continue from ``last.safetensors`` of the run folder when present.
        progress: Show a tqdm progress bar.
    """

    data: Union[str, Path] = 'scenes/default'
    out: Union[str, Path] = 'runs/default'
    scene: Optional[Union[str, Path]] = None
    test_frames: Optional[List[Union[int, str]]] = None
    steps: Optional[int] = None
    max_steps: int = MAX_STEPS
    fit_patience: int = 1
    fit_min_delta: float = 0.005
    lr_features: float = 0.025
    lr_networks: float = 1e-3
    adam_eps: float = 1e-15
    seed: int = 42
    expressions_per_step: Optional[int] = None
    checkpoint_every: Optional[int] = None
    log_every: int = 10
    weights_cache_bytes: int = 2 * 1024 ** 3
    device: str = 'auto'
    num_threads: Optional[int] = None
    flush_denormal: bool = True
    text_encoder: TextEncoderConfig = dataclass_field(default_factory=TextEncoderConfig)
    field: ReferringFieldConfig = dataclass_field(default_factory=ReferringFieldConfig)
    loss: ReferringLossConfig = dataclass_field(default_factory=ReferringLossConfig)
    stage: int = 1
    stage2_init: str = 'reinit'
    train_category_names: bool = False
    names_only: bool = False
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise ValueError(f'TrainConfig.stage must be 1 or 2, got {self.stage}')
        if self.stage2_init not in STAGE2_INITS:
            raise ValueError(f'TrainConfig.stage2_init must be one of {STAGE2_INITS}')
        if self.steps is not None and self.steps <= 0:
            raise ValueError('TrainConfig.steps must be positive')
        if self.max_steps <= 0 or self.fit_patience < 1 or self.fit_min_delta < 0:
            raise ValueError('TrainConfig: max_steps and fit_patience must be positive, '
                             'fit_min_delta >= 0')
        if self.expressions_per_step is not None and self.expressions_per_step < 0:
            raise ValueError('TrainConfig.expressions_per_step must be >= 0')
        if self.checkpoint_every is not None and self.checkpoint_every <= 0:
            raise ValueError('TrainConfig.checkpoint_every must be positive')
        if self.num_threads is not None and not (
                isinstance(self.num_threads, int) and 0 <= self.num_threads <= MAX_THREADS):
            raise ValueError(f'TrainConfig.num_threads must be 0..{MAX_THREADS}, got '
                             f'{self.num_threads!r}')
        problem = self.text_encoder.problem() if isinstance(
            self.text_encoder, TextEncoderConfig) else ''
        if problem:
            raise ValueError(f'TrainConfig.text_encoder: {problem}')

    def to_dict(self) -> dict:
        """JSON-ready dict (paths as strings)."""
        out = asdict(self)
        for key in ('data', 'out', 'scene'):
            if out[key] is not None:
                out[key] = str(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> 'TrainConfig':
        """Inverse of ``to_dict`` (nested configs rebuilt)."""
        data = dict(data)
        data['text_encoder'] = TextEncoderConfig(**data.get('text_encoder', {}))
        data['field'] = ReferringFieldConfig(**data.get('field', {}))
        data['loss'] = ReferringLossConfig(**data.get('loss', {}))
        return cls(**data)


@dataclass
class StageResult:
    """Outcome of one training stage.

    Attributes:
        stage: 1 or 2.
        checkpoint_dir: Folder of its checkpoints.
        checkpoints: ``step_*.safetensors`` files, in step order.
        last_checkpoint: ``last.safetensors``.
        steps: Total steps of the stage (where it stopped).
        steps_run: Steps run by this call (fewer when resumed).
        wall_time_s: Training-loop time of this call (weights building included).
        weights_build_s: Part of it spent building compositing weights.
        steps_per_second: steps_run / wall_time_s.
        final_losses: Mean total/bce/gtcl over the last ``log_every`` steps and the last tau.
        pseudo_mask_dir: Stage 2: the ``gt_mask`` folder it trained on.
        fit_history: Mean mask IoU on the training views of each completed round.
    """

    stage: int
    checkpoint_dir: Path
    checkpoints: List[Path]
    last_checkpoint: Path
    steps: int
    steps_run: int
    wall_time_s: float
    weights_build_s: float
    steps_per_second: float
    final_losses: Dict[str, float]
    pseudo_mask_dir: Optional[Path] = None
    fit_history: List[float] = dataclass_field(default_factory=list)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: one ``StageResult`` per stage run."""

    run_dir: Path
    stages: List[StageResult]

    @property
    def last_checkpoint(self) -> Path:
        """``last.safetensors`` of the final stage."""
        return self.stages[-1].last_checkpoint

    @property
    def checkpoints(self) -> List[Path]:
        """Every step checkpoint, stage 1 first."""
        return [p for s in self.stages for p in s.checkpoints]

    @property
    def wall_time_s(self) -> float:
        return sum(s.wall_time_s for s in self.stages)

    @property
    def steps_per_second(self) -> float:
        """Steps per second of stage 1."""
        return self.stages[0].steps_per_second

    @property
    def final_losses(self) -> Dict[str, float]:
        return self.stages[-1].final_losses


# ------------------------------------------------------------------------------ data
@dataclass
class _TrainView:
    """A training view: camera, expressions in their fixed order, masks source."""

    frame: str
    camera: Camera
    sentences: List[str]        # fixed shuffled order of the view's expressions
    categories: List[str]       # category of each sentence
    mask_paths: Dict[str, Path]  # category -> mask file


def resolve_config(config: TrainConfig, views: Sequence[_TrainView]) -> TrainConfig:
    """Fill the ``None`` defaults from the scene's training views (see ``TrainConfig``).

    ``steps`` stays None (train until the fit converges); ``expressions_per_step`` and
    ``checkpoint_every`` are resolved.
    """
    per_step = config.expressions_per_step
    if per_step is None:
        sizes = sorted(len(v.sentences) for v in views) or [1]
        per_step = max(1, min(EXPRESSIONS_PER_STEP, sizes[len(sizes) // 2]))
    every = config.checkpoint_every
    if every is None:
        every = (max(1, config.steps // 10) if config.steps
                 else round_steps([len(v.sentences) for v in views], per_step))
    return replace(config, expressions_per_step=per_step, checkpoint_every=every)


def round_steps(view_sizes: Sequence[int], per_step: int) -> int:
    """Return the steps of one round: each view once, its expressions ``per_step`` at a time."""
    if per_step <= 0:
        return max(1, len(view_sizes))
    return max(1, sum(math.ceil(size / per_step) for size in view_sizes))


def fit_converged(history: Sequence[float], patience: int, min_delta: float) -> bool:
    """Return whether the last ``patience`` round fits beat the best before by < min_delta.

    A round that collapsed (more than ``COLLAPSE_DROP`` below the best before it: the run goes
    back to the best round with halved rates) does not count: it says nothing about whether the
    fit still improves.
    """
    kept = [f for i, f in enumerate(history)
            if i == 0 or f >= max(history[:i]) - COLLAPSE_DROP]
    if len(kept) <= patience:
        return False
    return max(kept[-patience:]) < max(kept[:-patience]) + min_delta


def _training_views(dataset, mask_root: Optional[Path], category_names: bool,
                    rng: np.random.Generator, names_only: bool = False) -> List[_TrainView]:
    views = []
    for view in dataset.train_views:
        if not view.annotations:
            continue
        pairs = [] if names_only else [(a.sentence, a.category) for a in view.annotations]
        if category_names or names_only:
            pairs += [(category_phrase(c), c) for c in view.categories]
        pairs = list(dict.fromkeys(pairs))  # a sentence once per (view, object)
        # As the official loader does at load (docs/METHOD.md#annotation-json):
        order = rng.permutation(len(pairs))  # shuffled once, fixed for the run
        masks = {}
        for annotation in view.annotations:
            if mask_root is None:
                masks[annotation.category] = annotation.mask_path
            else:
                masks[annotation.category] = mask_root / view.frame / f'{annotation.category}.png'
        views.append(_TrainView(view.frame, view.camera, [pairs[i][0] for i in order],
                                [pairs[i][1] for i in order], masks))
    if not views:
        raise DatasetError(f'{dataset.root}: no training view has an annotation')
    return views


class ViewSampler:
    """Sampling of docs/METHOD.md#training: pop a random view, walk its expressions, refill.

    The state (pool, cursor, RNG) is a JSON dict so a resumed run continues identically.
    """

    def __init__(self, view_sizes: Sequence[int], seed: int):
        self.view_sizes = list(view_sizes)
        self.rng = np.random.default_rng(seed)
        self.pool: List[int] = []
        self.view: Optional[int] = None
        self.position = 0

    def next_chunk(self, count: int) -> Tuple[int, List[int]]:
        """Return (view index, expression positions) of the next step (0 = rest of the view)."""
        if self.view is None or self.position >= self.view_sizes[self.view]:
            if not self.pool:
                self.pool = list(range(len(self.view_sizes)))
            self.view = self.pool.pop(int(self.rng.integers(len(self.pool))))
            self.position = 0
        size = self.view_sizes[self.view]
        end = size if count <= 0 else min(size, self.position + count)
        chunk = list(range(self.position, end))
        self.position = end
        return self.view, chunk

    def state(self) -> dict:
        return {'pool': list(self.pool), 'view': self.view, 'position': self.position,
                'rng': self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.pool = [int(i) for i in state['pool']]
        self.view = None if state['view'] is None else int(state['view'])
        self.position = int(state['position'])
        self.rng.bit_generator.state = state['rng']


def _word_features(encoder: TextEncoder, sentences: Sequence[str], device: torch.device,
                   batch: int = 64) -> Dict[str, Tensor]:
    """Encode every sentence once (frozen encoder) and keep the features on ``device``.

    The encoder is frozen in training (docs/METHOD.md#training).
    """
    unique = list(dict.fromkeys(sentences))
    out = {}
    for start in range(0, len(unique), batch):
        part = unique[start:start + batch]
        for sentence, words in zip(part, encoder.encode_batch(part)):
            out[sentence] = words.to(device, torch.float32)
    return out


# ------------------------------------------------------------------------------ one step
def _sentence_embeddings(field: ReferringField, packed: Tensor, segments: Tensor,
                         counts: Tensor) -> Tensor:
    """e_s = normalise(mean_j MLP1(word_j)) of several sentences at once, ``[S, D]``.

    GTCL candidates: docs/METHOD.md#gtcl.

    Args:
        packed: Word features of all sentences, concatenated. [T, text_dim]
        segments: Sentence index of each row. [T]
        counts: Words per sentence. [S]
    """
    words = field.project_words(packed)  # [T, D]
    sums = words.new_zeros(counts.shape[0], words.shape[1]).index_add_(0, segments, words)
    return F.normalize(sums / counts[:, None].to(words.dtype), dim=-1)


def train_step(
    field: ReferringField,
    optimizer: torch.optim.Optimizer,
    weights: CompositingWeights,
    words: Sequence[Tensor],  # each [L_e, text_dim], the step's expressions
    masks: Sequence[Tensor],  # each [H, W] float, the mask of each expression's object
    positives: Sequence[Tensor],  # each [S] bool over the view's sentences
    view_words: Optional[Tuple[Tensor, Tensor, Tensor]],  # packed, segments, counts of the view
    step: int,
    loss_config: ReferringLossConfig,
) -> Dict[str, float]:
    """One Adam step over expressions of one view; returns the mean loss terms, tau and fit.

    ``fit`` is the mean IoU of the predicted masks (the mask rule, ``field/masks.py``) with the
    expressions' masks: what training converges on.

    The field runs in its compact form for all the step's expressions at once
    (``field/compact.py``: the same values and gradients as ``field.respond`` with tables laid
    out along N instead of [N, D] tensors, g' only for the GTCL anchor's top-tau Gaussians);
    their losses are averaged and back-propagated once.
    """
    optimizer.zero_grad(set_to_none=True)
    embeddings = None
    if loss_config.use_gtcl and view_words is not None:
        embeddings = _sentence_embeddings(field, *view_words)
    out = respond_compact(field, words, training_tables(field))
    # Rendered as in docs/METHOD.md#rasterized-logit: every expression is one channel.
    logit_maps = weights.render(out.responses.t())  # [E, H, W] logit maps M
    count = len(words)
    sums = {'loss': 0.0, 'bce': 0.0, 'gtcl': 0.0, 'fit': 0.0}
    total, tau = 0.0, 0.0
    for e, (mask, positive) in enumerate(zip(masks, positives)):
        terms = referring_loss(logit_maps[e], mask, out.responses[e],
                               functools.partial(out.enhanced, e), embeddings, positive, step,
                               loss_config)
        total = total + terms.total / count
        sums['loss'] += terms.total.item() / count
        sums['bce'] += terms.bce.item() / count
        sums['gtcl'] += terms.gtcl.item() / count
        with torch.no_grad():
            predicted = predicted_mask(logit_maps[e], weights.alpha)
            target = mask > 0.5
            union = int((predicted | target).sum())
            sums['fit'] += (int((predicted & target).sum()) / union if union else 1.0) / count
        tau = terms.tau
    total.backward()
    optimizer.step()
    sums['tau'] = tau
    return sums


def make_optimizer(field: ReferringField, config: TrainConfig) -> torch.optim.Adam:
    """Adam with two groups: features and networks (``lr_features``, ``lr_networks``), eps 1e-15.

    Recipe: docs/METHOD.md#training.
    """
    return torch.optim.Adam([
        {'params': [field.features], 'lr': config.lr_features},
        {'params': field.network_parameters(), 'lr': config.lr_networks},
    ], eps=config.adam_eps)


# ------------------------------------------------------------------------------ a stage
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _load_masks(view: _TrainView, device: torch.device) -> Dict[str, Tensor]:
    from refersplat_ros.core.datasets.reflerf.loader import load_mask
    return {c: load_mask(p, view.camera.width, view.camera.height).to(device, torch.float32)
            for c, p in view.mask_paths.items()}


def _pack_view_words(view: _TrainView, features: Dict[str, Tensor]):
    rows = [features[s] for s in view.sentences]
    counts = torch.tensor([r.shape[0] for r in rows], device=rows[0].device)
    segments = torch.repeat_interleave(torch.arange(len(rows), device=rows[0].device), counts)
    return torch.cat(rows, dim=0), segments, counts


@dataclass
class _Session:
    """What both stages of a run share: the scene, its encoder, device and view weights."""

    config: TrainConfig
    dataset: object
    scene: GaussianScene
    encoder: TextEncoder
    device: torch.device
    weights: ViewWeights
    objects: Optional[SceneObjects] = None  # the annotated objects, saved with every checkpoint


class _Stage:
    """One training stage: builds the field and its optimizer, resumes or starts, runs the loop.

    Without ``steps`` the loop stops when the fit stops improving (``fit_converged`` over the
    round fits, kept in every checkpoint so a resumed run decides the same).
    """

    def __init__(self, session: _Session, stage: int, checkpoint_dir: Path,
                 mask_root: Optional[Path], init_state: Optional[Dict[str, Tensor]] = None):
        config, device = session.config, session.device
        self.session, self.stage, self.checkpoint_dir = session, stage, checkpoint_dir
        self.mask_root = mask_root
        _seed_everything(config.seed)
        order_rng = np.random.default_rng([config.seed, stage])
        self.views = _training_views(session.dataset, mask_root, config.train_category_names,
                                     order_rng, config.names_only)
        self.config = config = resolve_config(config, self.views)
        self.features = _word_features(session.encoder,
                                       [s for v in self.views for s in v.sentences], device)
        self.field_config = replace(config.field, text_dim=session.encoder.hidden_size)
        self.field = ReferringField(session.scene.means.to(device), self.field_config)
        if init_state is not None:
            self.field.load_state_dict({k: v.to(device) for k, v in init_state.items()})
        self.optimizer = make_optimizer(self.field, config)
        sizes = [len(v.sentences) for v in self.views]
        self.sampler = ViewSampler(sizes, config.seed + 1000 * stage)
        self.round = round_steps(sizes, int(config.expressions_per_step))
        self.last_path = checkpoint_dir / runs.LAST_CHECKPOINT
        self.start_step, self.prior_time, self.fit_history = 0, 0.0, []
        self._best_state = None  # (field, optimizer) state of the best round so far
        self.record = {
            'train': config.to_dict(), 'stage': stage,
            'data': str(Path(config.data).resolve()),
            'scene_path': str(Path(config.scene or session.dataset.scene_path).resolve()),
            'text_encoder': asdict(config.text_encoder),
            'mask_root': None if mask_root is None else str(mask_root.resolve()),
        }

    def _resume_or_reset(self) -> None:
        """Continue from ``last.safetensors`` (``resume``) or clear an older run's files."""
        config, session = self.config, self.session
        if config.resume and self.last_path.is_file():
            saved = load_checkpoint(self.last_path, means=session.scene.means,
                                    text_encoder_id=session.encoder.encoder_id)
            if saved.field_config != self.field_config:
                raise CheckpointError(f'checkpoint {self.last_path}: field_config '
                                      f'{saved.field_config} differs from the configured '
                                      f'{self.field_config}')
            self.field.load_state_dict({k: v.to(session.device)
                                        for k, v in saved.field_state.items()})
            saved.load_optimizer(self.optimizer)
            self.sampler.load_state(saved.extra['sampler'])
            self.start_step = saved.step
            self.prior_time = float(saved.extra.get('wall_time_s', 0.0))
            self.fit_history = [float(v) for v in saved.extra.get('fit_history', [])]
            self._best_state = self._saved_best_state()
            logger.info('stage %d: resuming from %s at step %d', self.stage, self.last_path,
                        self.start_step)
        elif not config.resume:
            for old in runs.step_checkpoints(self.checkpoint_dir):  # a fresh run replaces
                old.unlink()
            (self.checkpoint_dir / runs.TRAIN_LOG).unlink(missing_ok=True)
            self.last_path.unlink(missing_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.checkpoint_dir)  # of writes a killed run left behind

    def _saved_best_state(self):
        """Return the best round's (field, optimizer) state of a resumed run (checkpoints).

        The last checkpoint's state when it is the best round (or no round was recorded); the
        best round's own checkpoint otherwise; None when that one is gone.
        """
        history = self.fit_history
        if not history or self.config.steps is not None:
            return None
        best = int(np.argmax(history))
        if best == len(history) - 1:
            return (copy.deepcopy(self.field.state_dict()),
                    copy.deepcopy(self.optimizer.state_dict()))
        path = self.checkpoint_dir / runs.step_checkpoint_name((best + 1) * self.round)
        if not path.is_file():
            return None
        saved = load_checkpoint(path, means=self.session.scene.means,
                                text_encoder_id=self.session.encoder.encoder_id)
        if saved.optimizer_state is None:
            return None
        return ({k: v.to(self.session.device) for k, v in saved.field_state.items()},
                {'state': saved.optimizer_state['state'],
                 'param_groups': saved.optimizer_state['param_groups']})

    def _done(self, step: int) -> bool:
        config = self.config
        if config.steps is not None:
            return step >= config.steps
        return step >= config.max_steps or fit_converged(
            self.fit_history, config.fit_patience, config.fit_min_delta)

    def _end_round(self, fit: float) -> None:
        """Record a round's fit; without ``steps``, adapt to it.

        A round that beats the best is remembered (field and optimizer state, in memory). One
        that does not beat it by ``fit_min_delta`` halves the learning rates (a plateau); one
        that falls more than ``COLLAPSE_DROP`` below the best is a collapse (a step too large
        threw the field off,
        seen on the 14-object scene at the default rates), and the best round's state is
        restored first, so training continues from it with the smaller rates.
        """
        history = self.fit_history
        history.append(fit)
        if self.config.steps is not None:
            return
        best = max(history[:-1], default=-math.inf)
        if fit > best:  # the best round so far, kept to return to
            self._best_state = (copy.deepcopy(self.field.state_dict()),
                                copy.deepcopy(self.optimizer.state_dict()))
        if fit >= best + self.config.fit_min_delta:
            return
        if fit < best - COLLAPSE_DROP and self._best_state is not None:
            logger.warning('stage %d: round fit fell from %.3f to %.3f: back to the best '
                           'round, learning rates halved', self.stage, best, fit)
            self.field.load_state_dict(self._best_state[0])
            self.optimizer.load_state_dict(copy.deepcopy(self._best_state[1]))
        for group in self.optimizer.param_groups:
            group['lr'] *= 0.5

    def _keep_best(self) -> None:
        """End a converged run with the best round's field when the last round is not it."""
        history = self.fit_history
        if self._best_state is None or not history or history[-1] >= max(history):
            return
        self.field.load_state_dict(self._best_state[0])
        self.optimizer.load_state_dict(copy.deepcopy(self._best_state[1]))

    def _save(self, step: int, visibility: Tensor, wall_time_s: float, losses: dict,
              view_direction: Optional[Tensor] = None) -> None:
        extra = {'sampler': self.sampler.state(), 'wall_time_s': wall_time_s, 'losses': losses,
                 'fit_history': self.fit_history, 'round_steps': self.round}
        for path in (self.checkpoint_dir / runs.step_checkpoint_name(step), self.last_path):
            save_checkpoint(path, self.field, text_encoder_id=self.session.encoder.encoder_id,
                            step=step, training_config=self.record, optimizer=self.optimizer,
                            extra=extra, visibility=visibility, objects=self.session.objects,
                            view_direction=view_direction)

    def run(self) -> StageResult:
        """Train until ``steps`` or convergence; checkpoint, log and return the result."""
        config, session = self.config, self.session
        self._resume_or_reset()
        log_path = self.checkpoint_dir / runs.TRAIN_LOG
        _restart_log(log_path, self.start_step)
        from tqdm import tqdm
        bar = tqdm(total=config.steps, initial=self.start_step, unit='step',
                   desc=f'train stage {self.stage}', disable=not config.progress,
                   dynamic_ncols=True)
        build_before = session.weights.build_seconds
        # How much the training views show each Gaussian: saved with every checkpoint for the
        # 3D selection (inference/selection.py). Builds each view's weights once, as the loop
        # would. The view directions (same pass) orient the surface normals (scene/normals.py).
        visibility, view_direction = session.weights.visibility_and_directions(
            [view.camera for view in self.views])
        window, round_fits, final = [], [], {}
        current_view, masks, view_words, categories = None, {}, None, None
        start_time = time.perf_counter()
        step = self.start_step
        with open(log_path, 'a', newline='') as log_file:
            log = csv.writer(log_file)
            try:
                while not self._done(step):
                    index, chunk = self.sampler.next_chunk(int(config.expressions_per_step))
                    view = self.views[index]
                    if index != current_view:  # masks / packed words of the popped view
                        current_view = index
                        masks = _load_masks(view, session.device)
                        view_words = _pack_view_words(view, self.features)
                        categories = np.array(view.categories)
                    positives = [torch.from_numpy(categories == view.categories[i]).to(
                        session.device) for i in chunk]
                    terms = train_step(
                        self.field, self.optimizer, session.weights.get(view.camera),
                        [self.features[view.sentences[i]] for i in chunk],
                        [masks[view.categories[i]] for i in chunk], positives, view_words,
                        step, config.loss)
                    step += 1
                    window.append(terms)
                    round_fits.append(terms['fit'])
                    elapsed = time.perf_counter() - start_time
                    if step % self.round == 0:
                        self._end_round(float(np.mean(round_fits)))
                        round_fits = []
                    done = self._done(step)
                    if done and config.steps is None:
                        self._keep_best()
                    if step % config.log_every == 0 or done:
                        final = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                        final['tau'] = terms['tau']
                        log.writerow([step] + [final[k] for k in _LOG_HEADER[1:-1]]
                                     + [round(self.prior_time + elapsed, 3)])
                        log_file.flush()
                        window = []
                        bar.set_postfix(loss=f'{final["loss"]:.4f}', fit=f'{final["fit"]:.3f}',
                                        sps=f'{(step - self.start_step) / max(elapsed, 1e-9):.2f}')
                    bar.update(1)
                    if step % config.checkpoint_every == 0 or done:
                        self._save(step, visibility, self.prior_time + elapsed, final,
                                   view_direction)
            finally:
                bar.close()
        wall = time.perf_counter() - start_time
        steps_run = step - self.start_step
        if not final and self.last_path.is_file():
            final = dict(load_checkpoint(self.last_path).extra.get('losses', {}))
        return StageResult(
            stage=self.stage, checkpoint_dir=self.checkpoint_dir,
            checkpoints=runs.step_checkpoints(self.checkpoint_dir),
            last_checkpoint=self.last_path, steps=step, steps_run=steps_run, wall_time_s=wall,
            weights_build_s=session.weights.build_seconds - build_before,
            steps_per_second=steps_run / wall if wall > 0 and steps_run else math.nan,
            final_losses=final, pseudo_mask_dir=self.mask_root, fit_history=self.fit_history)


_LOG_HEADER = ['step', 'loss', 'bce', 'gtcl', 'fit', 'tau', 'wall_time_s']


def _restart_log(path: Path, start_step: int) -> None:
    """Rewrite ``train_log.csv`` as the header plus its rows up to ``start_step``, atomically.

    A run killed before its first flush leaves an empty log (resumed, it had no header); one
    killed between checkpoints leaves rows past the checkpoint it resumes from (they would be
    logged twice) and possibly half a row. Only complete rows of steps 1..start_step are kept.
    """
    kept = []
    if start_step > 0 and path.is_file():
        with open(path, newline='') as handle:
            for row in csv.reader(handle):
                try:
                    values = [float(v) for v in row]
                except ValueError:
                    continue  # the header, or a torn row
                if (len(values) == len(_LOG_HEADER) and values[0].is_integer()
                        and 0 < values[0] <= start_step):
                    kept.append(row)
    temp = path.with_name(f'.{path.name}.tmp')
    with open(temp, 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(_LOG_HEADER)
        writer.writerows(kept)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


# ------------------------------------------------------------------------------ stage 2
@torch.no_grad()
def write_pseudo_masks(field: ReferringField, dataset, encoder: TextEncoder,
                       weights: ViewWeights, out_dir: Union[str, Path],
                       empty_pixels: str = 'background') -> Path:
    """Write stage-2 pseudo masks: sigmoid(M) >= 0.5 per training (view, object).

    Two-stage refinement: docs/METHOD.md#two-stage.

    M of an object is the mean of the logit maps of its training expressions in the view (the
    field answers each expression; the object gets one mask). Pixels no Gaussian covers render
    M = 0 exactly; with ``empty_pixels='background'`` they are background (see
    ``field/masks.py``). Files: ``out_dir/gt_mask/<frame>/<category>.png``, 0/255.

    Returns:
        The ``gt_mask`` folder.
    """
    from refersplat_ros.core.datasets.reflerf.layout import write_mask_png

    field.eval()
    cache = field.precompute()
    root = Path(out_dir) / 'gt_mask'
    device = field.device
    for view in dataset.train_views:
        by_category: Dict[str, List[str]] = {}
        for annotation in view.annotations:
            by_category.setdefault(annotation.category, []).append(annotation.sentence)
        if not by_category:
            continue
        comp = weights.get(view.camera)
        for category, sentences in by_category.items():
            logits = torch.stack([
                field.respond(encoder.encode(s).to(device), cache).response for s in sentences])
            image = comp.render(logits.T)  # [S, H, W]
            mask = predicted_mask(image.mean(dim=0), comp.alpha, empty_pixels)
            write_mask_png(root / view.frame / f'{category}.png', mask.cpu().numpy())
    field.train()
    logger.info('wrote stage-2 pseudo masks to %s', root)
    return root


# ------------------------------------------------------------------------------ entry point
def train(config: TrainConfig, encoder: Optional[TextEncoder] = None) -> TrainResult:
    """Train a referring field (stage 1, and stage 2 when ``config.stage == 2``).

    Args:
        config: The run. ``None`` fields are chosen from the scene (``resolve_config``).
        encoder: A ready text encoder (e.g. a tiny test model); default: built from
            ``config.text_encoder``. Its ``encoder_id`` is stored in the checkpoints.

    Returns:
        The stage results with checkpoint paths, steps/s, wall time and final losses.

    Raises:
        DatasetError / SceneFormatError: unusable scene folder or Gaussians.
        CheckpointError: ``resume`` with a checkpoint of another scene, encoder or architecture.
    """
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    if config.flush_denormal:
        torch.set_flush_denormal(True)
    try:
        return _train(config, encoder)
    finally:
        torch.set_num_threads(threads)
        if config.flush_denormal:
            torch.set_flush_denormal(False)  # torch's default


def _train(config: TrainConfig, encoder: Optional[TextEncoder]) -> TrainResult:
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset

    dataset = load_referring_dataset(config.data, test_frames=config.test_frames)
    scene_path = config.scene or dataset.scene_path
    if scene_path is None:
        raise DatasetError(f'{config.data}: no Gaussians found (point_cloud.ply, *chkpnt*.pth); '
                           'pass TrainConfig.scene')
    device = resolve_device(config.device)
    scene = load_scene(scene_path)
    if encoder is None:
        encoder = load_text_encoder(config.text_encoder, device)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / runs.CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=1) + '\n')
    logger.info('training on %s: %d Gaussians, %d train views, %s, device %s, encoder %s',
                config.data, scene.num_gaussians, len(dataset.train_views),
                f'{config.steps} steps' if config.steps else 'until the fit converges', device,
                encoder.encoder_id)
    session = _Session(config, dataset, scene, encoder, device,
                       ViewWeights(scene, device, config.weights_cache_bytes))
    # The training masks lifted onto the Gaussians: the objects of the language layer.
    session.objects = lift_objects(dataset, session.weights)
    # left / right of the training sentences: the view under which they hold (the annotators')
    session.objects = annotators_view(
        session.objects, [view.camera for view in dataset.train_views],
        scene.means.detach().cpu().numpy(), scene.colors.detach().cpu().numpy(),
        scene.opacities.detach().cpu().numpy())
    if config.names_only:
        session.objects = names_only(session.objects)
    stage1 = _Stage(session, 1, runs.checkpoint_dir(run_dir, 1), None).run()
    stages = [stage1]
    if config.stage == 2:
        first = load_checkpoint(stage1.last_checkpoint, means=scene.means)
        mask_root = runs.pseudo_mask_dir(run_dir) / 'gt_mask'
        stage2_last = runs.last_checkpoint(run_dir, 2)
        if not (config.resume and mask_root.is_dir() and stage2_last.is_file()):
            field = first.build_field(scene.means.to(device))
            write_pseudo_masks(field, dataset, encoder, session.weights,
                               runs.pseudo_mask_dir(run_dir))
        init = first.field_state if config.stage2_init == 'continue' else None
        stages.append(_Stage(session, 2, runs.checkpoint_dir(run_dir, 2), mask_root,
                             init).run())
    return TrainResult(run_dir=run_dir, stages=stages)
