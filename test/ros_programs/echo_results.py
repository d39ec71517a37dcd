"""Test program: republish every ReferResult from ``in_results`` on ``out_results``.

Both topics are reliable + transient_local so neither side has to wait for the other to appear.
Prints ``READY`` once its endpoints exist.
"""
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from refersplat_ros.msg import ReferResult

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main():
    rclpy.init()
    node = rclpy.create_node('echo_results')
    publisher = node.create_publisher(ReferResult, 'out_results', LATCHED)
    node.create_subscription(ReferResult, 'in_results', publisher.publish, LATCHED)
    print('READY', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal may shut the context down between rclpy's own check and the wait set it
        # builds next (RCLError "the given context is not valid", seen under load).
        if rclpy.ok():
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
