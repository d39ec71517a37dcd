"""Test program: a minimal ``Refer`` action server and ``LoadScene`` service.

The action publishes one feedback per stage and answers with a ReferResult derived from the goal
(text echoed, top_k in num_gaussians, the threshold in score); the service reports success only
for existing files and returns the byte size of the scene file as ``num_gaussians``.
"""
import os
import time

import rclpy
from rclpy.action import ActionServer
from rclpy.executors import ExternalShutdownException

from refersplat_ros.action import Refer
from refersplat_ros.msg import ReferResult
from refersplat_ros.srv import LoadScene

STAGES = ('queued', 'encoding', 'field', 'selecting', 'publishing')


def main():
    rclpy.init()
    node = rclpy.create_node('refer_server')
    start = time.monotonic()

    def execute(goal_handle):
        for stage in STAGES:
            feedback = Refer.Feedback(stage=stage)
            elapsed = time.monotonic() - start
            feedback.elapsed.sec = int(elapsed)
            feedback.elapsed.nanosec = int((elapsed % 1) * 1e9)
            goal_handle.publish_feedback(feedback)
            time.sleep(0.02)
        request = goal_handle.request
        result = ReferResult(text=request.text, status=ReferResult.OK,
                             num_gaussians=request.top_k, score=request.score_threshold)
        result.header.frame_id = 'scene'
        result.header.stamp = node.get_clock().now().to_msg()
        goal_handle.succeed()
        return Refer.Result(result=result)

    def load_scene(request, response):
        missing = [p for p in (request.scene_path, request.checkpoint_path)
                   if not os.path.isfile(p)]
        response.success = not missing
        response.message = f'missing: {missing}' if missing else 'loaded'
        response.num_gaussians = 0 if missing else os.path.getsize(request.scene_path)
        return response

    server = ActionServer(node, Refer, 'refer', execute)
    node.create_service(LoadScene, 'load_scene', load_scene)
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
        server.destroy()  # rclpy's destroy_node does not destroy action servers
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
