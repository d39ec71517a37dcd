"""The test harness itself: domain leases, the network rule, process stop, strict mode."""
import os
import signal
import sys
from pathlib import Path

import pytest

from helpers import ros_harness
from helpers.ros_harness import DomainLease, RosProcess, ros_environment

PROGRAMS = Path(__file__).parent / 'ros_programs'


def test_domain_leases_are_exclusive_and_valid():
    first, second = DomainLease(), DomainLease()
    try:
        assert first.domain_id != second.domain_id
        assert all(101 <= d <= 232 for d in (first.domain_id, second.domain_id))
    finally:
        first.release()
        second.release()


def test_environment_follows_the_network_rule(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')
    monkeypatch.setenv('ROS_STATIC_PEERS', '10.0.0.1')
    env = ros_environment(123, tmp_path / 'logs')
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['ROS_DOMAIN_ID'] == '123'
    assert env['ROS_LOG_DIR'] == str(tmp_path / 'logs') and (tmp_path / 'logs').is_dir()
    assert 'ROS_STATIC_PEERS' not in env and 'ROS_LOCALHOST_ONLY' not in env
    # The test process itself (in-process participants) is bound by conftest.py too.
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'


def test_stop_kills_a_process_that_ignores_sigint(tmp_path):
    code = ('import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); '
            'print("up", flush=True); time.sleep(60)')
    proc = RosProcess([sys.executable, '-c', code], dict(os.environ), tmp_path, 'stubborn')
    assert proc.wait_for_output('up')
    assert proc.stop(timeout=0.5) == -signal.SIGKILL
    assert proc.killed


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_ros_program_exits_cleanly_on_signal(ros_processes, sig):
    echo = ros_processes(PROGRAMS / 'echo_results.py')
    assert echo.wait_for_output('READY'), echo.output()
    # a clean exit, not a fast one (the node's exit time is test_node's): a generous bound, as
    # rclpy's shutdown took over 5 s with two busy loops and a training job on the two cores
    assert echo.stop(sig, timeout=20) == 0, echo.output()
    assert not echo.killed


@pytest.mark.parametrize('strict, outcome', [(True, pytest.fail.Exception),
                                             (False, pytest.skip.Exception)])
def test_missing_ros_fails_in_strict_mode_and_skips_otherwise(monkeypatch, strict, outcome):
    monkeypatch.setattr(ros_harness, 'ros_unavailable_reason', lambda: 'ImportError: no rclpy')
    monkeypatch.setattr(ros_harness, 'STRICT', strict)
    with pytest.raises(outcome, match='no rclpy'):
        ros_harness.require_ros()
