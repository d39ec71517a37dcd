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
``~/refer``) gets exactly one ``ReferResult`` on ``~/result``, whatever happens (statuses:
``msg/ReferResult.msg``; the queue's answers: ``query_worker.py``). All outputs of one query
share one header (frame = ``frame_id``, stamp = the node clock when the result is made). Action
goals are validated like the parameters (``top_k`` 0 or 1-64, ``score_threshold`` 0 or
0.01-0.99; anything else is INVALID_QUERY), and the action's services, ``~/clear`` and
``~/load_scene`` keep deep histories (``refersplat_ros.qos``) so that a burst of goals or calls
is answered call by call.

``~/load_scene`` never blocks answers: the new scene is loaded on a thread of its own while the
node keeps answering queries (with the scene it has, or NOT_READY without one), ``~/clear`` and
diagnostics; it replaces the scene only once loaded. One load at a time: a call during a load is
refused with the reason, and a load that a cleanup overtook is dropped.

SIGINT and SIGTERM are handled alike in every state, configuring included: the node exits with
status 0 within about a second, after destroying its DDS entities (nothing left in /dev/shm).

With ``autostart`` (default true) ``main`` configures and activates the node itself so a plain
``ros2 run`` / launch works without a lifecycle manager.

This module is the lifecycle and the wiring; the parts: the parameters and their cached values
(``node_parameters.py``), the query queue and its worker thread (``query_worker.py``), the
camera pairing (``live_camera.py``), tracking mode (``tracking.py``) and the messages built from
the core's answers (``conversions.py``).
"""
import logging
import os
import sys
import threading
import time

from geometry_msgs.msg import PointStamped, PoseStamped
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from refersplat_ros import topics
from refersplat_ros.action import Refer
from refersplat_ros.conversions import (camera_from_msgs, edit_markers, refer_result,
                                        result_message, scene_cloud)
from refersplat_ros.core.inference.editing import edit_scene, EditRequest
from refersplat_ros.core.inference.queries import (ANSWERED, QueryStatus, status_name,
                                                   validate_overrides, validate_query)
from refersplat_ros.core.scene.edits import EditError, edits_path, load_edits
from refersplat_ros.core.scene.frames import FrameError, RigidTransform
from refersplat_ros.live_camera import goal_camera, LiveCamera
from refersplat_ros.msg import ReferResult
from refersplat_ros.node_outputs import NodeOutputs
from refersplat_ros.node_parameters import NodeSettings, PARAMETERS
from refersplat_ros.qos import (ACTION_FEEDBACK_QOS, ACTION_SERVICE_QOS, CAMERA_QOS, LATCHED,
                                QUERY_QOS, RESULT_QOS, SERVICE_QOS)
from refersplat_ros.query_worker import (failure_reason, IDLE_WAIT_S, Job, QueryWorker,
                                         ShuttingDown)
from refersplat_ros.srv import EditScene, LoadScene
from refersplat_ros.tracking import TargetTracker

__all__ = ['LATCHED', 'QUERY_QOS', 'RESULT_QOS', 'ReferSplatNode', 'main']

#: ``EditScene`` operation constants -> ``core.inference.editing`` operations.
EDIT_OPERATIONS = {EditScene.Request.MOVE: 'move', EditScene.Request.MOVE_TO: 'move_to',
                   EditScene.Request.REMOVE: 'remove', EditScene.Request.RESTORE: 'restore',
                   EditScene.Request.RESET: 'reset'}

#: Worker wait between tracking renders: short, so a new camera pose is rendered promptly.
TRACKING_WAIT_S = 0.01


class ReferSplatNode(LifecycleNode):
    """Lifecycle node serving referring queries on a trained ReferSplat field."""

    def __init__(self, **kwargs):
        super().__init__(topics.NODE_NAME, **kwargs)
        for row in PARAMETERS.values():
            self.declare_parameter(row.name, row.default, row.descriptor())
        self._settings = NodeSettings({n: self.get_parameter(n).value for n in PARAMETERS})
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._model = None
        self._loading = ''     # the scene ~/load_scene is loading ('' = none)
        self._generation = 0   # counts models freed: a load that a cleanup overtook is dropped
        self._active = False
        self._output_tf = RigidTransform.identity()
        # label of the last OK answer's first target, or of the last pointed object: what an
        # edit without a label and "it" / "that one" in a query stand for
        self._last_target = ''
        self._edit_lock = threading.Lock()  # an edit and a load's reading of the edits file
        self._stats = {'served': 0, 'last_status': '', 'last_latency_ms': 0.0, 'timings_ms': {},
                       'tracking_errors': 0}
        self._camera = LiveCamera()  # the robot's camera (docs/ROBOT.md), read by the worker
        # Outputs exist in every state so that NOT_READY can be answered before configure.
        self._outputs = NodeOutputs(self)
        self._tracker = TargetTracker(self._camera, self._render_tracked,
                                      self._outputs.publish_view, self._warn_tracking)
        self.create_timer(self._settings['diagnostics_period'], self._publish_diagnostics)
        # Wakes the executor when the worker finishes an action's query, so the goal's coroutine
        # resumes at once.
        self._wake = self.create_guard_condition(lambda: None)
        self._create_inputs()
        # Queries, tracking renders and configure's load run on the worker
        # (``QueryWorker.call``); ``~/load_scene`` loads on a thread of its own, so that the
        # node keeps answering meanwhile. The executor's thread never touches torch.
        self._worker = QueryWorker(
            self._serve, self._answer, queue_size=self._settings['query.queue_size'],
            time_budget_s=lambda: self._settings['query.time_budget_s'],
            not_ready=self._not_ready, idle=self._idle,
            context_down=lambda: not self.context.ok(), logger=self.get_logger())
        self._worker.start()

    def _create_inputs(self):
        """Subscribe to queries and the camera; serve the action and the services."""
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
        # Deep histories here too (qos.py): a burst of calls gets one reply per call.
        # Its own reentrant group: a load in progress (a pending coroutine) holds no other
        # callback back, and a second call is answered at once (refused while loading).
        self.create_service(LoadScene, topics.LOAD_SCENE, self._on_load_scene,
                            qos_profile=SERVICE_QOS, callback_group=ReentrantCallbackGroup())
        self.create_service(Trigger, topics.CLEAR, self._on_clear, qos_profile=SERVICE_QOS)
        # Edits run on the worker between queries (each query sees one world, never a mix);
        # the call waits for them on a thread of its own, like a load.
        self.create_service(EditScene, topics.EDIT_SCENE, self._on_edit_scene,
                            qos_profile=SERVICE_QOS, callback_group=ReentrantCallbackGroup())
        if self._settings['pointing.topic']:  # RViz's Publish Point: the object under it
            self.create_subscription(PointStamped, self._settings['pointing.topic'],
                                     self._on_point, QUERY_QOS)
        # Camera messages are validated on arrival (live_camera.py): an invalid one is dropped,
        # counted (diagnostics ``camera_dropped``) and logged, never stored.
        if self._settings['camera.info_topic']:
            self.create_subscription(
                CameraInfo, self._settings['camera.info_topic'],
                lambda msg: self._camera_input(self._camera.add_info(msg)), CAMERA_QOS)
        if self._settings['camera.pose_topic']:
            self.create_subscription(
                PoseStamped, self._settings['camera.pose_topic'],
                lambda msg: self._camera_input(self._camera.add_pose(msg)), CAMERA_QOS)

    def _camera_input(self, dropped):
        """Log (throttled) why a camera message was dropped; ``dropped`` is None if kept."""
        if dropped:
            self.get_logger().warning(f'{dropped} ({self._camera.dropped} dropped so far)',
                                      throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ lifecycle transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load scene + checkpoint + encoder; stay unconfigured with a clear log on failure."""
        settings = self._settings
        scene, checkpoint = settings['scene'], settings['checkpoint']
        try:
            problem = settings.problem()  # values given at start never met the callback
            if problem:
                raise ValueError(problem)
            self._output_tf = settings.output_transform()
        except (FrameError, ValueError) as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'configuring: loading {scene!r} and {checkpoint!r}')
        try:
            self._model = self._worker.call(self._load, scene, checkpoint)
        except Exception as exc:  # any load failure: log, refuse the transition, keep running
            self.get_logger().error(f'configure failed: {failure_reason(exc)}')
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
        self._tracker.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and the GPU memory it held."""
        self._active = False
        self._free_model()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model, as cleanup does."""
        return self.on_cleanup(state)

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Validate a change (rclpy has checked ranges and read-only) and cache the values."""
        settings = self._settings.updated({p.name: p.value for p in params})
        problem = settings.problem()
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        self._settings = settings  # the next query reads them (and applies the grounding)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ model
    def _load(self, scene: str, checkpoint: str):
        """Load a model as the parameters say (on the worker thread); raise on a bad file."""
        start = time.monotonic()
        model = self._settings.load_model(scene, checkpoint)
        # the edits kept beside the checkpoint (EditError: a corrupt file fails the load); read
        # under the edit lock, so an edit in progress is either in the file or refused
        model.edits_file = edits_path(checkpoint)
        with self._edit_lock:
            model.apply_edits(load_edits(model.edits_file, model.object_labels))
        view = model.mask_camera.name if model.mask_camera is not None else 'none'
        edited = (f'; edits from {model.edits_file}: {len(model.edits.removed)} removed, '
                  f'{len(model.edits.moved)} moved' if model.edits else '')
        self.get_logger().info(
            f'loaded {model.num_gaussians} Gaussians from {scene} and {checkpoint} on '
            f"{'GPU (CUDA)' if model.device.type == 'cuda' else 'CPU'} ({model.device}) in "
            f'{time.monotonic() - start:.1f} s; mask view: {view}{edited}')
        return model

    def _free_model(self):
        self._tracker.stop()
        self._last_target = ''
        self._generation += 1
        model, self._model = self._model, None
        if model is not None and model.device.type == 'cuda':
            import torch
            del model
            torch.cuda.empty_cache()

    async def _on_load_scene(self, request, response):
        """Load on a thread of its own; the executor keeps serving everything else meanwhile."""
        response.success = False
        if self._loading:
            response.message = (f'another load is in progress ({self._loading!r}); the '
                                f'scene in use is kept, call again when it has finished')
            return response
        self._loading, generation, done = request.scene_path or '?', self._generation, Future()
        threading.Thread(target=self._load_into, name='refersplat-load', daemon=True,
                         args=(done, request.scene_path, request.checkpoint_path)).start()
        try:
            model = await done
        except Exception as exc:
            response.message = f'load failed, previous scene kept: {failure_reason(exc)}'
            self.get_logger().error(response.message)
            return response
        finally:
            self._loading = ''
        if generation != self._generation:
            response.message = 'load dropped: the node was cleaned up while it loaded'
            return response
        self._tracker.stop()  # its Gaussian indices belong to the previous scene
        self._last_target = ''  # as do the last target's label and "it"
        self._model = model
        if self._active:
            self._publish_scene_cloud()
        response.success = True
        response.num_gaussians = model.num_gaussians
        response.message = f'loaded {model.num_gaussians} Gaussians from {request.scene_path}'
        return response

    def _load_into(self, done: Future, scene: str, checkpoint: str):
        """Load a model on the calling (loader) thread into ``done``; wake the executor."""
        try:
            done.set_result(self._load(scene, checkpoint))
        except Exception as exc:  # handed to the waiting service call
            done.set_exception(exc)
        self._wake.trigger()

    # ------------------------------------------------------------------ scene edits
    async def _on_edit_scene(self, request, response):
        """Edit the scene on the worker, between queries; the executor keeps serving."""
        response.success = False
        done = Future()
        threading.Thread(target=self._edit_into, name='refersplat-edit', daemon=True,
                         args=(done, request)).start()
        try:
            reply = await done
        except Exception as exc:  # EditError and the like: nothing changed
            response.message = failure_reason(exc)
            self.get_logger().warning(f'edit_scene refused: {response.message}')
            model = self._model
            if model is not None:
                response.removed, response.moved = model.edits.removed, model.edits.moved
            return response
        response.success = True
        response.message, response.label = reply.message, reply.label
        response.removed, response.moved = reply.edits.removed, reply.edits.moved
        self.get_logger().info(f'edit_scene: {reply.message}')
        if self._active:
            self._publish_scene_cloud()
        return response

    def _edit_into(self, done: Future, request):
        """Run one edit on the worker thread into ``done``; wake the executor."""
        try:
            done.set_result(self._worker.call(self._edit, request))
        except BaseException as exc:  # handed to the waiting service call
            done.set_exception(exc)
        self._wake.trigger()

    def _edit(self, request):
        """Make one ``~/edit_scene`` request on the model (on the worker thread)."""
        with self._edit_lock:
            return self._edit_locked(request)

    def _edit_locked(self, request):
        model, settings = self._model, self._settings
        if self._loading:
            raise EditError(f'a scene is loading ({self._loading!r}): edit once it has loaded')
        if model is None:
            raise EditError('no scene is loaded: there is nothing to edit')
        operation = EDIT_OPERATIONS.get(request.operation)
        if operation is None:
            raise EditError(f'unknown edit operation {request.operation} (MOVE=1, MOVE_TO=2, '
                            'REMOVE=3, RESTORE=4, RESET=5)')
        frame = request.frame_id
        if frame in ('', settings['frame_id']):
            to_frame = RigidTransform.identity()
        elif frame == settings.output_frame:
            to_frame = self._output_tf
        else:
            raise EditError(f'frame_id {frame!r} is neither the scene frame '
                            f"{settings['frame_id']!r} nor the output frame "
                            f'{settings.output_frame!r}')
        label = request.label or ('' if operation == 'reset' else self._last_target)
        if not label and operation != 'reset':
            raise EditError('no label given and no target answered yet to stand for it')
        if operation == 'move_to':
            p, q = request.pose.position, request.pose.orientation
            values = ((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        else:
            t, q = request.transform.translation, request.transform.rotation
            values = ((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
        edit = EditRequest(operation, label, *values, frame=to_frame)
        return edit_scene(model, edit, getattr(model, 'edits_file', None), settings.selection)

    # ------------------------------------------------------------------ queries in
    def _on_query(self, msg: String):
        self._submit(self._worker.new_job(msg.data))

    def _on_point(self, msg: PointStamped):
        """Answer a pointed position like a query: its object becomes the target."""
        p = msg.point
        self._submit(self._worker.new_job(
            f'clicked ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) in {msg.header.frame_id!r}', point=msg))

    def _pointed(self, msg: PointStamped):
        """Return a pointed position in scene units of the scene frame; FrameError if foreign."""
        settings = self._settings
        frame = msg.header.frame_id
        p = [msg.point.x, msg.point.y, msg.point.z]
        if frame in ('', settings['frame_id']):
            metres = np.asarray(p, np.float64)
        elif frame == settings.output_frame:
            metres = self._output_tf.inverse().apply_points(np.asarray([p], np.float64))[0]
        else:
            raise FrameError(f'pointed position in frame {frame!r}: give it in the scene frame '
                             f"{settings['frame_id']!r} or the output frame "
                             f'{settings.output_frame!r}')
        return metres / settings['metric_scale']

    async def _execute_goal(self, goal_handle):
        goal = goal_handle.request
        start = time.monotonic()

        def feedback(stage):
            fb = Refer.Feedback(stage=stage)
            fb.elapsed = Duration(seconds=time.monotonic() - start).to_msg()
            goal_handle.publish_feedback(fb)

        job = self._worker.new_job(goal.text, top_k=goal.top_k, threshold=goal.score_threshold,
                                   camera_info=goal.camera_info, camera_pose=goal.camera_pose,
                                   feedback=feedback, future=Future())
        feedback('queued')
        self._submit(job)
        await job.future  # the executor keeps serving other callbacks meanwhile
        goal_handle.succeed()
        return Refer.Result(result=job.result)

    def _submit(self, job: Job):
        """Queue a job; an invalid query (or a full queue) is answered at once."""
        self._tracker.stop()  # any new query ends tracking
        reason = (validate_query(job.text, self._settings['query.max_chars'])
                  or validate_overrides(job.top_k, job.threshold))
        if reason is not None:
            self._answer(job, QueryStatus.INVALID_QUERY, reason)
        else:
            self._worker.submit(job)

    def _not_ready(self) -> str:
        """Return why queries cannot be served now ('' when they can)."""
        if self._model is None:
            return 'no referring field loaded'
        return '' if self._active else 'node is not active'

    # ------------------------------------------------------------------ answers out
    def _serve(self, job: Job, budget_s: float, waited_s: float):
        """Answer one query with the model and publish its outputs (on the worker thread)."""
        model, settings = self._model, self._settings
        if model is None:  # freed since the worker asked
            self._answer(job, QueryStatus.NOT_READY, self._not_ready())
            return
        generation = self._tracker.generation
        try:
            camera, info, note = self._camera_for(job)
        except FrameError as exc:
            self._answer(job, QueryStatus.INVALID_QUERY, str(exc))
            return
        if model.grounding is not settings.grounding:  # a language.* parameter changed
            model.set_grounding(settings.grounding)
        model.render_budget = settings.render_budget
        selection = settings.selection_for(job.top_k, job.threshold)
        if job.point is not None:
            try:
                pointed = self._pointed(job.point)
            except FrameError as exc:
                self._answer(job, QueryStatus.INVALID_QUERY, str(exc))
                return
            outcome = model.point(pointed, job.text, selection,
                                  settings['pointing.max_distance'] / settings['metric_scale'],
                                  camera)
        else:
            outcome = model.query(job.text, selection, max_chars=settings['query.max_chars'],
                                  on_stage=job.feedback, time_budget_s=budget_s,
                                  spent_s=waited_s, camera=camera,
                                  referent=self._last_target)
        if job.feedback:
            job.feedback('publishing')
        self._stats['timings_ms'] = dict(outcome.timings_ms)
        result = refer_result(self._header(), job.query_id, job.text, outcome.status,
                              result_message(outcome, note), outcome, self._output_tf)
        if outcome.status == QueryStatus.OK and outcome.targets and outcome.targets[0].label:
            self._last_target = outcome.targets[0].label
        if outcome.status in ANSWERED and settings['tracking.enabled']:
            self._tracker.start(job.query_id, outcome.selection.indices, generation)
        self._outputs.publish_answer(job.text, outcome, result, camera, info, model.mask_camera,
                                     self._output_tf)
        self._complete(job, result)

    def _answer(self, job: Job, status: int, message: str):
        """Answer a query that was not served (invalid, not ready, dropped, failed)."""
        self._complete(job, refer_result(self._header(), job.query_id, job.text, status,
                                         message))

    def _complete(self, job: Job, result: ReferResult):
        """Publish the query's one ReferResult and hand it to an action goal's coroutine."""
        latency = time.monotonic() - job.received
        result.latency = Duration(seconds=latency).to_msg()
        self._outputs.result.publish(result)
        self._stats['served'] += 1
        self._stats['last_status'] = status_name(result.status)
        self._stats['last_latency_ms'] = latency * 1e3
        job.result = result
        job.done.set()
        if job.future is not None:
            job.future.set_result(result)
            self._wake.trigger()

    def _header(self) -> Header:
        """Return the header of every output of one query: output frame, node clock now."""
        return Header(frame_id=self._settings.output_frame,
                      stamp=self.get_clock().now().to_msg())

    # ------------------------------------------------------------------ camera and tracking
    def _camera_from(self, info, pose):
        settings = self._settings
        return camera_from_msgs(info, pose, settings['frame_id'], settings['output_frame'],
                                self._output_tf, settings['metric_scale'])

    def _camera_for(self, job: Job):
        """Return (camera, its CameraInfo, note) for a query: the goal's, else the live one.

        A bad camera in the goal raises FrameError (the goal is INVALID_QUERY); a bad live camera
        is left out with a note (the answer uses the reference view and the mask view).
        """
        given = goal_camera(job.camera_info, job.camera_pose)
        info, pose = given or self._camera.pair()
        if info is None:
            return None, None, ''
        try:
            return self._camera_from(info, pose), info, ''
        except FrameError as exc:
            if given:
                raise FrameError(f'camera in the goal: {exc}') from None
            return None, None, f'live camera not used: {exc}'

    def _idle(self) -> float:
        """Do the worker's idle work, a tracking render; return how long to wait for a query."""
        settings = self._settings
        try:
            if self._active and settings['tracking.enabled']:
                self._tracker.step(settings['tracking.max_rate_hz'])
        except Exception as exc:  # tracking never takes the worker down
            if not self._worker.stopping:
                self._stats['tracking_errors'] += 1
                self.get_logger().error(f'tracking render failed: {failure_reason(exc)}',
                                        throttle_duration_sec=5.0)
        return TRACKING_WAIT_S if self._tracker.active else IDLE_WAIT_S

    def _warn_tracking(self, text: str):
        self.get_logger().warning(text, throttle_duration_sec=5.0)

    def _render_tracked(self, indices, info, pose):
        """Render the tracked target in a live camera (None without a model)."""
        model, settings = self._model, self._settings
        if model is None:
            return None
        model.render_budget = settings.render_budget
        return model.render_target(indices, self._camera_from(info, pose), settings.selection)

    def _on_clear(self, request, response):
        tracked = self._tracker.stop()
        response.success = True
        response.message = (f'stopped tracking query {tracked.query_id} after '
                            f'{tracked.renders} renders' if tracked is not None
                            else 'nothing was being tracked')
        return response

    # ------------------------------------------------------------------ other outputs
    def _publish_scene_cloud(self):
        model = self._model
        if model is None:
            return
        means, colors = model.host_points  # numpy: no torch outside the worker thread
        self._outputs.scene.publish(scene_cloud(
            means, colors, self._header(), self._settings['scene_cloud.max_points'],
            self._settings['metric_scale'], self._output_tf, model.host_normals,
            model.present, model.host_curvature))
        self._outputs.edits.publish(edit_markers(
            self._header(), model.edited_objects(self._settings.selection), self._output_tf))

    def _publish_diagnostics(self):
        stats, tracker = self._stats, self._tracker
        self._outputs.publish_diagnostics(self.get_clock().now().to_msg(), self._model,
                                          self._active, {
            'queries_served': str(stats['served']),
            'queries_dropped': str(self._worker.dropped),
            'errors': str(self._worker.errors + stats['tracking_errors']),
            'queue_length': str(self._worker.queue_length),
            'last_status': stats['last_status'],
            'last_latency_ms': f"{stats['last_latency_ms']:.2f}",
            'camera': self._camera.describe(),
            'camera_dropped': str(self._camera.dropped),
            'tracking': tracker.describe(),
            'tracking_renders': str(tracker.renders),
            'last_tracking_render_ms': f'{tracker.last_render_ms:.2f}',
            **{f'last_{stage}_ms': f'{ms:.2f}' for stage, ms in stats['timings_ms'].items()}})

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
        self._worker.stop(timeout)


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
    except (KeyboardInterrupt, ExternalShutdownException, ShuttingDown):
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
