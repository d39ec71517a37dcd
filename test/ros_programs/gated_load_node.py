"""Test program: the refersplat node whose ``~/load_scene`` loads wait for a gate file.

Runs ``refersplat_ros.node.main`` (same arguments). A load on the ``~/load_scene`` loader thread
first waits (at most 120 s) until the file named by the environment variable
``REFERSPLAT_TEST_GATE`` exists, so a test can hold a load open as long as it needs and check
what the node answers meanwhile. Configure's load is not gated.
"""
import os
from pathlib import Path
import sys
import threading
import time

# This checkout's package first, as for `python -m refersplat_ros.node` run from the repository.
_TEST_DIR = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_TEST_DIR.parent), str(_TEST_DIR)]

from refersplat_ros import node as node_module  # noqa: E402

_load = node_module.ReferSplatNode._load


def _gated_load(self, scene, checkpoint):
    if threading.current_thread().name == 'refersplat-load':
        gate = Path(os.environ['REFERSPLAT_TEST_GATE'])
        deadline = time.monotonic() + 120.0
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return _load(self, scene, checkpoint)


node_module.ReferSplatNode._load = _gated_load

if __name__ == '__main__':
    sys.exit(node_module.main())
