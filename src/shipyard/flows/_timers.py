"""One thread that calls functions at given times: retry delays and timeouts without a thread each."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Rebuild the heap once this many cancelled entries sit in it (and they are most of it).
_COMPACT_AT = 64


@dataclass(order=True, slots=True)
class _Entry:
    when: float
    handle: int
    fn: Callable[[], None] | None = field(compare=False)  # None once cancelled


class Timers:
    """Run callbacks at monotonic times on one daemon thread, started on first use.

    A cancelled call drops its function at once, so whatever the function refers to (a
    task's attempt, its arguments) is freed when the task ends, not when the timeout
    would have expired.
    """

    def __init__(self, name: str = "shipyard-timers") -> None:
        self._heap: list[_Entry] = []
        self._entries: dict[int, _Entry] = {}
        self._dropped = 0
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._name = name

    def __len__(self) -> int:
        """How many calls are pending (cancelled ones excluded)."""
        with self._cond:
            return len(self._entries)

    def call_later(self, delay: float, fn: Callable[[], None]) -> int:
        """Call ``fn`` after ``delay`` seconds; returns a handle for :meth:`cancel`."""
        with self._cond:
            handle = next(self._counter)
            entry = _Entry(time.monotonic() + max(delay, 0.0), handle, fn)
            heapq.heappush(self._heap, entry)
            self._entries[handle] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
            return handle

    def cancel(self, handle: int) -> None:
        """Forget a pending call and what its function holds (a no-op once it ran)."""
        with self._cond:
            entry = self._entries.pop(handle, None)
            if entry is None:
                return
            entry.fn = None
            self._dropped += 1
            if self._dropped >= _COMPACT_AT and self._dropped * 2 >= len(self._heap):
                self._heap = [e for e in self._heap if e.fn is not None]
                heapq.heapify(self._heap)
                self._dropped = 0

    def close(self) -> None:
        """Stop the thread; pending calls are dropped."""
        with self._cond:
            self._closed = True
            self._heap, self._entries = [], {}
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0].when > time.monotonic()):
                    timeout = self._heap[0].when - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                entry = heapq.heappop(self._heap)
                fn = entry.fn
                if fn is None:
                    self._dropped -= 1
                    continue
                self._entries.pop(entry.handle, None)
            fn()
