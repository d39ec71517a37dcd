"""The ``refersplat`` node's publishers, and what the answer to one query publishes.

Created with the node, in every lifecycle state, so that NOT_READY is answered before
configure. The target outputs are latched (``qos.LATCHED``: RViz and late subscribers get the
last answer); messages are built by the pure functions of ``conversions.py``.
"""
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from refersplat_ros import topics
from refersplat_ros.conversions import (camera_info, depth_to_image, mono8_to_image,
                                        outcome_markers)
from refersplat_ros.core.inference.queries import ANSWERED, QueryStatus
from refersplat_ros.core.inference.target_view import empty_view
from refersplat_ros.msg import ReferResult
from refersplat_ros.qos import LATCHED, RESULT_QOS


class NodeOutputs:
    """The node's publishers: results, the target (cloud, pose, mask, depth, markers), scene."""

    def __init__(self, node):
        self.result = node.create_publisher(ReferResult, topics.RESULT, RESULT_QOS)
        self.cloud = node.create_publisher(PointCloud2, topics.TARGET_CLOUD, LATCHED)
        self.pose = node.create_publisher(PoseStamped, topics.TARGET_POSE, LATCHED)
        self.mask = node.create_publisher(Image, topics.TARGET_MASK, LATCHED)
        self.info = node.create_publisher(CameraInfo, topics.TARGET_CAMERA_INFO, LATCHED)
        self.depth = node.create_publisher(Image, topics.TARGET_DEPTH, LATCHED)
        self.markers = node.create_publisher(MarkerArray, topics.MARKERS, LATCHED)
        self.scene = node.create_publisher(PointCloud2, topics.SCENE_CLOUD, LATCHED)
        self.edits = node.create_publisher(MarkerArray, topics.EDITS, LATCHED)
        self.diagnostics = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)

    def publish_answer(self, text: str, outcome, result: ReferResult, camera, info, mask_camera,
                       tf) -> None:
        """Publish a served query's target outputs (before its result, which says they are out).

        OK and AMBIGUOUS: pose, markers, the mask (and depth) in the query's camera (``info``),
        else in the mask view (``mask_camera``), the cloud. NO_MATCH: an empty mask and NaN depth
        in the query's camera if it had one, the empty cloud, the label. Otherwise nothing.
        """
        header = result.header
        if outcome.status in ANSWERED:
            self.pose.publish(PoseStamped(header=header, pose=result.pose))
            self.markers.publish(outcome_markers(header, text, outcome, tf))
            if outcome.view is not None:
                self.publish_view(outcome.view, info)
            elif outcome.mask is not None:
                cam = mask_camera
                self.mask.publish(mono8_to_image(outcome.mask, header))
                self.info.publish(camera_info(cam.width, cam.height, cam.fx, cam.fy, cam.cx,
                                              cam.cy, header))
            self.cloud.publish(result.cloud)
        elif outcome.status == QueryStatus.NO_MATCH:
            if camera is not None:  # nothing to see in the camera: an empty mask, NaN depth
                self.publish_view(empty_view(camera), info)
            self.cloud.publish(result.cloud)
            self.markers.publish(outcome_markers(header, text, outcome))

    def publish_view(self, view, info: CameraInfo) -> None:
        """Publish a target view stamped with its camera's header (for message_filters)."""
        header = Header(stamp=info.header.stamp, frame_id=info.header.frame_id)
        self.info.publish(info)
        self.mask.publish(mono8_to_image(view.mask, header))
        self.depth.publish(depth_to_image(view.depth, header))

    def publish_diagnostics(self, stamp, model, active: bool, values: dict) -> None:
        """Publish the node's status on /diagnostics: the model's figures, then ``values``."""
        status = DiagnosticStatus(name='refersplat: referring field', hardware_id='refersplat')
        if model is None:
            status.level, status.message = DiagnosticStatus.WARN, 'no referring field loaded'
        elif not active:
            status.level, status.message = DiagnosticStatus.WARN, 'loaded, not active'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'serving queries'
        figures = {'device': 'none', 'num_gaussians': '0', 'memory_mb': '0', 'text_cache_mb': '0'}
        if model is not None:
            figures.update(device=str(model.device), num_gaussians=str(model.num_gaussians),
                           memory_mb=f'{model.memory_bytes() / 2**20:.1f}',
                           text_cache_mb=f'{model.encoder.cache_nbytes / 2**20:.1f}')
        status.values = [KeyValue(key=k, value=v) for k, v in {**figures, **values}.items()]
        self.diagnostics.publish(DiagnosticArray(header=Header(stamp=stamp), status=[status]))
