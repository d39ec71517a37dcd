"""numpy <-> ROS message converters (the project's own; sensor_msgs_py is not on PyPI).

Also the node's outputs as pure functions of the core's answers: ``refer_result``,
``outcome_markers``, ``scene_cloud`` (testable without a node).

One error type, explicit ``header`` arguments, no hidden defaults, in the spirit of cv_bridge.
Positions and sizes are never scaled here: the core's selection (boxes, candidates, target
cloud) is already in metres (``SelectionConfig.metric_scale``); a ``RigidTransform`` given to a
converter moves them from the scene frame into the output frame (docs/ROBOT.md#frames).
Large clouds take the fast path of docs/SETUP.md#large-messages: ``PointCloud2.data`` is set
from an ``array.array('B', ...)`` (the setter's slow per-element check is skipped) and read back
with ``np.frombuffer`` (no copy).
"""
import array
import sys

from geometry_msgs.msg import Pose
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from refersplat_ros.core.inference.queries import ANSWERED, QueryStatus, status_name
from refersplat_ros.core.scene.cameras import Camera
from refersplat_ros.core.scene.frames import camera_from_pose, FrameError, RigidTransform
from refersplat_ros.msg import ReferCandidate, ReferResult


class ConversionError(ValueError):
    """A numpy array or message cannot be converted (unsupported dtype, shape or layout)."""


# PointField datatype <-> numpy scalar type (sensor_msgs/PointField constants).
_FIELD_TO_NUMPY = {
    PointField.INT8: np.int8,
    PointField.UINT8: np.uint8,
    PointField.INT16: np.int16,
    PointField.UINT16: np.uint16,
    PointField.INT32: np.int32,
    PointField.UINT32: np.uint32,
    PointField.FLOAT32: np.float32,
    PointField.FLOAT64: np.float64,
}
_NUMPY_TO_FIELD = {np.dtype(v): k for k, v in _FIELD_TO_NUMPY.items()}


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Pack colours into the float32 ``rgb`` field that RViz and PCL expect.

    Args:
        rgb: [P, 3] uint8 (0-255) or float (0-1) colours.

    Returns:
        [P] float32 whose bits are 0x00RRGGBB.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ConversionError(f'rgb must have shape [P, 3], got {list(rgb.shape)}')
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(np.asarray(rgb, np.float64) * 255.0), 0, 255).astype(np.uint8)
    rgb = rgb.astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Invert :func:`pack_rgb`: [P] float32 -> [P, 3] uint8."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    channels = [(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF]
    return np.stack(channels, axis=1).astype(np.uint8)


def array_to_pointcloud2(points: np.ndarray, header) -> PointCloud2:
    """Convert a structured array (one named field per point attribute) to an unorganised cloud.

    Args:
        points: [P] structured array, e.g. dtype ``[('x', 'f4'), ('y', 'f4'), ('z', 'f4'),
            ('rgb', 'f4')]``. Every field must be a scalar of a PointField type.
        header: ``std_msgs/Header`` copied into the message.

    Returns:
        ``PointCloud2`` with height 1, width P, little/big endian as this machine, dense.
    """
    points = np.asarray(points)
    if points.dtype.names is None or points.ndim != 1:
        raise ConversionError('points must be a 1-D structured array with named fields, got '
                              f'dtype {points.dtype} and shape {list(points.shape)}')
    msg = PointCloud2()
    msg.header = header
    fields = []
    for name in points.dtype.names:
        dtype, offset = points.dtype.fields[name][:2]
        if dtype.subdtype is not None or dtype.base.newbyteorder('=') not in _NUMPY_TO_FIELD:
            raise ConversionError(f'field {name!r} has unsupported dtype {dtype}')
        fields.append(PointField(name=name, offset=offset,
                                 datatype=_NUMPY_TO_FIELD[dtype.base.newbyteorder('=')], count=1))
    msg.fields = fields
    msg.height = 1
    msg.width = int(points.shape[0])
    msg.is_bigendian = sys.byteorder == 'big'
    msg.point_step = points.dtype.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = all(
        not np.issubdtype(points.dtype[n], np.floating) or bool(np.isfinite(points[n]).all())
        for n in points.dtype.names)
    msg.data = array.array('B', np.ascontiguousarray(points).tobytes())
    return msg


