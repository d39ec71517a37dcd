"""``refersplat_viewer``: the refersplat node's outputs on a Foxglove WebSocket server.

A viewer for machines without RViz: the node subscribes to the refersplat node's latched outputs
and re-serves them with the Foxglove SDK, so the Foxglove app (or Lichtblick) can show them. It
holds no algorithm, only message conversions:

=================================  ==========================  ===============================
ROS topic (``refersplat_node`` +)  Foxglove channel (same)     schema
=================================  ==========================  ===============================
``/scene/cloud``                   ``<prefix>/scene/cloud``    ``foxglove.PointCloud`` (colours)
``/target/cloud``                  ``<prefix>/target/cloud``   ``foxglove.PointCloud`` (colours,
                                                               score)
``/result`` (``ReferResult``)      ``<prefix>/target/box``     ``foxglove.SceneUpdate``: box and
                                                               label ``'<query> (<score>)'`` +
                                                               the interpretation
``/target/mask`` (mono8)           ``<prefix>/target/mask``    ``foxglove.RawImage`` (mono8)
``/scene/edits`` (``MarkerArray``)  ``<prefix>/scene/edits``    ``foxglove.SceneUpdate``: a box
                                                               and label per edited object
                                                               (removed: red, where it last
                                                               stood; moved: blue)
=================================  ==========================  ===============================

The server binds to 127.0.0.1 by default; any address that is not loopback is refused unless
``allow_remote`` is true (the Foxglove protocol has no authentication; reach the viewer from
another machine through SSH port forwarding instead). The ROS outputs are latched
(transient local) and so are these channels: the newest message of each is sent again whenever a
client subscribes, so a viewer connected after a query still shows its result.

Parameters (read only): ``refersplat_node`` ('refersplat': relative names resolve in the
viewer's namespace, so both nodes started in one namespace find each other), ``host``
('127.0.0.1'), ``port`` (8765; 0 = any free port, logged), ``allow_remote`` (false).
"""
import ipaddress
import logging
import os
import queue
import socket
import sys
from typing import Optional

import foxglove
from foxglove.channels import PointCloudChannel, RawImageChannel, SceneUpdateChannel
from foxglove.messages import (Color, CubePrimitive, PackedElementField,
                               PackedElementFieldNumericType, PointCloud, Pose, Quaternion,
                               RawImage, SceneEntity, SceneUpdate, TextPrimitive, Timestamp,
                               Vector3)
from foxglove.websocket import ServerListener
import numpy as np
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from refersplat_ros import topics
from refersplat_ros.conversions import (BOX_RGBA, image_to_mono8, pointcloud2_to_array,
                                        target_label, unpack_rgb)
from refersplat_ros.core.inference.queries import ANSWERED
from refersplat_ros.msg import ReferResult
from refersplat_ros.qos import LATCHED
from refersplat_ros.topics import under_node

# Points as the Foxglove 3D panel reads them: x, y, z and the optional red, green, blue, alpha
# (uint8) fields it colours by; score kept for colour-by-field.
_NUMERIC_TYPES = {
    np.dtype(np.float32): PackedElementFieldNumericType.Float32,
    np.dtype(np.uint8): PackedElementFieldNumericType.Uint8,
}
LABEL_FONT_PX = 16.0
#: The Foxglove channel of the target's box and label (built from ``~/result``).
BOX_CHANNEL = '~/target/box'
LABEL_GAP = 0.05  # label height above the box top, in frame units (as the node's text marker)


class ViewerConfigError(ValueError):
    """The viewer's parameters are unusable (e.g. a non-loopback host without allow_remote)."""


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (an address or a name) resolves to loopback addresses only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not host:
        return False  # '' binds every interface
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split('%', 1)[0]).is_loopback for info in infos)


def check_host(host: str, allow_remote: bool) -> bool:
    """Validate the bind address; return True if it is reachable from other machines.

    Raises:
        ViewerConfigError: ``host`` is not loopback and ``allow_remote`` is false.
    """
    if is_loopback(host):
        return False
    if not allow_remote:
        raise ViewerConfigError(
            f'host {host!r} is not a loopback address: the Foxglove WebSocket has no '
            'authentication. Keep host:=127.0.0.1 and use SSH port forwarding '
            '(ssh -L 8765:localhost:8765 <robot>), or set allow_remote:=true to bind anyway')
    return True


