"""QoS profiles of the refersplat interfaces, shared by the node, its clients and the viewer.

Importing this module loads only ``rclpy.qos`` (not the node and its torch/open3d stack), so a
client or the viewer can match the node's profiles cheaply.

Every query is answered exactly once, so nothing on the way may silently overwrite a message:
the query topic, the result topic, the action's services and the ``~/clear`` and
``~/load_scene`` services keep deep histories, and the node's own bounded queue
(``query.queue_size``) answers overflow with DROPPED. A keep-last-10 history (the rclpy default
for services and actions) lost 9 of 20 goals sent at once.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Latched outputs: the newest message reaches a late subscriber.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
#: ``~/result`` keeps a history so that a burst of results is never overwritten before a reliable
#: subscriber has it; a late subscriber asking for depth 1 gets the newest result.
RESULT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL,
                        history=HistoryPolicy.KEEP_LAST)
#: Queries: reliable, volatile, deep, so that a burst reaches the node's own bounded queue.
QUERY_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
#: The ``~/refer`` action's goal, result and cancel services, on the server and on clients
#: (both ends keep a history: requests at the server, responses at the client).
ACTION_SERVICE_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.VOLATILE,
                                history=HistoryPolicy.KEEP_LAST)
#: The node's ``~/clear`` and ``~/load_scene`` services, on the server and on clients (requests
#: kept at the server, responses at the client): a burst of calls gets one reply per call.
SERVICE_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
#: Action feedback (stages of each goal): deep enough for a burst of goals.
ACTION_FEEDBACK_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE,
                                 history=HistoryPolicy.KEEP_LAST)
#: Camera inputs (camera_info, camera pose): best effort, keep the newest few, like the sensor
#: data profile of camera drivers; a best-effort subscription matches reliable publishers too.
CAMERA_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