def xyz_to_pointcloud2(xyz: np.ndarray, header, rgb: np.ndarray = None,
                       score: np.ndarray = None, normals: np.ndarray = None,
                       target: np.ndarray = None, curvature: np.ndarray = None) -> PointCloud2:
    """Build the project's cloud layout: x, y, z, optional rgb, score, normals, target.

    Every field is float32 (rgb packed as PCL does) but ``target`` (uint32), in that order.

    Args:
        xyz: [P, 3] positions.
        header: ``std_msgs/Header``.
        rgb: [P, 3] optional colours (uint8 or float in [0, 1]).
        score: [P] optional per-point score.
        normals: [P, 3] optional unit surface normals (fields ``normal_x``, ``normal_y``,
            ``normal_z``, PCL's names; a zero row is an unknown normal).
        target: [P] optional index of each point's target (``ReferResult.targets``).
        curvature: [P] optional PCL ``curvature`` (after the normals, as in PCL's
            PointNormal): how little the Gaussian is a surface, 0 flat to 1/3 round; only with
            ``normals``.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ConversionError(f'xyz must have shape [P, 3], got {list(xyz.shape)}')
    dtype = [('x', np.float32), ('y', np.float32), ('z', np.float32)]
    if rgb is not None:
        dtype.append(('rgb', np.float32))
    if score is not None:
        dtype.append(('score', np.float32))
    if normals is not None:
        normals = np.asarray(normals)
        if normals.ndim != 2 or normals.shape[1] != 3:
            raise ConversionError(f'normals must have shape [P, 3], got {list(normals.shape)}')
        if len(normals) != len(xyz):
            raise ConversionError(f'normals have {len(normals)} rows, xyz has {len(xyz)}')
        dtype += [('normal_x', np.float32), ('normal_y', np.float32), ('normal_z', np.float32)]
        if curvature is not None:
            curvature = np.asarray(curvature).reshape(-1)
            if len(curvature) != len(xyz):
                raise ConversionError(f'curvature has {len(curvature)} rows, xyz has {len(xyz)}')
            dtype.append(('curvature', np.float32))
    if target is not None:
        target = np.asarray(target).reshape(-1)
        if len(target) != len(xyz):
            raise ConversionError(f'target has {len(target)} rows, xyz has {len(xyz)}')
        dtype.append(('target', np.uint32))
    points = np.empty(xyz.shape[0], dtype=dtype)
    points['x'], points['y'], points['z'] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        if len(rgb) != len(xyz):
            raise ConversionError(f'rgb has {len(rgb)} rows, xyz has {len(xyz)}')
        points['rgb'] = pack_rgb(rgb)
    if score is not None:
        score = np.asarray(score).reshape(-1)
        if len(score) != len(xyz):
            raise ConversionError(f'score has {len(score)} rows, xyz has {len(xyz)}')
        points['score'] = score
    if normals is not None:
        points['normal_x'], points['normal_y'], points['normal_z'] = normals.T
        if curvature is not None:
            points['curvature'] = curvature
    if target is not None:
        points['target'] = target
    return array_to_pointcloud2(points, header)


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """Convert a ``PointCloud2`` to a [height * width] structured array (zero copy when possible).

    Padding bytes between fields (``point_step`` larger than the fields) are kept out of the
    returned dtype's names but respected through its offsets and itemsize.
    """
    if msg.is_bigendian != (sys.byteorder == 'big'):
        raise ConversionError('clouds of the other byte order are not supported')
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if field.datatype not in _FIELD_TO_NUMPY:
            raise ConversionError(f'field {field.name!r} has unknown datatype {field.datatype}')
        if field.count != 1:
            raise ConversionError(
                f'field {field.name!r} has count {field.count}; only 1 is supported')
        names.append(field.name)
        formats.append(_FIELD_TO_NUMPY[field.datatype])
        offsets.append(field.offset)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': msg.point_step})
    count = msg.height * msg.width
    expected = msg.row_step * msg.height
    if msg.row_step != msg.point_step * msg.width or len(msg.data) != expected:
        raise ConversionError(f'cloud data has {len(msg.data)} bytes; header says '
                              f'{msg.height} x {msg.row_step} (point_step {msg.point_step})')
    data = msg.data
    if not isinstance(data, (array.array, bytes, bytearray, memoryview)):
        data = bytes(data)
    return np.frombuffer(data, dtype=dtype, count=count)


def pointcloud2_to_xyz(msg: PointCloud2) -> np.ndarray:
    """Return the [P, 3] float32 positions of a cloud with x, y, z fields."""
    points = pointcloud2_to_array(msg)
    missing = {'x', 'y', 'z'} - set(points.dtype.names or ())
    if missing:
        raise ConversionError(f'cloud has no field(s) {sorted(missing)}')
    return np.stack([points['x'], points['y'], points['z']], axis=1).astype(np.float32)


def _array_to_image(values: np.ndarray, header, encoding: str, dtype) -> Image:
    """One-channel [H, W] array of ``dtype`` -> ``sensor_msgs/Image`` (native byte order)."""
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype != dtype:
        raise ConversionError(f'{encoding} image must be [H, W] {np.dtype(dtype).name}, got '
                              f'{list(values.shape)} {values.dtype}')
    msg = Image(header=header, height=values.shape[0], width=values.shape[1], encoding=encoding,
                is_bigendian=int(sys.byteorder == 'big' and values.itemsize > 1),
                step=values.itemsize * values.shape[1])
    data = _bytes_of(values)
    msg.data = array.array('B')
    # rosidl's setter copies an array.array unless ROS_PYTHON_CHECK_FIELDS is set; the field
    # takes exactly this type, so the buffer is handed over as it is (268 MB for an 8192 x 8192
    # depth image: no copy, no second buffer)
    msg._data = data
    return msg


def _bytes_of(values: np.ndarray) -> array.array:
    """Return the bytes of an array as ``array.array('B')``: its own buffer when it is one.

    ``target_view.image_buffer`` makes images whose memory is such a buffer, so a camera-size
    mask or depth becomes a message without a copy; any other array is copied once.
    """
    base = values
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer keeps a view of the buffer
        base = base.obj
    if isinstance(base, array.array) and base.typecode == 'B' and values.flags.c_contiguous \
            and values.nbytes == len(base) and np.shares_memory(
                values, np.frombuffer(base, np.uint8)):
        return base
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return data


def _image_to_array(msg, encodings, dtype) -> np.ndarray:
    """``sensor_msgs/Image`` of one of ``encodings`` -> [H, W] array of ``dtype``."""
    if msg.encoding not in encodings:
        raise ConversionError(f'expected a {encodings[0]} image, got encoding {msg.encoding!r}')
    size = np.dtype(dtype).itemsize
    if msg.step < size * msg.width or len(msg.data) != msg.step * msg.height:
        raise ConversionError(f'image data has {len(msg.data)} bytes; header says '
                              f'{msg.height} rows of {msg.step}')
    data = msg.data if isinstance(msg.data, (array.array, bytes)) else bytes(msg.data)
    rows = np.frombuffer(data, np.uint8).reshape(msg.height, msg.step)[:, :size * msg.width]
    if size == 1:
        return rows
    order = np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')
    return np.ascontiguousarray(rows).view(order).astype(dtype)


def mono8_to_image(mask: np.ndarray, header) -> Image:
    """Convert an [H, W] uint8 array to a ``sensor_msgs/Image`` with encoding ``mono8``."""
    return _array_to_image(mask, header, 'mono8', np.uint8)


def image_to_mono8(msg) -> np.ndarray:
    """Convert a ``mono8`` (or ``8UC1``) ``sensor_msgs/Image`` to an [H, W] uint8 array."""
    return _image_to_array(msg, ('mono8', '8UC1'), np.uint8)


def depth_to_image(depth: np.ndarray, header) -> Image:
    """Convert an [H, W] float32 depth in metres to a ``32FC1`` image (REP 118; NaN = none)."""
    return _array_to_image(depth, header, '32FC1', np.float32)


def image_to_depth(msg) -> np.ndarray:
    """Convert a ``32FC1`` ``sensor_msgs/Image`` to an [H, W] float32 array (metres)."""
    return _image_to_array(msg, ('32FC1',), np.float32)


def camera_from_msgs(info: CameraInfo, pose, scene_frame: str, output_frame: str,
                     output_tf: RigidTransform, metric_scale: float) -> Camera:
    """Build the renderer's camera from a ``CameraInfo`` and the ``PoseStamped`` of its frame.

    Raises ``FrameError`` saying what is wrong. The pose (of the camera's optical frame) may be
    in the scene frame (``scene_frame``, or an empty frame_id) or in the output frame
    (``output_frame``; it is moved into the scene frame with ``output_tf``), in metres. The
    intrinsics are those of the rectified image: ``p`` (fx, fy, cx, cy) when set, else ``k``;
    distortion ``d`` is not applied.
    """
    if info.width == 0 or info.height == 0:
        raise FrameError(f'camera_info has image size {info.width}x{info.height}')
    frame = pose.header.frame_id
    t, q = pose.pose.position, pose.pose.orientation
    in_pose = RigidTransform.create((t.x, t.y, t.z), (q.x, q.y, q.z, q.w), 'camera pose')
    if frame in ('', scene_frame):
        in_scene = in_pose
    elif output_frame and frame == output_frame:
        back = output_tf.inverse()
        position, quaternion = back.apply_pose(in_pose.translation, in_pose.quaternion_xyzw)
        in_scene = RigidTransform.create(position, quaternion, 'camera pose')
    else:
        frames = ' or '.join(repr(f) for f in (scene_frame, output_frame) if f)
        raise FrameError(f'camera pose is in frame {frame!r}; give it in {frames} (the node '
                         'does not read TF: look the transform up and publish the pose in that '
                         'frame, see docs/ROBOT.md)')
    p = [float(v) for v in info.p]
    if p[0] != 0.0 or p[5] != 0.0:  # the rectified image's projection
        fx, fy, cx, cy = p[0], p[5], p[2], p[6]
    else:
        fx, fy, cx, cy = (float(info.k[i]) for i in (0, 4, 2, 5))
    return camera_from_pose(info.width, info.height, fx, fy, cx, cy, in_scene, metric_scale,
                            name=info.header.frame_id)


def camera_info(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                header) -> CameraInfo:
    """Build a distortion-free ``sensor_msgs/CameraInfo`` (plumb_bob with zero coefficients)."""
    msg = CameraInfo(header=header, width=int(width), height=int(height),
                     distortion_model='plumb_bob')
    msg.d = [0.0] * 5
    msg.k = [float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(fx), 0.0, float(cx), 0.0, 0.0, float(fy), float(cy), 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def pose_msg(position, quaternion_xyzw) -> Pose:
    """Build a ``geometry_msgs/Pose`` from a position [3] and a quaternion (x, y, z, w)."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    (pose.orientation.x, pose.orientation.y, pose.orientation.z,
     pose.orientation.w) = (float(v) for v in quaternion_xyzw)
    return pose


