"""core.background: one job at a time on a thread of its own, waited for from another."""

from __future__ import annotations

import threading

from core.background import OneAtATime


def test_a_wait_that_comes_while_a_job_is_being_started_does_not_fail(monkeypatch):
    """An engine stopping on one thread (OBS unloading the script) waits for the checker
    while the worker is starting a job: the wait sees the job before or once it runs, never
    a thread not started yet ("cannot join thread before it is started" failed the
    filter's close)."""
    checker = OneAtATime("test-checker")
    ran = threading.Event()
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        checker.wait(0.0)  # the other thread's wait, in the middle of run()
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    checker.run(ran.set, wait=False)
    checker.wait(5.0)
    assert ran.is_set() and not checker.busy()


def test_jobs_run_on_their_own_thread_or_on_the_caller_s():
    checker = OneAtATime("test-checker")
    where: list[str] = []
    checker.run(lambda: where.append(threading.current_thread().name), wait=True)
    checker.run(lambda: where.append(threading.current_thread().name), wait=False)
    checker.wait(5.0)
    assert where == [threading.current_thread().name, "test-checker"]
