"""A small client facade for the refersplat node (nav2 simple-commander style).

    client = ReferClient(node)                  # any rclpy node of yours
    result = client.refer('the red mug', timeout=10.0)
    if answered(result): ... result.pose, result.cloud ...       # OK or AMBIGUOUS
    if result.status == ReferResult.AMBIGUOUS: ... result.candidates ...
    for target in result.targets: ...   # "all the cans": every can (one for a singular)
    client.remove()                             # the last target was picked up
    client.move_to('red-mug-2', place_pose)     # ... and put down there

``remove`` / ``restore`` / ``move`` / ``move_to`` / ``reset`` call the node's ``~/edit_scene``
(docs/ROBOT.md#scene-edits) and return its reply (``success``, ``message``).

``refer`` sends a ``Refer`` action goal and spins ``node`` until the result arrives, so callers
write no action boilerplate. It never raises for an answer the node gives (NO_MATCH, ERROR, ...
arrive as the result's status); it raises ``ReferClientError`` only when no answer can be had
(server absent, goal rejected, timeout). AMBIGUOUS is an answer, not an error: several objects
fit about equally well, the pose, box and cloud are the best one's and ``candidates`` lists them
all, best first. ``interpretation`` says how the node understood the query.

The ``refersplat ask`` command (``refersplat_ros/cli/ask.py``) wraps it for a terminal.
"""
import time

from geometry_msgs.msg import Transform
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor

from refersplat_ros.action import Refer
from refersplat_ros.core.errors import ReferSplatError
from refersplat_ros.core.inference.queries import ANSWERED, printable, status_name
from refersplat_ros.msg import ReferResult
from refersplat_ros.qos import ACTION_FEEDBACK_QOS, ACTION_SERVICE_QOS, SERVICE_QOS
from refersplat_ros.srv import EditScene
from refersplat_ros.topics import EDIT_SCENE, REFER_ACTION, under_node


class ReferClientError(ReferSplatError, RuntimeError):
    """No answer could be obtained from the node (absent, rejected, timed out)."""

    exit_code = 3


class ReferClient:
    """Send referring queries to a refersplat node through its ``~/refer`` action.

    Args:
        node: the rclpy node used for the action client (spun by ``refer`` while waiting; do not
            spin it in another executor at the same time).
        server: fully qualified action name, ``/<namespace>/refersplat/refer``.
    """

    def __init__(self, node, server: str = under_node(REFER_ACTION)):
        self._node = node
        # The node's deep action QoS on this end too: a client sending many goals at once would
        # otherwise lose responses in its own keep-last-10 histories.
        self._action = ActionClient(node, Refer, server,
                                    goal_service_qos_profile=ACTION_SERVICE_QOS,
                                    result_service_qos_profile=ACTION_SERVICE_QOS,
                                    cancel_service_qos_profile=ACTION_SERVICE_QOS,
                                    feedback_sub_qos_profile=ACTION_FEEDBACK_QOS)
        self.server = server
        self.feedback = []  # stages of the last goal
        # ``~/edit_scene`` beside the action (same node namespace); its client made on first use
        self._edit_service = server.rsplit('/', 1)[0] + '/' + EDIT_SCENE[2:]
        self._edit = None

    def spin_until(self, predicate, timeout: float) -> bool:
        """Spin the node until ``predicate()`` is true or ``timeout`` seconds pass; return it.

        For waiting on the node's other outputs of an answer (its latched topics) with the
        same node the client uses.
        """
        return self._spin_until(predicate, time.monotonic() + timeout)

    def _spin_until(self, predicate, deadline: float) -> bool:
        executor = SingleThreadedExecutor(context=self._node.context)
        executor.add_node(self._node)
        try:
            while not predicate() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.02)
        finally:
            executor.remove_node(self._node)
            executor.shutdown()
        return bool(predicate())

    def wait_for_server(self, timeout: float = 10.0) -> bool:
        """Return True once the node's action server is reachable."""
        return self._spin_until(self._action.server_is_ready, time.monotonic() + timeout)

    def refer(self, text: str, timeout: float = 10.0, top_k: int = 0,
              score_threshold: float = 0.0, camera_info=None,
              camera_pose=None) -> ReferResult:
        """Ask for ``text``; return the node's ReferResult (its status says what happened).

        ``top_k`` <= 0 and ``score_threshold`` 0 use the node's parameters; a threshold outside
        0.01-0.99 (or NaN) is answered INVALID_QUERY by the node, never replaced.
        ``camera_info`` (``sensor_msgs/CameraInfo``) + ``camera_pose`` (``PoseStamped`` of its
        optical frame) answer in that camera (docs/ROBOT.md): the mask, depth and camera_info
        come on the node's topics stamped with ``camera_info.header``.
        """
        if (camera_info is None) != (camera_pose is None):
            raise ReferClientError('give camera_info and camera_pose together')
        deadline = time.monotonic() + timeout
        if not self._spin_until(self._action.server_is_ready, deadline):
            raise ReferClientError(f'no refersplat action server at {self.server} '
                                   f'(is the node running, in this ROS_DOMAIN_ID?)')
        self.feedback = []
        goal = Refer.Goal(text=text, top_k=max(int(top_k), 0),
                          score_threshold=float(score_threshold))
        if camera_info is not None:
            goal.camera_info, goal.camera_pose = camera_info, camera_pose
        sent = self._action.send_goal_async(
            goal, feedback_callback=lambda msg: self.feedback.append(msg.feedback.stage))
        if not self._spin_until(sent.done, deadline):
            raise ReferClientError(f'goal not acknowledged within {timeout} s')
        handle = sent.result()
        if not handle.accepted:
            raise ReferClientError('goal rejected by the node')
        result = handle.get_result_async()
        if not self._spin_until(result.done, deadline):
            raise ReferClientError(f'no result within {timeout} s')
        return result.result().result.result

    # ---------------------------------------------------------------- scene edits
    def edit_scene(self, operation: int, label: str = '', *, transform=None, pose=None,
                   frame_id: str = '', timeout: float = 10.0):
        """Call the node's ``~/edit_scene`` (``srv/EditScene.srv``); return its response.

        ``transform`` (``geometry_msgs/Transform``) for MOVE, ``pose``
        (``geometry_msgs/Pose``) for MOVE_TO, in ``frame_id`` ('' = the scene frame). The
        response's ``success`` and ``message`` say what happened; nothing changes on failure.
        """
        request = EditScene.Request(operation=int(operation), label=str(label),
                                    frame_id=str(frame_id))
        if transform is not None:
            request.transform = transform
        if pose is not None:
            request.pose = pose
        if self._edit is None:
            self._edit = self._node.create_client(EditScene, self._edit_service,
                                                  qos_profile=SERVICE_QOS)
        deadline = time.monotonic() + timeout
        if not self._spin_until(self._edit.service_is_ready, deadline):
            raise ReferClientError(f'no edit_scene service at {self._edit_service}')
        future = self._edit.call_async(request)
        if not self._spin_until(future.done, deadline):
            raise ReferClientError(f'no edit_scene reply within {timeout} s')
        return future.result()

    def move(self, label: str, translation=(0.0, 0.0, 0.0), rotation_xyzw=(0.0, 0.0, 0.0, 1.0),
             frame_id: str = '', timeout: float = 10.0):
        """Tell the node that ``label`` ('' = the last target) moved by this motion (metres)."""
        transform = Transform()
        (transform.translation.x, transform.translation.y,
         transform.translation.z) = (float(v) for v in translation)
        (transform.rotation.x, transform.rotation.y, transform.rotation.z,
         transform.rotation.w) = (float(v) for v in rotation_xyzw)
        return self.edit_scene(EditScene.Request.MOVE, label, transform=transform,
                               frame_id=frame_id, timeout=timeout)

    def move_to(self, label: str, pose, frame_id: str = '', timeout: float = 10.0):
        """Tell the node that ``label``'s box (the pose it published) is now at ``pose``."""
        return self.edit_scene(EditScene.Request.MOVE_TO, label, pose=pose, frame_id=frame_id,
                               timeout=timeout)

    def remove(self, label: str = '', timeout: float = 10.0):
        """Tell the node that ``label`` ('' = the last target) is gone (picked up)."""
        return self.edit_scene(EditScene.Request.REMOVE, label, timeout=timeout)

    def restore(self, label: str = '', timeout: float = 10.0):
        """Put ``label`` back where the capture saw it."""
        return self.edit_scene(EditScene.Request.RESTORE, label, timeout=timeout)

    def reset(self, timeout: float = 10.0):
        """Drop every edit: the scene is the capture again."""
        return self.edit_scene(EditScene.Request.RESET, timeout=timeout)

    def destroy(self):
        self._action.destroy()
        if self._edit is not None:
            self._node.destroy_client(self._edit)