def candidate_msg(candidate, tf: RigidTransform = None) -> ReferCandidate:
    """Convert a core ``Candidate`` (``core/inference/model.py``) to a ``ReferCandidate``.

    The candidate's ``Instance`` is in metres in the scene frame (pose = box centre and axes,
    ``bbox_size`` = box extents along them, ``centroid`` = mean of its Gaussians); ``tf`` moves
    it into the output frame.
    """
    instance = candidate.instance
    tf = tf or RigidTransform.identity()
    msg = ReferCandidate(label=str(candidate.label), score=float(candidate.score),
                         pose=pose_msg(*tf.apply_pose(instance.center, instance.quaternion_xyzw)))
    msg.bbox_size.x, msg.bbox_size.y, msg.bbox_size.z = (float(v) for v in instance.extent)
    centroid = tf.apply_points(np.asarray(instance.centroid, np.float64)[None])[0]
    msg.centroid.x, msg.centroid.y, msg.centroid.z = (float(v) for v in centroid)
    return msg


def target_label(text: str, status: int, score: float, num_candidates: int = 0,
                 interpretation: str = '') -> str:
    """Return the label shown above a query's target (RViz markers, the Foxglove viewer).

    ``'<query> (<score>)'`` on OK, ``'<query> (ambiguous: <n> candidates)'`` on AMBIGUOUS,
    ``'<query> (no match)'`` on NO_MATCH; the interpretation, when there is one, on a second
    line. The other statuses show no target and have no label.
    """
    if status == QueryStatus.OK:
        label = f'{text} ({score:.2f})'
    elif status == QueryStatus.AMBIGUOUS:
        plural = '' if num_candidates == 1 else 's'
        label = (f'{text} (ambiguous: {num_candidates} candidate{plural})' if num_candidates
                 else f'{text} (ambiguous)')
    elif status == QueryStatus.NO_MATCH:
        label = f'{text} (no match)'
    else:
        raise ConversionError(f'status {status_name(status)} shows no target label')
    return f'{label}\n{interpretation}' if interpretation else label


