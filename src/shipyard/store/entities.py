"""Frozen records the stores hand back; capabilities re-export the ones users touch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: float


class MetricPoint(NamedTuple):
    """One logged value of a metric: NaN and infinities are kept as such.

    A NamedTuple rather than a frozen dataclass: it is built once per ``log_metric`` call
    and once per history row, and tuple construction is several times cheaper.
    """

    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of training code with everything it logged.

    ``metrics`` holds the latest value of each metric; ``lineage`` the automatically
    captured git commit, entry point, user, host, Python version and parent run.
    """

    id: str
    experiment_id: str
    experiment: str
    name: str
    status: str
    start_time: float
    end_time: float | None
    parent_run_id: str | None
    user: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, ``None`` while running."""
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A file logged under a run: its path in the run and the sha256 of its bytes."""

    path: str
    digest: str
    size: int


class Page(list[T]):
    """One page of search results: a list, plus ``next_page_token`` to pass back for the next page.

    A list subclass, as MLflow's ``PagedList``: ``len(page)``, ``page[0]`` and ``for run in page``
    work directly. ``next_page_token`` is ``None`` on the last page.

    Example:
        >>> page = Page(["a", "b"], "tok")
        >>> len(page), page[0], page.next_page_token
        (2, 'a', 'tok')
    """

    __slots__ = ("next_page_token",)

    def __init__(self, items: Iterable[T] = (), next_page_token: str | None = None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token

    @property
    def items(self) -> list[T]:
        """The page's entries as a plain list (the page itself is one too)."""
        return list(self)

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_page_token={self.next_page_token!r})"


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """An immutable version of a dataset, identified by the hash of its content."""

    name: str
    version: int
    digest: str
    format: str
    schema: Mapping[str, str]
    stats: Mapping[str, Any]
    num_rows: int | None
    artifact_digest: str
    source: str | None
    created_at: float
    created_by_run: str | None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name@version``, the string ``load_dataset`` accepts."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class RunDataset:
    """A dataset version a run read (``input``) or wrote (``output``)."""

    run_id: str
    name: str
    version: int
    role: str


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model with its versions' aliases, tags and ownership."""

    name: str
    description: str
    owner: str | None
    team: str | None
    created_at: float
    aliases: Mapping[str, int] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model: the artifact, its signature and its passport metrics."""

    name: str
    version: int
    run_id: str | None
    flavor: str
    artifact_path: str
    manifest_digest: str
    signature: Mapping[str, Any] | None
    metrics: Mapping[str, float]
    description: str
    intended_use: str
    limitations: str
    created_at: float
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name/version``, the string ``load_model`` accepts."""
        return f"{self.name}/{self.version}"


def is_number(value: object) -> bool:
    """True for ints and floats (NaN and inf included), False for bools and everything else."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# flows -----------------------------------------------------------------------------

FLOW_RUN_STATES: tuple[str, ...] = ("pending", "running", "succeeded", "failed", "cancelled", "crashed")
TASK_RUN_STATES: tuple[str, ...] = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "retrying",
    "cached",
    "skipped",
    "cancelled",
    "crashed",
)
FINAL_FLOW_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "crashed"})


@dataclass(frozen=True, slots=True)
class ValueRef:
    """A task input or output: the sha256 of its serialized bytes and how to read them back."""

    digest: str
    serializer: str
    size: int
    type_name: str


@dataclass(frozen=True, slots=True)
class StoredValue:
    """Serialized bytes to record: kept inline in the metadata store when ``data`` is set."""

    digest: str
    size: int
    data: bytes | None


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """What the store knows about a flow: its description, schedule, triggers and owners."""

    name: str
    description: str
    entrypoint: str | None
    schedule: str | None
    timezone: str
    triggers: tuple[str, ...]
    owners: tuple[str, ...]
    max_active_runs: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One task call in a flow run: its state, attempts, timings, resources, inputs and output.

    ``task_key`` is the task's identity in the DAG (``name-call_index``, ``[i]`` for a mapped
    element); ``upstream`` lists the keys it waited for.
    """

    id: str
    flow_run_id: str
    task_key: str
    name: str
    state: str
    attempts: int
    created_at: float
    start_time: float | None
    end_time: float | None
    resources: Mapping[str, float]
    tags: tuple[str, ...]
    upstream: tuple[str, ...]
    inputs: Mapping[str, ValueRef | None]
    input_hash: str
    cache_key: str | None
    output: ValueRef | None
    error: str | None
    kind: str
    reused_from: str | None = None
    tracking_run_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from the last attempt's start to the end, ``None`` while running."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class FlowRun:
    """One execution of a flow: its state, parameters, timings, linked tracking run and tasks.

    ``result`` is the flow's return value, loaded when the run is read through
    ``shipyard.flows.get_flow_run`` (the store leaves it ``None``).
    """

    id: str
    flow_name: str
    state: str
    params: Mapping[str, Any]
    created_at: float
    start_time: float | None
    end_time: float | None
    heartbeat_at: float | None
    tracking_run_id: str | None
    executor: str
    trigger: str
    scheduled_time: float | None
    priority: int
    run_count: int
    error: str | None
    result_ref: ValueRef | None
    params_ref: ValueRef | None
    entrypoint: str | None
    cancel_requested: bool = False
    tasks: tuple[TaskRun, ...] = ()
    result: Any = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, ``None`` until it ends."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def task(self, key: str) -> TaskRun:
        """The task run with ``task_key`` (``name-0``) or, when unambiguous, task name."""
        matches = [t for t in self.tasks if t.task_key == key] or [t for t in self.tasks if t.name == key]
        if len(matches) != 1:
            from shipyard.errors import NotFoundError

            known = ", ".join(t.task_key for t in self.tasks) or "none"
            raise NotFoundError(f"flow run {self.id} has no single task {key!r}; its tasks are: {known}", field="task")
        return matches[0]


@dataclass(frozen=True, slots=True)
class CursorMove:
    """Advance a trigger's cursor from ``expected`` to ``new``; the run is enqueued only if it moved."""

    key: str
    expected: str | None
    new: str


@dataclass(frozen=True, slots=True)
class FlowRunRequest:
    """A run to enqueue, claimed by ``claim_key`` (unique per flow) and/or a cursor move."""

    flow_name: str
    params: Mapping[str, Any]
    trigger: str
    priority: int = 0
    scheduled_time: float | None = None
    claim_key: str | None = None
    cursor: CursorMove | None = None
    entrypoint: str | None = None


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """Something that happened (a monitoring alert, ...) that flows can be triggered by."""

    id: int
    kind: str
    name: str
    payload: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class TaskLogLine:
    """A line a task printed or logged: ``stream`` is ``stdout``, ``stderr`` or ``log``."""

    flow_run_id: str
    task_run_id: str
    task_key: str
    stream: str
    text: str
    timestamp: float
    id: int = 0


@dataclass(frozen=True, slots=True)
class FeatureDefinition:
    """One version of a feature-store definition (entity, feature view, on-demand view, service)."""

    kind: str
    name: str
    version: int
    digest: str
    spec: Mapping[str, Any]
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Materialization:
    """How far a feature view has been copied to the online store, in event time (epoch seconds)."""

    view: str
    start_time: float
    end_time: float
    max_event_time: float | None
    rows: int
    updated_at: float
