"""Evaluating trained referring fields: the Ref-LERF mIoU protocol, 3D scores, overlays.

Protocol (docs/METHOD.md#evaluation, via ``metrics.py``): for every test view and every test
expression of every object annotated in it, render the logit map M of the expression's response
(docs/METHOD.md#rasterized-logit), predict sigmoid(M) >= 0.5, i.e. M >= 0, compute the IoU
against the GT mask, skip pairs with an empty GT, and average per scene. Every checkpoint of a
run is evaluated; the **last** and the **best** checkpoint are reported (defect g,
docs/METHOD.md#defect-g: the official release likely reports best-on-test).

Empty pixels: M has no background term, so a pixel no Gaussian covers renders M = 0 exactly and
the paper's rule M >= 0 calls it foreground (docs/METHOD.md#rasterized-logit). LERF views are
fully covered, so this never matters there, but Ref-Synth views leave the sky empty (about 45 %
of the default scene's pixels) and the literal rule would add all of it to every prediction.
``empty_pixels='background'`` (default) keeps the paper's threshold on covered pixels
(accumulated alpha > 0) and calls the uncovered ones background; ``'paper'`` applies M >= 0
everywhere. Both IoUs are always written to the per-expression CSV (``iou`` and ``iou_paper``).

Also computed:

- Subsets: the expression type of Ref-Synth (``attribute`` / ``spatial`` / ``distractor``) and
  ``relational`` for any expression built on a relation or an ordinal (from the manifest's form),
  whatever its type; the default scene has a single ``spatial`` test expression but several
  relational ones.
- 3D (Ref-Synth): Gaussians with sigmoid(m_i) >= 0.5 for each test expression against the
  per-Gaussian object ids: precision / recall / IoU, averaged over expressions.
- Open-vocabulary mode (``ovs``): each object's category name ("small-blue-bowl" -> "small blue
  bowl") is the query on the test views (docs/METHOD.md#ovs-protocol, LERF-OVS-like).
- Splits (``split``): ``test`` is the protocol above. ``train`` scores the training views with
  their own training expressions (how well the field fits what it was trained on);
  ``test-seen-wording`` scores the test views with every training expression of each object
  (new viewpoints, seen wording). With ``test`` they separate a field that does not fit from
  one that fits but does not generalise to new wording. Only ``test`` is the benchmark number.
- PNG overlays of prediction vs GT for every test pair of the last and best checkpoints
  (green = GT only, red = prediction only, yellow = both).

Output: ``RUN/eval/`` (``RUN/eval_ovs/`` in open-vocabulary mode) with ``summary.json``,
``<stage>/per_expression.csv`` and ``<stage>/<checkpoint>/overlays/*.png``.
"""
import csv
from dataclasses import dataclass, field as dataclass_field, replace
import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from refersplat_ros.core import runs
from refersplat_ros.core.datasets.reflerf.layout import category_phrase
from refersplat_ros.core.devices import resolve_device
from refersplat_ros.core.errors import CheckpointError, DatasetError
from refersplat_ros.core.evaluate.metrics import (evaluate_mask, MaskRecord, MiouSummary,
                                                  SelectionMetrics, subset_summaries, summarize,
                                                  target_metrics)
from refersplat_ros.core.field.checkpoint import load_checkpoint
from refersplat_ros.core.field.masks import EMPTY_PIXEL_RULES, predicted_mask
from refersplat_ros.core.inference.model import ReferringModel, target_logits
from refersplat_ros.core.inference.selection import (select_target, Selection, SelectionConfig,
                                                     Visibility)
from refersplat_ros.core.language.ground import GROUNDINGS, GroundingConfig
from refersplat_ros.core.render.compositing import ViewWeights
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoder, TextEncoderConfig

logger = logging.getLogger(__name__)

