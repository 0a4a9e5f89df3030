"""Reading a Redis Stream through a consumer group, at least once: what feature ingest and stream serving share.

:func:`consume` reads entries in micro-batches, hands each batch to a ``process``
function that writes its results, and only then acknowledges the batch, in one pipeline
with the dead letters ``process`` returned (``STREAM:dead``: the original fields, the
entry's ``_id`` and the ``_error``). A consumer that dies between the write and the
acknowledgement leaves its entries pending: when it restarts under the same name it
re-reads them first, and with ``reclaim_idle_ms`` any consumer takes over (XAUTOCLAIM)
the entries another one left pending that long, at start and then as often. Either way
those entries are processed again: at-least-once, so what ``process`` writes must be safe
to write twice (or carry an id to deduplicate on).

This module sits outside the capability layers so that any of them may import it.

Example:
    >>> with StreamConsumer("redis://localhost:6379/events", group="g", consumer="c1") as reader:  # doctest: +SKIP
    ...     handled, dead = consume(reader, process, batch=500)
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.errors import ConfigError, InvalidInputError, StoreUnavailableError
from shipyard.store import redact_uri

Entry = tuple[str, dict[str, str]]
_RECLAIM_PAGES = 100  # XAUTOCLAIM pages per reclaim (of ``count`` entries each): bounded, not a loop forever


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry that cannot be processed, and why: written to ``STREAM:dead`` and acknowledged."""

    entry_id: str
    fields: Mapping[str, str]
    reason: str


def parse_stream_uri(uri: str, *, field: str = "stream") -> tuple[str, str]:
    """``redis://host:port/STREAM`` (or ``.../DB/STREAM``) as a Redis URL and a stream name.

    Raises:
        InvalidInputError: ``uri`` is not of that form; ``field`` names the option it came from.
    """
    parts = urlsplit(uri)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("redis", "rediss") or not segments or len(segments) > 2:
        raise InvalidInputError(f"{field} must look like redis://HOST[:PORT][/DB]/STREAM, got {uri!r}", field=field)
    db = segments[0] if len(segments) == 2 else "0"
    return urlunsplit(parts._replace(path=f"/{db}")), segments[-1]


def connect(url: str) -> Any:
    """A Redis client for ``url`` that decodes replies to text.

    Raises:
        ConfigError: the redis package is not installed.
    """
    try:
        import redis
    except ImportError as exc:
        raise ConfigError("reading a Redis Stream needs the redis extra: pip install 'shipyard[redis]'") from exc
    return redis.Redis.from_url(url, decode_responses=True)


def default_consumer() -> str:
    """The consumer name used when none is given: one per host, so a restart re-reads its own pending entries."""
    return f"shipyard-{socket.gethostname()}"


class StreamConsumer:
    """One consumer of a group on one stream; creates the group (at the stream's start) when missing."""

    def __init__(self, uri: str, *, group: str, consumer: str | None = None, field: str = "stream") -> None:
        self.url, self.stream = parse_stream_uri(uri, field=field)
        self.client: Any = connect(self.url)
        import redis  # present: connect() said so otherwise

        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.group, self.consumer = group, consumer or default_consumer()
        try:
            self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                self.client.close()
                raise StoreUnavailableError(f"Redis stream {self.stream!r}: {exc}") from exc
        except redis.RedisError as exc:
            self.client.close()
            raise StoreUnavailableError(f"Redis at {redact_uri(self.url)} failed: {exc}") from exc
        # Our own unacknowledged entries first (this consumer crashed), then new ones.
        self.cursor = "0"

    def __enter__(self) -> StreamConsumer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def read(self, count: int, block_ms: int) -> list[Entry]:
        """Up to ``count`` entries: first those pending for this consumer, then new ones (waiting ``block_ms``)."""
        block = None if self.cursor == "0" else block_ms
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self.cursor}, count=count, block=block)
        entries = reply[0][1] if reply else []
        if self.cursor == "0" and not entries:
            self.cursor = ">"
        # An entry deleted from the stream while pending comes back without fields.
        return [(entry_id, fields or {}) for entry_id, fields in entries]

    def reclaim(self, min_idle_ms: int, *, count: int = 1000) -> int:
        """Take over the entries other consumers left pending ``min_idle_ms`` or more; the next reads return them."""
        claimed, cursor = 0, "0-0"
        for _ in range(_RECLAIM_PAGES):
            # Whole entries: redis-py drops the cursor from a JUSTID reply.
            reply = self.client.xautoclaim(self.stream, self.group, self.consumer, min_idle_ms, cursor, count=count)
            cursor = reply[0]
            claimed += len(reply[1])
            if cursor == "0-0":
                break
        if claimed:
            self.cursor = "0"
        return claimed

    def settle(self, ids: Sequence[str], dead: Sequence[DeadLetter] = ()) -> None:
        """Write the dead letters and acknowledge ``ids`` (which include theirs), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for letter in dead:
            pipe.xadd(f"{self.stream}:dead", {**letter.fields, "_id": letter.entry_id, "_error": letter.reason})
        if ids:
            pipe.xack(self.stream, self.group, *ids)
        pipe.execute()

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


def consume(
    reader: StreamConsumer,
    process: Callable[[list[Entry]], Sequence[DeadLetter]],
    *,
    batch: int,
    block_ms: int = 1000,
    max_messages: int | None = None,
    reclaim_idle_ms: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Feed the stream to ``process`` batch by batch until stopped; the entries handled and dead-lettered.

    ``process`` writes its results for a batch and returns the entries it could not
    process; the batch is acknowledged only when it returned. Stops after
    ``max_messages`` entries, or when ``should_stop()`` is true (checked between batches,
    at least every ``block_ms``). ``on_batch(handled, dead)`` gets the running totals.

    Raises:
        StoreUnavailableError: Redis failed; what was not acknowledged is read again later.
    """
    handled = dead = 0
    reclaimed_at = -float("inf")
    try:
        while (max_messages is None or handled < max_messages) and not (should_stop and should_stop()):
            if reclaim_idle_ms is not None and time.monotonic() - reclaimed_at >= max(reclaim_idle_ms, 1000) / 1000:
                reader.reclaim(reclaim_idle_ms)
                reclaimed_at = time.monotonic()
            limit = batch if max_messages is None else min(batch, max_messages - handled)
            entries = reader.read(limit, block_ms)
            if not entries:
                continue
            failed = process(entries)
            reader.settle([entry_id for entry_id, _ in entries], failed)  # a crash before this re-delivers them
            handled += len(entries)
            dead += len(failed)
            if on_batch is not None:
                on_batch(handled, dead)
    except reader.errors as exc:
        raise StoreUnavailableError(f"Redis stream {reader.stream!r} failed: {exc}") from exc
    return handled, dead
