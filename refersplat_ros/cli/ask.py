"""``refersplat ask``: ask a running refersplat node, through its action, from a terminal.

Example::

    refersplat ask "the red mug left of the bowl"
    refersplat ask --server /robot1/refersplat/refer "the mug"

Prints the status, how the node understood the query, the target's score, pose and box, and for
AMBIGUOUS every candidate (label, score, position). Exit code 0 when the answer has a target (OK,
or AMBIGUOUS: several objects fit and the best one is returned), 1 for another status
(NO_MATCH, INVALID_QUERY, ...), 3 when no answer came (node absent, goal rejected, timeout);
docs/CLI.md#exit-codes. Joins the ROS graph with this process's environment (``ROS_DOMAIN_ID``,
``ROS_AUTOMATIC_DISCOVERY_RANGE``).
"""
import argparse

from refersplat_ros.cli.main import EXIT_NO_MATCH, EXIT_OK
from refersplat_ros.topics import REFER_ACTION, under_node


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('text', help='referring expression, e.g. "the red mug"')
    parser.add_argument('--server', default=under_node(REFER_ACTION),
                        help='action name of the node (default %(default)s)')
    parser.add_argument('--timeout', type=float, default=15.0, help='seconds to wait')
    parser.add_argument('--top-k', type=int, default=0, help='instances (0 = node parameter)')
    parser.add_argument('--threshold', type=float, default=0.0,
                        help='probability threshold (0 = node parameter)')


def run(args) -> int:
    import rclpy

    from refersplat_ros.client import answered, format_result, ReferClient

    rclpy.init()
    node = rclpy.create_node('refersplat_ask')
    client = ReferClient(node, args.server)
    try:
        result = client.refer(args.text, args.timeout, args.top_k, args.threshold)
    finally:
        client.destroy()
        node.destroy_node()
        rclpy.try_shutdown()
    print(format_result(result))
    return EXIT_OK if answered(result) else EXIT_NO_MATCH
