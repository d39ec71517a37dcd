"""Suite-wide pytest configuration: the ROS network rule and per-test ROS fixtures."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.ros_harness import DomainLease, REPO_ROOT, require_ros, ros_environment, RosProcess

# The network rule applies to this test process too (in-process rclpy participants): set it
# before any test can call rclpy.init(). Logs of in-process participants go to a private folder.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.setdefault('ROS_LOG_DIR', tempfile.mkdtemp(prefix='refersplat_test_roslog_'))
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                      str(REPO_ROOT / 'config' / 'fastdds_loopback.xml'))
os.environ.setdefault('HF_HUB_OFFLINE', '1')
# Torch's OpenMP threads sleep instead of spinning while they wait (set before torch loads): with
# two spinning threads on two cores, any other busy process slowed small torch ops ~40x, the
# suite's in-process training and queries with them.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


@pytest.fixture
def ros_domain():
    """Lease an exclusive ROS_DOMAIN_ID for this test."""
    lease = DomainLease()
    try:
        yield lease.domain_id
    finally:
        lease.release()


@pytest.fixture
def ros_env(ros_domain, tmp_path):
    """Build the environment of ROS subprocesses of this test (network rule, domain, logs)."""
    require_ros()
    return ros_environment(ros_domain, tmp_path / 'ros_log')


@pytest.fixture
def rclpy_context(ros_env, ros_domain):
    """Initialise an rclpy context on this test's domain; shut it down afterwards."""
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def ros_processes(ros_env, tmp_path):
    """Start ROS processes with ``start(module_or_script, *args)``; all are stopped at teardown."""
    started = []

    def start(target, *args, name=None):
        log_dir = Path(ros_env['ROS_LOG_DIR'])
        if str(target).endswith('.py'):
            proc = RosProcess.python_script(target, *args, env=ros_env, log_dir=log_dir, name=name)
        else:
            proc = RosProcess.python_module(target, *args, env=ros_env, log_dir=log_dir, name=name)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
