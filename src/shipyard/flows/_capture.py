"""Capturing what a task prints and logs, per task, while tasks share one process.

``sys.stdout`` and ``sys.stderr`` are process-wide, so while flows run they are wrapped
by a router that sends each write to the sink of the task running in the current context
(a ``contextvars`` variable; threads of the local executor each run in their own copy),
and to the original stream otherwise. Records of the ``logging`` module reach the same
sink through a handler on the root logger.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

Sink = Callable[[str, str], None]

current_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("shipyard_task_sink", default=None)
TASK_LOGGER = "shipyard.task"


class _Router:
    """A text stream that forwards writes to the current task's sink, or to the stream it wraps."""

    def __init__(self, original: TextIO, stream: str) -> None:
        self.original = original
        self.stream = stream

    def write(self, text: str) -> int:
        sink = current_sink.get()
        if sink is None:
            return self.original.write(text)
        sink(self.stream, text)
        return len(text)

    def flush(self) -> None:
        if current_sink.get() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = current_sink.get()
        if sink is not None:
            sink("log", self.format(record) + "\n")
        elif record.levelno >= logging.WARNING and logging.getLogger().handlers == [self]:
            # Outside tasks, keep what logging's last-resort handler would have printed.
            logging.lastResort.handle(record) if logging.lastResort else None


class _Installation:
    """Reference-counted wrapping of the process's streams; undone when the last flow ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.handler = _Handler()
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def acquire(self) -> None:
        with self.lock:
            self.users += 1
            if self.users > 1:
                return
            sys.stdout = _Router(sys.stdout, "stdout")  # type: ignore[assignment]
            sys.stderr = _Router(sys.stderr, "stderr")  # type: ignore[assignment]
            logging.getLogger().addHandler(self.handler)
            logger = logging.getLogger(TASK_LOGGER)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users > 0:
                return
            logging.getLogger().removeHandler(self.handler)
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if isinstance(stream, _Router):  # someone else may have swapped it since
                    setattr(sys, name, stream.original)


# The process's streams are one global resource; this tracks who wrapped them.
streams = _Installation()


def get_logger(name: str = TASK_LOGGER) -> logging.Logger:
    """A logger whose records (INFO and up) are stored with the task that emits them.

    Example:
        >>> log = get_logger()
        >>> log.info("loaded %d rows", 10)  # inside a task: kept in the task's logs
    """
    return logging.getLogger(name if name.startswith(TASK_LOGGER) else f"{TASK_LOGGER}.{name}")
