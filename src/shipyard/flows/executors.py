"""Where task attempts run: the local executor (threads and processes on this machine) or Ray.

The local executor admits an attempt only when its declared CPUs, memory and GPUs fit in
what is left of the machine's capacity, so it never oversubscribes; attempts that do not
fit wait in submission order (a smaller one behind them may pass). Capacity defaults to
``os.cpu_count()`` CPUs, the machine's total memory and no GPUs (``gpus=`` or the
``SHIPYARD_GPUS`` variable declares them).

Tasks run in threads by default (``kind="thread"``): no start-up cost and no copying of
inputs, the right choice for I/O-bound work and for libraries that release the GIL (numpy,
pandas, most ML libraries). ``kind="process"`` runs a task in a worker process, for pure
Python CPU-bound work, and is the only kind whose timeout can stop it: the worker is
killed and its resources are free at once. Python cannot stop a thread, so a thread task
that outlives its timeout is marked failed at once (its retry or the rest of the flow
goes on) but keeps its CPUs, memory and GPUs until its thread really returns: what the
executor admits never exceeds its capacity, even when timed-out threads are still
computing. Give CPU-heavy tasks with a timeout ``kind="process"``.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows._attempt import Attempt, Outcome, execute, failed
from shipyard.flows._capture import current_sink
from shipyard.flows._context import current_runner
from shipyard.flows._protocols import DoneFn, Executor, Launch, StartFn
from shipyard.flows._resources import parse_memory
from shipyard.flows._timers import Timers

_RESOURCES = ("cpus", "memory", "gpus")


@dataclass(slots=True)
class _Queued:
    seq: int
    attempt: Attempt
    on_start: StartFn
    on_done: DoneFn
    need: dict[str, float]


class LocalExecutor:
    """Threads and worker processes on this machine, admitted by declared resources.

    Example:
        >>> executor = LocalExecutor(cpus=2)              # pretend the machine has 2 CPUs
        >>> pipeline.with_options(executor=executor).run()  # doctest: +SKIP
    """

    name = "local"

    def __init__(
        self,
        *,
        cpus: float | None = None,
        memory: int | str | None = None,
        gpus: float | None = None,
        max_threads: int = 64,
        max_processes: int | None = None,
    ) -> None:
        self.capacity = {
            "cpus": float(cpus if cpus is not None else os.cpu_count() or 1),
            "memory": float(parse_memory(memory) if memory is not None else _total_memory()),
            "gpus": float(gpus if gpus is not None else os.environ.get("SHIPYARD_GPUS", 0)),
        }
        self._used = dict.fromkeys(_RESOURCES, 0.0)
        # Waiting attempts grouped by what they need: admission looks at one head per group.
        self._queue: dict[tuple[float, ...], deque[_Queued]] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._max_threads = max_threads
        self._max_processes = max_processes or max(1, int(self.capacity["cpus"]))
        self._threads: ThreadPoolExecutor | None = None
        self._processes: Any = None
        self._timers: Timers | None = None
        self._running: dict[int, dict[str, float]] = {}

    def __repr__(self) -> str:
        cap = self.capacity
        return f"LocalExecutor(cpus={cap['cpus']:g}, memory={int(cap['memory'])}, gpus={cap['gpus']:g})"

    def submit_many(self, launches: Sequence[Launch]) -> list[tuple[int, InvalidInputError]]:
        """Queue attempts (one lock round trip for all); each starts once its resources fit."""
        refused: list[tuple[int, InvalidInputError]] = []
        accepted: list[_Queued] = []
        for index, (attempt, on_start, on_done) in enumerate(launches):
            need = attempt.resources.as_dict()
            problem = self._never_fits(attempt, need)
            if problem is not None:
                refused.append((index, problem))
            else:
                accepted.append(_Queued(0, attempt, on_start, on_done, need))
        with self._lock:
            for item in accepted:
                item.seq = next(self._seq)
                shape = (item.need["cpus"], item.need["memory"], item.need["gpus"])
                self._queue.setdefault(shape, deque()).append(item)
            ready = self._admit()
        for item in ready:
            self._start(item)
        return refused

    def _never_fits(self, attempt: Attempt, need: dict[str, float]) -> InvalidInputError | None:
        for resource in _RESOURCES:
            if need[resource] > self.capacity[resource]:
                return InvalidInputError(
                    f"task {attempt.key!r} needs {_amount(resource, need[resource])} but the local executor has "
                    f"{_amount(resource, self.capacity[resource])} in all; lower its resources, give "
                    f"LocalExecutor({resource}=...) more, or run it with executor='ray'",
                    field=f"resources.{resource}",
                )
        return None

    def _admit(self) -> list[_Queued]:
        """Admit, oldest first, every waiting attempt whose needs fit what is free."""
        ready: list[_Queued] = []
        while True:
            best: deque[_Queued] | None = None
            for group in self._queue.values():
                if group and (best is None or group[0].seq < best[0].seq) and self._fits(group[0].need):
                    best = group
            if best is None:
                return ready
            item = best.popleft()
            for r in _RESOURCES:
                self._used[r] += item.need[r]
            self._running[id(item.attempt)] = item.need
            ready.append(item)

    def _fits(self, need: dict[str, float]) -> bool:
        used, capacity = self._used, self.capacity
        return all(used[r] + need[r] <= capacity[r] + 1e-9 for r in _RESOURCES)

    def _start(self, item: _Queued) -> None:
        attempt, on_start, on_done = item.attempt, item.on_start, item.on_done

        def done(outcome: Outcome) -> None:
            self._finish(attempt, on_done, outcome)

        def started(at: float) -> None:
            # The timeout counts from when the function starts, not from admission.
            if attempt.timeout is not None:
                attempt.timer = self._timer().call_later(attempt.timeout, lambda: self._time_out(attempt, on_done))
            on_start(at)

        if attempt.kind == "process":
            self._pool().run(attempt, started, _log_into(attempt), done)
            return
        if self._threads is None:
            with self._lock:
                if self._threads is None:
                    self._threads = ThreadPoolExecutor(self._max_threads, thread_name_prefix="shipyard-task")
        self._threads.submit(_run_in_thread, attempt, started, done)

    def _finish(self, attempt: Attempt, on_done: DoneFn, outcome: Outcome, *, release: bool = True) -> None:
        """Report an attempt's outcome once; free its resources when ``release`` (its code stopped)."""
        with self._lock:
            late = attempt.finished  # the thread of an attempt that timed out has now returned
            attempt.finished = True
            need = self._running.pop(id(attempt), None) if release else None
            if need is not None:
                for r in _RESOURCES:
                    self._used[r] -= need[r]
            ready = self._admit() if need is not None else []
        if attempt.timer is not None and self._timers is not None:
            self._timers.cancel(attempt.timer)  # drop the callback and what it holds now, not at the deadline
        for item in ready:
            self._start(item)
        if not late:
            on_done(outcome)

    def _time_out(self, attempt: Attempt, on_done: DoneFn) -> None:
        if attempt.finished:
            return
        attempt.timer = None
        if attempt.kind == "process":
            self._pool().kill(attempt)
            how = "its worker process was killed"
        else:
            how = (
                "its thread cannot be stopped: it keeps its resources until it returns "
                "(use kind='process' to kill such tasks)"
            )
        start = _now() - (attempt.timeout or 0.0)
        message = f"TimeoutError: task {attempt.key!r} exceeded its timeout of {attempt.timeout:g} s; {how}"
        outcome = failed(message, start, TimeoutError(message.removeprefix("TimeoutError: ")))
        self._finish(attempt, on_done, outcome, release=attempt.kind == "process")

    def cancel(self, attempt: Attempt) -> None:
        """Stop an attempt: dequeue it, or kill its worker process (threads cannot be stopped)."""
        with self._lock:
            for group in self._queue.values():
                for item in [i for i in group if i.attempt is attempt]:
                    group.remove(item)
        if attempt.kind == "process" and self._processes is not None:
            # Killed, or taken off the pool's queue: it reports nothing more, so free what it held here.
            self._processes.kill(attempt)
            self._finish(attempt, _ignore, failed("cancelled", _now()))

    def close(self) -> None:
        """Stop the worker processes and the pool threads (running threads finish first)."""
        if self._timers is not None:
            self._timers.close()
        if self._processes is not None:
            self._processes.close()
            self._processes = None
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def _timer(self) -> Timers:
        if self._timers is None:
            with self._lock:
                if self._timers is None:
                    self._timers = Timers("shipyard-timeouts")
        return self._timers

    def _pool(self) -> Any:
        if self._processes is None:
            from shipyard.flows._process import ProcessPool

            with self._lock:
                if self._processes is None:
                    self._processes = ProcessPool(self._max_processes)
        return self._processes