SPLITS = ('test', 'train', 'test-seen-wording')
RELATIONAL = 'relational'
#: 3D scores of the published target, averaged over the expressions.
SELECTION_KEYS = ('right_object', 'precision', 'recall', 'iou', 'centroid_error')


@dataclass
class EvalConfig:
    """Evaluation of a run folder.

    Attributes:
        run: Run folder of ``core.train.trainer.train`` (``checkpoints/``, optional ``stage2/``).
        data: Scene folder; None = the one recorded in the checkpoints.
        test_frames: Test views as frame numbers or names; None = those the run was trained
            with (recorded in the checkpoints), else the scene's own split.
        out: Output folder; None = ``RUN/eval`` (``RUN/eval_ovs`` with ``ovs``).
        device: 'auto', 'cpu', 'cuda', ...
        ovs: Open-vocabulary mode: category names as queries.
        empty_pixels: 'background' (default) or 'paper' for the headline IoU (module docstring).
        overlays: Write PNG overlays for the last and best checkpoint of each stage.
        text_encoder: Encoder; None = the one recorded in the checkpoints.
        progress: Show a progress bar over checkpoints.
        split: ``'test'`` (the protocol), ``'train'`` (training views and expressions: fit) or
            ``'test-seen-wording'`` (test views, training expressions); module docstring.
        grounding: ``'graph'`` (default): masks and 3D targets are what the node publishes,
            the object the object graph grounds the expression in (docs/LANGUAGE.md);
            ``'field'``: the field's own response (the paper's protocol). Checkpoints without
            objects are always scored by the field.
    """

    run: Union[str, Path]
    data: Optional[Union[str, Path]] = None
    test_frames: Optional[List[Union[int, str]]] = None
    out: Optional[Union[str, Path]] = None
    device: str = 'auto'
    ovs: bool = False
    empty_pixels: str = 'background'
    overlays: bool = True
    text_encoder: Optional[TextEncoderConfig] = None
    progress: bool = True
    split: str = 'test'
    grounding: str = 'graph'

    def __post_init__(self):
        if self.grounding not in GROUNDINGS:
            raise ValueError(f'EvalConfig.grounding must be one of {GROUNDINGS}')
        if self.empty_pixels not in EMPTY_PIXEL_RULES:
            raise ValueError(f'EvalConfig.empty_pixels must be one of {EMPTY_PIXEL_RULES}')
        if self.split not in SPLITS:
            raise ValueError(f'EvalConfig.split must be one of {SPLITS}, got {self.split!r}')
        if self.ovs and self.split != 'test':
            raise ValueError('EvalConfig: open-vocabulary mode evaluates the test split only')


@dataclass
class ProtocolPair:
    """One (view, expression, object) to evaluate; ``view_index`` indexes ``split_views``."""

    view_index: int
    frame: str
    category: str
    expression: str
    subsets: Tuple[str, ...]


@dataclass
class CheckpointEvaluation:
    """Scores of one checkpoint.

    Attributes:
        records: One record per test pair, headline rule (``empty_pixels``).
        paper_records: The same pairs with the literal M >= 0 rule.
        summary / paper_summary: mIoU per scene and average (docs/METHOD.md#evaluation).
        subsets: mIoU per subset tag.
        selection: 3D scores of the published target per test expression (Ref-Synth; empty
            otherwise): the node's selection (``inference/selection.py``) run on the
            expression's response, scored against the per-Gaussian object ids.
        pixels: (predicted, GT) pixel counts per record.
    """

    checkpoint: Path
    step: int
    stage: int
    records: List[MaskRecord]
    paper_records: List[MaskRecord]
    summary: MiouSummary
    paper_summary: MiouSummary
    subsets: Dict[str, MiouSummary]
    selection: Dict[str, SelectionMetrics] = dataclass_field(default_factory=dict)
    pixels: List[Tuple[int, int]] = dataclass_field(default_factory=list)

    @property
    def miou(self) -> float:
        """Average mIoU (headline rule)."""
        return self.summary.average

    def selection_means(self) -> Dict[str, float]:
        """Mean 3D scores over the test expressions (NaN-aware; right_object is a rate)."""
        out = {}
        for key in SELECTION_KEYS:
            values = [getattr(m, key) for m in self.selection.values()]
            values = [v for v in values if not math.isnan(v)]
            out[key] = float(np.mean(values)) if values else math.nan
        return out

    def to_dict(self) -> dict:
        return {
            'checkpoint': str(self.checkpoint), 'step': self.step, 'stage': self.stage,
            'miou': self.summary.average, 'miou_paper_rule': self.paper_summary.average,
            'per_scene': self.summary.per_scene, 'num_pairs': self.summary.num_pairs,
            'num_skipped': self.summary.num_skipped,
            'subsets': {k: {'miou': v.average, 'num_pairs': sum(v.num_pairs.values())}
                        for k, v in self.subsets.items()},
            'selection_3d': self.selection_means(),
        }


