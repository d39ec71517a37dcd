"""Lint (ROS 2 conventions: flake8, 99 columns, single quotes, pep257 docstrings) on all code."""
import subprocess
import sys

from helpers.ros_harness import REPO_ROOT

LINTED = ['refersplat_ros', 'test', 'bench', 'scripts', 'launch', 'setup.py']


def test_flake8_and_pep257():
    paths = [p for p in LINTED if (REPO_ROOT / p).exists()]
    proc = subprocess.run([sys.executable, '-m', 'flake8', *paths], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f'flake8 found problems:\n{proc.stdout}{proc.stderr}'