#: RGBA of the target boxes (RViz markers and the Foxglove viewer).
BOX_RGBA = (0.1, 0.9, 0.2, 0.4)


def target_markers(header, boxes, label: str, namespace: str = 'refersplat') -> MarkerArray:
    """Build the markers of one query: DELETEALL, a box per instance, a text label.

    Args:
        header: shared header of the query's outputs.
        boxes: sequence of (pose, size [3], rgba [4]); empty on no match (only DELETEALL and
            the label, placed at the origin).
        label: text shown above the first box, e.g. ``'the red mug (0.87)'``.
    """
    markers = [Marker(header=header, ns=namespace, action=Marker.DELETEALL)]
    for index, (pose, size, rgba) in enumerate(boxes):
        box = Marker(header=header, ns=namespace, id=2 * index, type=Marker.CUBE,
                     action=Marker.ADD, pose=pose)
        box.scale.x, box.scale.y, box.scale.z = (max(float(s), 1e-3) for s in size)
        box.color.r, box.color.g, box.color.b, box.color.a = (float(c) for c in rgba)
        markers.append(box)
    text = Marker(header=header, ns=namespace, id=1, type=Marker.TEXT_VIEW_FACING,
                  action=Marker.ADD, text=label)
    if boxes:
        pose, size, _ = boxes[0]
        text.pose.position.x, text.pose.position.y = pose.position.x, pose.position.y
        text.pose.position.z = pose.position.z + 0.5 * float(size[2]) + 0.05
    text.pose.orientation.w = 1.0
    text.scale.z = 0.05
    text.color.r = text.color.g = text.color.b = text.color.a = 1.0
    markers.append(text)
    return MarkerArray(markers=markers)