@dataclass
class StageEvaluation:
    """All checkpoints of one stage, with the last and the best (highest mIoU)."""

    stage: int
    checkpoints: List[CheckpointEvaluation]

    @property
    def last(self) -> CheckpointEvaluation:
        return max(self.checkpoints, key=lambda c: c.step)

    @property
    def best(self) -> CheckpointEvaluation:
        def key(c):
            return (-math.inf if math.isnan(c.miou) else c.miou, c.step)
        return max(self.checkpoints, key=key)

    def to_dict(self) -> dict:
        return {'stage': self.stage, 'last': self.last.to_dict(), 'best': self.best.to_dict(),
                'checkpoints': [c.to_dict() for c in self.checkpoints]}


@dataclass
class RunEvaluation:
    """Evaluation of a run folder."""

    run_dir: Path
    out_dir: Path
    mode: str  # 'referring' or 'ovs'
    empty_pixels: str
    stages: List[StageEvaluation]
    split: str = 'test'  # SPLITS

    @property
    def final(self) -> StageEvaluation:
        """The last stage (stage 2 when present)."""
        return self.stages[-1]

    def to_dict(self) -> dict:
        return {'run': str(self.run_dir), 'mode': self.mode, 'split': self.split,
                'empty_pixels': self.empty_pixels, 'stages': [s.to_dict() for s in self.stages]}


# ------------------------------------------------------------------------------ test pairs
def _expression_forms(dataset) -> Dict[Tuple[str, str], str]:
    """(category, sentence) -> grammar family ('attribute', 'relation', ...) from a manifest."""
    if not dataset.manifest:
        return {}
    return {(e['category'], e['sentence']): e.get('form', {}).get('family', '')
            for e in dataset.manifest.get('expressions', [])}


def split_views(dataset, split: str = 'test') -> list:
    """Return the views a split evaluates (``train``: training views, else test views)."""
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    return dataset.train_views if split == 'train' else dataset.test_views


def protocol_pairs(dataset, ovs: bool = False, split: str = 'test') -> List[ProtocolPair]:
    """Return the (view, expression, object) pairs of a split (``ovs``: category names).

    ``test``: every test expression annotated in each test view (the protocol). ``train``: the
    same on the training views. ``test-seen-wording``: each object annotated in a test view with
    every training expression of that object.
    """
    forms = _expression_forms(dataset)
    kinds = dataset.expression_kinds()
    seen_wording: Dict[str, List[str]] = {}
    if split == 'test-seen-wording':
        for view in dataset.train_views:
            for annotation in view.annotations:
                sentences = seen_wording.setdefault(annotation.category, [])
                if annotation.sentence not in sentences:
                    sentences.append(annotation.sentence)
    pairs, seen = [], set()
    for index, view in enumerate(split_views(dataset, split)):
        for annotation in view.annotations:
            if ovs:
                candidates = [(category_phrase(annotation.category), ('category',))]
            else:
                sentences = (seen_wording.get(annotation.category, [])
                             if split == 'test-seen-wording' else [annotation.sentence])
                candidates = []
                for expression in sentences:
                    kind = kinds.get(expression, 'unknown')
                    tags = () if kind == 'unknown' else (kind,)
                    family = forms.get((annotation.category, expression), '')
                    if family and family != 'attribute':
                        tags = tags + (RELATIONAL,)
                    candidates.append((expression, tags))
            for expression, tags in candidates:
                key = (index, annotation.category, expression)
                if key in seen:
                    continue
                seen.add(key)
                pairs.append(ProtocolPair(index, view.frame, annotation.category, expression,
                                          tags))
    if not pairs:
        raise DatasetError(f'{dataset.root}: no {split} view carries an annotation')
    return pairs


