"""The network rule for every ROS process this project starts (docs/SETUP.md#network-rule).

Tests, the demo and the benchmarks start nodes as subprocesses; each gets
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, an explicit ``ROS_DOMAIN_ID``, its own
``ROS_LOG_DIR`` and the package's Fast DDS profile that keeps transports on 127.0.0.1. A process
that also joins the graph itself (a test or demo client) copies the same keys into its own
environment with :func:`apply_network_rule` before ``rclpy.init``. Imports no rclpy.
"""
import os
from pathlib import Path
from typing import Dict, Optional

PACKAGE = 'refersplat_ros'
LOOPBACK_PROFILE = Path('config') / 'fastdds_loopback.xml'
#: The variables that decide which network a ROS participant uses.
NETWORK_RULE_KEYS = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID',
                     'FASTDDS_DEFAULT_PROFILES_FILE')


def loopback_profile() -> Optional[Path]:
    """Return the installed Fast DDS loopback profile (``share/refersplat_ros/config``), if any."""
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
    except ImportError:
        return None
    try:
        path = Path(get_package_share_directory(PACKAGE)) / LOOPBACK_PROFILE
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


def ros_environment(domain_id: int, log_dir: Path,
                    base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a ROS subprocess: ``base`` (default ours) plus the network rule.

    ``log_dir`` is created. A Fast DDS profile already chosen in ``base`` is kept; otherwise the
    package's loopback profile is used when the package is installed.
    """
    env = dict(os.environ if base is None else base)
    env.update({
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_DOMAIN_ID': str(int(domain_id)),
        'ROS_LOG_DIR': str(log_dir),
        'PYTHONUNBUFFERED': '1',
        'HF_HUB_OFFLINE': '1',
    })
    # OpenMP threads that sleep while they wait: spinning ones made torch ~40x slower as soon
    # as another process was busy (the node sets this itself too).
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    if not env.get('FASTDDS_DEFAULT_PROFILES_FILE'):
        profile = loopback_profile()
        if profile is not None:
            env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
    env.pop('ROS_STATIC_PEERS', None)
    env.pop('ROS_LOCALHOST_ONLY', None)  # ignored by Kilted; keep the environment unambiguous
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return env


def apply_network_rule(env: Dict[str, str]) -> None:
    """Copy the network-rule variables of ``env`` into this process (before ``rclpy.init``)."""
    for key in NETWORK_RULE_KEYS:
        if key in env:
            os.environ[key] = env[key]
