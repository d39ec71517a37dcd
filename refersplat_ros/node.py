"""The ``refersplat`` node: referring queries in; target cloud, pose, mask and markers out.

A lifecycle node (rclpy ``LifecycleNode``) around ``ReferringModel``
(``core/inference/model.py``); it holds no algorithm. Transitions:

- configure: load scene + checkpoint + text encoder onto ``device`` (CUDA if available, else
  CPU) and precompute the query-independent field; on a bad file it logs why and stays
  unconfigured (no crash loop). Files must be regular files of at most ``load.max_file_mb``
  (``/dev/zero``, a FIFO or a directory are refused at once, with the reason).
- activate: publish the scene cloud (latched) and start serving queries.
- deactivate: stop serving (queries get NOT_READY).
- cleanup: free the model (and the CUDA cache).

Every query (topic ``refer_query`` -- ``/refer_query`` without a namespace -- or action
``~/refer``) gets exactly one ``ReferResult`` on ``~/result``, whatever happens:
INVALID_QUERY, NOT_READY, DROPPED (queue full, or waited past ``query.time_budget_s``), ERROR (an
exception while serving, or the query ran past its time budget; the node keeps serving),
NO_MATCH, OK or AMBIGUOUS (several objects fit: the best one is published like OK, all of them
are listed in the result's ``candidates``; ``interpretation`` says how the query was read).
Queries are served in arrival order by one worker thread from a bounded queue
(``query.queue_size``, 4: under a flood a served query waits for at most 4 others, and overflow
is answered in about a millisecond). All outputs of one query share one header (frame =
``frame_id``, stamp = the node clock when the result is made).
Action goals are validated like the parameters (``top_k`` 0 or 1-64, ``score_threshold`` 0 or
0.01-0.99; anything else is INVALID_QUERY), and the action's services keep deep histories
(``refersplat_ros.qos``) so that a burst of goals is answered goal by goal.

SIGINT and SIGTERM are handled alike in every state, configuring included: the node exits with
status 0 within about a second, after destroying its DDS entities (nothing left in /dev/shm).

With ``autostart`` (default true) ``main`` configures and activates the node itself so a plain
``ros2 run`` / launch works without a lifecycle manager.
"""
from collections import deque
from concurrent.futures import Future as TaskFuture
from dataclasses import dataclass, field
import logging
import os
import queue
import sys
import threading
import time
from typing import Callable, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.task import Future
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from refersplat_ros import topics
from refersplat_ros.action import Refer
from refersplat_ros.conversions import (BOX_RGBA, camera_from_msgs, camera_info, candidate_msg,
                                        depth_to_image, mono8_to_image, pose_msg, target_label,
                                        target_markers, xyz_to_pointcloud2)
from refersplat_ros.core.errors import ReferSplatError
from refersplat_ros.core.inference.queries import (ANSWERED, QueryStatus, status_name,
                                                   validate_overrides, validate_query)
from refersplat_ros.core.inference.selection import RANKINGS, SelectionConfig
from refersplat_ros.core.inference.target_view import empty_view
from refersplat_ros.core.language.ground import GROUNDINGS, GroundingConfig
from refersplat_ros.core.scene.frames import FrameError, RigidTransform
from refersplat_ros.msg import ReferResult
from refersplat_ros.qos import (ACTION_FEEDBACK_QOS, ACTION_SERVICE_QOS, CAMERA_QOS, LATCHED,
                                QUERY_QOS, RESULT_QOS)
from refersplat_ros.srv import LoadScene

#: Camera poses kept to pair each CameraInfo with the pose nearest its stamp (1 s at 64 Hz).
CAMERA_POSE_HISTORY = 64

__all__ = ['BOX_RGBA', 'LATCHED', 'QUERY_QOS', 'RESULT_QOS', 'ReferSplatNode', 'main']


class _ShuttingDown(BaseException):
    """The process is shutting down (SIGINT/SIGTERM): stop waiting, answer nothing more.

    A BaseException, like KeyboardInterrupt: it passes through rclpy's lifecycle transition
    (which would otherwise try to publish the transition on a context already shut down and log
    an error) and through the executor, to ``main``.
    """


def _reason(exc: BaseException) -> str:
    """Return the message of a failure: a named error's own text, else its type and text."""
    if isinstance(exc, ReferSplatError) and str(exc):
        return str(exc)
    return f'{type(exc).__name__}: {exc}' if str(exc) else type(exc).__name__


@dataclass
class _Job:
    """One query waiting for the worker."""

    query_id: int
    text: str
    received: float                                   # time.monotonic() at receipt
    top_k: int = 0                                    # 0 = parameter
    threshold: float = 0.0                            # <= 0 = parameter
    camera_info: Optional[CameraInfo] = None          # the goal's camera, if it gave one
    camera_pose: Optional[PoseStamped] = None
    feedback: Optional[Callable[[str], None]] = None  # action feedback
    future: Optional[Future] = None                   # completed for the action's coroutine
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[ReferResult] = None


@dataclass
class _Tracked:
    """The target that tracking mode re-renders for each new camera pose."""

    query_id: int
    indices: np.ndarray
    last: float = 0.0          # time.monotonic() of the last render published
    renders: int = 0