#: RGBA of the boxes of edited objects (``edit_markers``): removed (where it last stood), moved.
REMOVED_RGBA = (0.95, 0.25, 0.2, 0.35)
MOVED_RGBA = (0.2, 0.55, 0.95, 0.35)


def edit_markers(header, edited, tf: RigidTransform = None,
                 namespace: str = 'refersplat_edits') -> MarkerArray:
    """Build the markers of the scene's edits: DELETEALL, then per edited object a box + label.

    Args:
        header: the header of the markers (output frame, now).
        edited: sequence of (label, removed, ``Instance`` in metres of the scene frame): a
            removed object's box is where it last stood ("removed: <label>"), a moved one's
            where it is now ("moved: <label>").
        tf: moves the boxes from the scene frame into the output frame.
    """
    tf = tf or RigidTransform.identity()
    markers = [Marker(header=header, ns=namespace, action=Marker.DELETEALL)]
    for index, (label, removed, instance) in enumerate(edited):
        pose = pose_msg(*tf.apply_pose(instance.center, instance.quaternion_xyzw))
        box = Marker(header=header, ns=namespace, id=2 * index, type=Marker.CUBE,
                     action=Marker.ADD, pose=pose)
        box.scale.x, box.scale.y, box.scale.z = (max(float(v), 1e-3) for v in instance.extent)
        box.color.r, box.color.g, box.color.b, box.color.a = REMOVED_RGBA if removed else \
            MOVED_RGBA
        text = Marker(header=header, ns=namespace, id=2 * index + 1,
                      type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                      text=f"{'removed' if removed else 'moved'}: {label}")
        text.pose.position.x, text.pose.position.y = pose.position.x, pose.position.y
        text.pose.position.z = pose.position.z + 0.5 * float(instance.extent[2]) + 0.05
        text.pose.orientation.w = 1.0
        text.scale.z = 0.04
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        markers += [box, text]
    return MarkerArray(markers=markers)


