"""One thread that calls functions at given times: retry delays and timeouts without a thread each."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Timers:
    """Run callbacks at monotonic times on one daemon thread, started on first use."""

    def __init__(self, name: str = "shipyard-timers") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._name = name

    def call_later(self, delay: float, fn: Callable[[], None]) -> int:
        """Call ``fn`` after ``delay`` seconds; returns a handle for :meth:`cancel`."""
        with self._cond:
            handle = next(self._counter)
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), handle, fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
            return handle

    def cancel(self, handle: int) -> None:
        """Forget a pending call (a no-op once it ran)."""
        with self._cond:
            self._cancelled.add(handle)

    def close(self) -> None:
        """Stop the thread; pending calls are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, handle, fn = heapq.heappop(self._heap)
                if handle in self._cancelled:
                    self._cancelled.discard(handle)
                    continue
            fn()
