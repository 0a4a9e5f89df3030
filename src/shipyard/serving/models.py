"""Frozen settings of a deployment: which models, how each batches, how traffic is split.

Example:
    >>> spec = ServingConfig(models=(ModelSpec("churn@champion"),))
    >>> spec.models[0].batching.max_batch_size
    64
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.errors import InvalidInputError

DEFAULT_BODY_LIMIT = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    """How one model's concurrent requests are coalesced into model calls.

    The exact rule, per model arm (one model call runs at a time):

    1. When the model is free, the waiting requests are taken in arrival order until
       they hold ``max_batch_size`` rows; a request is never split, so one larger than
       ``max_batch_size`` runs alone.
    2. If only one request is waiting, it runs at once: a lone request never waits.
    3. Otherwise, while the batch is not full, more requests are awaited until the
       oldest request in it has waited ``max_delay_ms`` since it arrived.
    4. At most ``max_queue`` requests wait; the next one is refused with 503 and
       ``Retry-After`` (backpressure: memory stays flat under any load).

    ``enabled=False`` runs every request as its own model call, still through the
    bounded queue.

    Attributes:
        enabled: Coalesce requests (rule 1-3) or run them one by one.
        max_batch_size: Most rows in one model call.
        max_delay_ms: Longest a request waits for others to fill a batch.
        max_queue: Most requests waiting (not counting the batch being computed).
    """

    enabled: bool = True
    max_batch_size: int = 64
    max_delay_ms: float = 2.0
    max_queue: int = 256

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise InvalidInputError(f"max_batch_size must be >= 1, got {self.max_batch_size}", field="max_batch_size")
        if self.max_delay_ms < 0:
            raise InvalidInputError(f"max_delay_ms must be >= 0, got {self.max_delay_ms}", field="max_delay_ms")
        if self.max_queue < 1:
            raise InvalidInputError(f"max_queue must be >= 1, got {self.max_queue}", field="max_queue")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model to serve, with its optional canary and shadow arms.

    Attributes:
        ref: ``name@alias``, ``name/3`` or ``name`` (latest); aliases and ``name`` are watched.
        canary: Another reference of the same model that gets ``canary_percent`` of traffic.
        canary_percent: Share of requests routed to ``canary``, 0-100.
        shadow: Another reference of the same model that gets a copy of every request;
            its answers are logged and measured, never returned.
        batching: How requests are coalesced.
        method: ``predict`` or ``predict_proba``.
    """

    ref: str
    canary: str | None = None
    canary_percent: float = 0.0
    shadow: str | None = None
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    method: str = "predict"

    def __post_init__(self) -> None:
        if not 0 <= self.canary_percent <= 100:
            raise InvalidInputError(
                f"canary percent must be between 0 and 100, got {self.canary_percent}", field="canary"
            )
        if self.method not in {"predict", "predict_proba"}:
            raise InvalidInputError(f"method must be predict or predict_proba, got {self.method!r}", field="method")


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Everything a server needs besides host, port and workers.

    Attributes:
        models: The models served; their names must differ.
        body_limit: Largest request body in bytes; a larger one gets 413.
        poll_interval: Seconds between checks of the registry for moved aliases; 0 turns watching off.
        log_sample_rate: Share of predictions written to the prediction log, 0-1.
        log_flush_seconds: Longest a logged prediction waits before its partition is written.
        log_max_rows: Rows that trigger a write before ``log_flush_seconds``; also bounds
            the logger's buffer (what does not fit is dropped and counted, never waited on).
        online_store: The online feature store that models logged with a feature service
            are fed from (``sqlite:///...`` or ``redis://...``); ``None``: the settings'
            (``SHIPYARD_ONLINE_STORE``), else the default beside the metadata store.
    """

    models: tuple[ModelSpec, ...]
    body_limit: int = DEFAULT_BODY_LIMIT
    poll_interval: float = 5.0
    log_sample_rate: float = 1.0
    log_flush_seconds: float = 10.0
    log_max_rows: int = 50_000
    online_store: str | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidInputError("serve at least one model, e.g. churn@champion", field="models")
        if not 0 <= self.log_sample_rate <= 1:
            raise InvalidInputError(
                f"log sample rate must be between 0 and 1, got {self.log_sample_rate}", field="log_sample_rate"
            )
        if self.body_limit < 1024:
            raise InvalidInputError(
                f"body limit must be at least 1024 bytes, got {self.body_limit}", field="body_limit"
            )
