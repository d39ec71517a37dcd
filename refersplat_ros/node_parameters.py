"""The ``refersplat`` node's parameters: one named row each, and the cache of their values.

``PARAMETERS`` is the table (name -> :class:`Parameter`); the params file
``config/refersplat.yaml`` and the README's table list the same names
(``test/test_node_parameters.py``). rclpy rejects a value out of a row's range and any change of a
read-only parameter; :meth:`NodeSettings.problem` rejects what the core's configs refuse (a
``rank_by`` or ``grounding`` that does not exist). The node keeps one :class:`NodeSettings`,
replaced in its set-parameters callback, so a query reads plain attributes instead of 40
parameter look-ups.
"""
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from refersplat_ros import topics
from refersplat_ros.core.inference.selection import SelectionConfig
from refersplat_ros.core.language.ground import GroundingConfig
from refersplat_ros.core.render.budget import RenderBudget
from refersplat_ros.core.scene.frames import FrameError, RigidTransform


@dataclass(frozen=True)
class Parameter:
    """One node parameter: its default, meaning and the values rclpy accepts for it."""

    name: str
    default: object
    description: str
    read_only: bool = False                           # set at start only (-p, params file)
    float_range: Optional[Tuple[float, float]] = None
    int_range: Optional[Tuple[int, int]] = None

    def descriptor(self) -> ParameterDescriptor:
        """Return the ``ParameterDescriptor`` that declares this parameter."""
        descriptor = ParameterDescriptor(description=self.description, read_only=self.read_only)
        # number lists: integers too ([0, 0, 1]); checked at configure
        descriptor.dynamic_typing = isinstance(self.default, list)
        if self.float_range is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(self.float_range[0]), to_value=float(self.float_range[1]),
                step=0.0)]
        if self.int_range is not None:
            descriptor.integer_range = [IntegerRange(
                from_value=int(self.int_range[0]), to_value=int(self.int_range[1]), step=1)]
        return descriptor


