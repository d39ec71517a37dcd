"""Architecture rule: refersplat_ros.core imports no ROS, so it works as a plain library."""
import pkgutil
import subprocess
import sys

from helpers.ros_harness import REPO_ROOT

import refersplat_ros.core


def test_core_modules_import_without_rclpy():
    modules = [m.name for m in pkgutil.walk_packages(refersplat_ros.core.__path__,
                                                     'refersplat_ros.core.')]
    assert modules, 'refersplat_ros.core has no modules'
    code = ('import importlib, sys\n'
            f'for name in {modules!r}:\n'
            '    importlib.import_module(name)\n'
            "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'rcl_interfaces', 'std_msgs', 'sensor_msgs', 'launch', 'launch_ros'))\n"
            'print(leaked)\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '[]', proc.stdout


def test_core_sources_do_not_mention_ros_imports():
    offenders = [str(p.relative_to(REPO_ROOT))
                 for p in (REPO_ROOT / 'refersplat_ros' / 'core').rglob('*.py')
                 if any(line.lstrip().startswith(('import rclpy', 'from rclpy'))
                        for line in p.read_text().splitlines())]
    assert offenders == []
