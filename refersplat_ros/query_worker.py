"""The node's bounded query queue and the one worker thread that serves it.

Every query is answered exactly once, with a status: queries are served in arrival order from a
queue of ``queue_size`` (a served query waits for at most that many others); one arriving at a
full queue is answered DROPPED at once (in about a millisecond), one that waited in the queue
past the time budget is DROPPED when its turn comes, one the node cannot serve is NOT_READY, and
an exception while serving is answered ERROR (the worker keeps serving). The thread also runs
every torch computation of the process (:meth:`QueryWorker.call`): a parallel torch operation on
a second thread gives the process a second OpenMP team, and queries on the worker then ran about
1.3x slower (docs/BENCHMARKS.md#query-latency). No rclpy here: the node hands in callables.
"""
from concurrent.futures import Future
from dataclasses import dataclass, field
import itertools
import queue
import threading
import time
from typing import Callable, Optional

from refersplat_ros.core.errors import ReferSplatError
from refersplat_ros.core.inference.queries import QueryStatus

#: Seconds the worker waits for a query before it does its idle work again.
IDLE_WAIT_S = 0.05


class ShuttingDown(BaseException):
    """The process is shutting down (SIGINT/SIGTERM): stop waiting, answer nothing more.

    A BaseException, like KeyboardInterrupt: it passes through rclpy's lifecycle transition
    (which would otherwise try to publish the transition on a context already shut down and log
    an error) and through the executor, to the node's ``main``.
    """


def failure_reason(exc: BaseException) -> str:
    """Return the message of a failure: a named error's own text, else its type and text."""
    if isinstance(exc, ReferSplatError) and str(exc):
        return str(exc)
    return f'{type(exc).__name__}: {exc}' if str(exc) else type(exc).__name__


@dataclass
class Job:
    """One query, from its receipt to its answer."""

    query_id: int
    text: str
    received: float                                   # time.monotonic() at receipt
    top_k: int = 0                                    # 0 = parameter
    threshold: float = 0.0                            # <= 0 = parameter
    camera_info: object = None                        # the goal's camera, if it gave one
    camera_pose: object = None
    point: object = None                              # a pointed position (PointStamped)
    feedback: Optional[Callable[[str], None]] = None  # action feedback
    future: object = None                             # completed for the action's coroutine
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None                             # the answer, once done


class QueryWorker:
    """A bounded queue of :class:`Job` and the thread that serves it.

    Args:
        serve: ``serve(job, budget_s, waited_s)`` answers a job the node is ready for, on the
            worker thread; ``budget_s`` is the time budget (0 = none), ``waited_s`` the time
            since receipt.
        answer: ``answer(job, status, message)`` answers a job without serving it; it must set
            ``job.done``.
        queue_size: Most jobs waiting.
        time_budget_s: Returns the time budget now (``query.time_budget_s``).
        not_ready: Returns why no query can be served now, or '' when they can.
        idle: Called when no job waits; returns how long to wait for the next one (seconds).
        context_down: Returns True once the process is shutting down.
        logger: Logs failures (``error``).
    """

    def __init__(self, serve, answer, *, queue_size: int, time_budget_s, not_ready,
                 idle=lambda: IDLE_WAIT_S, context_down=lambda: False, logger=None):
        self._serve, self._answer = serve, answer
        self._time_budget_s, self._not_ready = time_budget_s, not_ready
        self._idle, self._context_down, self._logger = idle, context_down, logger
        self._queue = queue.Queue(maxsize=queue_size)
        self._tasks = queue.Queue()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='refersplat-queries',
                                        daemon=True)
        self.dropped = 0   # queries answered DROPPED
        self.errors = 0    # queries answered ERROR after an exception

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the worker; wait at most ``timeout`` s (a long load is not waited for)."""
        self._stop.set()
        self._thread.join(timeout=timeout)

    @property
    def stopping(self) -> bool:
        """True once told to stop or the process is shutting down."""
        return self._stop.is_set() or self._context_down()

    @property
    def queue_length(self) -> int:
        """The number of jobs waiting."""
        return self._queue.qsize()

    def new_job(self, text: str, **fields) -> Job:
        """Return a job for ``text``, received now, with the next query id (1, 2, ...)."""
        return Job(next(self._ids), text, time.monotonic(), **fields)

    def submit(self, job: Job) -> None:
        """Queue ``job``; a full queue answers it DROPPED at once."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            self._answer(job, QueryStatus.DROPPED,
                         f'query queue full ({self._queue.maxsize} waiting)')

    def call(self, function, *args):
        """Run ``function(*args)`` on the worker thread, wait, return its result or raise.

        Raises :class:`ShuttingDown` as soon as the process is told to stop, even while the
        worker is still busy with a long load.
        """
        if threading.current_thread() is self._thread:
            return function(*args)
        task = Future()
        self._tasks.put((task, function, args))
        while True:
            try:
                return task.result(timeout=0.05)
            except TimeoutError:
                if self.stopping:
                    task.cancel()
                    raise ShuttingDown() from None
                if not self._thread.is_alive():
                    raise RuntimeError('the worker thread has stopped') from None

    def _run(self):
        wait_s = IDLE_WAIT_S
        while not self.stopping:
            self._run_tasks()
            try:
                job = self._queue.get(timeout=wait_s)
            except queue.Empty:
                wait_s = self._idle()
                continue
            try:
                self._take(job)
            except Exception as exc:  # never let one query take the worker down
                if self.stopping:
                    return  # a publisher of a context being shut down: stop quietly
                self._fail(job, exc)

    def _run_tasks(self):
        while True:
            try:
                task, function, args = self._tasks.get_nowait()
            except queue.Empty:
                return
            if not task.set_running_or_notify_cancel():
                continue
            try:
                task.set_result(function(*args))
            except BaseException as exc:  # handed to the waiting caller
                task.set_exception(exc)

    def _take(self, job: Job):
        """Answer NOT_READY, DROPPED after too long a wait, or serve the job."""
        reason = self._not_ready()
        if reason:
            self._answer(job, QueryStatus.NOT_READY, reason)
            return
        budget = self._time_budget_s()
        waited = time.monotonic() - job.received
        if budget > 0 and waited >= budget:
            self.dropped += 1
            self._answer(job, QueryStatus.DROPPED,
                         f'waited {waited:.2f} s in the queue, over query.time_budget_s '
                         f'({budget:g} s)')
            return
        self._serve(job, budget, waited)

    def _fail(self, job: Job, exc: Exception):
        """Answer ERROR with the reason, unless the job was answered before it failed."""
        self.errors += 1
        if self._logger is not None:
            self._logger.error(f'query {job.query_id} failed: {exc!r}')
        if not job.done.is_set():
            try:
                self._answer(job, QueryStatus.ERROR, failure_reason(exc))
            except Exception:
                if not self.stopping:
                    raise
