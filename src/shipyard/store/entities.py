"""Frozen records the stores hand back; capabilities re-export the ones users touch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

RunStatus = Literal["running", "finished", "failed", "killed"]
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "killed")
DatasetRole = Literal["input", "output"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One logged value of a metric: NaN and infinities are kept as such."""

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


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of search results; pass ``next_page_token`` back for the next page."""

    items: Sequence[T]
    next_page_token: str | None


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