def _descriptor(description, read_only=False, float_range=None, int_range=None):
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if float_range is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(float_range[0]), to_value=float(float_range[1]), step=0.0)]
    if int_range is not None:
        descriptor.integer_range = [IntegerRange(
            from_value=int(int_range[0]), to_value=int(int_range[1]), step=1)]
    return descriptor


# name: (default, description, read_only, float range, int range). Runtime-changeable values are
# validated by the ranges (rclpy rejects out-of-range sets) and read-only ones cannot change.
PARAMETERS = {
    'scene': ('', 'Gaussian scene file (.ply or 3DGS .pth)', True, None, None),
    'checkpoint': ('', 'referring-field checkpoint (.safetensors) trained on that scene', True,
                   None, None),
    'text_encoder': ('', 'HF model name or local folder (offline); empty = bundled MiniLM', True,
                     None, None),
    'text_encoder_quantize': ('auto', "'auto' (int8 on the CPU when language.grounding is "
                              "'graph', else none), 'none' or 'int8' (int8 weights in the "
                              "encoder's linear layers, CPU only; "
                              'docs/BENCHMARKS.md#text-encoder)',
                              True, None, None),
    'text_encoder_threads': (1, 'torch threads for encoding one query; 0 = all', True, None,
                             (0, 1024)),
    'field_table_dtype': ('float32', "storage of the field's inference table: float32 or "
                          "float16 (half the memory; used by grounding 'field')", True, None,
                          None),
    'device': ('auto', "'auto' (CUDA if available, else CPU), 'cpu' or 'cuda'", True, None,
               None),
    'frame_id': ('scene', 'the scene frame (of the outputs unless output_frame is set)', True,
                 None, None),
    'output_frame': ('', 'frame of every pose, cloud, box and marker; empty = frame_id (no '
                     'transform)', True, None, None),
    'output_transform.translation': ([0.0, 0.0, 0.0], 'position of the scene frame origin in '
                                     'output_frame (metres)', True, None, None),
    'output_transform.rotation': ([0.0, 0.0, 0.0, 1.0], 'orientation (x, y, z, w) of the scene '
                                  'frame in output_frame (unit quaternion)', True, None, None),
    'camera.info_topic': (topics.CAMERA_INFO, 'sensor_msgs/CameraInfo of the live camera '
                          '(rectified); empty = no live camera', True, None, None),
    'camera.pose_topic': (topics.CAMERA_POSE, 'geometry_msgs/PoseStamped of the camera '
                          'optical frame in frame_id or output_frame; empty = none', True, None,
                          None),
    'tracking.enabled': (False, 'after an answer, re-render the target in the live camera for '
                         'each new camera pose until a new query or ~/clear', False, None, None),
    'tracking.max_rate_hz': (5.0, 'most tracking renders per second', False, (0.1, 100.0),
                             None),
    'metric_scale': (1.0, 'metres per scene unit for poses, boxes and clouds', True,
                     (1e-6, 1e6), None),
    'selection.threshold': (0.5, 'select Gaussians with sigmoid(response) >= threshold', False,
                            (0.01, 0.99), None),
    'selection.min_opacity': (0.05, 'ignore Gaussians with opacity below this', False,
                              (0.0, 0.99), None),
    'selection.min_gaussians': (10, 'fewer selected Gaussians than this is NO_MATCH', False,
                                None, (1, 1_000_000)),
    'selection.cluster': (True, 'split the selection into instances (DBSCAN)', False, None,
                          None),
    'selection.cluster_eps': (0.0, 'DBSCAN radius in scene units; 0 = automatic', False,
                              (0.0, 1e6), None),
    'selection.top_k': (1, 'instances merged into the target (multi-instance queries)', False,
                        None, (1, 64)),
    'selection.upright': (True, 'box z axis = scene up (else free 3D box)', False, None, None),
    'selection.seen_fraction': (0.05, 'well seen: visibility >= this x the 90th percentile; 0 = '
                                'trust every Gaussian (no visibility rule)', False, (0.0, 1.0),
                                None),
    'selection.rank_by': ('support', "rank instances by 'support' (probability x visibility) "
                          "or 'mass' (probability)", False, None, None),
    'selection.propagate': (True, 'poorly seen Gaussians join the instance of their nearest '
                            'well-seen one', False, None, None),
    'selection.propagation_radius': (0.0, 'largest distance to that neighbour (scene units); '
                                     '0 = automatic', False, (0.0, 1e6), None),
    'selection.propagation_hops': (8, 'steps of propagation into the inside of an object, each '
                                   'from the Gaussians of the step before; 1 = from well-seen '
                                   'Gaussians only', False, None, (1, 64)),
    'language.grounding': ('graph', "'graph': ground queries in the object graph (names, colours, "
                           "relations, ordinals; docs/LANGUAGE.md); 'field': the referring "
                           'field alone (the paper)', False, None, None),
    'language.ambiguity_margin': (0.15, 'the best object must lead the next by this fraction of '
                                  'its score, else the answer is AMBIGUOUS', False, (0.0, 1.0),
                                  None),
    'query.max_chars': (512, 'longer queries are INVALID_QUERY', False, None, (1, 100_000)),
    'query.queue_size': (4, 'queries waiting beyond this are DROPPED (a served query waits for '
                         'at most this many others)', True, None, (1, 10_000)),
    'query.time_budget_s': (10.0, 'seconds from receipt: a query that waited longer is DROPPED, '
                            'one still running then ends with ERROR; 0 = no limit', False,
                            (0.0, 3600.0), None),
    'query.cache_mb': (64, 'memory for the word features of recent sentences (MiB)', True, None,
                       (0, 65_536)),
    'load.max_file_mb': (4096, 'scene and checkpoint files must be regular files of at most this '
                         'size (MiB)', False, None, (1, 1_048_576)),
    'mask.dataset': ('', 'dataset folder whose camera mask.view_index renders ~/target/mask '
                     'when no camera is given (topics or goal)', True, None, None),
    'mask.view_index': (-1, 'index into the dataset views (sorted by name); -1 = no mask', True,
                        None, (-1, 1_000_000)),
    'scene_cloud.max_points': (50_000, 'decimate ~/scene/cloud to at most this many points',
                               True, None, (1, 100_000_000)),
    'diagnostics_period': (1.0, 'seconds between /diagnostics messages', True, (0.05, 3600.0),
                           None),
    'autostart': (True, 'configure and activate on start (no lifecycle manager needed)', True,
                  None, None),
}


