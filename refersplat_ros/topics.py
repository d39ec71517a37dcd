"""The node's ROS names, defined once (node, viewer, client, demo and benchmarks use these).

Imports no rclpy.

Private names (``~/x``) resolve under the node: ``/<namespace>/refersplat/x``. The query topic is
relative, so it is ``/<namespace>/refer_query`` (``/refer_query`` without a namespace).
"""
NODE_NAME = 'refersplat'

QUERY = 'refer_query'
REFER_ACTION = '~/refer'
LOAD_SCENE = '~/load_scene'
EDIT_SCENE = '~/edit_scene'
RESULT = '~/result'
TARGET_CLOUD = '~/target/cloud'
TARGET_POSE = '~/target/pose'
TARGET_MASK = '~/target/mask'
TARGET_CAMERA_INFO = '~/target/camera_info'
TARGET_DEPTH = '~/target/depth'
CLEAR = '~/clear'
#: Default camera inputs (parameters ``camera.info_topic`` / ``camera.pose_topic``; remap them).
CAMERA_INFO = 'camera/camera_info'
CAMERA_POSE = 'camera/pose'
#: RViz's "Publish Point" tool (parameter ``pointing.topic``): the object under it is the target.
CLICKED_POINT = '/clicked_point'
MARKERS = '~/markers'
SCENE_CLOUD = '~/scene/cloud'
#: Latched boxes of the edited objects (removed: where they last stood; moved: where they are).
EDITS = '~/scene/edits'
DIAGNOSTICS = '/diagnostics'


def under_node(name: str, node: str = '/' + NODE_NAME) -> str:
    """Resolve a private name under a node's full name (other names are returned unchanged).

    ``under_node('~/result')`` is ``'/refersplat/result'``.
    """
    if name.startswith('~/'):
        return node.rstrip('/') + '/' + name[2:]
    return name