# ------------------------------------------------------------------------------ one checkpoint
class Evaluator:
    """Shared state of a scene's evaluation (weights, GT masks, word features).

    ``evaluate(checkpoint)`` scores a checkpoint; ``evaluate_responses(responses)`` scores
    per-Gaussian logits given directly (expression -> m [N]), e.g. hand-made predictions.
    """

    def __init__(self, dataset, scene, encoder: TextEncoder, device: torch.device, ovs: bool,
                 empty_pixels: str, split: str = 'test',
                 selection: Optional[SelectionConfig] = None, grounding: str = 'field'):
        self.dataset = dataset
        self.scene = scene
        self.encoder = encoder
        self.device = device
        self.empty_pixels = empty_pixels
        self.split = split
        self.views = split_views(dataset, split)
        self.pairs = protocol_pairs(dataset, ovs, split)
        self.scene_name = Path(dataset.root).name
        self.weights = ViewWeights(scene, device, 1 << 62)
        self.gt: Dict[Tuple[int, str], np.ndarray] = {}
        for pair in self.pairs:
            view = self.views[pair.view_index]
            if (pair.view_index, pair.category) not in self.gt:
                annotation = next(a for a in view.annotations if a.category == pair.category)
                self.gt[(pair.view_index, pair.category)] = view.load_mask(annotation).numpy()
        expressions = dict.fromkeys(p.expression for p in self.pairs)
        self.words = {s: encoder.encode(s) for s in expressions}
        self.object_ids = dataset.object_ids()
        self.category_ids = dataset.category_ids()
        self.selection_config = selection or SelectionConfig()
        self._host = [t.detach().cpu().numpy() for t in (scene.means, scene.opacities,
                                                         scene.colors)]
        self._visibility: Optional[Tuple[Tensor, Visibility]] = None
        self.grounding = grounding
        self._graph_answers = None  # (objects key, sentence -> selection) of ``_grounded``

    @torch.no_grad()
    def evaluate(self, checkpoint_path: Path, overlay_dir: Optional[Path] = None
                 ) -> CheckpointEvaluation:
        """Score one checkpoint (scene and encoder checked)."""
        checkpoint = load_checkpoint(checkpoint_path, means=self.scene.means,
                                     text_encoder_id=self.encoder.encoder_id)
        field = checkpoint.build_field(self.scene.means.to(self.device)).eval()
        stage = int((checkpoint.training_config or {}).get('stage', 1))
        selections = None
        if self.grounding == 'graph' and checkpoint.objects is not None:
            responses, selections = self._grounded(checkpoint, field)
        else:
            cache = field.precompute()
            responses = {s: field.respond(w, cache).response for s, w in self.words.items()}
        return self.evaluate_responses(responses, overlay_dir, checkpoint=Path(checkpoint_path),
                                       step=checkpoint.step, stage=stage,
                                       visibility=self._scene_visibility(checkpoint.visibility),
                                       selections=selections)

    def _grounded(self, checkpoint, field):
        """Answer each expression as the node does (object graph): target logits + selections.

        The graph's answers depend on the checkpoint's objects and visibility, not on its field
        weights: checkpoints of one run that share them are answered once.
        """
        objects, visibility = checkpoint.objects, checkpoint.visibility
        key = (objects.labels.tobytes(), tuple(objects.names),
               None if visibility is None else visibility.numpy().tobytes())
        if self._graph_answers is None or self._graph_answers[0] != key:
            model = ReferringModel(self.scene, field, self.encoder, None,
                                   None if visibility is None else visibility.numpy(), objects,
                                   GroundingConfig(grounding='graph'))
            config = replace(self.selection_config, top_k=1, metric_scale=1.0)
            selections = {}
            for sentence in self.words:
                outcome = model.query(sentence, config)
                if outcome.selection is not None and outcome.selection.ok:
                    selections[sentence] = outcome.selection
            self._graph_answers = (key, selections)
        selections = self._graph_answers[1]
        empty = np.zeros(0, np.int64)
        responses = {s: target_logits(self.scene.num_gaussians,
                                      selections[s].indices if s in selections else empty,
                                      self.device) for s in self.words}
        return responses, selections

    def _scene_visibility(self, weight: Optional[Tensor]) -> Optional[Visibility]:
        """Return the ``Visibility`` of a checkpoint's record (kept while checkpoints share it)."""
        if weight is None:
            return None
        if self._visibility is None or not torch.equal(self._visibility[0], weight):
            means, opacities, _ = self._host
            self._visibility = (weight, Visibility(weight.numpy(), means, opacities))
        return self._visibility[1]

    @torch.no_grad()
    def evaluate_responses(self, responses: Dict[str, Tensor], overlay_dir: Optional[Path] = None,
                           *, checkpoint: Path = Path('-'), step: int = 0, stage: int = 1,
                           visibility: Optional[Visibility] = None,
                           selections: Optional[Dict[str, Selection]] = None
                           ) -> CheckpointEvaluation:
        """Score per-Gaussian logits, ``responses[expression]`` [N], on every test pair.

        ``visibility`` (the checkpoint's) feeds the 3D selection; None = without it.
        ``selections``: the published target of each expression when it was chosen another
        way (the object graph); an expression missing from it published nothing.
        """
        responses = {s: r.to(self.device, torch.float32).reshape(-1)
                     for s, r in responses.items()}
        records, paper_records, pixels = [], [], []
        by_view: Dict[int, List[ProtocolPair]] = {}
        for pair in self.pairs:
            by_view.setdefault(pair.view_index, []).append(pair)
        overlay_rows = []
        for view_index, pairs in by_view.items():
            view = self.views[view_index]
            comp = self.weights.get(view.camera)
            logits = comp.render(torch.stack([responses[p.expression] for p in pairs], dim=1))
            image = None
            for pair, logit_map in zip(pairs, logits):
                gt = self.gt[(view_index, pair.category)]
                pred = predicted_mask(logit_map, comp.alpha, self.empty_pixels).cpu().numpy()
                paper = predicted_mask(logit_map, comp.alpha, 'paper').cpu().numpy()
                common = dict(scene=self.scene_name, frame=pair.frame,
                              expression=pair.expression, category=pair.category,
                              subsets=pair.subsets)
                records.append(evaluate_mask(pred, gt, **common))
                paper_records.append(evaluate_mask(paper, gt, **common))
                pixels.append((int(pred.sum()), int(gt.sum())))
                if overlay_dir is not None:
                    if image is None:
                        image = _view_image(view)
                    name = f'{pair.frame}__{pair.category}__{len(overlay_rows):03d}.png'
                    write_overlay(overlay_dir / name, image, pred, gt)
                    overlay_rows.append((name, pair.frame, pair.category, pair.expression,
                                         records[-1].iou))
        if overlay_dir is not None:
            with open(overlay_dir / 'index.csv', 'w', newline='') as handle:
                writer = csv.writer(handle)
                writer.writerow(['file', 'frame', 'category', 'expression', 'iou'])
                writer.writerows(overlay_rows)
        selection = self._score_targets(responses, visibility, selections)
        return CheckpointEvaluation(
            checkpoint=checkpoint, step=step, stage=stage,
            records=records, paper_records=paper_records, summary=summarize(records),
            paper_summary=summarize(paper_records), subsets=subset_summaries(records),
            selection=selection, pixels=pixels)

    def _score_targets(self, responses: Dict[str, Tensor], visibility: Optional[Visibility],
                       selections: Optional[Dict[str, Selection]] = None
                       ) -> Dict[str, SelectionMetrics]:
        """3D scores of the target the node would publish for each expression (Ref-Synth)."""
        selection = {}
        if self.object_ids is None or not self.category_ids:
            return selection
        means, opacities, colors = self._host
        object_ids = self.object_ids.numpy()
        config = replace(self.selection_config, top_k=1, metric_scale=1.0)
        for pair in self.pairs:
            if pair.expression in selection or pair.category not in self.category_ids:
                continue
            if selections is not None:
                chosen = selections.get(pair.expression)
                if chosen is None:  # nothing published
                    selection[pair.expression] = target_metrics(
                        np.zeros(0, np.int64), None, object_ids, means,
                        self.category_ids[pair.category])
                    continue
            else:
                probabilities = torch.sigmoid(responses[pair.expression]).cpu().numpy()
                chosen = select_target(probabilities, means, opacities, colors, config,
                                       visibility)
            published = chosen.best.centroid if chosen.ok else None
            selection[pair.expression] = target_metrics(
                chosen.indices, published, object_ids, means, self.category_ids[pair.category])
        return selection