_ROWS = (
    Parameter('scene', '', 'Gaussian scene file (.ply or 3DGS .pth)', read_only=True),
    Parameter('checkpoint', '', 'referring-field checkpoint (.safetensors) trained on that scene',
              read_only=True),
    Parameter('text_encoder', '', 'HF model name or local folder (offline); empty = bundled '
              'MiniLM', read_only=True),
    Parameter('text_encoder_quantize', 'auto', "'auto' (int8 on the CPU when language.grounding "
              "is 'graph', else none), 'none' or 'int8' (int8 weights in the encoder's linear "
              'layers, CPU only; docs/BENCHMARKS.md#text-encoder)', read_only=True),
    Parameter('text_encoder_threads', 1, 'torch threads for encoding one query; 0 = all',
              read_only=True, int_range=(0, 1024)),
    Parameter('field_table_dtype', 'float32', "storage of the field's inference table: float32 "
              "or float16 (half the memory; used by grounding 'field')", read_only=True),
    Parameter('device', 'auto', "'auto' (CUDA if available, else CPU), 'cpu' or 'cuda'",
              read_only=True),
    Parameter('frame_id', 'scene', 'the scene frame (of the outputs unless output_frame is set)',
              read_only=True),
    Parameter('output_frame', '', 'frame of every pose, cloud, box and marker; empty = frame_id '
              '(no transform)', read_only=True),
    Parameter('output_transform.translation', [0.0, 0.0, 0.0], 'position of the scene frame '
              'origin in output_frame (metres)', read_only=True),
    Parameter('output_transform.rotation', [0.0, 0.0, 0.0, 1.0], 'orientation (x, y, z, w) of '
              'the scene frame in output_frame (unit quaternion)', read_only=True),
    Parameter('camera.info_topic', topics.CAMERA_INFO, 'sensor_msgs/CameraInfo of the live '
              'camera (rectified); empty = no live camera', read_only=True),
    Parameter('camera.pose_topic', topics.CAMERA_POSE, 'geometry_msgs/PoseStamped of the camera '
              'optical frame in frame_id or output_frame; empty = none', read_only=True),
    Parameter('pointing.topic', topics.CLICKED_POINT, 'geometry_msgs/PointStamped of a pointed '
              'object (RViz Publish Point) in frame_id or output_frame; its object becomes the '
              'target and what "it" means; empty = none', read_only=True),
    Parameter('pointing.max_distance', 0.05, 'a pointed position farther than this (metres) '
              'from every Gaussian points at nothing', float_range=(0.001, 10.0)),
    Parameter('tracking.enabled', False, 'after an answer, re-render the target in the live '
              'camera for each new camera pose until a new query or ~/clear'),
    Parameter('tracking.max_rate_hz', 5.0, 'most tracking renders per second',
              float_range=(0.1, 100.0)),
    Parameter('metric_scale', 1.0, 'metres per scene unit for poses, boxes and clouds',
              read_only=True, float_range=(1e-6, 1e6)),
    Parameter('selection.threshold', 0.5, 'select Gaussians with sigmoid(response) >= threshold',
              float_range=(0.01, 0.99)),
    Parameter('selection.min_opacity', 0.05, 'ignore Gaussians with opacity below this',
              float_range=(0.0, 0.99)),
    Parameter('selection.min_gaussians', 10, 'fewer selected Gaussians than this is NO_MATCH',
              int_range=(1, 1_000_000)),
    Parameter('selection.cluster', True, 'split the selection into instances (DBSCAN)'),
    Parameter('selection.cluster_eps', 0.0, 'DBSCAN radius in scene units; 0 = automatic',
              float_range=(0.0, 1e6)),
    Parameter('selection.top_k', 1, 'instances merged into the target (multi-instance queries)',
              int_range=(1, 64)),
    Parameter('selection.upright', True, 'box z axis = scene up (else free 3D box)'),
    Parameter('selection.seen_fraction', 0.05, 'well seen: visibility >= this x the 90th '
              'percentile; 0 = trust every Gaussian (no visibility rule)',
              float_range=(0.0, 1.0)),
    Parameter('selection.rank_by', 'support', "rank instances by 'support' (probability x "
              "visibility) or 'mass' (probability)"),
    Parameter('selection.propagate', True, 'poorly seen Gaussians join the instance of their '
              'nearest well-seen one'),
    Parameter('selection.propagation_radius', 0.0, 'largest distance to that neighbour (scene '
              'units); 0 = automatic', float_range=(0.0, 1e6)),
    Parameter('selection.propagation_hops', 8, 'steps of propagation into the inside of an '
              'object, each from the Gaussians of the step before; 1 = from well-seen Gaussians '
              'only', int_range=(1, 64)),
    Parameter('language.grounding', 'graph', "'graph': ground queries in the object graph "
              "(names, colours, relations, ordinals; docs/LANGUAGE.md); 'field': the referring "
              'field alone (the paper)'),
    Parameter('language.ambiguity_margin', 0.15, 'the best object must lead the next by this '
              'fraction of its score, else the answer is AMBIGUOUS', float_range=(0.0, 0.99)),
    Parameter('language.sentence_weight', GroundingConfig.sentence_weight, 'weight of the '
              "query's cosine with each object's training sentences in the soft grounding",
              float_range=(0.0, 100.0)),
    Parameter('language.field_weight', GroundingConfig.field_weight, 'weight of the referring '
              "field's response on each object in the soft grounding; 0 = no field pass",
              float_range=(0.0, 100.0)),
    Parameter('render.max_megapixels', RenderBudget.max_pixels / 1e6, 'most megapixels of the '
              "target's window rendered in a robot's camera; a larger window is rendered at a "
              'lower resolution and upsampled (said in the message)', float_range=(0.01, 100.0)),
    Parameter('render.max_candidates_millions', RenderBudget.max_candidates / 1e6, 'most '
              'Gaussian-pixel candidates (millions) of one such render on the CPU: a camera close '
              'to the target is rendered at a lower resolution (about 0.1 s per 2 million on '
              'a 2-core CPU)', float_range=(0.01, 1000.0)),
    Parameter('query.max_chars', 512, 'longer queries are INVALID_QUERY',
              int_range=(1, 100_000)),
    Parameter('query.queue_size', 4, 'queries waiting beyond this are DROPPED (a served query '
              'waits for at most this many others)', read_only=True, int_range=(1, 10_000)),
    Parameter('query.time_budget_s', 10.0, 'seconds from receipt: a query that waited longer is '
              'DROPPED, one still running then ends with ERROR; 0 = no limit',
              float_range=(0.0, 3600.0)),
    Parameter('query.cache_mb', 64, 'memory for the word features of recent sentences (MiB)',
              read_only=True, int_range=(0, 65_536)),
    Parameter('load.max_file_mb', 4096, 'scene and checkpoint files must be regular files of at '
              'most this size (MiB)', int_range=(1, 1_048_576)),
    Parameter('mask.dataset', '', 'dataset folder whose camera mask.view_index renders '
              '~/target/mask when no camera is given (topics or goal)', read_only=True),
    Parameter('mask.view_index', -1, 'index into the dataset views (sorted by name); -1 = no '
              'mask', read_only=True, int_range=(-1, 1_000_000)),
    Parameter('scene_cloud.max_points', 50_000, 'decimate ~/scene/cloud to at most this many '
              'points', read_only=True, int_range=(1, 100_000_000)),
    Parameter('diagnostics_period', 1.0, 'seconds between /diagnostics messages',
              read_only=True, float_range=(0.05, 3600.0)),
    Parameter('autostart', True, 'configure and activate on start (no lifecycle manager '
              'needed)', read_only=True),
)

