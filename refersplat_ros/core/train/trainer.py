"""Training a referring field on a frozen Gaussian scene, with stage 2.

One call, :func:`train`, runs the recipe of docs/METHOD.md#training on a Ref-LERF-layout scene
(``load_referring_dataset``):

- Trainable: the per-Gaussian referring features (lr 0.0025) and the MLPs + attention (lr 1e-4),
  Adam with eps 1e-15, no schedule. Frozen: the Gaussians (their compositing weights are built
  once per view, ``render/compositing.py``) and the text encoder (word features cached once).
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
import csv
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
from refersplat_ros.core.datasets.reflerf_layout import category_phrase, is_ref_synth
from refersplat_ros.core.devices import resolve_device
from refersplat_ros.core.errors import CheckpointError, DatasetError
from refersplat_ros.core.field.checkpoint import (load_checkpoint, remove_stale_temp_files,
                                                  save_checkpoint)
from refersplat_ros.core.field.masks import predicted_mask
from refersplat_ros.core.field.referring_field import (FieldCache, ReferringField,
                                                       ReferringFieldConfig)
from refersplat_ros.core.render.compositing import CompositingWeights, ViewWeights
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.scene.gaussians import GaussianScene
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoder, TextEncoderConfig
from refersplat_ros.core.train.losses import referring_loss, ReferringLossConfig

logger = logging.getLogger(__name__)

#: Steps of the paper's schedule (docs/METHOD.md#training), the default for real (Ref-LERF)
#: scenes.
REAL_SCENE_STEPS = 45000
#: Default steps for a Ref-Synth scene (a manifest with format 'ref-synth'): the 5-minute CPU
#: budget. 600 full-model steps on the default scene (31k Gaussians, 4 expressions) fit in it,
#: and the full model then fits its training views well (step times and the mIoU after 600 and
#: 3000 steps: docs/RESULTS.md); pass ``steps`` for better fields.
REF_SYNTH_STEPS = 600
#: Default expressions per step on Ref-Synth scenes (several expressions of one view share the
#: query-independent forward/backward); real scenes use 1 pair per step as in
#: docs/METHOD.md#training.
REF_SYNTH_EXPRESSIONS_PER_STEP = 4
STAGE2_INITS = ('reinit', 'continue')


@dataclass
class TrainConfig:
    """One training run (docs/METHOD.md#training defaults; ``None`` = resolved per scene kind).

    Attributes:
        data: Scene folder in the Ref-LERF layout (Ref-LERF or Ref-Synth).
        out: Run folder (checkpoints, logs, stage-2 pseudo masks).
        scene: Gaussians (.ply / .pth); None = the one found in ``data``.
        test_frames: Frames held out from training, as numbers or names; None = the scene's own
            split (manifest, ``json/test_json``, or the built-in list of a Ref-LERF scene).
        steps: Adam steps. None = 45000 on real scenes (paper), ``REF_SYNTH_STEPS`` on Ref-Synth.
        lr_features: Learning rate of the per-Gaussian referring features (0.0025).
        lr_networks: Learning rate of MLP1-3 and the attention (1e-4).
        adam_eps: Adam epsilon (1e-15, as 3DGS).
        seed: Seed of torch (field initialisation) and of the view/expression sampling (42).
        expressions_per_step: Expressions of one view per step (losses averaged). None = 1 on real
            scenes (docs/METHOD.md#training: one (view, expression) pair per step),
            ``REF_SYNTH_EXPRESSIONS_PER_STEP`` on Ref-Synth; 0 = all expressions of the view.
        checkpoint_every: Steps between checkpoints; None = steps / 10 (the fork's 10 checkpoints).
        log_every: Steps between rows of ``train_log.csv`` (mean losses of the window).
        weights_cache_bytes: Bound of the per-view compositing-weights cache (LRU).
        device: 'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...
        num_threads: torch CPU threads during training (None = torch's default). On a machine
            whose cores are busy with other work, 1 thread can be several times faster than an
            oversubscribed 2 (OpenMP threads wait on each other).
        text_encoder: The frozen text encoder (default: the bundled MiniLM).
        field: Referring-field architecture; ``text_dim`` is set from the encoder.
        loss: BCE + GTCL weights and tau schedule.
        stage: 1 = train on the dataset masks; 2 = stage 1, then pseudo masks, then stage 2.
        stage2_init: 'reinit' (fresh field, default) or 'continue' (from the stage-1 weights).
        train_category_names: Also train on each object's category name ("small-blue-bowl" ->
            "small blue bowl") as one more expression per (view, object): the open-vocabulary
            recipe (docs/METHOD.md#ovs-protocol), off for Ref-LERF.
        resume: Continue from ``last.safetensors`` of the run folder when present.
        progress: Show a tqdm progress bar.
    """

    data: Union[str, Path] = 'scenes/default'
    out: Union[str, Path] = 'runs/default'
    scene: Optional[Union[str, Path]] = None
    test_frames: Optional[List[Union[int, str]]] = None
    steps: Optional[int] = None
    lr_features: float = 0.0025
    lr_networks: float = 1e-4
    adam_eps: float = 1e-15
    seed: int = 42
    expressions_per_step: Optional[int] = None
    checkpoint_every: Optional[int] = None
    log_every: int = 10
    weights_cache_bytes: int = 2 * 1024 ** 3
    device: str = 'auto'
    num_threads: Optional[int] = None
    text_encoder: TextEncoderConfig = dataclass_field(default_factory=TextEncoderConfig)
    field: ReferringFieldConfig = dataclass_field(default_factory=ReferringFieldConfig)
    loss: ReferringLossConfig = dataclass_field(default_factory=ReferringLossConfig)
    stage: int = 1
    stage2_init: str = 'reinit'
    train_category_names: bool = False
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.stage not in (1, 2):
            raise ValueError(f'TrainConfig.stage must be 1 or 2, got {self.stage}')
        if self.stage2_init not in STAGE2_INITS:
            raise ValueError(f'TrainConfig.stage2_init must be one of {STAGE2_INITS}')
        if self.steps is not None and self.steps <= 0:
            raise ValueError('TrainConfig.steps must be positive')
        if self.expressions_per_step is not None and self.expressions_per_step < 0:
            raise ValueError('TrainConfig.expressions_per_step must be >= 0')
        if self.checkpoint_every is not None and self.checkpoint_every <= 0:
            raise ValueError('TrainConfig.checkpoint_every must be positive')

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
        steps: Total steps of the stage.
        steps_run: Steps run by this call (fewer when resumed).
        wall_time_s: Training-loop time of this call (weights building included).
        weights_build_s: Part of it spent building compositing weights.
        steps_per_second: steps_run / wall_time_s.
        final_losses: Mean total/bce/gtcl over the last ``log_every`` steps and the last tau.
        pseudo_mask_dir: Stage 2: the ``gt_mask`` folder it trained on.
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


def resolve_config(config: TrainConfig, dataset) -> TrainConfig:
    """Fill the ``None`` defaults that depend on the scene kind (see ``TrainConfig``)."""
    synth = is_ref_synth(dataset)
    steps = config.steps or (REF_SYNTH_STEPS if synth else REAL_SCENE_STEPS)
    per_step = config.expressions_per_step
    if per_step is None:
        per_step = REF_SYNTH_EXPRESSIONS_PER_STEP if synth else 1
    every = config.checkpoint_every or max(1, steps // 10)
    return replace(config, steps=steps, expressions_per_step=per_step, checkpoint_every=every)


def _training_views(dataset, mask_root: Optional[Path], category_names: bool,
                    rng: np.random.Generator) -> List[_TrainView]:
    views = []
    for view in dataset.train_views:
        if not view.annotations:
            continue
        pairs = [(a.sentence, a.category) for a in view.annotations]
        if category_names:
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


def _leaf(tensor: Optional[Tensor]) -> Optional[Tensor]:
    return None if tensor is None else tensor.detach().requires_grad_(True)


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
    """One Adam step over expressions of one view; returns the mean loss terms and tau.

    The query-independent tensors (x, p, attention queries; sentence embeddings) are computed
    once and their graph is back-propagated once: each expression back-propagates into detached
    copies whose gradients are then pushed through the shared part (same gradients as summing
    the losses, memory of one expression at a time).
    """
    optimizer.zero_grad(set_to_none=True)
    cache = field.precompute()
    embeddings = None
    if loss_config.use_gtcl and view_words is not None:
        embeddings = _sentence_embeddings(field, *view_words)
    roots = [cache.x, cache.positions, cache.queries, embeddings]
    leaves = [_leaf(t) for t in roots]
    leaf_cache = FieldCache(x=leaves[0], positions=leaves[1], queries=leaves[2])
    count = len(words)
    sums = {'loss': 0.0, 'bce': 0.0, 'gtcl': 0.0}
    tau = 0.0
    for word_features, mask, positive in zip(words, masks, positives):
        out = field.respond(word_features, leaf_cache)
        # Rendered as in docs/METHOD.md#rasterized-logit.
        logits = weights.render(out.response[:, None])[0]  # [H, W] logit map M
        terms = referring_loss(logits, mask, out.response, out.enhanced, leaves[3], positive,
                               step, loss_config)
        (terms.total / count).backward()
        sums['loss'] += terms.total.item() / count
        sums['bce'] += terms.bce.item() / count
        sums['gtcl'] += terms.gtcl.item() / count
        tau = terms.tau
    pairs = [(root, leaf.grad) for root, leaf in zip(roots, leaves)
             if root is not None and leaf.grad is not None]
    if pairs:
        torch.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
    optimizer.step()
    sums['tau'] = tau
    return sums


def make_optimizer(field: ReferringField, config: TrainConfig) -> torch.optim.Adam:
    """Adam with two groups: features (lr 0.0025) and networks (lr 1e-4), eps 1e-15.

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
    from refersplat_ros.core.datasets.reflerf_loader import load_mask
    return {c: load_mask(p, view.camera.width, view.camera.height).to(device, torch.float32)
            for c, p in view.mask_paths.items()}


def _pack_view_words(view: _TrainView, features: Dict[str, Tensor]):
    rows = [features[s] for s in view.sentences]
    counts = torch.tensor([r.shape[0] for r in rows], device=rows[0].device)
    segments = torch.repeat_interleave(torch.arange(len(rows), device=rows[0].device), counts)
    return torch.cat(rows, dim=0), segments, counts


def _train_stage(config: TrainConfig, stage: int, dataset, scene: GaussianScene,
                 encoder: TextEncoder, device: torch.device, weights: ViewWeights,
                 checkpoint_dir: Path, mask_root: Optional[Path],
                 init_state: Optional[Dict[str, Tensor]] = None) -> StageResult:
    steps, per_step = int(config.steps), int(config.expressions_per_step)
    _seed_everything(config.seed)
    order_rng = np.random.default_rng([config.seed, stage])
    views = _training_views(dataset, mask_root, config.train_category_names, order_rng)
    features = _word_features(encoder, [s for v in views for s in v.sentences], device)
    field_config = replace(config.field, text_dim=encoder.hidden_size)
    field = ReferringField(scene.means.to(device), field_config)
    if init_state is not None:
        field.load_state_dict({k: v.to(device) for k, v in init_state.items()})
    optimizer = make_optimizer(field, config)
    sampler = ViewSampler([len(v.sentences) for v in views], config.seed + 1000 * stage)
    start_step, prior_time = 0, 0.0
    last_path = checkpoint_dir / runs.LAST_CHECKPOINT
    training_config = {
        'train': config.to_dict(), 'stage': stage,
        'data': str(Path(config.data).resolve()),
        'scene_path': str(Path(config.scene or dataset.scene_path).resolve()),
        'text_encoder': asdict(config.text_encoder),
        'mask_root': None if mask_root is None else str(mask_root.resolve()),
    }
    if config.resume and last_path.is_file():
        saved = load_checkpoint(last_path, means=scene.means, text_encoder_id=encoder.encoder_id)
        if saved.field_config != field_config:
            raise CheckpointError(f'checkpoint {last_path}: field_config {saved.field_config} '
                                  f'differs from the configured {field_config}')
        field.load_state_dict({k: v.to(device) for k, v in saved.field_state.items()})
        saved.load_optimizer(optimizer)
        sampler.load_state(saved.extra['sampler'])
        start_step = saved.step
        prior_time = float(saved.extra.get('wall_time_s', 0.0))
        logger.info('stage %d: resuming from %s at step %d', stage, last_path, start_step)
    elif not config.resume:
        for old in runs.step_checkpoints(checkpoint_dir):  # a fresh run replaces an old one
            old.unlink()
        (checkpoint_dir / runs.TRAIN_LOG).unlink(missing_ok=True)
        last_path.unlink(missing_ok=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(checkpoint_dir)  # of checkpoint writes a killed run left behind
    log_path = checkpoint_dir / runs.TRAIN_LOG
    _restart_log(log_path, start_step)
    log_file = open(log_path, 'a', newline='')
    log = csv.writer(log_file)

    from tqdm import tqdm
    bar = tqdm(total=steps, initial=start_step, desc=f'train stage {stage}', unit='step',
               disable=not config.progress, dynamic_ncols=True)
    build_before = weights.build_seconds
    # How much the training views show each Gaussian: saved with every checkpoint for the
    # 3D selection (inference/selection.py). Builds each view's weights once, as training does.
    visibility = weights.visibility([view.camera for view in views])
    window: List[Dict[str, float]] = []
    final = {}
    current_view, masks, view_words = None, {}, None
    start_time = time.perf_counter()
    step = start_step
    try:
        while step < steps:
            index, chunk = sampler.next_chunk(per_step)
            view = views[index]
            if index != current_view:  # masks / packed words of the popped view
                current_view = index
                masks = _load_masks(view, device)
                view_words = _pack_view_words(view, features)
                categories = np.array(view.categories)
            positives = [torch.from_numpy(categories == view.categories[i]).to(device)
                         for i in chunk]
            terms = train_step(
                field, optimizer, weights.get(view.camera),
                [features[view.sentences[i]] for i in chunk],
                [masks[view.categories[i]] for i in chunk], positives, view_words, step,
                config.loss)
            step += 1
            window.append(terms)
            elapsed = time.perf_counter() - start_time
            if step % config.log_every == 0 or step == steps:
                final = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                final['tau'] = terms['tau']
                log.writerow([step, final['loss'], final['bce'], final['gtcl'], final['tau'],
                              round(prior_time + elapsed, 3)])
                log_file.flush()
                window = []
                bar.set_postfix(loss=f'{final["loss"]:.4f}', tau=f'{final["tau"]:.4f}',
                                sps=f'{(step - start_step) / max(elapsed, 1e-9):.2f}')
            bar.update(1)
            if step % config.checkpoint_every == 0 or step == steps:
                extra = {'sampler': sampler.state(), 'wall_time_s': prior_time + elapsed,
                         'losses': final}
                for path in (checkpoint_dir / runs.step_checkpoint_name(step), last_path):
                    save_checkpoint(path, field, text_encoder_id=encoder.encoder_id, step=step,
                                    training_config=training_config, optimizer=optimizer,
                                    extra=extra, visibility=visibility)
    finally:
        bar.close()
        log_file.close()
    wall = time.perf_counter() - start_time
    steps_run = step - start_step
    if not final and last_path.is_file():
        final = dict(load_checkpoint(last_path).extra.get('losses', {}))
    return StageResult(
        stage=stage, checkpoint_dir=checkpoint_dir,
        checkpoints=runs.step_checkpoints(checkpoint_dir),
        last_checkpoint=last_path, steps=steps, steps_run=steps_run, wall_time_s=wall,
        weights_build_s=weights.build_seconds - build_before,
        steps_per_second=steps_run / wall if wall > 0 and steps_run else math.nan,
        final_losses=final, pseudo_mask_dir=mask_root)


_LOG_HEADER = ['step', 'loss', 'bce', 'gtcl', 'tau', 'wall_time_s']


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
    from refersplat_ros.core.datasets.reflerf_layout import write_mask_png

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
        config: The run. ``None`` fields are resolved from the scene kind (``resolve_config``).
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
    try:
        return _train(config, encoder)
    finally:
        torch.set_num_threads(threads)


def _train(config: TrainConfig, encoder: Optional[TextEncoder]) -> TrainResult:
    from refersplat_ros.core.datasets.reflerf_loader import load_referring_dataset

    dataset = load_referring_dataset(config.data, test_frames=config.test_frames)
    config = resolve_config(config, dataset)
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
    logger.info('training on %s: %d Gaussians, %d train views, %d steps x %s expressions, '
                'device %s, encoder %s', config.data, scene.num_gaussians,
                len(dataset.train_views), config.steps, config.expressions_per_step or 'all',
                device, encoder.encoder_id)
    weights = ViewWeights(scene, device, config.weights_cache_bytes)
    stage1 = _train_stage(config, 1, dataset, scene, encoder, device, weights,
                          runs.checkpoint_dir(run_dir, 1), None)
    stages = [stage1]
    if config.stage == 2:
        first = load_checkpoint(stage1.last_checkpoint, means=scene.means)
        mask_root = runs.pseudo_mask_dir(run_dir) / 'gt_mask'
        stage2_last = runs.last_checkpoint(run_dir, 2)
        if not (config.resume and mask_root.is_dir() and stage2_last.is_file()):
            field = first.build_field(scene.means.to(device))
            write_pseudo_masks(field, dataset, encoder, weights, runs.pseudo_mask_dir(run_dir))
        init = first.field_state if config.stage2_init == 'continue' else None
        stages.append(_train_stage(config, 2, dataset, scene, encoder, device, weights,
                                   runs.checkpoint_dir(run_dir, 2), mask_root, init))
    return TrainResult(run_dir=run_dir, stages=stages)