def foxglove_points(points: np.ndarray) -> np.ndarray:
    """Repack a project cloud (x, y, z, optional rgb packed float, score, target) for Foxglove.

    Args:
        points: [P] structured array from ``pointcloud2_to_array`` with fields x, y, z and
            optionally rgb (packed float32, 0x00RRGGBB) and score.

    Returns:
        [P] packed structured array x, y, z (float32), then red, green, blue, alpha (uint8) if
        the cloud has rgb, then score (float32) if it has one, then target (float32: the
        index of the point's target) if it has one. Normals are not shown.
    """
    names = points.dtype.names or ()
    missing = {'x', 'y', 'z'} - set(names)
    if missing:
        raise ValueError(f'cloud has no field(s) {sorted(missing)}')
    dtype = [('x', np.float32), ('y', np.float32), ('z', np.float32)]
    if 'rgb' in names:
        dtype += [(c, np.uint8) for c in ('red', 'green', 'blue', 'alpha')]
    if 'score' in names:
        dtype.append(('score', np.float32))
    if 'target' in names:  # colour by field: which of several targets
        dtype.append(('target', np.float32))
    out = np.empty(len(points), dtype=dtype)  # packed: no padding between fields
    for axis in 'xyz':
        out[axis] = points[axis]
    if 'rgb' in names:
        rgb = unpack_rgb(points['rgb'])
        out['red'], out['green'], out['blue'] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        out['alpha'] = 255
    if 'score' in names:
        out['score'] = points['score']
    if 'target' in names:
        out['target'] = points['target']
    return out


def _timestamp(stamp) -> Timestamp:
    return Timestamp(int(stamp.sec), int(stamp.nanosec))


def _identity_pose() -> Pose:
    return Pose(position=Vector3(x=0.0, y=0.0, z=0.0),
                orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))


def cloud_to_foxglove(msg: PointCloud2) -> PointCloud:
    """Convert a project ``PointCloud2`` (x, y, z, rgb, score) to a ``foxglove.PointCloud``."""
    points = foxglove_points(pointcloud2_to_array(msg))
    fields = [PackedElementField(name=name, offset=points.dtype.fields[name][1],
                                 type=_NUMERIC_TYPES[points.dtype.fields[name][0]])
              for name in points.dtype.names]
    return PointCloud(timestamp=_timestamp(msg.header.stamp), frame_id=msg.header.frame_id,
                      pose=_identity_pose(), point_stride=points.dtype.itemsize, fields=fields,
                      data=points.tobytes())


def mask_to_foxglove(msg: Image) -> RawImage:
    """Convert a mono8 ``sensor_msgs/Image`` (row padding dropped) to a ``foxglove.RawImage``."""
    mask = np.ascontiguousarray(image_to_mono8(msg))
    return RawImage(timestamp=_timestamp(msg.header.stamp), frame_id=msg.header.frame_id,
                    width=mask.shape[1], height=mask.shape[0], encoding='mono8',
                    step=mask.shape[1], data=mask.tobytes())


def _cube(pose, size, rgba) -> CubePrimitive:
    """Return a Foxglove box of a ROS pose and size (``geometry_msgs``)."""
    p, q = pose.position, pose.orientation
    return CubePrimitive(pose=Pose(position=Vector3(x=p.x, y=p.y, z=p.z),
                                   orientation=Quaternion(x=q.x, y=q.y, z=q.z, w=q.w)),
                         size=Vector3(x=size.x, y=size.y, z=size.z),
                         color=Color(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3]))


