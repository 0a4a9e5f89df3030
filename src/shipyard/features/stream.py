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
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import ConfigError, InvalidInputError, StoreUnavailableError
from shipyard.features.models import FeatureView

if TYPE_CHECKING:
    from shipyard.features.api import FeatureStore

DEFAULT_GROUP = "shipyard-features"
_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What one ``ingest_stream`` call did: entries pushed and entries sent to the dead-letter stream."""

    pushed: int
    dead: int


def parse_stream_uri(uri: str) -> tuple[str, str]:
    """``redis://host:port/STREAM`` (or ``.../DB/STREAM``) as a Redis URL and a stream name."""
    parts = urlsplit(uri)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("redis", "rediss") or not segments or len(segments) > 2:
        raise InvalidInputError(f"stream must look like redis://HOST[:PORT][/DB]/STREAM, got {uri!r}", field="stream")
    db = segments[0] if len(segments) == 2 else "0"
    return urlunsplit(parts._replace(path=f"/{db}")), segments[-1]


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


class _Consumer:
    """One consumer of a group on one stream, with the redis client and its error type."""

    def __init__(self, uri: str, group: str, consumer: str) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ConfigError("ingesting a Redis Stream needs the redis extra: pip install 'shipyard[redis]'") from exc
        url, self.stream = parse_stream_uri(uri)
        self.client: Any = redis.Redis.from_url(url, decode_responses=True)
        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.group, self.consumer = group, consumer
        try:
            self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Our own unacknowledged entries first (this consumer crashed), then new ones.
        self.cursor = "0"

    def read(self, count: int, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        block = None if self.cursor == "0" else block_ms
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self.cursor}, count=count, block=block)
        entries: list[tuple[str, dict[str, str]]] = reply[0][1] if reply else []
        if self.cursor == "0" and not entries:
            self.cursor = ">"
        return entries

    def ack(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.xack(self.stream, self.group, *ids)

    def dead(self, entry_id: str, fields: Mapping[str, str], reason: str) -> None:
        self.client.xadd(f"{self.stream}:dead", {**fields, "_id": entry_id, "_error": reason})


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
    reader = _Consumer(uri, group, consumer or f"shipyard-{socket.gethostname()}")
    pushed = dead = 0
    try:
        while (max_messages is None or pushed + dead < max_messages) and not (should_stop and should_stop()):
            limit = batch if max_messages is None else min(batch, max_messages - pushed - dead)
            entries = reader.read(limit, block_ms)
            if not entries:
                continue
            good, ids = [], []
            for entry_id, fields in entries:
                try:
                    good.append(parse_entry(target, fields))
                    ids.append(entry_id)
                except InvalidInputError as exc:
                    reader.dead(entry_id, fields, exc.message)
                    reader.ack([entry_id])
                    dead += 1
            if good:
                store.push(target, good)
            reader.ack(ids)  # only once the values are written: a crash before this re-delivers them
            pushed += len(good)
            if on_batch is not None:
                on_batch(IngestStats(pushed, dead))
    except reader.errors as exc:
        raise StoreUnavailableError(f"Redis stream {reader.stream!r} failed: {exc}") from exc
    finally:
        reader.client.close()
    return IngestStats(pushed, dead)