def _view_image(view) -> np.ndarray:  # [H, W, 3] float
    try:
        return view.load_image().permute(1, 2, 0).numpy()
    except DatasetError:
        return np.full((view.camera.height, view.camera.width, 3), 0.5, np.float32)


def write_overlay(path: Path, image: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> None:
    """Write ``image`` [H, W, 3] with GT only green, prediction only red, both yellow."""
    from PIL import Image

    colours = np.zeros(image.shape, np.float32)
    tint = np.zeros(image.shape[:2], bool)
    for sel, colour in (((gt & ~pred), (0.0, 1.0, 0.0)), ((pred & ~gt), (1.0, 0.0, 0.0)),
                        ((pred & gt), (1.0, 1.0, 0.0))):
        colours[sel] = colour
        tint |= sel
    out = image.astype(np.float32).copy()
    out[tint] = 0.45 * out[tint] + 0.55 * colours[tint]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), mode='RGB').save(path)


def _write_expression_csv(path: Path, evaluations: Sequence[CheckpointEvaluation]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['checkpoint', 'step', 'frame', 'category', 'subsets', 'expression',
                         'iou', 'iou_paper', 'pred_pixels', 'gt_pixels'])
        for ev in evaluations:
            for record, paper, (pred_px, gt_px) in zip(ev.records, ev.paper_records, ev.pixels):
                writer.writerow([ev.checkpoint.name, ev.step, record.frame, record.category,
                                 ';'.join(record.subsets), record.expression,
                                 '' if record.iou is None else f'{record.iou:.6f}',
                                 '' if paper.iou is None else f'{paper.iou:.6f}',
                                 pred_px, gt_px])


