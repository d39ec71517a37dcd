"""Test harness for everything that starts ROS 2 participants.

Every ROS process the suite starts follows the mandatory network rule
(docs/SETUP.md#network-rule): ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, its own explicit
``ROS_DOMAIN_ID`` (leased through a lock file, so concurrent test runs on one machine never share
one) and its own ``ROS_LOG_DIR``. Node processes are started with ``python -m`` and stopped with
SIGINT, then SIGKILL after a timeout; shared-memory files a killed process left in /dev/shm are
removed.

Strict mode (``REFERSPLAT_REQUIRE_ROS=1`` or ``CI=true``): a missing rclpy or interface build fails
the tests that need it instead of skipping them, so a broken build cannot pass silently.
"""
import errno
import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refersplat_ros.ros_environment import ros_environment  # noqa: F401 (re-exported)

REPO_ROOT = Path(__file__).resolve().parents[2]
STRICT = (os.environ.get('REFERSPLAT_REQUIRE_ROS') == '1'
          or os.environ.get('CI', '').lower() == 'true')
# Domains 101-232: clear of the default 0, env.sh's default 77, and the invalid >= 233.
DOMAIN_RANGE = range(101, 233)
DOMAIN_LOCK_DIR = Path(os.environ.get('TMPDIR', '/tmp')) / 'refersplat_ros_domains'
SHM_DIR = Path('/dev/shm')


def ros_unavailable_reason():
    """Return why rclpy or the built interfaces cannot be imported, or None if they can."""
    try:
        import rclpy  # noqa: F401
        from refersplat_ros.action import Refer  # noqa: F401
        from refersplat_ros.msg import ReferResult  # noqa: F401
        from refersplat_ros.srv import LoadScene  # noqa: F401
    except Exception as exc:  # any import failure means "no usable ROS"
        return f'{type(exc).__name__}: {exc}'
    return None


def require_ros():
    """Skip (or, in strict mode, fail) the calling test when ROS is not usable."""
    reason = ros_unavailable_reason()
    if reason is None:
        return
    if STRICT:
        pytest.fail(f'ROS 2 is required (strict mode) but unavailable: {reason}')
    pytest.skip(f'ROS 2 unavailable: {reason}')


class DomainLease:
    """An exclusive ROS_DOMAIN_ID for one test, held through an flock'ed file."""

    def __init__(self):
        DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
        ids = list(DOMAIN_RANGE)
        start = random.Random(os.getpid() ^ time.monotonic_ns()).randrange(len(ids))
        for domain_id in ids[start:] + ids[:start]:
            fd = os.open(DOMAIN_LOCK_DIR / f'{domain_id}.lock', os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self.domain_id, self._fd = domain_id, fd
            return
        raise RuntimeError(f'no free ROS domain id in {DOMAIN_RANGE}')

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _shm_entries():
    try:
        return {p.name for p in SHM_DIR.iterdir()}
    except OSError:
        return set()


def _shm_of(proc: Path):
    """Names of /dev/shm entries that the process ``/proc/<pid>`` has open or mapped."""
    used = set()
    with open(proc / 'maps') as maps:
        for line in maps:
            if '/dev/shm/' in line:
                used.add(line.rsplit('/dev/shm/', 1)[1].split()[0])
    for fd in (proc / 'fd').iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith('/dev/shm/'):
            used.add(target[len('/dev/shm/'):].split()[0])
    return used


def _shm_in_use():
    """Names of /dev/shm entries that some live process has open or mapped."""
    used = set()
    for proc in Path('/proc').iterdir():
        if not proc.name.isdigit():
            continue
        try:
            used |= _shm_of(proc)
        except OSError:
            continue
    return used


class RosProcess:
    """A ROS node (or helper script) running in its own process, output captured to a file."""

    def __init__(self, args, env: dict, log_dir: Path, name: str):
        self.name = name
        self.output_path = Path(log_dir) / f'{name}.out'
        self._shm_before = _shm_entries()
        self._output = open(self.output_path, 'wb')
        self.popen = subprocess.Popen(
            args, env=env, cwd=REPO_ROOT, stdout=self._output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.killed = False
        self._own_shm = None  # the segments it had mapped when told to stop

    @classmethod
    def python_module(cls, module: str, *args, env, log_dir, name=None):
        """Start ``python -m module args...`` with this interpreter."""
        return cls([sys.executable, '-m', module, *map(str, args)], env, log_dir,
                   name or module.rsplit('.', 1)[-1])

    @classmethod
    def python_script(cls, script, *args, env, log_dir, name=None):
        """Start ``python script args...`` with this interpreter."""
        return cls([sys.executable, str(script), *map(str, args)], env, log_dir,
                   name or Path(script).stem)

    def output(self) -> str:
        if not self._output.closed:
            self._output.flush()
        return self.output_path.read_text(errors='replace')

    def wait_for_output(self, text: str, timeout: float = 20.0) -> bool:
        """Wait until ``text`` appears in the process output (or the process exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.popen.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGINT, timeout: float = 5.0) -> int:
        """Send ``sig``; SIGKILL after ``timeout``; clean /dev/shm files a kill left behind."""
        if self.popen.poll() is None:
            try:
                self._own_shm = _shm_of(Path('/proc') / str(self.popen.pid))
            except OSError:
                pass
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._output.close()
        if self.killed:  # only then: a starting process may not have mapped its segment yet
            for name in self.leftover_shm():
                try:
                    (SHM_DIR / name).unlink()
                except OSError:
                    pass
        return self.popen.returncode

    def leftover_shm(self):
        """Fast DDS /dev/shm entries of this process that still exist and that nobody uses.

        The process's own entries are those it had mapped or open when ``stop`` signalled it
        (else: those created since it started, which on a machine running other ROS tests may
        include theirs). After a clean exit of a process that was the only participant of its
        domain this is the process's leak (tests assert it is empty); after a kill ``stop``
        removes them, and only them.
        """
        created = _shm_entries() - self._shm_before
        if self._own_shm is not None:
            created &= self._own_shm
        leftovers = created - _shm_in_use()
        return sorted(n for n in leftovers
                      if n.startswith(('fastdds', 'fastrtps', 'sem.fastdds', 'sem.fastrtps')))


def spin_until(context, node, predicate, timeout: float) -> bool:
    """Spin ``node`` on ``context`` until ``predicate()`` is true or ``timeout`` s pass."""
    from rclpy.executors import SingleThreadedExecutor
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while not predicate() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    return bool(predicate())
