"""One attempt of one task call, and what came of it: the unit every executor runs.

``execute`` is the body every executor runs where the task runs (a pool thread, a worker
process, a Ray worker): call the function, serialize what it returned, time both.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows._capture import Sink
from shipyard.flows._resources import Resources
from shipyard.flows._serializers import Serializer, serialize


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """Start a tracking run per attempt, child of the flow run's tracking run."""

    experiment: str
    parent_run_id: str | None
    stores: Any = None  # a ``Stores`` in-process; ``None`` in other processes (settings from env)


@dataclass(slots=True)
class Attempt:
    """Everything an executor needs to run a task call once."""

    key: str
    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    kind: str
    resources: Resources
    timeout: float | None
    serializers: Sequence[Serializer]
    number: int
    context: contextvars.Context | None = None
    sink: Sink | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    track: TrackSpec | None = None
    finished: bool = False
    handle: Any = None
    timer: int | None = None  # the executor's pending timeout call, cancelled when the attempt ends

    def sendable(self) -> Attempt:
        """A copy without what stays in this process (context, log sink, handle): for pickling."""
        return Attempt(
            self.key, self.name, self.fn, self.args, self.kwargs, self.kind, self.resources, self.timeout,
            self.serializers, self.number, env=self.env, track=self.track,
        )  # fmt: skip


@dataclass(slots=True)
class Outcome:
    """What an attempt produced: a value and its bytes, or an error."""

    ok: bool
    start_time: float
    end_time: float
    value: Any = None
    serializer: str | None = None
    data: bytes | None = None
    error: str | None = None
    exception: BaseException | None = None
    has_value: bool = True
    type_name: str = ""
    tracking_run_id: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)


def describe(exc: BaseException) -> str:
    """``Type: message`` on the first line, the traceback below it."""
    summary = f"{type(exc).__name__}: {exc}"
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{summary}\n{trace}"


def failed(error: str, start: float, exception: BaseException | None = None) -> Outcome:
    """An outcome for an attempt that could not run or did not finish."""
    return Outcome(False, start, time.time(), error=error, exception=exception, has_value=False)


def source_file(fn: Callable[..., Any]) -> str | None:
    """The file that defines ``fn``, where the run's git commit is looked up (not the console script's)."""
    try:
        return inspect.getsourcefile(inspect.unwrap(fn))
    except TypeError:  # builtins and C functions have no source file
        return None


@contextlib.contextmanager
def _tracking(attempt: Attempt) -> Iterator[str | None]:
    if attempt.track is None:
        yield None
        return
    from shipyard.tracking.api import start_run

    spec = attempt.track
    holder = _Holder(spec.stores) if spec.stores is not None else None
    with start_run(
        spec.experiment, attempt.key, parent_run_id=spec.parent_run_id, client=holder, source=source_file(attempt.fn)
    ) as run:
        yield run.id


class _Holder:
    def __init__(self, stores: Any) -> None:
        self.stores = stores


def execute(attempt: Attempt, on_start: Callable[[float], None] | None = None) -> Outcome:
    """Run the task function once and serialize its value, timing both."""
    start = time.time()
    if on_start is not None:
        on_start(start)
    try:
        with _tracking(attempt) as tracking_run_id:
            value = attempt.fn(*attempt.args, **attempt.kwargs)
    except Exception as exc:
        return Outcome(False, start, time.time(), error=describe(exc), exception=exc, has_value=False)
    end = time.time()
    try:
        name, data = serialize(value, attempt.serializers, what=f"the value returned by task {attempt.key!r}")
    except InvalidInputError as exc:
        return Outcome(False, start, end, error=str(exc), exception=exc, has_value=False)
    kind = type(value)
    return Outcome(
        True,
        start,
        end,
        value=value,
        serializer=name,
        data=data,
        type_name=f"{kind.__module__}.{kind.__qualname__}",
        tracking_run_id=tracking_run_id,
    )


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of an attempt in a worker process."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