# ------------------------------------------------------------------------------ a run
def evaluate_run(config: EvalConfig, encoder: Optional[TextEncoder] = None) -> RunEvaluation:
    """Evaluate every checkpoint of a run; write summary.json, CSVs and overlays.

    Raises:
        CheckpointError: no checkpoint in the run, or a checkpoint of another scene / encoder
            (e.g. ``data`` pointing at a different scene).
        DatasetError: unusable scene folder.
    """
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset

    run_dir = Path(config.run)
    stage_dirs = runs.stage_checkpoint_dirs(run_dir)
    if not stage_dirs:
        raise CheckpointError(f'{run_dir}: no {runs.STEP_CHECKPOINT_GLOB} under '
                              f'{runs.checkpoint_dir(run_dir)}/')
    first = load_checkpoint(runs.step_checkpoints(stage_dirs[0][1])[0])
    recorded = runs.run_info(first)
    data = config.data or recorded.data
    if data is None:
        raise DatasetError(f'{first.path}: records no data folder; pass EvalConfig.data')
    dataset = load_referring_dataset(data, test_frames=config.test_frames or recorded.test_frames)
    scene_path = dataset.scene_path if config.data else (recorded.scene_path
                                                         or dataset.scene_path)
    if scene_path is None:
        raise DatasetError(f'{data}: no Gaussians found')
    device = resolve_device(config.device)
    scene = load_scene(scene_path)
    first.check_scene(scene.means)  # a clear error before any work
    if encoder is None:
        encoder = load_text_encoder(config.text_encoder or recorded.text_encoder, device)
    first.check_encoder(encoder.encoder_id)
    mode = 'ovs' if config.ovs else 'referring'
    default_out = run_dir / ('eval_ovs' if config.ovs else 'eval')
    if config.split != 'test':
        default_out = run_dir / f'eval_{config.split}'
    out_dir = Path(config.out) if config.out else default_out
    evaluator = Evaluator(dataset, scene, encoder, device, config.ovs, config.empty_pixels,
                          config.split, grounding=config.grounding)
    stages = []
    from tqdm import tqdm
    for stage, folder in stage_dirs:
        paths = runs.step_checkpoints(folder)
        evaluations = [evaluator.evaluate(p) for p in tqdm(
            paths, desc=f'eval stage {stage}', unit='ckpt', disable=not config.progress)]
        result = StageEvaluation(stage, evaluations)
        stage_out = out_dir / f'stage{stage}'
        _write_expression_csv(stage_out / 'per_expression.csv', evaluations)
        if config.overlays:
            for label, chosen in (('last', result.last), ('best', result.best)):
                evaluator.evaluate(chosen.checkpoint,
                                   overlay_dir=stage_out / f'overlays_{label}')
        stages.append(result)
        logger.info('stage %d: last %s mIoU %.4f, best %s mIoU %.4f', stage,
                    result.last.checkpoint.name, result.last.miou,
                    result.best.checkpoint.name, result.best.miou)
    evaluation = RunEvaluation(run_dir, out_dir, mode, config.empty_pixels, stages,
                               config.split)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'summary.json').write_text(json.dumps(_finite(evaluation.to_dict()), indent=1))
    return evaluation


