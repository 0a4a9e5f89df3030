"""The Ray executor: every task attempt is a Ray task asking for its ``num_cpus``, ``num_gpus``
and ``memory``, so Ray's scheduler places it where those resources are free.

Works against a Ray already initialized in the process (``ray.init(...)``), a ``ray://``
address (Ray Client), ``RAY_ADDRESS``, or else a local Ray it starts. A Ray it starts is
kept for the rest of the process (Ray shuts it down at exit), so every later flow run
with ``executor="ray"`` reuses it instead of paying Ray's start-up again. Tasks record
into the same store as the flow, so workers must reach it (a shared PostgreSQL and S3 for
a real cluster). What a task prints on a Ray worker is returned with its outcome and
stored then, not streamed while it runs.

Each Ray task is a streaming generator that first yields the time its function starts on
a worker: a task waiting in Ray's queue for resources is ``pending``, it turns ``running``
when that first value arrives, and its timeout counts from then. Ray Client cannot stream
generators, so through a ``ray://`` address both start when the task is handed to Ray.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ConfigError, InvalidInputError
from shipyard.flows._attempt import Attempt, Outcome, describe, environment, execute, failed
from shipyard.flows._protocols import DoneFn, Launch, StartFn
from shipyard.flows._timers import Timers

_pickle_lock = threading.Lock()


class _Collect(io.TextIOBase):
    def __init__(self, logs: list[tuple[str, str]], stream: str) -> None:
        self._logs = logs
        self._stream = stream

    def write(self, text: str) -> int:
        if text:
            self._logs.append((self._stream, text))
        return len(text)


class _CollectHandler(logging.Handler):
    def __init__(self, logs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._logs = logs
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self._logs.append(("log", self.format(record) + "\n"))


def run_on_worker(payload: bytes) -> bytes:
    """The body of every Ray task: load the attempt, run it with output captured, send the outcome."""
    import cloudpickle

    logs: list[tuple[str, str]] = []
    handler = _CollectHandler(logs)
    root = logging.getLogger()
    task_logger = logging.getLogger("shipyard.task")
    level = task_logger.level
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Collect(logs, "stdout"), _Collect(logs, "stderr")
    root.addHandler(handler)
    task_logger.setLevel(logging.INFO)
    try:
        try:
            attempt: Attempt = cloudpickle.loads(payload)
        except Exception as exc:
            outcome = failed(f"the Ray worker cannot load the task: {describe(exc)}", time.time(), exc)
        else:
            with environment(attempt.env):
                outcome = execute(attempt)
    finally:
        sys.stdout, sys.stderr = saved
        root.removeHandler(handler)
        task_logger.setLevel(level)
    outcome.value, outcome.has_value, outcome.logs = None, False, logs
    exception = outcome.exception
    outcome.exception = None
    try:
        exception_bytes = cloudpickle.dumps(exception) if exception is not None else None
    except Exception:
        exception_bytes = None
    data: bytes = cloudpickle.dumps((outcome, exception_bytes))
    return data


def stream_on_worker(payload: bytes) -> Iterator[float | bytes]:
    """The Ray task as a generator: the time it starts here first, then its outcome."""
    yield time.time()
    yield run_on_worker(payload)


@dataclass(slots=True)
class _Pending:
    attempt: Attempt
    on_start: StartFn
    on_done: DoneFn
    started: bool


def _installed(module_file: str | None) -> bool:
    if module_file is None:
        return True
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("purelib", "platlib", "stdlib") if k in paths}
    return any(os.path.realpath(module_file).startswith(root) for root in roots)


def _dumps(attempt: Attempt) -> bytes:
    """Pickle an attempt; a task defined in a script or a test file travels by value."""
    import cloudpickle

    module = sys.modules.get(getattr(attempt.fn, "__module__", "") or "")
    by_value = module is not None and not _installed(getattr(module, "__file__", None))
    with _pickle_lock:
        registered = False
        if by_value and module is not None:
            try:
                cloudpickle.register_pickle_by_value(module)
                registered = True
            except ValueError:  # already registered (a flow file loaded by shipyard)
                pass
        try:
            data: bytes = cloudpickle.dumps(attempt.sendable())
            return data
        finally:
            if registered and module is not None:
                cloudpickle.unregister_pickle_by_value(module)


class RayExecutor:
    """Task attempts as Ray tasks with the resources they declare.

    Example:
        >>> import ray
        >>> ray.init(num_cpus=8)                                   # doctest: +SKIP
        >>> pipeline.with_options(executor=RayExecutor()).run()    # doctest: +SKIP
        >>> RayExecutor("ray://head:10001")                        # a remote cluster  # doctest: +SKIP
    """

    name = "ray"

    def __init__(self, address: str | None = None, **init_options: Any) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("the Ray executor needs Ray: pip install 'shipyard[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            target = address or os.environ.get("RAY_ADDRESS") or None
            options = {"include_dashboard": False, "log_to_driver": False, **init_options}
            if target is not None and target.startswith("ray://"):
                options.pop("include_dashboard", None)
            ray.init(address=target, **options)  # kept for the process: the next run reuses it
        from ray.util.client import ray as client

        self._streaming = not client.is_connected()  # type: ignore[no-untyped-call]
        self._remote = ray.remote(stream_on_worker if self._streaming else run_on_worker)
        self._lock = threading.Lock()
        self._pending: dict[Any, _Pending] = {}
        self._wake = threading.Event()
        self._closed = False
        self._timers = Timers("shipyard-ray-timeouts")
        self._thread = threading.Thread(target=self._wait_loop, name="shipyard-ray-waiter", daemon=True)
        self._thread.start()

    def submit_many(self, launches: Sequence[Launch]) -> list[tuple[int, InvalidInputError]]:
        """Send each attempt to Ray with its resources; Ray queues what does not fit yet."""
        for attempt, on_start, on_done in launches:
            self._submit(attempt, on_start, on_done)
        return []

    def _submit(self, attempt: Attempt, on_start: StartFn, on_done: DoneFn) -> None:
        resources = attempt.resources
        options: dict[str, Any] = {"num_cpus": resources.cpus, "num_gpus": resources.gpus, "max_retries": 0}
        if resources.memory_bytes > 0:
            options["memory"] = resources.memory_bytes
        if self._streaming:
            options["num_returns"] = "streaming"
        start = time.time()
        try:
            payload = _dumps(attempt)
        except Exception as exc:
            on_done(failed(f"task {attempt.key!r} cannot be sent to Ray: {describe(exc)}", start, exc))
            return
        handle = self._remote.options(**options).remote(payload)
        attempt.handle = handle
        entry = _Pending(attempt, on_start, on_done, started=False)
        with self._lock:
            self._pending[handle] = entry
        self._wake.set()
        if not self._streaming:
            self._started(entry, start)

    def _started(self, entry: _Pending, at: float) -> None:
        entry.started = True
        attempt, on_done = entry.attempt, entry.on_done
        entry.on_start(at)
        if attempt.timeout is not None:
            left = attempt.timeout - max(0.0, time.time() - at)
            attempt.timer = self._timers.call_later(left, lambda: self._time_out(attempt, on_done))

    def _wait_loop(self) -> None:
        ray = self._ray
        while not self._closed:
            with self._lock:
                handles = list(self._pending)
            if not handles:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            ready, _ = ray.wait(handles, num_returns=1, timeout=0.05)
            for handle in ready:
                with self._lock:
                    entry = self._pending.get(handle)
                if entry is not None:
                    self._step(handle, entry)

    def _step(self, handle: Any, entry: _Pending) -> None:
        """Read the next value of a ready task: its start time, or its outcome."""
        import cloudpickle

        attempt = entry.attempt
        try:
            value = self._ray.get(next(handle) if self._streaming else handle)
            if not entry.started and self._streaming:
                self._started(entry, float(value))
                return
            outcome, exception_bytes = cloudpickle.loads(value)
        except Exception as exc:  # the worker died, or the task was cancelled
            outcome = failed(f"Ray task for {attempt.key!r} failed: {describe(exc)}", time.time())
            exception_bytes = None
        with self._lock:
            self._pending.pop(handle, None)
        if exception_bytes is not None:
            with contextlib.suppress(Exception):
                outcome.exception = cloudpickle.loads(exception_bytes)
        self._finish(attempt, entry.on_done, outcome)

    def _finish(self, attempt: Attempt, on_done: DoneFn, outcome: Outcome) -> None:
        with self._lock:
            if attempt.finished:
                return
            attempt.finished = True
        if attempt.timer is not None:
            self._timers.cancel(attempt.timer)
        on_done(outcome)

    def _time_out(self, attempt: Attempt, on_done: DoneFn) -> None:
        if attempt.finished:
            return
        self.cancel(attempt)
        message = f"task {attempt.key!r} exceeded its timeout of {attempt.timeout:g} s; its Ray task was cancelled"
        start = time.time() - (attempt.timeout or 0.0)
        self._finish(attempt, on_done, failed(f"TimeoutError: {message}", start, TimeoutError(message)))

    def cancel(self, attempt: Attempt) -> None:
        """Cancel the attempt's Ray task (force-killing its worker)."""
        ref = attempt.handle
        if ref is None:
            return
        with self._lock:
            self._pending.pop(ref, None)
        with contextlib.suppress(Exception):
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        """Stop waiting. Ray keeps running for the next flow run (``ray.shutdown()`` stops it)."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._timers.close()