def _run_in_thread(attempt: Attempt, on_start: StartFn, done: DoneFn) -> None:
    context = attempt.context.copy() if attempt.context is not None else None
    if context is None:
        done(_guarded(attempt, on_start))
        return
    done(context.run(_guarded, attempt, on_start))


def _guarded(attempt: Attempt, on_start: StartFn) -> Outcome:
    current_runner.set(None)  # a task calling a task runs it as a plain function
    token = current_sink.set(attempt.sink)
    try:
        return execute(attempt, on_start)
    finally:
        current_sink.reset(token)


def _log_into(attempt: Attempt) -> Callable[[str, str], None]:
    def log(stream: str, text: str) -> None:
        if attempt.sink is not None:
            attempt.sink(stream, text)

    return log


def _ignore(_: Outcome) -> None:
    return None


def _now() -> float:
    return time.time()


def _total_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:  # psutil is a dependency; this only guards odd installs
        return 2**63


def _amount(resource: str, value: float) -> str:
    if resource == "memory":
        return f"{value / 1e9:g} GB of memory"
    return f"{value:g} {resource}"


def make_executor(spec: str | Executor | None) -> tuple[Executor, bool]:
    """The executor named by ``spec`` (``"local"``, ``"ray"``) or given; True when the caller owns it."""
    if spec is None or spec == "local":
        return LocalExecutor(), True
    if spec == "ray":
        from shipyard.flows._ray import RayExecutor

        return RayExecutor(), True
    if isinstance(spec, str):
        raise InvalidInputError(f"executor must be 'local', 'ray' or an Executor, got {spec!r}", field="executor")
    return spec, False


def __getattr__(name: str) -> Any:
    # RayExecutor is imported on first use: importing this module must not import Ray.
    if name == "RayExecutor":
        from shipyard.flows._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Executor", "LocalExecutor", "make_executor"]