def _finite(value):
    """JSON has no NaN: write None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def evaluate_checkpoint(checkpoint_path: Union[str, Path], data: Union[str, Path], *,
                        encoder: Optional[TextEncoder] = None, device: str = 'auto',
                        ovs: bool = False, empty_pixels: str = 'background',
                        overlay_dir: Optional[Union[str, Path]] = None,
                        split: str = 'test', grounding: str = 'field') -> CheckpointEvaluation:
    """Evaluate one checkpoint on a split (``SPLITS``) of the scene folder ``data``."""
    from refersplat_ros.core.datasets.reflerf.loader import load_referring_dataset

    dataset = load_referring_dataset(data)
    if dataset.scene_path is None:
        raise DatasetError(f'{data}: no Gaussians found')
    device_ = resolve_device(device)
    scene = load_scene(dataset.scene_path)
    checkpoint = load_checkpoint(checkpoint_path, means=scene.means)
    if encoder is None:
        encoder = load_text_encoder(runs.run_info(checkpoint).text_encoder, device_)
    evaluator = Evaluator(dataset, scene, encoder, device_, ovs, empty_pixels, split,
                          grounding=grounding)
    return evaluator.evaluate(Path(checkpoint_path),
                              None if overlay_dir is None else Path(overlay_dir))