#: The node's parameters by name, in declaration order.
PARAMETERS = {row.name: row for row in _ROWS}


class NodeSettings:
    """One consistent snapshot of the node's parameter values and the core configs they make.

    Never changed: the node replaces its snapshot with :meth:`updated` when a parameter changes,
    so the worker thread reads either the old values or the new ones, never a mix.
    """

    def __init__(self, values: Mapping[str, object]):
        self._values = {name: values[name] for name in PARAMETERS}
        get = self._values.__getitem__
        #: Selection of every query (an action goal may override top_k and the threshold).
        self.selection = SelectionConfig(
            threshold=get('selection.threshold'), min_opacity=get('selection.min_opacity'),
            min_gaussians=get('selection.min_gaussians'), cluster=get('selection.cluster'),
            cluster_eps=get('selection.cluster_eps'), top_k=get('selection.top_k'),
            upright=get('selection.upright'), seen_fraction=get('selection.seen_fraction'),
            rank_by=get('selection.rank_by'), propagate=get('selection.propagate'),
            propagation_radius=get('selection.propagation_radius'),
            propagation_hops=get('selection.propagation_hops'),
            metric_scale=get('metric_scale'))
        #: Grounding of every query; the same object until a ``language.*`` value changes.
        self.grounding = GroundingConfig(grounding=get('language.grounding'),
                                         ambiguity_margin=get('language.ambiguity_margin'),
                                         sentence_weight=get('language.sentence_weight'),
                                         field_weight=get('language.field_weight'))
        #: Work of each render in a robot's camera (queries and tracking).
        self.render_budget = RenderBudget(
            max_pixels=max(1, round(get('render.max_megapixels') * 1e6)),
            max_candidates=max(1, round(get('render.max_candidates_millions') * 1e6)))

    def __getitem__(self, name: str):
        """Return the value of parameter ``name``."""
        return self._values[name]

    def updated(self, changes: Mapping[str, object]) -> 'NodeSettings':
        """Return a snapshot with ``changes`` (names that are not the node's are ignored)."""
        known = {name: value for name, value in changes.items() if name in PARAMETERS}
        new = NodeSettings({**self._values, **known})
        if new.grounding == self.grounding:
            new.grounding = self.grounding  # unchanged: the model keeps its config
        return new

    def problem(self) -> Optional[str]:
        """Return why these values cannot be served (the core's own words), or None."""
        try:
            self.selection.validate()
            self.grounding.validate()
        except ValueError as exc:
            return str(exc)
        return None

    def selection_for(self, top_k: int = 0, threshold: float = 0.0) -> SelectionConfig:
        """Return the selection of a query; an action goal's non-zero overrides win."""
        if top_k <= 0 and threshold <= 0:
            return self.selection
        return replace(self.selection,
                       top_k=top_k if top_k > 0 else self.selection.top_k,
                       threshold=threshold if threshold > 0 else self.selection.threshold)

    @property
    def output_frame(self) -> str:
        """The frame of the outputs: ``output_frame``, else the scene frame ``frame_id``."""
        return self['output_frame'] or self['frame_id']

    def output_transform(self) -> RigidTransform:
        """Return the scene frame's pose in ``output_frame`` (identity without one).

        Raises ``FrameError`` saying which list is not numbers or not a rigid transform.
        """
        if not self['output_frame']:
            return RigidTransform.identity()
        values = []
        for name, size in (('output_transform.translation', 3), ('output_transform.rotation', 4)):
            value = self[name]
            try:  # any numbers (YAML [0, 0, 1] is an integer list)
                numbers = [float(v) for v in value]
            except (TypeError, ValueError):
                raise FrameError(f'{name} must be a list of {size} numbers, got {value!r}') \
                    from None
            values.append(numbers)
        return RigidTransform.create(*values, 'output_transform')

    def encoder_quantize(self, device_type: str) -> str:
        """Resolve ``text_encoder_quantize``: 'auto' = int8 for graph grounding on the CPU.

        The object graph compares sentence vectors of one encoder with each other: with int8 it
        gave the same answer to 865 of the language benchmark's 866 queries (the other became
        right; docs/BENCHMARKS.md#text-encoder-int8-on-the-language-benchmark) at about twice
        the speed. The field was trained on float32 word features (int8 changed up to 14 % of
        its answers there, by kind), so grounding 'field' keeps them.
        """
        value = self['text_encoder_quantize']
        if value != 'auto':
            return value
        graph = self['language.grounding'] == 'graph'
        return 'int8' if graph and device_type == 'cpu' else 'none'

    def mask_camera(self):
        """Return the dataset camera that ``mask.view_index`` names, or None (-1: no mask)."""
        from refersplat_ros.core.scene.cameras import read_colmap_model
        view, dataset = self['mask.view_index'], self['mask.dataset']
        if view < 0:
            return None
        cameras = read_colmap_model(f'{dataset}/sparse/0')
        names = sorted(cameras)
        if view >= len(names):
            raise ValueError(f'mask.view_index {view} but {dataset} has {len(names)} views')
        return cameras[names[view]]

    def load_model(self, scene: str, checkpoint: str):
        """Load a ``ReferringModel`` of these files as the parameters say (device, encoder, ...).

        Raises the core's named errors on bad files, ``ValueError`` on unnamed ones. Imports
        torch: the node calls it on its worker thread only.
        """
        from refersplat_ros.core.devices import resolve_device
        from refersplat_ros.core.inference.model import ReferringModel
        from refersplat_ros.core.text.encoder import TextEncoderConfig
        if not scene or not checkpoint:
            raise ValueError("parameters 'scene' and 'checkpoint' must name files")
        device = resolve_device(self['device'])
        encoder = self['text_encoder']
        encoder_config = TextEncoderConfig(
            cache_bytes=self['query.cache_mb'] * 2**20,
            quantize=self.encoder_quantize(device.type),
            num_threads=self['text_encoder_threads'],
            **({'model': encoder} if encoder else {}))
        return ReferringModel.load(
            scene, checkpoint, encoder_config, device, self.mask_camera(),
            max_file_bytes=self['load.max_file_mb'] * 2**20, grounding=self.grounding,
            table_dtype=self['field_table_dtype'])