def markers_to_scene_update(msg: MarkerArray) -> SceneUpdate:
    """Convert the node's edit markers (``conversions.edit_markers``) to one Foxglove entity.

    Boxes (CUBE) keep their pose, size and colour; labels (TEXT_VIEW_FACING) their position and
    text. An empty array (no edits) clears the entity.
    """
    cubes, texts, header = [], [], None
    for marker in msg.markers:
        header = marker.header
        if marker.type == marker.CUBE and marker.action == marker.ADD:
            c = marker.color
            cubes.append(_cube(marker.pose, marker.scale, (c.r, c.g, c.b, c.a)))
        elif marker.type == marker.TEXT_VIEW_FACING and marker.action == marker.ADD:
            p = marker.pose.position
            texts.append(TextPrimitive(
                pose=Pose(position=Vector3(x=p.x, y=p.y, z=p.z),
                          orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
                billboard=True, font_size=LABEL_FONT_PX, scale_invariant=True,
                color=Color(r=1.0, g=1.0, b=1.0, a=1.0), text=marker.text))
    stamp = header.stamp if header is not None else None
    entity = SceneEntity(timestamp=_timestamp(stamp) if stamp is not None else Timestamp(0, 0),
                         frame_id=header.frame_id if header is not None else '', id='edits',
                         cubes=cubes, texts=texts)
    return SceneUpdate(entities=[entity])


def result_to_scene_update(result: ReferResult) -> Optional[SceneUpdate]:
    """Build the target's scene entity from a ``ReferResult``; None for statuses that show none.

    OK gives a box (pose, bbox_size; a plural, one per target) and the label
    ``'<query> (<score>)'`` above the first; AMBIGUOUS
    the best candidate's box, labelled ``'<query> (ambiguous: <n> candidates)'``; NO_MATCH
    only the label ``'<query> (no match)'`` at the origin. The label's second line is the
    interpretation, when the node gives one (``conversions.target_label``, as for the node's
    markers). Each replaces the entity of the previous query (same id). Other statuses (invalid,
    dropped, not ready, error) change nothing, as for the node's markers.
    """
    if result.status in ANSWERED:
        p, size = result.pose.position, result.bbox_size
        boxes = [(t.pose, t.bbox_size) for t in result.targets[1:]]  # a plural: every target
        cubes = [_cube(pose, extent, BOX_RGBA)
                 for pose, extent in [(result.pose, size)] + boxes]
        label_position = Vector3(x=p.x, y=p.y, z=p.z + 0.5 * size.z + LABEL_GAP)
    elif result.status == ReferResult.NO_MATCH:
        cubes = []
        label_position = Vector3(x=0.0, y=0.0, z=0.0)
    else:
        return None
    label = target_label(result.text, result.status, result.score, len(result.candidates),
                         result.interpretation)
    text = TextPrimitive(pose=Pose(position=label_position,
                                   orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
                         billboard=True, font_size=LABEL_FONT_PX, scale_invariant=True,
                         color=Color(r=1.0, g=1.0, b=1.0, a=1.0), text=label)
    entity = SceneEntity(timestamp=_timestamp(result.header.stamp),
                         frame_id=result.header.frame_id, id='target', cubes=cubes,
                         texts=[text])
    return SceneUpdate(entities=[entity])


class _ReplayOnSubscribe(ServerListener):
    """Foxglove server listener: asks the ROS thread to resend a channel's newest message.

    Called on the SDK's server threads; it only queues the channel id and wakes the executor,
    so every ``log`` happens on the executor thread, in order (no lock shared with the SDK).
    Subclassing ``ServerListener`` supplies the other callbacks: the SDK calls them all (a
    listener without ``on_unsubscribe`` logs 'Callback failed' on every disconnect).
    """

    def __init__(self, pending: queue.SimpleQueue, wake):
        self._pending, self._wake = pending, wake

    def on_subscribe(self, client, channel):
        self._pending.put(channel.id)
        self._wake()


class FoxgloveViewer(Node):
    """Subscribe to the refersplat outputs and serve them as Foxglove channels."""

    def __init__(self, **kwargs):
        super().__init__('refersplat_viewer', **kwargs)
        read_only = {'read_only': True}
        self.declare_parameter('refersplat_node', topics.NODE_NAME, ParameterDescriptor(
            description='the refersplat node to show; a relative name resolves in the namespace'
                        ' of this node (the launch file starts both in one namespace)',
            **read_only))
        self.declare_parameter('host', '127.0.0.1', ParameterDescriptor(
            description='bind address; anything but loopback needs allow_remote', **read_only))
        self.declare_parameter('port', 8765, ParameterDescriptor(
            description='WebSocket port; 0 = any free port (logged)',
            integer_range=[IntegerRange(from_value=0, to_value=65535, step=1)], **read_only))
        self.declare_parameter('allow_remote', False, ParameterDescriptor(
            description='allow a non-loopback host (no authentication: prefer SSH forwarding)',
            **read_only))
        # Foxglove channels carry the fully qualified ROS topic names of the node's outputs.
        node = self.resolve_topic_name(self.get_parameter('refersplat_node').value.rstrip('/'))
        self.prefix = node
        self._fox_context = foxglove.Context()
        sources = {  # channel id -> (Foxglove channel, ROS type and topic, converter)
            'scene': (PointCloudChannel, PointCloud2, topics.SCENE_CLOUD, cloud_to_foxglove),
            'cloud': (PointCloudChannel, PointCloud2, topics.TARGET_CLOUD, cloud_to_foxglove),
            'box': (SceneUpdateChannel, ReferResult, topics.RESULT, result_to_scene_update),
            'mask': (RawImageChannel, Image, topics.TARGET_MASK, mask_to_foxglove),
            'edits': (SceneUpdateChannel, MarkerArray, topics.EDITS, markers_to_scene_update),
        }
        self._channels = {
            key: channel(under_node(BOX_CHANNEL if key == 'box' else topic, node),
                         context=self._fox_context)
            for key, (channel, _, topic, _) in sources.items()}
        self._latest = {}  # channel id -> (channel, its newest Foxglove message): the latch
        self._pending = queue.SimpleQueue()
        self._wake = self.create_guard_condition(self._replay)
        self._server = None
        for key, (_, msg_type, topic, convert) in sources.items():
            self.create_subscription(msg_type, under_node(topic, node),
                                     self._converter(key, convert), LATCHED)

    def start_server(self):
        """Start the WebSocket server (raises ViewerConfigError / RuntimeError on failure)."""
        host = self.get_parameter('host').value
        remote = check_host(host, self.get_parameter('allow_remote').value)
        self._server = foxglove.start_server(
            name='refersplat', host=host, port=self.get_parameter('port').value,
            context=self._fox_context,
            server_listener=_ReplayOnSubscribe(self._pending, self._wake.trigger))
        if remote:
            self.get_logger().warning(
                f'serving on {host}: reachable from the network, without authentication or '
                'encryption (allow_remote is true)')
        self.get_logger().info(
            f'Foxglove WebSocket server on ws://{host}:{self._server.port} showing '
            f'{self.prefix} (Foxglove: Open connection -> Foxglove WebSocket)')

    @property
    def port(self) -> Optional[int]:
        return self._server.port if self._server is not None else None

    def stop_server(self):
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _converter(self, key, convert):
        channel = self._channels[key]

        def callback(msg):
            try:
                message = convert(msg)
            except ValueError as exc:  # ConversionError included: skip the message, keep going
                self.get_logger().error(f'cannot show {channel.topic()}: {exc}')
                return
            if message is None:
                return
            self._latest[channel.id()] = (channel, message)
            channel.log(message)
            self.get_logger().debug(f'latched {channel.topic()}')
        return callback

    def _replay(self):
        """Resend the newest message of each channel a client has just subscribed to."""
        while True:
            try:
                channel_id = self._pending.get_nowait()
            except queue.Empty:
                return
            latest = self._latest.get(channel_id)
            if latest is not None:
                latest[0].log(latest[1])


def main(argv=None) -> int:
    """Run the viewer until SIGINT/SIGTERM; exit 0 on a clean stop, 2 on a refused host.

    Like the node, the process then ends at once (``os._exit``) with that status: the server,
    node and context are already shut down, and the interpreter's own teardown of the SDK and
    DDS objects took seconds on a loaded machine, where the launch system and the tests allow
    a few after SIGTERM.
    """
    rclpy.init(args=argv)
    node = executor = None
    code = 0
    try:
        node = FoxgloveViewer()  # inside: a signal may come while it is built
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.start_server()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        if not rclpy.ok():
            pass  # a signal shut the context down while the node was built or started
        elif isinstance(exc, ViewerConfigError) and node is not None:
            node.get_logger().error(str(exc))
            code = 2
        elif isinstance(exc, RuntimeError) and node is not None:
            # the SDK's FoxgloveError: port in use, unknown host
            node.get_logger().error(f'cannot start the Foxglove server: {exc}')
            code = 1
        else:
            raise
    finally:
        if node is not None:
            node.stop_server()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    sys.exit(main())