def answered(result: ReferResult) -> bool:
    """Whether ``result`` carries a target (pose, box, cloud): OK or AMBIGUOUS."""
    return result.status in ANSWERED


def format_result(result: ReferResult) -> str:
    """Render a ReferResult as the few lines a person needs.

    The interpretation (when the node gives one) follows the query; an answer with a target
    shows its score, pose and box; AMBIGUOUS then lists every candidate (label, score, box
    centre), best first. Text from the node (message, interpretation, labels: object names from
    files) is escaped (``queries.printable``); the query and the frame are printed as reprs.
    """
    latency_ms = result.latency.sec * 1e3 + result.latency.nanosec * 1e-6
    lines = [f'status:    {status_name(result.status)}'
             + (f' ({printable(result.message)})' if result.message else ''),
             f'query:     {result.text!r} (id {result.query_id})']
    if result.interpretation:
        lines.append(f'understood: {printable(result.interpretation)}')
    if result.interpretation or answered(result):
        lines.append(f'confidence: {result.confidence:.2f}')
    lines.append(f'latency:   {latency_ms:.1f} ms (encode {result.encode_ms:.1f}, field '
                 f'{result.field_ms:.1f}, select {result.select_ms:.1f}, render '
                 f'{result.render_ms:.1f})')
    if answered(result):
        p, q, s = result.pose.position, result.pose.orientation, result.bbox_size
        lines += [f'score:     {result.score:.3f} over {result.num_gaussians} Gaussians',
                  f'position:  ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) in {result.header.frame_id!r}',
                  f'orient.:   xyzw ({q.x:.3f}, {q.y:.3f}, {q.z:.3f}, {q.w:.3f})',
                  f'box size:  ({s.x:.3f}, {s.y:.3f}, {s.z:.3f})']
    if len(result.targets) > 1:
        lines.append(f'targets:   {len(result.targets)} (position = box centre)')
        lines += _listed(result.targets)
    if result.status == ReferResult.AMBIGUOUS:
        lines.append(f'candidates: {len(result.candidates)}, best first (position = box centre)')
        lines += _listed(result.candidates)
    return '\n'.join(lines)


def _listed(candidates) -> list:
    """Return one line per ``ReferCandidate``: rank, label (escaped), score, box centre."""
    lines = []
    for rank, candidate in enumerate(candidates, start=1):
        c = candidate.pose.position
        lines.append(f'  {rank}. {printable(candidate.label)}  score {candidate.score:.3f}  '
                     f'position ({c.x:.3f}, {c.y:.3f}, {c.z:.3f})')
    return lines
