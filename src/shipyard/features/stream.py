"""Consuming a Redis Stream into ``FeatureStore.push``: at-least-once, resumes after a crash.

Each stream entry is one row of a feature view: its fields are the view's columns (join
keys, event time, features) as text. Entries are read through a consumer group and
acknowledged only after their values are in the online store, so a crash between the two
re-delivers them; writing them again is harmless, since the online store keeps the newest
value. An entry that cannot be parsed or typed goes to ``STREAM:dead`` with the reason,
instead of blocking the stream forever.

Example:
    >>> ingest_stream(store, "redis://localhost:6379/events", view="activity")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard._redis_streams import DeadLetter, Entry, StreamConsumer, consume, parse_stream_uri
from shipyard.errors import InvalidInputError
from shipyard.features.models import FeatureView

if TYPE_CHECKING:
    from shipyard.features.api import FeatureStore

DEFAULT_GROUP = "shipyard-features"
_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}

__all__ = ["DEFAULT_GROUP", "IngestStats", "ingest_stream", "parse_entry", "parse_stream_uri"]


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What one ``ingest_stream`` call did: entries pushed and entries sent to the dead-letter stream."""

    pushed: int
    dead: int


def _value(raw: str, dtype: str) -> Any:
    if dtype == "int":
        return int(raw)
    if dtype == "float":
        return float(raw)
    if dtype == "bool":
        if raw.lower() not in _TRUE | _FALSE:
            raise ValueError(f"{raw!r} is not a boolean")
        return raw.lower() in _TRUE
    if dtype == "timestamp":
        try:
            return dt.datetime.fromtimestamp(float(raw), dt.UTC)
        except ValueError:
            parsed = dt.datetime.fromisoformat(raw)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return raw


def parse_entry(view: FeatureView, fields: Mapping[str, str]) -> dict[str, Any]:
    """One stream entry as a typed row of ``view``; a missing or malformed column raises."""
    columns = {key: "string" for key in view.join_keys}
    columns[view.timestamp_field] = "timestamp"
    if view.created_timestamp_field and view.created_timestamp_field in fields:
        columns[view.created_timestamp_field] = "timestamp"
    columns.update({f.name: f.dtype for f in view.schema})
    row: dict[str, Any] = {}
    for name, dtype in columns.items():
        raw = fields.get(name)
        if raw is None:
            raise InvalidInputError(f"entry has no field {name!r}", field=name)
        try:
            row[name] = None if raw == "" and dtype != "string" else _value(raw, dtype)
        except ValueError as exc:
            raise InvalidInputError(f"field {name!r}: {exc}", field=name) from exc
    return row


def ingest_stream(
    store: FeatureStore,
    uri: str,
    *,
    view: str,
    group: str = DEFAULT_GROUP,
    consumer: str | None = None,
    batch: int = 500,
    block_ms: int = 1000,
    max_messages: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Push the entries of a Redis Stream to ``view`` in the online store until stopped.

    Stops after ``max_messages`` entries, or when ``should_stop()`` is true (checked at least
    every ``block_ms``); runs forever otherwise. A restarted consumer of the same name first
    re-reads what it had read but not acknowledged.
    """
    target = store.get_feature_view(view)

    def push(entries: list[Entry]) -> list[DeadLetter]:
        good, dead = [], []
        for entry_id, fields in entries:
            try:
                good.append(parse_entry(target, fields))
            except InvalidInputError as exc:
                dead.append(DeadLetter(entry_id, fields, exc.message))
        if good:
            store.push(target, good)
        return dead

    def report(handled: int, dead: int) -> None:
        if on_batch is not None:
            on_batch(IngestStats(handled - dead, dead))

    with StreamConsumer(uri, group=group, consumer=consumer) as reader:
        handled, dead = consume(
            reader,
            push,
            batch=batch,
            block_ms=block_ms,
            max_messages=max_messages,
            should_stop=should_stop,
            on_batch=report,
        )
    return IngestStats(handled - dead, dead)