class ReferSplatNode(LifecycleNode):
    """Lifecycle node serving referring queries on a trained ReferSplat field."""

    def __init__(self, **kwargs):
        super().__init__(topics.NODE_NAME, **kwargs)
        for name, (default, description, read_only, frange, irange) in PARAMETERS.items():
            descriptor = _descriptor(description, read_only, frange, irange)
            # number lists: integers too ([0, 0, 1]); checked at configure
            descriptor.dynamic_typing = isinstance(default, list)
            self.declare_parameter(name, default, descriptor)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self._model = None
        self._active = False
        self._next_id = 1
        self._id_lock = threading.Lock()
        self._queue = queue.Queue(maxsize=self.get_parameter('query.queue_size').value)
        self._stats = {'served': 0, 'dropped': 0, 'errors': 0, 'last_status': '',
                       'last_latency_ms': 0.0, 'timings_ms': {}}
        # Outputs exist in every state so that NOT_READY can be answered before configure.
        self._result_pub = self.create_publisher(ReferResult, topics.RESULT, RESULT_QOS)
        self._cloud_pub = self.create_publisher(PointCloud2, topics.TARGET_CLOUD, LATCHED)
        self._pose_pub = self.create_publisher(PoseStamped, topics.TARGET_POSE, LATCHED)
        self._mask_pub = self.create_publisher(Image, topics.TARGET_MASK, LATCHED)
        self._info_pub = self.create_publisher(CameraInfo, topics.TARGET_CAMERA_INFO,
                                               LATCHED)
        self._depth_pub = self.create_publisher(Image, topics.TARGET_DEPTH, LATCHED)
        self._markers_pub = self.create_publisher(MarkerArray, topics.MARKERS, LATCHED)
        self._scene_pub = self.create_publisher(PointCloud2, topics.SCENE_CLOUD, LATCHED)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(String, topics.QUERY, self._on_query, QUERY_QOS)
        # Every goal is accepted and answered with a ReferResult (an invalid one as
        # INVALID_QUERY, with the reason); deep service histories keep a burst of goals whole.
        self._action = ActionServer(
            self, Refer, topics.REFER_ACTION, execute_callback=self._execute_goal,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _goal: CancelResponse.REJECT,
            goal_service_qos_profile=ACTION_SERVICE_QOS,
            result_service_qos_profile=ACTION_SERVICE_QOS,
            cancel_service_qos_profile=ACTION_SERVICE_QOS,
            feedback_pub_qos_profile=ACTION_FEEDBACK_QOS)
        self.create_service(LoadScene, topics.LOAD_SCENE, self._on_load_scene)
        # The live camera (docs/ROBOT.md): the newest CameraInfo and pose, read by the worker.
        self._output_tf = RigidTransform.identity()
        self._camera_lock = threading.Lock()
        self._camera_info: Optional[CameraInfo] = None
        self._camera_poses = deque(maxlen=CAMERA_POSE_HISTORY)   # PoseStamped, newest last
        self._track_lock = threading.Lock()
        self._tracked: Optional[_Tracked] = None
        self._track_generation = 0     # bumped by every stop: a query started before keeps off
        self._track_pending = False
        info_topic = self.get_parameter('camera.info_topic').value
        pose_topic = self.get_parameter('camera.pose_topic').value
        if info_topic:
            self.create_subscription(CameraInfo, info_topic, self._on_camera_info, CAMERA_QOS)
        if pose_topic:
            self.create_subscription(PoseStamped, pose_topic, self._on_camera_pose, CAMERA_QOS)
        self.create_service(Trigger, topics.CLEAR, self._on_clear)
        # Wakes the executor when the worker finishes an action's query, so the goal's coroutine
        # resumes at once.
        self._wake = self.create_guard_condition(lambda: None)
        self.create_timer(self.get_parameter('diagnostics_period').value,
                          self._publish_diagnostics)
        self._stop = threading.Event()
        # Every torch computation of the process runs on the worker thread: model loads are
        # handed to it (``_on_worker``) and nothing else touches torch. A parallel torch op on
        # a second thread gives the process a second OpenMP team, and queries on the worker
        # then ran about 1.3x slower (docs/BENCHMARKS.md#query-latency).
        self._tasks: 'queue.Queue' = queue.Queue()
        self._worker = threading.Thread(target=self._work, name='refersplat-queries',
                                        daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load scene + checkpoint + encoder; stay unconfigured with a clear log on failure."""
        scene = self.get_parameter('scene').value
        checkpoint = self.get_parameter('checkpoint').value
        try:
            self._output_tf = self._read_output_transform()
        except FrameError as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'configuring: loading {scene!r} and {checkpoint!r}')
        try:
            self._model = self._on_worker(self._load, scene, checkpoint)
        except Exception as exc:  # any load failure: log, refuse the transition, keep running
            self.get_logger().error(f'configure failed: {_reason(exc)}')
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publish the scene cloud and start serving queries."""
        self._publish_scene_cloud()
        self._active = True
        self.get_logger().info(
            f'active: send queries on {self.resolve_topic_name(topics.QUERY)} or the '
            f'{self.resolve_topic_name(topics.REFER_ACTION)} action')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving: queries are answered NOT_READY."""
        self._active = False
        self._stop_tracking()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and the GPU memory it held."""
        self._active = False
        self._free_model()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._free_model()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ model
    def _load(self, scene: str, checkpoint: str):
        from refersplat_ros.core.scene.cameras import read_colmap_model
        from refersplat_ros.core.inference.model import ReferringModel
        from refersplat_ros.core.devices import resolve_device
        from refersplat_ros.core.text.encoder import TextEncoderConfig
        if not scene or not checkpoint:
            raise ValueError("parameters 'scene' and 'checkpoint' must name files")
        device = resolve_device(self.get_parameter('device').value)
        encoder = self.get_parameter('text_encoder').value
        encoder_config = TextEncoderConfig(
            cache_bytes=self.get_parameter('query.cache_mb').value * 2**20,
            quantize=self._encoder_quantize(device),
            num_threads=self.get_parameter('text_encoder_threads').value,
            **({'model': encoder} if encoder else {}))
        mask_camera = None
        view = self.get_parameter('mask.view_index').value
        if view >= 0:
            dataset = self.get_parameter('mask.dataset').value
            cameras = read_colmap_model(f'{dataset}/sparse/0')
            names = sorted(cameras)
            if view >= len(names):
                raise ValueError(f'mask.view_index {view} but {dataset} has {len(names)} views')
            mask_camera = cameras[names[view]]
        start = time.monotonic()
        model = ReferringModel.load(
            scene, checkpoint, encoder_config, device, mask_camera,
            max_file_bytes=self.get_parameter('load.max_file_mb').value * 2**20,
            table_dtype=self.get_parameter('field_table_dtype').value)
        self.get_logger().info(
            f'loaded {model.num_gaussians} Gaussians from {scene} and {checkpoint} on '
            f"{'GPU (CUDA)' if device.type == 'cuda' else 'CPU'} ({device}) in "
            f'{time.monotonic() - start:.1f} s; mask view: '
            f"{mask_camera.name if mask_camera is not None else 'none'}")
        return model

    def _encoder_quantize(self, device) -> str:
        """Resolve ``text_encoder_quantize``: 'auto' = int8 for graph grounding on the CPU.

        The object graph compares sentence vectors of one encoder with each other: with int8 it
        gave the same answer to 865 of the language benchmark's 866 queries (the other became
        right; docs/BENCHMARKS.md#text-encoder-int8-on-the-language-benchmark) at about twice
        the speed. The field was trained on float32 word features (int8 changed up to 14 % of
        its answers there, by kind), so grounding 'field' keeps them.
        """
        value = self.get_parameter('text_encoder_quantize').value
        if value != 'auto':
            return value
        graph = self.get_parameter('language.grounding').value == 'graph'
        return 'int8' if graph and device.type == 'cpu' else 'none'

    def _free_model(self):
        self._stop_tracking()
        model, self._model = self._model, None
        if model is not None and model.device.type == 'cuda':
            import torch
            del model
            torch.cuda.empty_cache()

    def _on_load_scene(self, request, response):
        try:
            model = self._on_worker(self._load, request.scene_path, request.checkpoint_path)
        except Exception as exc:
            response.success = False
            response.message = f'load failed, previous scene kept: {_reason(exc)}'
            self.get_logger().error(response.message)
            return response
        self._stop_tracking()  # its Gaussian indices belong to the previous scene
        self._model = model
        if self._active:
            self._publish_scene_cloud()
        response.success = True
        response.num_gaussians = model.num_gaussians
        response.message = f'loaded {model.num_gaussians} Gaussians from {request.scene_path}'
        return response

    # ------------------------------------------------------------------ frames and camera
    def _out_frame(self) -> str:
        return self.get_parameter('output_frame').value or self.get_parameter('frame_id').value

    def _read_output_transform(self) -> RigidTransform:
        """Return the scene frame's pose in ``output_frame`` (identity without one)."""
        get = self.get_parameter
        if not get('output_frame').value:
            return RigidTransform.identity()
        values = []
        for name, size in (('output_transform.translation', 3), ('output_transform.rotation', 4)):
            value = get(name).value
            try:  # any numbers (YAML [0, 0, 1] is an integer list)
                numbers = [float(v) for v in value]
            except (TypeError, ValueError):
                raise FrameError(f'{name} must be a list of {size} numbers, got {value!r}') \
                    from None
            values.append(numbers)
        return RigidTransform.create(*values, 'output_transform')

    def _on_camera_info(self, msg: CameraInfo):
        with self._camera_lock:
            self._camera_info = msg
        self._track_pending = True

    def _on_camera_pose(self, msg: PoseStamped):
        with self._camera_lock:
            self._camera_poses.append(msg)
        self._track_pending = True

    def _live_camera_msgs(self):
        """Return the newest CameraInfo and the camera pose nearest its stamp (or None, None)."""
        with self._camera_lock:
            info, poses = self._camera_info, list(self._camera_poses)
        if info is None or not poses:
            return None, None
        stamp = Time.from_msg(info.header.stamp).nanoseconds
        if stamp == 0:
            return info, poses[-1]
        # the pose at the image's time: nearest stamp, the newest on a tie (or unstamped poses)
        return info, min(reversed(poses), key=lambda p: abs(
            Time.from_msg(p.header.stamp).nanoseconds - stamp))

    def _camera(self, info, pose):
        return camera_from_msgs(info, pose, self.get_parameter('frame_id').value,
                                self.get_parameter('output_frame').value, self._output_tf,
                                self.get_parameter('metric_scale').value)

    def _camera_for(self, job: '_Job'):
        """Return (camera, its CameraInfo, note) for a query: the goal's, else the live one.

        A bad camera in the goal raises FrameError (the goal is INVALID_QUERY); a bad live camera
        is left out with a note (the answer uses the reference view and the mask view).
        """
        info, pose = job.camera_info, job.camera_pose
        if info is not None and (info.width or info.height or any(info.k) or any(info.p)):
            unset = (pose is None or (not pose.header.frame_id and pose.header.stamp.sec == 0
                                      and pose.header.stamp.nanosec == 0
                                      and pose.pose == PoseStamped().pose))
            if unset:
                raise FrameError('camera in the goal: camera_info is set but camera_pose is '
                                 'not (give both, or neither)')
            try:
                return self._camera(info, pose), info, ''
            except FrameError as exc:
                raise FrameError(f'camera in the goal: {exc}') from None
        info, pose = self._live_camera_msgs()
        if info is None:
            return None, None, ''
        try:
            return self._camera(info, pose), info, ''
        except FrameError as exc:
            return None, None, f'live camera not used: {exc}'

    def _publish_view(self, view, info: CameraInfo):
        """Publish a target view stamped with its camera's header (for message_filters)."""
        header = Header(stamp=info.header.stamp, frame_id=info.header.frame_id)
        self._info_pub.publish(info)
        self._mask_pub.publish(mono8_to_image(view.mask, header))
        self._depth_pub.publish(depth_to_image(view.depth, header))

    def _stop_tracking(self) -> Optional[_Tracked]:
        """End tracking (a new query, ~/clear, a new or freed model); return what was tracked."""
        with self._track_lock:
            tracked, self._tracked = self._tracked, None
            self._track_generation += 1
        return tracked

    def _track(self):
        """Tracking mode: re-render the tracked target for the newest camera (rate-limited)."""
        tracked, model = self._tracked, self._model
        if tracked is None or model is None or not self._active or not self._track_pending:
            return
        get = self.get_parameter
        if not get('tracking.enabled').value:
            return
        if time.monotonic() - tracked.last < 1.0 / get('tracking.max_rate_hz').value:
            return
        self._track_pending = False
        info, pose = self._live_camera_msgs()
        if info is None:
            return
        tracked.last = time.monotonic()  # failures, too, wait for the next interval
        try:
            camera = self._camera(info, pose)
        except FrameError as exc:
            self.get_logger().warning(f'tracking: live camera not used: {exc}',
                                      throttle_duration_sec=5.0)
            return
        view = model.render_target(tracked.indices, camera, self._selection_config(0, 0.0))
        with self._track_lock:  # ~/clear answered before this point: nothing is published
            if self._tracked is not tracked:
                return  # cleared or replaced while rendering
            self._publish_view(view, info)
            tracked.last = time.monotonic()
            tracked.renders += 1
        self._stats['tracking_renders'] = self._stats.get('tracking_renders', 0) + 1
        self._stats['tracking_ms'] = view.render_ms

    def _on_clear(self, request, response):
        tracked = self._stop_tracking()
        response.success = True
        response.message = (f'stopped tracking query {tracked.query_id} after '
                            f'{tracked.renders} renders' if tracked is not None
                            else 'nothing was being tracked')
        return response

    # ------------------------------------------------------------------ parameters
    def _validate_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == 'selection.cluster_eps' and param.value < 0:
                return SetParametersResult(successful=False, reason='cluster_eps must be >= 0')
            if param.name == 'selection.rank_by' and param.value not in RANKINGS:
                return SetParametersResult(successful=False,
                                           reason=f'rank_by must be one of {RANKINGS}')
            if param.name == 'language.grounding' and param.value not in GROUNDINGS:
                return SetParametersResult(successful=False,
                                           reason=f'grounding must be one of {GROUNDINGS}')
        return SetParametersResult(successful=True)

    def _selection_config(self, top_k: int, threshold: float):
        get = self.get_parameter
        return SelectionConfig(
            threshold=threshold if threshold > 0 else get('selection.threshold').value,
            min_opacity=get('selection.min_opacity').value,
            min_gaussians=get('selection.min_gaussians').value,
            cluster=get('selection.cluster').value,
            cluster_eps=get('selection.cluster_eps').value,
            top_k=top_k if top_k > 0 else get('selection.top_k').value,
            upright=get('selection.upright').value,
            seen_fraction=get('selection.seen_fraction').value,
            rank_by=get('selection.rank_by').value,
            propagate=get('selection.propagate').value,
            propagation_radius=get('selection.propagation_radius').value,
            propagation_hops=get('selection.propagation_hops').value,
            metric_scale=get('metric_scale').value)

    # ------------------------------------------------------------------ queries
    def _new_job(self, text, **kwargs) -> _Job:
        with self._id_lock:
            query_id, self._next_id = self._next_id, self._next_id + 1
        return _Job(query_id, text, time.monotonic(), **kwargs)

    def _submit(self, job: _Job):
        """Queue a job; an invalid query or a full queue is answered at once."""
        self._stop_tracking()  # any new query ends tracking
        reason = (validate_query(job.text, self.get_parameter('query.max_chars').value)
                  or validate_overrides(job.top_k, job.threshold))
        if reason is not None:
            self._finish(job, ReferResult.INVALID_QUERY, reason)
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._stats['dropped'] += 1
            self._finish(job, ReferResult.DROPPED,
                         f'query queue full ({self._queue.maxsize} waiting)')

    def _on_query(self, msg: String):
        self._submit(self._new_job(msg.data))

    async def _execute_goal(self, goal_handle):
        goal = goal_handle.request
        start = time.monotonic()

        def feedback(stage):
            elapsed = time.monotonic() - start
            fb = Refer.Feedback(stage=stage)
            fb.elapsed = Duration(seconds=elapsed).to_msg()
            goal_handle.publish_feedback(fb)

        job = self._new_job(goal.text, top_k=goal.top_k, threshold=goal.score_threshold,
                            camera_info=goal.camera_info, camera_pose=goal.camera_pose,
                            feedback=feedback, future=Future())
        feedback('queued')
        self._submit(job)
        await job.future  # the executor keeps serving other callbacks meanwhile
        goal_handle.succeed()
        return Refer.Result(result=job.result)

    def _shutting_down(self) -> bool:
        return self._stop.is_set() or not self.context.ok()

    def _on_worker(self, function, *args):
        """Run ``function(*args)`` on the worker thread, wait, return its result or raise.

        Raises ``_ShuttingDown`` as soon as the process is told to stop (SIGINT and SIGTERM
        shut the context down), even while the worker is still busy with a long load.
        """
        if threading.current_thread() is self._worker:
            return function(*args)
        task = TaskFuture()
        self._tasks.put((task, function, args))
        while True:
            try:
                return task.result(timeout=0.05)
            except TimeoutError:
                if self._shutting_down():
                    task.cancel()
                    raise _ShuttingDown() from None
                if not self._worker.is_alive():
                    raise RuntimeError('the worker thread has stopped') from None

    def _run_tasks(self):
        while True:
            try:
                task, function, args = self._tasks.get_nowait()
            except queue.Empty:
                return
            if not task.set_running_or_notify_cancel():
                continue
            try:
                task.set_result(function(*args))
            except BaseException as exc:  # handed to the waiting caller
                task.set_exception(exc)

    def _work(self):
        while not self._shutting_down():
            self._run_tasks()
            try:
                job = self._queue.get(timeout=0.05 if self._tracked is None else 0.01)
            except queue.Empty:
                try:
                    self._track()
                except Exception as exc:  # tracking never takes the worker down
                    if self._shutting_down():
                        return
                    self._stats['errors'] += 1
                    self.get_logger().error(f'tracking render failed: {_reason(exc)}',
                                            throttle_duration_sec=5.0)
                continue
            try:
                self._serve(job)
            except Exception as exc:  # never let one query take the worker down
                if self._shutting_down():
                    return  # a publisher of a context being shut down: stop quietly
                self._stats['errors'] += 1
                self.get_logger().error(f'query {job.query_id} failed: {exc!r}')
                if not job.done.is_set():
                    try:
                        self._finish(job, ReferResult.ERROR, _reason(exc))
                    except Exception:
                        if self._shutting_down():
                            return
                        raise

    def _serve(self, job: _Job):
        model = self._model
        if not self._active or model is None:
            self._finish(job, ReferResult.NOT_READY,
                         'no referring field loaded' if model is None else 'node is not active')
            return
        budget = self.get_parameter('query.time_budget_s').value
        waited = time.monotonic() - job.received
        if budget > 0 and waited >= budget:
            self._stats['dropped'] += 1
            self._finish(job, ReferResult.DROPPED,
                         f'waited {waited:.2f} s in the queue, over query.time_budget_s '
                         f'({budget:g} s)')
            return
        generation = self._track_generation
        try:
            camera, info, note = self._camera_for(job)
        except FrameError as exc:
            self._finish(job, ReferResult.INVALID_QUERY, str(exc))
            return
        model.set_grounding(GroundingConfig(
            grounding=self.get_parameter('language.grounding').value,
            ambiguity_margin=self.get_parameter('language.ambiguity_margin').value))
        outcome = model.query(job.text, self._selection_config(job.top_k, job.threshold),
                              max_chars=self.get_parameter('query.max_chars').value,
                              on_stage=job.feedback,
                              time_budget_s=budget, spent_s=waited, camera=camera)
        if job.feedback:
            job.feedback('publishing')
        notes = [outcome.message] if outcome.message else []
        if outcome.view is not None and not outcome.view.visible:
            notes.append(f'no mask: {outcome.view.reason}')
        if note:
            notes.append(note)
        result = self._finish(job, int(outcome.status), '; '.join(notes), outcome,
                              publish=False)
        header = result.header
        tf = self._output_tf
        if outcome.status in ANSWERED:  # OK, or AMBIGUOUS: its best candidate, like OK
            sel = outcome.selection
            best = sel.best
            pose = pose_msg(*tf.apply_pose(best.center, best.quaternion_xyzw))
            result.pose, result.score = pose, sel.score
            result.bbox_size.x, result.bbox_size.y, result.bbox_size.z = map(float, best.extent)
            result.num_gaussians = len(sel.indices)
            result.cloud = xyz_to_pointcloud2(tf.apply_points(sel.points), header,
                                              rgb=sel.colors, score=sel.scores)
            self._pose_pub.publish(PoseStamped(header=header, pose=pose))
            boxes = [(pose_msg(*tf.apply_pose(i.center, i.quaternion_xyzw)), i.extent, BOX_RGBA)
                     for i in sel.instances]
            label = target_label(job.text, outcome.status, sel.score, len(outcome.candidates),
                                 outcome.interpretation)
            self._markers_pub.publish(target_markers(header, boxes, label))
            if self.get_parameter('tracking.enabled').value:
                with self._track_lock:  # not if ~/clear or another query came meanwhile
                    if self._track_generation == generation:
                        self._tracked = _Tracked(job.query_id, np.asarray(sel.indices),
                                                 time.monotonic())
            if outcome.view is not None:
                self._publish_view(outcome.view, info)
            elif outcome.mask is not None:
                cam = model.mask_camera
                self._mask_pub.publish(mono8_to_image(outcome.mask, header))
                self._info_pub.publish(camera_info(cam.width, cam.height, cam.fx, cam.fy,
                                                   cam.cx, cam.cy, header))
            self._cloud_pub.publish(result.cloud)
        elif outcome.status == QueryStatus.NO_MATCH:
            if camera is not None:  # nothing to see in the camera: an empty mask, NaN depth
                self._publish_view(empty_view(camera), info)
            result.cloud = xyz_to_pointcloud2(np.zeros((0, 3), np.float32), header,
                                              rgb=np.zeros((0, 3), np.uint8),
                                              score=np.zeros(0, np.float32))
            self._cloud_pub.publish(result.cloud)
            label = target_label(job.text, outcome.status, 0.0,
                                 interpretation=outcome.interpretation)
            self._markers_pub.publish(target_markers(header, [], label))
        self._complete(job, result)

    def _finish(self, job: _Job, status: int, message: str, outcome=None, publish=True):
        """Build the job's ReferResult (one header per query); publish unless told not to.

        With the model's ``outcome``: its interpretation, candidates and stage timings too.
        """
        header = Header(frame_id=self._out_frame(), stamp=self.get_clock().now().to_msg())
        result = ReferResult(header=header, query_id=job.query_id, text=job.text,
                             status=status, message=message)
        if outcome is not None:
            result.interpretation = outcome.interpretation
            result.candidates = [candidate_msg(c, self._output_tf) for c in outcome.candidates]
            t = outcome.timings_ms
            result.encode_ms = float(t.get('encode', 0.0))
            result.field_ms = float(t.get('field', 0.0))
            result.select_ms = float(t.get('select', 0.0))
            result.render_ms = float(t.get('render', 0.0))
            self._stats['timings_ms'] = dict(t)
        if publish:
            self._complete(job, result)
        return result

    def _complete(self, job: _Job, result: ReferResult):
        latency = time.monotonic() - job.received
        result.latency = Duration(seconds=latency).to_msg()
        self._result_pub.publish(result)
        self._stats['served'] += 1
        self._stats['last_status'] = status_name(result.status)
        self._stats['last_latency_ms'] = latency * 1e3
        job.result = result
        job.done.set()
        if job.future is not None:
            job.future.set_result(result)
            self._wake.trigger()

    # ------------------------------------------------------------------ other outputs
    def _publish_scene_cloud(self):
        model = self._model
        if model is None:
            return
        means, colors = model.host_points  # numpy: no torch outside the worker thread
        limit = self.get_parameter('scene_cloud.max_points').value
        if len(means) > limit:
            keep = np.random.default_rng(0).choice(len(means), limit, replace=False)
            keep.sort()
            means, colors = means[keep], colors[keep]
        header = Header(frame_id=self._out_frame(), stamp=self.get_clock().now().to_msg())
        scale = self.get_parameter('metric_scale').value
        self._scene_pub.publish(xyz_to_pointcloud2(self._output_tf.apply_points(means * scale),
                                                   header, rgb=colors))

    def _publish_diagnostics(self):
        model, tracked = self._model, self._tracked
        status = DiagnosticStatus(name='refersplat: referring field', hardware_id='refersplat')
        if model is None:
            status.level, status.message = DiagnosticStatus.WARN, 'no referring field loaded'
        elif not self._active:
            status.level, status.message = DiagnosticStatus.WARN, 'loaded, not active'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'serving queries'
        values = {
            'device': str(model.device) if model is not None else 'none',
            'num_gaussians': str(model.num_gaussians) if model is not None else '0',
            'memory_mb': f'{model.memory_bytes() / 2**20:.1f}' if model is not None else '0',
            'text_cache_mb': (f'{model.encoder.cache_nbytes / 2**20:.1f}' if model is not None
                              else '0'),
            'queries_served': str(self._stats['served']),
            'queries_dropped': str(self._stats['dropped']),
            'errors': str(self._stats['errors']),
            'queue_length': str(self._queue.qsize()),
            'last_status': self._stats['last_status'],
            'last_latency_ms': f"{self._stats['last_latency_ms']:.2f}",
            'camera': self._camera_state(),
            'tracking': ('off' if tracked is None else
                         f'query {tracked.query_id}, {tracked.renders} renders'),
            'tracking_renders': str(self._stats.get('tracking_renders', 0)),
            'last_tracking_render_ms': f"{self._stats.get('tracking_ms', 0.0):.2f}",
        }
        for stage, ms in self._stats['timings_ms'].items():
            values[f'last_{stage}_ms'] = f'{ms:.2f}'
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self._diag_pub.publish(DiagnosticArray(header=Header(
            stamp=self.get_clock().now().to_msg()), status=[status]))

    def _camera_state(self) -> str:
        with self._camera_lock:
            info, pose = self._camera_info, (self._camera_poses[-1] if self._camera_poses
                                             else None)
        if info is None and pose is None:
            return 'none'
        if info is None or pose is None:
            return 'waiting for ' + ('camera_info' if info is None else 'camera pose')
        return f'{info.width}x{info.height} in {info.header.frame_id or "(no frame)"}'

    def destroy_node(self):
        """Destroy the node with its action server and lifecycle state machine.

        rclpy (9.1.2) destroys neither in ``Node.destroy_node``; both keep the rcl node, and with
        it the DDS participant and its /dev/shm segments (~18 MB), alive past ``os._exit``.
        A node that a signal interrupted while it was constructed has no action server yet;
        rclpy's shutdown still destroys it (the context's cleanup calls this).
        """
        action = getattr(self, '_action', None)
        if action is not None:
            action.destroy()
        self._state_machine.destroy_when_not_in_use()
        super().destroy_node()

    def stop_worker(self, timeout: float = 0.5):
        """Stop the worker; wait at most ``timeout`` s (a long load is not waited for)."""
        self._stop.set()
        self._worker.join(timeout=timeout)


def main(argv=None) -> int:
    """Run the node; with ``autostart`` configure and activate it first.

    After a clean shutdown the process exits at once (``os._exit``) instead of returning: the
    node, executor and rclpy context are already shut down, and the interpreter's own teardown
    (torch, open3d, DDS objects) takes about a second, too slow for the 2 s that launch systems
    and operators allow after SIGINT/SIGTERM.
    """
    # Torch is imported by the first load, after this: its OpenMP threads then sleep instead of
    # spinning while they wait. Spinning, two threads on two cores with any other process
    # running took a 10 ms query to 440 ms (bench/robustness.py), and a flood's served queries
    # waited seconds behind ones that slow.
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    rclpy.init(args=argv)  # installs rclpy's SIGINT and SIGTERM handlers: both shut it down
    node = executor = None
    try:
        # Single-threaded on purpose: rclpy's MultiThreadedExecutor added 50-120 ms (p50) to
        # every message here (bench/query_latency.py); queries are served by the worker thread.
        # Built before the node: once the node is visible a signal may come at any moment, and
        # one that shuts the context down inside rclpy's Executor constructor leaves a half-built
        # executor whose __del__ prints a traceback.
        executor = SingleThreadedExecutor()
        node = ReferSplatNode()
        executor.add_node(node)
        if node.get_parameter('autostart').value:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException, _ShuttingDown):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # A signal shut the context down under a transition or the node's construction.
    finally:
        if node is not None:
            node.stop_worker()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
