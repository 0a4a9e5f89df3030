"""Worker processes for ``kind="process"`` tasks: reused between tasks, killed on timeout.

Each worker is a spawned process (safe with threads, unlike fork) that receives one
pickled attempt at a time over a pipe and sends back log lines as they are written and
then the outcome. A timed-out or cancelled attempt is stopped by killing its worker; a
fresh one replaces it on demand. A worker that dies (killed, crashed, out of memory) is
noticed by its reader thread at once: the attempt it was running fails with the exit
code, and the dead process is reaped and forgotten, so neither zombies nor dead entries
pile up in a long-lived executor.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from shipyard.flows._attempt import Attempt, describe, environment, execute, failed
from shipyard.flows._protocols import DoneFn, StartFn

LogFn = Callable[[str, str], None]
_Job = tuple[Attempt, StartFn, LogFn, DoneFn]


class _PipeStream(io.TextIOBase):
    def __init__(self, send: Callable[[tuple[Any, ...]], None], stream: str) -> None:
        self._send = send
        self._stream = stream

    def write(self, text: str) -> int:
        if text:
            self._send(("log", self._stream, text))
        return len(text)

    def flush(self) -> None:
        return None


class _PipeHandler(logging.Handler):
    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        super().__init__()
        self._send = send
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self._send(("log", "log", self.format(record) + "\n"))


def worker_main(conn: Connection) -> None:
    """The loop of a worker process: run attempts until told to stop (``None``)."""
    import cloudpickle

    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    sys.stdout = _PipeStream(send, "stdout")
    sys.stderr = _PipeStream(send, "stderr")
    logging.getLogger().addHandler(_PipeHandler(send))
    logging.getLogger("shipyard.task").setLevel(logging.INFO)
    while True:
        try:
            payload = conn.recv()
        except EOFError:
            return
        if payload is None:
            return
        try:
            attempt: Attempt = cloudpickle.loads(payload)
        except Exception as exc:  # the task's module cannot be imported here
            outcome = failed(f"the worker process cannot load the task: {describe(exc)}", time.time())
            send(("done", outcome, None))
            continue
        with environment(attempt.env):
            outcome = execute(attempt, lambda at: send(("start", at)))
        outcome.value, outcome.has_value = None, False  # the parent reads the value back from its bytes
        try:
            exception = cloudpickle.dumps(outcome.exception) if outcome.exception is not None else None
        except Exception:
            exception = None
        outcome.exception = None
        send(("done", outcome, exception))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.process = ctx.Process(target=worker_main, args=(child,), daemon=True, name="shipyard-task-worker")
        self.process.start()
        child.close()
        self.busy: _Job | None = None
        self.dead = False
        # The reader thread owns the pipe: it alone closes it (in ``_bury``), so the fd is never
        # closed twice or while a recv() on it is still running (a reused fd would be closed).
        self.reader: threading.Thread | None = None


class ProcessPool:
    """Up to ``max_workers`` worker processes, started on demand and reused."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max(1, max_workers)
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._waiting: deque[_Job] = deque()
        self._closed = False

    def run(self, attempt: Attempt, on_start: StartFn, on_log: LogFn, on_done: DoneFn) -> None:
        """Send ``attempt`` to a free worker (starting one if allowed), or queue it."""
        with self._lock:
            worker = self._take()
            if worker is None:
                self._waiting.append((attempt, on_start, on_log, on_done))
                return
        self._dispatch(worker, (attempt, on_start, on_log, on_done))

    def _take(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.pop()
            if not worker.dead and worker.process.is_alive():
                return worker
        if len([w for w in self._all if not w.dead]) < self.max_workers:
            worker = _Worker(self._ctx)
            self._all.append(worker)
            worker.reader = threading.Thread(
                target=self._read, args=(worker,), name="shipyard-worker-reader", daemon=True
            )
            worker.reader.start()
            return worker
        return None

    def _dispatch(self, worker: _Worker, job: _Job) -> None:
        import cloudpickle

        attempt, on_done = job[0], job[3]
        start = time.time()
        try:
            payload = cloudpickle.dumps(attempt.sendable())
        except Exception as exc:
            self._release(worker)
            on_done(failed(f"task {attempt.key!r} cannot be sent to a worker process: {describe(exc)}", start, exc))
            return
        attempt.handle = worker
        worker.busy = job
        try:
            worker.conn.send(payload)
        except OSError as exc:
            worker.dead = True
            worker.busy = None
            on_done(failed(f"worker process for task {attempt.key!r} is gone: {exc}", start))

    def _read(self, worker: _Worker) -> None:
        import cloudpickle

        while True:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._bury(worker)
                return
            job = worker.busy
            if job is None:
                continue
            if message[0] == "log":
                job[2](message[1], message[2])
                continue
            if message[0] == "start":
                job[1](message[1])
                continue
            _, outcome, exception = message
            if exception is not None:
                with contextlib.suppress(Exception):
                    outcome.exception = cloudpickle.loads(exception)
            worker.busy = None
            self._release(worker)
            job[3](outcome)

    def _bury(self, worker: _Worker) -> None:
        """Forget a worker whose pipe closed: reap its process, fail its attempt, start the queue."""
        with self._lock:
            worker.dead = True
            job, worker.busy = worker.busy, None
            if worker in self._all:
                self._all.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
        worker.process.join(timeout=5)  # reaps it: no zombie is left behind
        with contextlib.suppress(OSError):
            worker.conn.close()
        if job is not None:
            code = worker.process.exitcode
            job[3](failed(f"the worker process running task {job[0].key!r} died (exit code {code})", time.time()))
        self._pump()

    @property
    def workers(self) -> int:
        """How many worker processes are alive or starting."""
        with self._lock:
            return len(self._all)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not worker.dead:
                self._idle.append(worker)
        self._pump()

    def _pump(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._closed:
                    return
                worker = self._take()
                if worker is None:
                    return
                job = self._waiting.popleft()
            self._dispatch(worker, job)

    def kill(self, attempt: Attempt) -> bool:
        """Stop the attempt by killing its worker; its outcome is no longer reported.

        Returns True when a running attempt was killed (False: it was only queued, or done).
        """
        worker = attempt.handle
        with self._lock:
            self._waiting = deque(job for job in self._waiting if job[0] is not attempt)
            running = isinstance(worker, _Worker) and worker.busy is not None and worker.busy[0] is attempt
            if running:
                worker.busy = None
                worker.dead = True
        if running:
            worker.process.kill()  # its reader thread sees the pipe close and reaps it
        return running

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=2)
            if worker.reader is not None:
                worker.reader.join(timeout=5)  # it sees the pipe close, then closes its end
