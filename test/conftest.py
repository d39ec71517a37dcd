"""Suite-wide pytest configuration: the ROS network rule and per-test ROS fixtures."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.ros_harness import DomainLease, REPO_ROOT, require_ros, ros_environment, RosProcess
from helpers.trained_runs import TrainingWorker

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

#: Session fixture of a shared trained run -> its job in ``helpers.trained_runs``.
TRAINED_RUN_FIXTURES = {'tiny_trained_scene': 'tiny', 'tiny_names_run': 'tiny-names',
                        'tiny_reconstructed_run': 'tiny-reconstructed',
                        'hard_tiny_run': 'hard-tiny'}


def pytest_collection_modifyitems(session, config, items):
    """Run the tests of the last-trained run (hard-tiny) last: the runs train meanwhile."""
    last = [item for item in items if 'hard_tiny_run' in getattr(item, 'fixturenames', ())]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope='session', autouse=True)
def trained_runs(request, tmp_path_factory):
    """Start training the runs the selected tests need in one background process."""
    jobs = {job for name, job in TRAINED_RUN_FIXTURES.items()
            if any(name in getattr(item, 'fixturenames', ()) for item in request.session.items)}
    worker = TrainingWorker(tmp_path_factory.mktemp('trained_runs'), jobs)
    yield worker
    worker.stop()


@pytest.fixture(scope='session')
def tiny_trained_scene(trained_runs):
    """Return ``make_trained_scene`` of the tiny preset, 500 steps (a TrainedScene; read only)."""
    return trained_runs.result('tiny')


@pytest.fixture(scope='session')
def tiny_names_run(trained_runs):
    """Return a names-only field (60 steps) on ``tiny_trained_scene``'s scene (a TrainResult)."""
    return trained_runs.result('tiny-names')


@pytest.fixture(scope='session')
def tiny_reconstructed_run(trained_runs):
    """Return ``make_trained_scene`` on a tiny scene reconstructed from its images.

    A TrainedScene; read only.
    """
    return trained_runs.result('tiny-reconstructed')


@pytest.fixture(scope='session')
def hard_tiny_run(trained_runs):
    """Return the hard-tiny preset trained with the default recipe, capped at 1500 steps.

    (scene folder, manifest, TrainResult); do not modify, copy the run first.
    """
    return trained_runs.result('hard-tiny')


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