def result_message(outcome, note: str = '') -> str:
    """Return a served query's ReferResult message: the model's, why no mask, then ``note``."""
    notes = [outcome.message] if outcome.message else []
    if outcome.view is not None and not outcome.view.visible:
        notes.append(f'no mask: {outcome.view.reason}')
    elif outcome.view is not None and outcome.view.note:
        notes.append(outcome.view.note)
    if note:
        notes.append(note)
    return '; '.join(notes)


def _empty_cloud(header) -> PointCloud2:
    """Return the target cloud of NO_MATCH: the layout of a target, no points."""
    return xyz_to_pointcloud2(np.zeros((0, 3), np.float32), header,
                              rgb=np.zeros((0, 3), np.uint8), score=np.zeros(0, np.float32))


def refer_result(header, query_id: int, text: str, status: int, message: str = '',
                 outcome=None, tf: RigidTransform = None) -> ReferResult:
    """Build the ``ReferResult`` of one query; its latency is set when it is published.

    Args:
        header: the header of every output of the query.
        status, message: the answer (``outcome.status`` and :func:`result_message` for a
            query the model served).
        outcome: the core's ``QueryOutcome``, if the model served the query: its
            interpretation, candidates and stage timings; on OK and AMBIGUOUS the best
            candidate's pose, box and score, the Gaussian count and the target cloud (x, y, z,
            rgb, score, normal_x/y/z when ``selection.normals`` is set, rotated like the
            points, and target: the index into ``targets``, one per selected instance); on
            NO_MATCH an empty cloud.
        tf: moves poses, boxes and points from the scene frame into the output frame.
    """
    result = ReferResult(header=header, query_id=int(query_id), text=text, status=int(status),
                         message=message)
    if outcome is None:
        return result
    tf = tf or RigidTransform.identity()
    result.interpretation = outcome.interpretation
    result.confidence = float(outcome.confidence)
    result.candidates = [candidate_msg(c, tf) for c in outcome.candidates]
    t = outcome.timings_ms
    result.encode_ms, result.field_ms, result.select_ms, result.render_ms = (
        float(t.get(stage, 0.0)) for stage in ('encode', 'field', 'select', 'render'))
    if status in ANSWERED:  # OK, or AMBIGUOUS: its best candidate, like OK
        sel = outcome.selection
        best = sel.best
        result.pose = pose_msg(*tf.apply_pose(best.center, best.quaternion_xyzw))
        result.score = sel.score
        result.bbox_size.x, result.bbox_size.y, result.bbox_size.z = map(float, best.extent)
        result.num_gaussians = len(sel.indices)
        result.targets = [candidate_msg(c, tf) for c in outcome.targets]
        result.cloud = xyz_to_pointcloud2(
            tf.apply_points(sel.points), header, rgb=sel.colors, score=sel.scores,
            normals=_rotated_normals(getattr(sel, 'normals', None), tf),
            curvature=getattr(sel, 'curvature', None),
            target=np.repeat(np.arange(len(sel.instances), dtype=np.uint32),
                             [len(i.indices) for i in sel.instances]))
    elif status == QueryStatus.NO_MATCH:
        result.cloud = _empty_cloud(header)
    return result


