"""launch_testing test of launch/bringup.launch.py: bring up the node, ask it, shut down cleanly.

launch, launch_ros and launch_testing are not on PyPI (docs/SETUP.md#launch-packages), so this
module is skipped where they are missing; it imports them only inside functions so that
collection works without them. Where they are installed (a ROS 2 distribution, or the sources
with ``pytest<9``) the launch_testing pytest plugin runs it.

The launch uses a parameter file that names the checkpoint and the mask view while the launch
passes only ``scene``: an answered query proves that the empty ``checkpoint`` argument did not
overwrite the file's value. Network rule (docs/SETUP.md#network-rule): the launched processes get
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a leased ``ROS_DOMAIN_ID`` and their own
``ROS_LOG_DIR`` through SetEnvironmentVariable actions (which also set them in this process).
"""
import atexit
from importlib.util import find_spec
import shutil
import tempfile
import unittest

import pytest

pytestmark = pytest.mark.skipif(
    find_spec('launch_testing') is None or find_spec('launch_ros') is None,
    reason='launch_testing / launch_ros are not installed (not on PyPI, '
           'docs/SETUP.md#launch-packages); '
           'test/test_launch_files.py checks the launch file statically')

QUERY = 'the red mug on the right'


def _launch_test(function):
    """Mark the launch_testing entry point (``pytest.mark.launch_test``) where it is known."""
    if find_spec('launch_testing') is not None:
        return pytest.mark.launch_test(function)
    return function


def _post_shutdown_test(cls):
    """Mark ``cls`` as a post-shutdown test class (launch_testing.post_shutdown_test)."""
    if find_spec('launch_testing') is not None:
        import launch_testing
        return launch_testing.post_shutdown_test()(cls)
    return cls


@_launch_test
def generate_test_description():
    """Bring up the node on a tiny scene with the network rule applied to every process."""
    from pathlib import Path
    import sys

    # The helpers below live next to this file: pytest puts test/ on sys.path (setup.cfg), a
    # plain `launch_test test/test_bringup_launch.py` does not.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    from launch import LaunchDescription
    from launch.actions import (IncludeLaunchDescription, SetEnvironmentVariable,
                                UnsetEnvironmentVariable)
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing.actions

    from helpers.node_scenes import make_handmade_scene
    from helpers.ros_harness import DomainLease, REPO_ROOT, require_ros

    require_ros()
    lease = DomainLease()
    atexit.register(lease.release)
    folder = Path(tempfile.mkdtemp(prefix='refersplat_bringup_'))
    atexit.register(shutil.rmtree, folder, True)
    scene = make_handmade_scene(folder / 'scene')
    log_dir = folder / 'ros_log'
    log_dir.mkdir()
    params = folder / 'params.yaml'
    params.write_text(
        'refersplat:\n  ros__parameters:\n'
        f"    checkpoint: '{scene.checkpoint_path}'\n"
        f"    mask:\n      dataset: '{scene.dataset_dir}'\n      view_index: 0\n")
    environment = {
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_DOMAIN_ID': str(lease.domain_id),
        'ROS_LOG_DIR': str(log_dir),
        'FASTDDS_DEFAULT_PROFILES_FILE': str(REPO_ROOT / 'config' / 'fastdds_loopback.xml'),
        'PYTHONUNBUFFERED': '1',
    }
    bringup = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO_ROOT / 'launch' / 'bringup.launch.py')),
        launch_arguments={'params_file': str(params), 'scene': str(scene.scene_path),
                          'log_level': 'info'}.items())
    description = LaunchDescription(
        [SetEnvironmentVariable(name, value) for name, value in environment.items()]
        + [UnsetEnvironmentVariable('ROS_LOCALHOST_ONLY'),
           UnsetEnvironmentVariable('ROS_STATIC_PEERS'),
           bringup, launch_testing.actions.ReadyToTest()])
    return description, {'domain_id': lease.domain_id, 'log_dir': log_dir}


class TestBringup(unittest.TestCase):

    def test_node_answers_a_query(self, proc_output, proc_info, domain_id, log_dir):
        import numpy as np
        import rclpy
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image, PointCloud2
        from std_msgs.msg import String

        from helpers.node_scenes import A_CENTER
        from refersplat_ros.msg import ReferResult
        from refersplat_ros.node import LATCHED, RESULT_QOS
        from helpers.ros_harness import spin_until

        proc_output.assertWaitFor('active: send queries', timeout=120)
        # Every launched process runs under the network rule (docs/SETUP.md#network-rule).
        self.assertEqual([n.rsplit('-', 1)[0] for n in proc_info.process_names()],
                         ['refersplat_node'])
        for action in proc_info.processes():
            env = action.process_details['env']
            self.assertEqual((env['ROS_AUTOMATIC_DISCOVERY_RANGE'], env['ROS_DOMAIN_ID'],
                              env['ROS_LOG_DIR']), ('LOCALHOST', str(domain_id), str(log_dir)))
            self.assertNotIn('ROS_STATIC_PEERS', env)
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=domain_id)
        try:
            node = rclpy.create_node('bringup_test', context=context)
            got = {'result': [], 'scene': [], 'mask': []}
            node.create_subscription(ReferResult, '/refersplat/result', got['result'].append,
                                     RESULT_QOS)
            node.create_subscription(PointCloud2, '/refersplat/scene/cloud',
                                     got['scene'].append, LATCHED)
            node.create_subscription(Image, '/refersplat/target/mask', got['mask'].append,
                                     LATCHED)
            publisher = node.create_publisher(String, '/refer_query', QoSProfile(depth=10))
            assert spin_until(context, node, lambda: publisher.get_subscription_count() > 0, 30)
            assert spin_until(context, node, lambda: got['scene'], 30)
            publisher.publish(String(data=QUERY))
            assert spin_until(context, node, lambda: got['result'] and got['mask'], 30)
            result = got['result'][-1]
            self.assertEqual((result.status, result.message), (ReferResult.OK, ''))
            self.assertEqual(result.text, QUERY)
            self.assertEqual(result.header.frame_id, 'scene')
            position = result.pose.position
            np.testing.assert_allclose([position.x, position.y, position.z], A_CENTER,
                                       atol=0.01)
            self.assertEqual(result.num_gaussians, 600)
            # The mask comes from the params file's mask.* values (launch passed only scene).
            self.assertEqual((got['mask'][-1].height, got['mask'][-1].width), (48, 64))
            self.assertEqual(got['mask'][-1].header, result.header)
            node.destroy_node()
        finally:
            context.try_shutdown()


@_post_shutdown_test
class TestBringupShutdown(unittest.TestCase):

    def test_exit_codes(self, proc_info):
        from launch_testing.asserts import assertExitCodes

        self.assertGreaterEqual(len(proc_info.process_names()), 1)
        assertExitCodes(proc_info)
