"""What the flow machinery needs from the objects around it, as Protocols.

The runner reads a task's options and a flow's function and limits; executors take
attempts with two callbacks; a task call inside a flow submits to the current runner.
Naming those needs here, below every module that implements them, keeps the package's
imports one-way: ``api`` (Task, Flow) uses ``_run`` and ``_runner``, which never import
``api`` back, not even for type checking.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import InvalidInputError
from shipyard.flows._attempt import Attempt, Outcome
from shipyard.flows._resources import Resources
from shipyard.flows._serializers import Serializer
from shipyard.store.entities import FlowInfo

if TYPE_CHECKING:
    from shipyard.flows._graph import MapFuture, TaskFuture

StartFn = Callable[[float], None]
"""Called with the time an attempt's function starts where it runs."""
DoneFn = Callable[[Outcome], None]
"""Called once with what an attempt produced."""
Launch = tuple[Attempt, StartFn, DoneFn]


class Executor(Protocol):
    """Runs task attempts and reports each outcome exactly once."""

    name: str

    def submit_many(self, launches: Sequence[Launch]) -> list[tuple[int, InvalidInputError]]:
        """Queue attempts; returns ``(index, error)`` for those that can never run here."""
        ...

    def cancel(self, attempt: Attempt) -> None: ...
    def close(self) -> None: ...


class TaskSpec(Protocol):
    """What the runner reads of a task (:class:`shipyard.flows.Task` is one)."""

    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def name(self) -> str: ...
    @property
    def retries(self) -> int: ...
    @property
    def retry_delay(self) -> float | Sequence[float]: ...
    @property
    def retry_backoff(self) -> float: ...
    @property
    def retry_jitter(self) -> float: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def cache(self) -> bool: ...
    @property
    def cache_expiration(self) -> float | None: ...
    @property
    def refresh(self) -> bool: ...
    @property
    def resources(self) -> Resources: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def kind(self) -> str: ...
    @property
    def serializers(self) -> tuple[Serializer, ...]: ...
    @property
    def track(self) -> bool: ...
    @property
    def source_hash(self) -> str: ...
    @property
    def resource_record(self) -> Mapping[str, float]: ...
    @property
    def option_record(self) -> Mapping[str, Any]: ...

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments: ...


class FlowSpec(Protocol):
    """What running a flow reads of it (:class:`shipyard.flows.Flow` is one)."""

    @property
    def fn(self) -> Callable[..., Any]: ...
    @property
    def name(self) -> str: ...
    @property
    def experiment(self) -> str | None: ...
    @property
    def executor(self) -> str | Executor | None: ...
    @property
    def tag_limits(self) -> Mapping[str, int]: ...
    @property
    def entrypoint(self) -> str | None: ...

    def info(self) -> FlowInfo: ...


class Submitter(Protocol):
    """Where a task call inside a flow goes: the flow run in progress."""

    def submit(
        self, task: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Sequence[Any]
    ) -> TaskFuture: ...
    def map(
        self, task: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Sequence[Any]
    ) -> MapFuture: ...
