"""Answering referring queries with a trained field: the algorithm behind the node and the CLI.

``ReferringModel.load`` reads a Gaussian scene (.ply / .pth), a referring-field checkpoint and the
text encoder onto one device, verifies that they belong together, and precomputes everything
that does not depend on the query (the field's x, p and attention queries,
docs/METHOD.md#pcmi-code; the compositing weights of the mask view). ``query`` then runs: encode
the text (cached per sentence) → response m_i (one pass over N, docs/METHOD.md#response) →
probabilities sigmoid(m) → selection and box (``selection.py``) → 2D mask of the configured
view. Every stage is timed, and a query may be given a time budget: the field pass and the
clustering check it between blocks and steps, and a query past it ends with status ERROR and a
message saying so instead of holding the caller.

Statuses mirror ``refersplat_ros/msg/ReferResult`` (a test keeps the two in sync) so the ROS node
only copies them.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
import logging
import time
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from refersplat_ros.core.devices import resolve_device
from refersplat_ros.core.errors import CheckpointError, QueryError, QueryTimeout
from refersplat_ros.core.field.checkpoint import load_checkpoint
from refersplat_ros.core.field.compact import inference_cache, response_only, TABLE_DTYPES
from refersplat_ros.core.field.masks import predicted_mask
from refersplat_ros.core.field.referring_field import ReferringField
from refersplat_ros.core.files import DEFAULT_MAX_FILE_BYTES
from refersplat_ros.core.inference.queries import QueryStatus, validate_query
from refersplat_ros.core.inference.selection import (Instance, instance_of, select_object,
                                                     select_target, Selection, SelectionConfig,
                                                     Visibility)
from refersplat_ros.core.inference.target_view import (empty_view, render_target, RenderBudget,
                                                       TargetView)
from refersplat_ros.core.language.graph import ObjectGraph
from refersplat_ros.core.language.ground import (AMBIGUOUS, Grounder, Grounding,
                                                 GroundingConfig, NO_MATCH as GROUNDED_NOTHING,
                                                 OK as GROUNDED_OK)
from refersplat_ros.core.render.compositing import compositing_weights, CompositingWeights
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.edits import EditError, SceneEdits
from refersplat_ros.core.scene.gaussian_io import load_scene
from refersplat_ros.core.scene.gaussians import GaussianScene
from refersplat_ros.core.scene.normals import gaussian_normals, surface_variation
from refersplat_ros.core.scene.objects import SceneObjects
from refersplat_ros.core.text.encoder import load_text_encoder, TextEncoder, TextEncoderConfig

#: Gaussians per object (its best seen) whose field response is the soft grounding's evidence.
OBJECT_FIELD_SAMPLE = 64
#: Opacity logit of a removed object's Gaussians: sigmoid(-30) < 1e-13, never drawn.
REMOVED_LOGIT = 30.0
#: Sentences whose vectors the model keeps for rebuilding grounders (cleared beyond).
EMBEDDING_CACHE = 8192

logger = logging.getLogger(__name__)


#: Logit given to the published Gaussians (minus it to the others) when a mask is rendered from
#: a selection rather than from the field's response: sigmoid(20) = 1 - 2e-9.
TARGET_LOGIT = 20.0


def target_logits(num_gaussians: int, indices, device=None) -> torch.Tensor:  # -> [N]
    """Return per-Gaussian logits that select exactly ``indices`` (for rendering a target)."""
    logits = torch.full((num_gaussians,), -TARGET_LOGIT, device=device)
    if len(indices):
        logits[torch.as_tensor(np.asarray(indices), device=device)] = TARGET_LOGIT
    return logits


@contextmanager
def timed(timings: Dict[str, float], stage: str):
    """Record the milliseconds the ``with`` block took as ``timings[stage]``.

    Nothing is recorded when the block raises: a stopped query reports the stages it finished.
    A stage timed twice adds up (the graph path's encoding, then its grounding after the field).
    """
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3


@dataclass
class Candidate:
    """One object that fits a query: its name, score in [0, 1] and box (``Instance``)."""

    label: str          # the object's name, e.g. 'red can #2'
    score: float
    instance: Instance  # centroid, box centre, axes and size in metric units


@dataclass
class QueryOutcome:
    """Everything one query produced.

    ``selection``/``mask`` are set when the status is OK or AMBIGUOUS (``queries.ANSWERED``:
    the best candidate); ``view`` (mask and depth in the query's camera,
    ``target_view.py``) instead of ``mask`` when the query gave a camera. ``interpretation``
    says in a short line how the query was understood ("target: bowl <- 'basin'; right of:
    ball #2 <- 'little sphere'; view: reference"), empty when the query was never read
    (INVALID_QUERY). ``candidates`` lists the objects that fit, best first (several for
    AMBIGUOUS; the chosen one for OK; empty otherwise). ``confidence`` in [0, 1]: with the object
    graph, the grounding's confidence (docs/LANGUAGE.md#confidence: for OK and AMBIGUOUS how
    likely the answer is the object meant, for NO_MATCH how sure nothing fits); with the field
    alone, the chosen instance's mean response probability.
    """

    status: QueryStatus
    message: str
    text: str
    selection: Optional[Selection] = None
    mask: Optional[np.ndarray] = None              # [H, W] uint8 0/255 of the mask view
    timings_ms: Dict[str, float] = field(default_factory=dict)  # encode, field, select, render
    interpretation: str = ''
    candidates: List[Candidate] = field(default_factory=list)
    view: Optional[TargetView] = None              # the target in the query's camera
    confidence: float = 0.0
    #: The objects in the published target (OK / AMBIGUOUS): the best candidate for a query
    #: about one object, every object a plural denotes ("all the cans"), in the order of
    #: ``selection.instances``; with the field alone, one unnamed entry per kept instance.
    targets: List[Candidate] = field(default_factory=list)


def _position(grounder: Grounder, label: str) -> Optional[int]:
    """Return the graph position of object ``label`` in ``grounder`` (None: not there)."""
    if not label:
        return None
    return next((k for k, obj in enumerate(grounder.graph.objects) if obj.label == label), None)


def _no_match(text: str, message: str, timings: Dict[str, float],
              selection: Optional[Selection] = None, interpretation: str = '',
              confidence: float = 0.0) -> QueryOutcome:
    """Return the NO_MATCH outcome of a query; it renders nothing (render time 0)."""
    timings['render'] = 0.0
    return QueryOutcome(QueryStatus.NO_MATCH, message, text, selection, timings_ms=timings,
                        interpretation=interpretation, confidence=confidence)


class ReferringModel:
    """A scene, its trained referring field and the text encoder, ready for queries.

    Args:
        scene: The frozen Gaussians (moved to ``field``'s device).
        field: The trained referring field for this scene.
        encoder: The text encoder the field was trained with.
        mask_camera: View in which ``query`` renders the 2D mask (None = no mask).
        visibility: [N] total compositing weight of each Gaussian over the training views
            (saved with checkpoints since training records it); None = every Gaussian is
            trusted alike (the selection without visibility, ``inference/selection.py``).
        objects: The scene's annotated objects (saved with checkpoints since training lifts
            them); with them queries are grounded in the object graph (``core/language``),
            without them (or with ``grounding.grounding == 'field'``) by the field alone.
        grounding: How queries are grounded (``GroundingConfig``).
        table_dtype: Storage of the field's inference table: 'float32' (default) or 'float16'
            (half the memory, not faster on the CPU; the selections equal float32's on the
            tested scenes; docs/BENCHMARKS.md#query-latency).
    """

    def __init__(self, scene: GaussianScene, field: ReferringField, encoder: TextEncoder,
                 mask_camera: Optional[Camera] = None, visibility=None,
                 objects: Optional[SceneObjects] = None,
                 grounding: Optional[GroundingConfig] = None, table_dtype: str = 'float32',
                 view_direction=None):
        if scene.num_gaussians == 0:
            raise CheckpointError('the scene has no Gaussians: nothing to refer to')
        if field.num_gaussians != scene.num_gaussians:
            raise CheckpointError(f'field has {field.num_gaussians} Gaussians, scene has '
                                  f'{scene.num_gaussians}')
        self.scene = scene.to(field.device)
        self.field = field.eval()
        self.encoder = encoder
        if table_dtype not in TABLE_DTYPES:
            raise ValueError(f'table_dtype must be one of {sorted(TABLE_DTYPES)}, got '
                             f'{table_dtype!r}')
        self.table_dtype = table_dtype
        self._cache = None  # the field's inference tables, built when the field answers
        # Host copies used by every selection.
        self._means = self.scene.means.detach().cpu().numpy()
        self._opacities = self.scene.opacities.detach().cpu().numpy()
        self._colors = self.scene.colors.detach().cpu().numpy()
        # Surface normals (shortest axes), towards the training views that saw each Gaussian
        # (``view_direction``, saved with checkpoints since training records it), else towards
        # the reference view (approximate): docs/ROBOT.md#target-cloud.
        viewpoints = None
        if objects is not None and objects.reference_view is not None:
            viewpoints = objects.reference_view.center.detach().cpu().numpy()[None]
        scales = self.scene.scales.detach().cpu().numpy()
        self._normals = gaussian_normals(
            self.scene.quats.detach().cpu().numpy(), scales, self._means,
            None if view_direction is None else np.asarray(view_direction), viewpoints)
        self._curvature = surface_variation(scales)
        self.visibility = None
        if visibility is not None:
            self.visibility = Visibility(np.asarray(visibility, np.float32), self._means,
                                         self._opacities)
            default = SelectionConfig()  # the neighbour search once, here, not in a query
            self.visibility.links(default.seen_fraction, default.propagation_radius,
                                  default.min_opacity, default.propagation_hops)
        self._mask_weights: Optional[CompositingWeights] = None
        self.mask_camera = None
        self.set_mask_camera(mask_camera)
        self.grounding = grounding or GroundingConfig()
        self.grounding.validate()
        #: Bounds each camera render's work (``render_target``); the node sets it from
        #: ``render.*``.
        self.render_budget = RenderBudget()
        self.grounder: Optional[Grounder] = None
        #: With objects removed (``apply_edits``): a grounder of every object, the removed ones
        #: at their last place, that tells a query about a removed object from one it fits.
        self._remembered: Optional[Grounder] = None
        self._summaries: Dict[tuple, tuple] = {}  # (object id, settings) -> _object_summary
        self._object_rows = None  # the field's tables of a sample of each object's Gaussians
        self._graph_all: Optional[ObjectGraph] = None  # every object where it is now
        self._embeddings: Dict[str, np.ndarray] = {}   # sentence -> unit vector (all grounders)
        self.edits = SceneEdits()
        self._captured: Dict[int, tuple] = {}  # object id -> captured means, quats, opacities
        self._owns_geometry = False
        self._present: Optional[np.ndarray] = None
        self.objects_source = objects.reference_source if objects is not None else ''
        if objects is not None and objects.num_objects:
            objects.validate(scene.num_gaussians)
            graph = ObjectGraph.build(objects, self._means, self._colors, self._opacities,
                                      None if visibility is None else np.asarray(visibility))
            self._graph_all = graph
            self._labels = objects.labels  # [N] object index of each Gaussian (-1: none)
            self._captured_samples = {obj.index: obj.sample for obj in graph.objects}
            self._position = {obj.index: k for k, obj in enumerate(graph.objects)}
            self.grounder = Grounder(graph, self._embed, self.grounding)
            logger.info('object graph: %d objects, %d known sentences', len(graph),
                        sum(len(o.sentences) for o in graph.objects))
        if not self.uses_graph:
            self.field_tables()  # the field answers: build its tables now, not in a query

    def _embed(self, texts: List[str]) -> np.ndarray:  # -> [S, D] unit sentence vectors
        """Return the encoder's sentence vectors, cached: an edit rebuilds grounders cheaply."""
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._embeddings]
        if missing:
            if len(self._embeddings) + len(missing) > EMBEDDING_CACHE:
                self._embeddings.clear()  # then every text asked is missing
                missing = list(dict.fromkeys(texts))
            vectors = self.encoder.sentence_embeddings(missing).numpy()
            self._embeddings.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, 1), np.float32)
        return np.stack([self._embeddings[t] for t in texts])

    # ---------------------------------------------------------------- pointing
    def point(self, position, text: str, selection: Optional[SelectionConfig] = None,
              max_distance: float = 0.05, camera: Optional[Camera] = None) -> QueryOutcome:
        """Answer a pointed-at position (e.g. RViz's clicked point) as a query: its object.

        ``position`` [3] is in scene units of the scene frame, ``max_distance`` in scene units.
        The object is the one of the nearest drawn Gaussian (opacity >= the selection's floor,
        removed objects left out) within ``max_distance``; it is published like any answer
        (interpretation "clicked: <label>"). NO_MATCH says why there is none: nothing that
        close, or the nearest Gaussian belongs to no annotated object (the table, a wall).
        """
        config = selection or SelectionConfig()
        timings = {'encode': 0.0, 'field': 0.0}
        start = time.perf_counter()
        p = np.asarray(position, np.float64).reshape(-1)
        if p.shape != (3,) or not np.isfinite(p).all():
            return QueryOutcome(QueryStatus.INVALID_QUERY, f'pointed position {p.tolist()} is '
                                'not three finite numbers', text)
        if self._graph_all is None:
            return _no_match(text, 'the checkpoint records no objects: nothing to point at',
                             timings)
        drawn = np.flatnonzero((self._opacities >= config.min_opacity) & (
            True if self._present is None else self._present))
        distance = np.linalg.norm(self._means[drawn] - p[None].astype(np.float32), axis=1)
        nearest = int(np.argmin(distance)) if len(distance) else -1
        timings['select'] = (time.perf_counter() - start) * 1e3
        scale = config.metric_scale
        if nearest < 0 or distance[nearest] > max_distance:
            return _no_match(text, f'nothing within {max_distance * scale:.3f} m of the pointed '
                             'position', timings, interpretation='clicked: nothing',
                             confidence=1.0)
        index = int(self._labels[drawn[nearest]])
        obj = self._graph_all.objects[self._position[index]] if index in self._position \
            else None
        if obj is None:
            return _no_match(text, 'the pointed position is on no annotated object (the '
                             f'nearest Gaussian, {distance[nearest] * scale:.3f} m away, is '
                             'background)', timings, interpretation='clicked: background',
                             confidence=1.0)
        chosen = self._object_selection(obj, 1.0, config)
        if not chosen.ok:
            return _no_match(text, chosen.reason, timings, chosen, f'clicked: {obj.label}')
        chosen = self._with_surfaces(chosen)
        mask, view = self._render(chosen, None, camera, config, lambda _name: None,
                                  lambda: None, timings)
        target = Candidate(obj.label, 1.0, replace(self._published_box(obj, config),
                                                   score=1.0))
        return QueryOutcome(QueryStatus.OK, '', text, chosen, mask, timings,
                            f'clicked: {obj.label}', [target], view, 1.0, [target])

    # ---------------------------------------------------------------- scene edits
    @property
    def object_labels(self) -> List[str]:
        """Labels of the scene's annotated objects (empty without objects)."""
        return [] if self._graph_all is None else [o.label for o in self._graph_all.objects]

    def _graph_object(self, label: str):
        if self._graph_all is None:
            raise EditError('the checkpoint records no objects: there is nothing to edit')
        for obj in self._graph_all.objects:
            if obj.label == label:
                return obj
        known = ', '.join(self.object_labels[:20])
        raise EditError(f'no object {label!r} in this scene (objects: {known})')

    def object_box(self, label: str, config: Optional[SelectionConfig] = None) -> Instance:
        """Return the box of object ``label`` where it is now, in metric units.

        The box an answer about it publishes (``ReferResult.pose`` / ``bbox_size``, its
        candidate's and target's): of its selected Gaussians, or of all its Gaussians when
        none passes the selection's rules.
        """
        return self._published_box(self._graph_object(label), config or SelectionConfig())

    def _published_box(self, obj, config: SelectionConfig) -> Instance:
        selection, members = self._object_summary(obj, config)
        return selection.best if selection.ok else members

    def edited_objects(self, config: Optional[SelectionConfig] = None):
        """Return ``(label, removed, box of all its Gaussians)`` of every edited object.

        A removed object's box is where it last stood. Reads the host arrays and fills no
        cache (the node calls it on its executor thread while the worker may edit).
        """
        config = config or SelectionConfig()
        return [(label, edit.removed, instance_of(self._graph_object(label).members,
                                                  self._means, 1.0, config))
                for label, edit in sorted(self.edits.objects.items())]

    def apply_edits(self, edits: SceneEdits) -> List[str]:
        """Make the scene the capture with ``edits`` applied; return the labels that changed.

        Each changed object's Gaussians are put at their edited place from their captured
        values (means, rotations; a removed object's opacity to 0), its graph entry moves with
        them, and everything derived from the geometry follows: relations, boxes, clouds,
        renders (the mask view's weights are rebuilt at their next use), and the selection's
        propagation, which no longer links Gaussians of an edited object with others. Time
        grows with the edited objects, not with the scene (docs/BENCHMARKS.md#scene-edits).
        Raises EditError (nothing changed) when ``edits`` names an unknown object.
        """
        for label in edits.objects:
            self._graph_object(label)
        if self._graph_all is None:  # no objects, no edits: nothing to do
            return []
        changed = [obj for obj in self._graph_all.objects
                   if not edits.get(obj.label).same_place(self.edits.get(obj.label))]
        if not changed:
            self.edits = edits
            return []
        self._own_geometry()
        for obj in changed:
            self._place(obj, edits.get(obj.label))
        # every object's summary: an unchanged object's poorly seen Gaussians may have come
        # from an edited one's (the links cut below); rebuilt lazily, per object
        self._summaries = {}
        self.edits = edits
        self._rebuild_graphs()
        self._mask_weights = None
        self._present = None
        if edits.removed:
            self._present = np.ones(self.num_gaussians, bool)
            for label in edits.removed:
                self._present[self._graph_object(label).members] = False
        if self.visibility is not None:
            groups = None
            if edits:
                groups = np.zeros(self.num_gaussians, np.int32)
                for obj in self._graph_all.objects:
                    if obj.label in edits.objects:
                        groups[obj.members] = obj.index + 1
            self.visibility.set_groups(groups)
        return [obj.label for obj in changed]

    def _own_geometry(self) -> None:
        """Give the model its own means, rotations and opacities before the first edit.

        The loaded tensors may be shared (with the field's positions, or as the host copies'
        memory); an edit must change the scene only.
        """
        if self._owns_geometry:
            return
        s = self.scene
        self.scene = GaussianScene(s.means.clone(), s.quats.clone(), s.log_scales,
                                   s.opacity_logits.clone(), s.sh)
        self._means = self._means.copy()
        if self.visibility is not None:
            self.visibility.means = self._means
        self._owns_geometry = True

    def _place(self, obj, edit) -> None:
        """Write object ``obj``'s Gaussians at the place ``edit`` gives them."""
        members = obj.members
        index = torch.as_tensor(members, device=self.device)
        captured = self._captured.get(obj.index)
        if captured is None:
            captured = (self._means[members].copy(), self.scene.quats[index].cpu().numpy(),
                        self.scene.opacity_logits[index].clone(), self._opacities[members].copy(),
                        self._normals[members].copy())
            self._captured[obj.index] = captured
        means, quats, logits, opacities, normals = captured
        moved = edit.apply_points(means)
        self._means[members] = moved
        self._normals[members] = normals @ edit.transform.rotation.T.astype(np.float32)
        self.scene.means[index] = torch.as_tensor(moved, device=self.device)
        self.scene.quats[index] = torch.as_tensor(edit.apply_quats_wxyz(quats),
                                                  device=self.device)
        if edit.removed:  # never drawn, below any opacity floor (0 included): never selected
            self.scene.opacity_logits[index] = -REMOVED_LOGIT
            self._opacities[members] = -1.0
        else:
            self.scene.opacity_logits[index] = logits
            self._opacities[members] = opacities

    def _rebuild_graphs(self) -> None:
        """Rebuild the object graphs and grounders from the captured samples and the edits."""
        base = self._graph_all
        objects = [replace(obj, sample=self.edits.get(obj.label).apply_points(
            self._captured_samples[obj.index]).astype(np.float64)) for obj in base.objects]
        source = self.objects_source
        self._graph_all = ObjectGraph(objects, base.up, base.reference_view, source)
        present = [obj for obj in objects if not self.edits.get(obj.label).removed]
        graph = self._graph_all if len(present) == len(objects) else \
            ObjectGraph(present, base.up, base.reference_view, source)
        self.grounder = Grounder(graph, self._embed, self.grounding)
        self._remembered = None if graph is self._graph_all else \
            Grounder(self._graph_all, self._embed, self.grounding)

    def field_tables(self):
        """Return the field's inference tables (``inference_cache``), built on first use.

        Only the field path reads them ([N, 129] float32 for the default architecture: 0.5 GB
        at 1M Gaussians), so a node grounding in the object graph never holds them unless it is
        switched to ``grounding: field``.
        """
        if self._cache is None:
            start = time.perf_counter()
            self._cache = inference_cache(self.field, dtype=self.table_dtype)
            logger.info('field inference tables (%s) built in %.1f s', self.table_dtype,
                        time.perf_counter() - start)
        return self._cache

    @property
    def uses_graph(self) -> bool:
        """Whether queries are grounded in the object graph (else by the field alone)."""
        return self.grounder is not None and self.grounding.grounding == 'graph'

    def set_grounding(self, config: GroundingConfig) -> None:
        """Change how queries are grounded (validated; the object graph is kept)."""
        config.validate()
        self.grounding = config
        for grounder in (self.grounder, self._remembered):
            if grounder is not None:
                grounder.config = config

    @classmethod
    def load(cls, scene_path, checkpoint_path, encoder_config: Optional[TextEncoderConfig] = None,
             device: Union[str, torch.device] = 'auto',
             mask_camera: Optional[Camera] = None,
             max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
             grounding: Optional[GroundingConfig] = None,
             table_dtype: str = 'float32') -> 'ReferringModel':
        """Load scene + checkpoint + encoder; raise the core's named errors on bad files.

        Both files must be regular files of at most ``max_file_bytes`` (``core.files``).

        Raises:
            SceneFormatError: the scene file is missing, malformed, empty or too large.
            CheckpointError: the checkpoint is missing, corrupt, too large, holds NaN/inf
                weights, or belongs to another scene or encoder.
            TextEncoderError: the encoder is not available offline.
        """
        device = resolve_device(str(device))
        scene = load_scene(scene_path, max_file_bytes)
        checkpoint = load_checkpoint(checkpoint_path, means=scene.means,
                                     max_bytes=max_file_bytes)
        encoder = load_text_encoder(encoder_config or TextEncoderConfig(), device)
        checkpoint.check_encoder(encoder.encoder_id)
        field_ = checkpoint.build_field(scene.means).to(device)
        logger.info('loaded %d Gaussians, field step %d, encoder %s on %s',
                    scene.num_gaussians, checkpoint.step, encoder.encoder_id, device)
        if checkpoint.visibility is None:
            logger.warning('%s records no visibility (written before it was saved): the 3D '
                           'selection trusts every Gaussian alike', checkpoint_path)
        if checkpoint.objects is None:
            logger.warning('%s records no objects (written before they were saved): queries are '
                           'grounded by the field alone', checkpoint_path)
        return cls(scene, field_, encoder, mask_camera,
                   None if checkpoint.visibility is None else checkpoint.visibility.numpy(),
                   checkpoint.objects, grounding, table_dtype,
                   None if checkpoint.view_direction is None else
                   checkpoint.view_direction.numpy())

    @property
    def num_gaussians(self) -> int:
        return self.scene.num_gaussians

    @property
    def device(self) -> torch.device:
        return self.field.device

    def _with_surfaces(self, chosen: Selection) -> Selection:
        """Return ``chosen`` with its Gaussians' normals and curvature (the cloud's fields)."""
        return replace(chosen, normals=self._normals[chosen.indices],
                       curvature=self._curvature[chosen.indices])

    @property
    def host_curvature(self) -> np.ndarray:  # [N] float32
        """Return the PCL curvature of every Gaussian (``normals.surface_variation``), numpy."""
        return self._curvature

    @property
    def present(self) -> Optional[np.ndarray]:  # [N] bool
        """Gaussians not of a removed object (None: nothing is removed)."""
        return self._present

    @property
    def host_normals(self) -> np.ndarray:  # [N, 3] float32
        """Unit surface normal of every Gaussian (zero where undefined), as a numpy array."""
        return self._normals

    @property
    def host_points(self):
        """Gaussian centres ``[N, 3]`` and RGB colours ``[N, 3]`` in [0, 1] as numpy arrays.

        Host copies made once at load: reading them runs no torch operation (the node publishes
        its scene cloud from them without touching torch outside its worker thread).
        """
        return self._means, self._colors

    def memory_bytes(self) -> int:
        """Bytes held by the scene, field, caches and mask weights (excluding the encoder)."""
        tensors = [*self.field.parameters(), self.field.means]
        if self._cache is not None:
            tensors += [self._cache.table, self._cache.mean, self._cache.sq_norm]
        total = sum(t.numel() * t.element_size() for t in tensors)
        total += sum(a.nbytes for a in (self._means, self._opacities, self._colors,
                                        self._normals, self._curvature))
        if self.visibility is not None:
            total += self.visibility.nbytes
        if self._mask_weights is not None:
            total += self._mask_weights.nbytes
        return int(total)

    def set_mask_camera(self, camera: Optional[Camera]) -> None:
        """Choose the mask view; its compositing weights are built once per scene geometry."""
        self.mask_camera = camera
        self._mask_weights = None
        self._mask_view_weights()

    def _mask_view_weights(self) -> Optional[CompositingWeights]:
        """Return the mask view's compositing weights, built again after an edit."""
        if self._mask_weights is None and self.mask_camera is not None:
            s = self.scene
            self._mask_weights = compositing_weights(s.means, s.quats, s.scales, s.opacities,
                                                     self.mask_camera, transpose=False)
        return self._mask_weights

    @torch.no_grad()
    def response(self, text: str) -> torch.Tensor:  # -> [N] logits
        """Return the referring logits m_i of every Gaussian for ``text``."""
        return response_only(self.field, self.encoder.encode(text), self.field_tables())

    @torch.no_grad()
    def render_logits(self, logits: torch.Tensor) -> torch.Tensor:  # [N] -> [H, W]
        """Composite per-Gaussian logits into the mask view's logit map M.

        Compositing: docs/METHOD.md#rasterized-logit.
        """
        weights = self._mask_view_weights()
        if weights is None:
            raise ValueError('no mask camera set')
        return weights.render(logits.reshape(-1, 1).float())[0]

    def render_target(self, indices, camera: Camera,
                      selection: Optional[SelectionConfig] = None,
                      check: Optional[Callable[[], None]] = None) -> TargetView:
        """Render the Gaussians ``indices`` (a target) in ``camera``.

        Mask with occlusion and depth in metres (``selection.metric_scale``); gsplat on CUDA.
        The work is bounded by ``render_budget``; ``check`` may stop it (a time budget).
        """
        scale = (selection or SelectionConfig()).metric_scale
        return render_target(self.scene, indices, camera, metric_scale=scale,
                             budget=self.render_budget, check=check)

    def query(self, text: str, selection: Optional[SelectionConfig] = None,
              max_chars: int = 512,
              on_stage: Optional[Callable[[str], None]] = None,
              time_budget_s: Optional[float] = None,
              spent_s: float = 0.0, camera: Optional[Camera] = None,
              referent: str = '') -> QueryOutcome:
        """Answer one referring expression; a bad one is reported in ``status``, never raised.

        ``on_stage`` is called with 'encoding', 'field', 'selecting' and 'rendering' as each
        stage starts (the node turns these into action feedback). A query of which the text
        encoder keeps no word piece is INVALID_QUERY. With ``time_budget_s`` (> 0) a query still
        running after that many seconds is stopped at the next check (between blocks of the
        field pass, between clustering steps, between stages) and reported as ERROR;
        ``spent_s`` is time the query already used before this call (the node's queue wait).
        ``camera`` (e.g. the robot's) is the viewpoint of left / right / front / behind
        (default: the scene's reference view, docs/LANGUAGE.md#viewpoint), and the answer's
        target is rendered in it (``QueryOutcome.view``: mask with occlusion, depth) instead of
        the mask view. ``referent``: the label of the object "it" / "that one" stand for (the
        last one pointed at or answered; ``Grounder.ground``).
        """
        reason = validate_query(text, max_chars)
        if reason is not None:
            return QueryOutcome(QueryStatus.INVALID_QUERY, reason, str(text))
        notify = on_stage or (lambda _name: None)
        timings = {}
        budget = time_budget_s if time_budget_s is not None and time_budget_s > 0 else None
        begin = time.perf_counter() - max(0.0, float(spent_s))
        current = ['encoding']

        def check():
            if budget is not None and time.perf_counter() - begin > budget:
                raise QueryTimeout(
                    f'query stopped after {time.perf_counter() - begin:.2f} s, over its time '
                    f'budget of {budget:g} s (in stage {current[0]})')

        def stage(name):
            check()
            current[0] = name
            notify(name)

        try:
            if self.uses_graph:
                return self._query_graph(text, selection, stage, check, timings, camera,
                                         referent)
            return self._query(text, selection, stage, check, timings, camera)
        except QueryError as exc:
            return QueryOutcome(QueryStatus.INVALID_QUERY, str(exc), text, timings_ms=timings)
        except QueryTimeout as exc:
            return QueryOutcome(QueryStatus.ERROR, str(exc), text, timings_ms=timings)

    def _query(self, text, selection, stage, check, timings, camera) -> QueryOutcome:
        stage('encoding')
        with torch.no_grad():
            with timed(timings, 'encode'):
                words = self.encoder.encode(text)
            stage('field')
            with timed(timings, 'field'):
                logits = response_only(self.field, words, self.field_tables(), check=check)
                probabilities = torch.sigmoid(logits).cpu().numpy()
        stage('selecting')
        with timed(timings, 'select'):
            chosen = select_target(probabilities, self._means, self._opacities, self._colors,
                                   selection, self.visibility, check=check)
        if not chosen.ok:
            return _no_match(text, chosen.reason, timings, chosen)
        chosen = self._with_surfaces(chosen)
        mask, view = self._render(chosen, logits, camera, selection, stage, check, timings)
        targets = [Candidate('', float(i.score), i) for i in chosen.instances]
        return QueryOutcome(QueryStatus.OK, '', text, chosen, mask, timings, view=view,
                            confidence=float(chosen.best.score), targets=targets)

    def _render(self, chosen: Selection, logits: Optional[torch.Tensor], camera, selection,
                stage, check, timings):
        """Return ``(mask, view)`` of the answer; both query paths end here.

        In ``camera`` when the query gave one (``view``), else in the mask view if one is set
        (``mask``: the field's ``logits`` when it answered, else the chosen Gaussians alone).
        A camera render that runs past the time budget is stopped: the answer keeps its 3D
        target and ``view`` says why there is no mask.
        """
        mask = view = None
        stage('rendering')
        with timed(timings, 'render'):
            if camera is not None:
                try:
                    view = self.render_target(chosen.indices, camera, selection, check)
                except QueryTimeout as exc:
                    view = empty_view(camera, f'render stopped: {exc}')
            elif self.mask_camera is not None:
                if logits is None:
                    logits = target_logits(self.num_gaussians, chosen.indices, self.device)
                foreground = predicted_mask(self.render_logits(logits),
                                            self._mask_view_weights().alpha)
                mask = foreground.to(torch.uint8).mul_(255).cpu().numpy()
        return mask, view

    def _object_summary(self, obj, config: SelectionConfig):
        """Return ``(selection at score 1, box of all members)`` of graph object ``obj``.

        Per-object work done once per (object, selection settings), not per query: which of its
        Gaussians pass the opacity / visibility rules, the poorly seen ones that join it, its
        box. Kept for the scene's lifetime (a few settings x the objects; reset beyond that);
        an edit of the object drops its entries.
        """
        key = (obj.index, repr(config))  # a plain dataclass: its repr names every setting
        summary = self._summaries.get(key)
        if summary is None:
            if len(self._summaries) >= 4 * len(self._graph_all.objects):
                self._summaries.clear()
            members = obj.members
            summary = (select_object(members, 1.0, self._means, self._opacities, self._colors,
                                     config, self.visibility),
                       instance_of(members, self._means, 1.0, config))
            self._summaries[key] = summary
        return summary

    def _object_selection(self, obj, score: float, config: SelectionConfig) -> Selection:
        """Return ``select_object`` of graph object ``obj`` at ``score`` (>= the threshold)."""
        base = self._object_summary(obj, config)[0]
        if not base.ok:
            return base
        best = replace(base.best, score=score, mass=base.best.mass * score)
        return replace(base, scores=np.full(len(base.indices), score, np.float32),
                       instances=[best])

    @torch.no_grad()
    def object_field(self, words: torch.Tensor) -> np.ndarray:  # [L, D] -> [M]
        """Return the field's mean response probability over a sample of each graph object.

        The soft grounding's learned evidence (docs/LANGUAGE.md#grounding): the paper's field
        asked only where the objects are, ``OBJECT_FIELD_SAMPLE`` of each object's best-seen
        Gaussians, so its cost does not grow with the scene (tables built on first use).
        """
        if self._object_rows is None:
            rows, owners = [], []
            seen = None if self.visibility is None else self.visibility.weight
            for k, obj in enumerate(self._graph_all.objects):
                members = obj.members
                if seen is not None and members.size > OBJECT_FIELD_SAMPLE:
                    members = members[np.argsort(-seen[members], kind='stable')]
                rows.append(members[:OBJECT_FIELD_SAMPLE])
                owners.append(np.full(len(rows[-1]), k))
            rows = np.concatenate(rows)
            tables = inference_cache(self.field, rows=torch.as_tensor(rows, device=self.device))
            self._object_rows = (tables, rows, np.concatenate(owners), len(self._graph_all))
        tables, _, owners, count = self._object_rows
        probabilities = torch.sigmoid(response_only(self.field, words, tables)).cpu().numpy()
        totals = np.bincount(owners, probabilities.astype(np.float64), minlength=count)
        return totals / np.maximum(np.bincount(owners, minlength=count), 1)

    def _query_graph(self, text, selection, stage, check, timings, camera,
                     referent: str = '') -> QueryOutcome:
        """Ground the query in the object graph; the chosen object's Gaussians are the target."""
        stage('encoding')
        with timed(timings, 'encode'), torch.no_grad():
            words = self.encoder.encode(text)  # QueryError (INVALID_QUERY): no word piece left
        with timed(timings, 'field'), torch.no_grad():
            field = self.object_field(words) if self.grounding.field_weight > 0 else None
        with timed(timings, 'encode'):
            grounded, grounder = self._ground(text, camera, field, referent)
        stage('selecting')
        config = selection or SelectionConfig()
        with timed(timings, 'select'):
            answer = None if grounded.status == GROUNDED_NOTHING else \
                self._graph_answer(grounded, grounder, config)
        if answer is None:
            return _no_match(text, grounded.message, timings,
                             interpretation=grounded.interpretation,
                             confidence=grounded.confidence)
        status, chosen, candidates, targets = answer
        if not chosen.ok:  # the object's Gaussians are all below the opacity floor
            return _no_match(text, chosen.reason, timings, chosen, grounded.interpretation)
        chosen = self._with_surfaces(chosen)
        mask, view = self._render(chosen, None, camera, config, stage, check, timings)
        return QueryOutcome(status, grounded.message if status == QueryStatus.AMBIGUOUS else '',
                            text, chosen, mask, timings, grounded.interpretation, candidates,
                            view, grounded.confidence, targets)

    def _ground(self, text: str, camera, field,
                referent: str = '') -> Tuple[Grounding, Grounder]:
        """Ground ``text`` in the world as it is now; say so when it names a removed object.

        Without removed objects this is the grounder's answer. With some, the query is also
        grounded in the remembered world (every object, the removed ones at their last place):
        when that world's answer is a removed object, the query is about it (NO_MATCH, "was
        removed") even if a present object fits it loosely; when only that world answers, the
        query needed a removed object as its anchor ("the plate that was under the mug") and
        its present target is the answer.
        """
        present = self.grounder.ground(text, camera, self._field_of(self.grounder, field),
                                       _position(self.grounder, referent))
        if self._remembered is None:
            return present, self.grounder
        remembered = self._remembered.ground(text, camera,
                                             self._field_of(self._remembered, field),
                                             _position(self._remembered, referent))
        if remembered.status != GROUNDED_OK or remembered.targets:  # a plural: what is here
            return present, self.grounder
        label = self._remembered.graph.objects[remembered.chosen].label
        if self.edits.get(label).removed:
            message = (f'{label} was removed from the scene (edit_scene REMOVE); RESTORE it, '
                       'or MOVE it to where it is now')
            return Grounding(GROUNDED_NOTHING, interpretation=remembered.interpretation
                             + ' (removed)', message=message, parsed=remembered.parsed,
                             confidence=remembered.confidence), self._remembered
        if present.status == GROUNDED_NOTHING:
            anchors = ', '.join(self.edits.removed)
            return replace(remembered, interpretation=remembered.interpretation
                           + f' (removed objects at their last place: {anchors})'), \
                self._remembered
        return present, self.grounder

    def _field_of(self, grounder: Grounder, field: Optional[np.ndarray]):
        """Return the per-object field evidence (over every object) for ``grounder``'s graph."""
        if field is None or grounder.graph is self._graph_all:
            return field
        return field[[self._position[obj.index] for obj in grounder.graph.objects]]

    def _graph_answer(self, grounded, grounder: Grounder, config: SelectionConfig):
        """Return ``(status, selection, candidates, targets)`` of a query ``grounder`` grounded.

        One object: its selection; the candidates (several on AMBIGUOUS) and the one target.
        A plural ("all the cans"): every object it denotes is a target, and the selection holds
        them all, one instance per target, in the targets' order.
        """
        objects = grounder.graph.objects

        def candidate(k, s):
            return Candidate(objects[k].label, float(min(1.0, s)),
                             replace(self._published_box(objects[k], config), score=float(s)))

        if grounded.targets:
            scores = [float(min(1.0, max(s, config.threshold))) for _, s in grounded.targets]
            chosen = merge_selections([self._object_selection(objects[k], score, config)
                                       for (k, _), score in zip(grounded.targets, scores)])
            targets = [candidate(k, s) for (k, _), s in zip(grounded.targets, scores)]
            return QueryStatus.OK, chosen, targets, targets
        best_object, best_score = grounded.candidates[0]
        score = float(min(1.0, max(best_score, config.threshold)))
        chosen = self._object_selection(objects[best_object], score, config)
        status = QueryStatus.AMBIGUOUS if grounded.status == AMBIGUOUS else QueryStatus.OK
        reported = grounded.candidates if status == QueryStatus.AMBIGUOUS else \
            grounded.candidates[:1]
        candidates = [candidate(k, s) for k, s in reported]
        return status, chosen, candidates, candidates[:1]


def merge_selections(selections: List[Selection]) -> Selection:
    """Return one selection holding ``selections`` in order, one instance each (a plural).

    A part that is not ``ok`` (its object's Gaussians all below the opacity floor) makes the
    whole not ok, with its reason.
    """
    for part in selections:
        if not part.ok:
            return part

    def joined(name):
        parts = [getattr(part, name) for part in selections]
        return None if any(p is None for p in parts) else np.concatenate(parts)

    return Selection(True, '', joined('indices'), joined('points'), joined('colors'),
                     joined('scores'), [p.best for p in selections],
                     num_candidates=sum(p.num_candidates for p in selections),
                     normals=joined('normals'), curvature=joined('curvature'))