def outcome_markers(header, text: str, outcome, tf: RigidTransform = None) -> MarkerArray:
    """Build the markers of a served query (:func:`target_markers`).

    OK and AMBIGUOUS: a box per instance of the selection and the label; NO_MATCH: the label
    alone. The other statuses show no target (``ConversionError``).
    """
    tf = tf or RigidTransform.identity()
    if outcome.status not in ANSWERED:
        return target_markers(header, [], target_label(text, outcome.status, 0.0,
                                                       interpretation=outcome.interpretation))
    sel = outcome.selection
    boxes = [(pose_msg(*tf.apply_pose(i.center, i.quaternion_xyzw)), i.extent, BOX_RGBA)
             for i in sel.instances]
    return target_markers(header, boxes, target_label(
        text, outcome.status, sel.score, len(outcome.candidates), outcome.interpretation))


def _rotated_normals(normals, tf: RigidTransform):
    """Return [P, 3] normals rotated by ``tf`` (no translation, no scale), or None for None."""
    if normals is None:
        return None
    normals = np.asarray(normals)
    if normals.ndim != 2 or normals.shape[1] != 3:
        raise ConversionError(f'normals must have shape [P, 3], got {list(normals.shape)}')
    return (normals.astype(np.float64) @ tf.rotation.T).astype(np.float32)


def scene_cloud(means: np.ndarray, colors: np.ndarray, header, max_points: int,
                metric_scale: float = 1.0, tf: RigidTransform = None,
                normals: np.ndarray = None, present: np.ndarray = None,
                curvature: np.ndarray = None) -> PointCloud2:
    """Build the scene cloud: Gaussian centres with their colours, in metres in the output frame.

    Clouds of more than ``max_points`` are decimated to a random subset of that size, the same
    one on every call (a fixed seed), in the scene's order. ``normals`` ([N, 3], optional) are
    decimated alike, rotated by ``tf`` and published as normal_x/y/z (then ``curvature``
    [N], if given). ``present`` ([N] bool,
    optional) leaves out the Gaussians of removed objects (after the decimation, so the other
    points stay the same).
    """
    if normals is not None and len(normals) != len(means):
        raise ConversionError(f'normals have {len(normals)} rows, means {len(means)}')
    keep = np.arange(len(means))
    if len(means) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(means), max_points, replace=False))
    if present is not None:
        keep = keep[np.asarray(present, bool)[keep]]
    if len(keep) != len(means):
        means, colors = means[keep], colors[keep]
        normals = None if normals is None else np.asarray(normals)[keep]
        curvature = None if curvature is None else np.asarray(curvature)[keep]
    tf = tf or RigidTransform.identity()
    return xyz_to_pointcloud2(tf.apply_points(np.asarray(means) * metric_scale), header,
                              rgb=colors, normals=_rotated_normals(normals, tf),
                              curvature=curvature)
