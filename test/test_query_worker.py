"""The node's query queue and worker thread (refersplat_ros/query_worker.py), without ROS."""
import threading
import time

import pytest

from refersplat_ros.core.inference.queries import QueryStatus
from refersplat_ros.query_worker import QueryWorker, ShuttingDown


class _Answers:
    """Collects every answer; ``serve`` answers OK after ``gate`` opens."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []            # (query_id, status, message)
        self.gate = threading.Event()
        self.gate.set()
        self.served = []             # (query_id, budget, waited)

    def answer(self, job, status, message):
        with self.lock:
            self.answers.append((job.query_id, int(status), message))
        job.done.set()

    def serve(self, job, budget, waited):
        self.gate.wait(10)
        self.served.append((job.query_id, budget, waited))
        if job.text == 'boom':
            raise RuntimeError('kaput')
        self.answer(job, QueryStatus.OK, '')


def _worker(answers, **kwargs):
    options = dict(queue_size=2, time_budget_s=lambda: 0.0, not_ready=lambda: '')
    options.update(kwargs)
    worker = QueryWorker(answers.serve, answers.answer, **options)
    worker.start()
    return worker


def _wait(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.005)
    return predicate()


def test_every_query_is_answered_once_in_order_and_overflow_is_dropped_at_once():
    answers = _Answers()
    worker = _worker(answers)
    answers.gate.clear()                       # the worker blocks in the first query
    jobs = [worker.new_job(f'q{i}') for i in range(6)]
    assert [j.query_id for j in jobs] == [1, 2, 3, 4, 5, 6]
    worker.submit(jobs[0])
    assert _wait(lambda: worker.queue_length == 0)  # taken: the worker serves it
    for job in jobs[1:]:
        worker.submit(job)
    dropped = [a for a in answers.answers if a[1] == QueryStatus.DROPPED]
    assert dropped == [(i, QueryStatus.DROPPED, 'query queue full (2 waiting)') for i in (4, 5, 6)]
    assert worker.dropped == 3 and worker.queue_length == 2
    answers.gate.set()
    assert _wait(lambda: len(answers.answers) == 6)
    assert [a[0] for a in answers.answers if a[1] == QueryStatus.OK] == [1, 2, 3]
    worker.stop()


def test_a_query_that_waited_past_the_budget_is_dropped_and_the_rest_get_the_budget():
    answers = _Answers()
    worker = _worker(answers, time_budget_s=lambda: 0.2)
    stale = worker.new_job('stale')
    stale.received -= 0.5
    worker.submit(stale)
    worker.submit(worker.new_job('fresh'))
    assert _wait(lambda: len(answers.answers) == 2)
    (first, status, message), second = answers.answers
    assert (first, status) == (1, QueryStatus.DROPPED) and worker.dropped == 1
    assert message.startswith('waited 0.5')
    assert message.endswith('over query.time_budget_s (0.2 s)')
    assert second[:2] == (2, QueryStatus.OK)
    (_, budget, waited), = answers.served
    assert budget == 0.2 and 0 <= waited < 0.2
    worker.stop()


def test_not_ready_and_errors_are_answered_and_the_worker_keeps_serving():
    answers = _Answers()
    reason = ['node is not active']
    logged = []
    logger = type('Logger', (), {'error': lambda self, text: logged.append(text)})()
    worker = _worker(answers, not_ready=lambda: reason[0], logger=logger)
    worker.submit(worker.new_job('a'))
    assert _wait(lambda: answers.answers == [(1, QueryStatus.NOT_READY, 'node is not active')])
    reason[0] = ''
    worker.submit(worker.new_job('boom'))
    worker.submit(worker.new_job('b'))
    assert _wait(lambda: len(answers.answers) == 3)
    assert answers.answers[1] == (2, QueryStatus.ERROR, 'RuntimeError: kaput')
    assert answers.answers[2][:2] == (3, QueryStatus.OK)
    assert worker.errors == 1 and logged == ["query 2 failed: RuntimeError('kaput')"]
    worker.stop()


def test_calls_run_on_the_worker_thread_and_stop_waiting_at_shutdown():
    answers = _Answers()
    idle = threading.Event()
    worker = _worker(answers, idle=lambda: idle.set() or 0.01)
    assert worker.call(threading.current_thread) is not threading.current_thread()
    with pytest.raises(ValueError, match='bad file'):
        worker.call(lambda: (_ for _ in ()).throw(ValueError('bad file')))
    assert _wait(idle.is_set)
    stop = threading.Timer(0.2, worker.stop)
    stop.start()
    with pytest.raises(ShuttingDown):
        worker.call(time.sleep, 1.0)   # a long load: the caller stops waiting at once
    stop.join()
