"""Streaming prediction: score a Redis Stream through a consumer group, micro-batch by micro-batch.

A message carries one JSON record in its ``data`` field and a ``request_id`` (the
message's stream id stands in when it has none). Up to ``batch_size`` messages are read
at once (XREADGROUP), checked against the model's signature one by one, and the good ones
scored in one model call. Each prediction goes to the sink (XADD; one script call per
batch, so the batch is written whole or not at all) with the same ``request_id``, the
model's name and version, the source message id (``source_id``) and one field per model
output holding a JSON value (``prediction`` for a single output).
A message that is not a JSON object, has no ``data`` or does not match the signature
goes to ``SOURCE:dead`` with the reason and its original fields; the others of its
batch are scored all the same.

Delivery is at-least-once. A batch is acknowledged only after its predictions are
written, so a consumer killed between the two leaves that batch pending, and it is
scored again on restart (the same consumer name re-reads it; any consumer takes it over
once it has been idle ``reclaim_idle_ms``). The window is one batch per consumer: at
most ``batch_size`` predictions written twice, with the same ``request_id`` and the same
values, which is what a downstream reader deduplicates on.

Example:
    >>> serve_stream("churn@champion", "redis://h/events", "redis://h/scores", max_messages=1000)  # doctest: +SKIP
    StreamStats(predicted=998, dead=2, seconds=0.41)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shipyard._redis_streams import DeadLetter, Entry, StreamConsumer, connect, consume, parse_stream_uri
from shipyard.errors import InvalidInputError, SchemaMismatchError
from shipyard.registry import LoadedModel, load_model
from shipyard.serving import protocol_v2 as v2
from shipyard.serving._models import StoresClient, model_function, warm
from shipyard.serving.validation import Array, Columns, check_columns, columns_from_records, numeric_records
from shipyard.store import Stores

DEFAULT_GROUP = "shipyard-stream"
Kept = tuple[Entry, dict[str, Any]]  # a message and its parsed record


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What a :func:`serve_stream` call did: messages predicted, dead-lettered, and seconds spent consuming."""

    predicted: int
    dead: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages handled per second (predicted and dead-lettered)."""
        return (self.predicted + self.dead) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Scored:
    """A batch's predictions: per message, the values of ``fields`` (request id, source id, one per model output)."""

    fields: list[str]
    rows: list[list[str]]


class SinkWriter:
    """XADDs a batch of predictions to the sink stream in one round trip: a script, so the arguments are few.

    The model's name and version go once per batch instead of once per message: packing
    the arguments of a command, not Redis, is what a batch of small XADDs costs most.
    """

    SCRIPT = """
local header = tonumber(ARGV[1])
local width = tonumber(ARGV[2 + 2 * header])
local fields = {}
for i = 1, 2 * header do fields[i] = ARGV[1 + i] end
local names = 2 + 2 * header
local at = names + width + 1
local written = 0
while at <= #ARGV do
  for j = 1, width do
    fields[2 * header + 2 * j - 1] = ARGV[names + j]
    fields[2 * header + 2 * j] = ARGV[at + j - 1]
  end
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  written = written + 1
  at = at + width
end
return written
"""

    def __init__(self, client: Any, stream: str, header: dict[str, str]) -> None:
        self.stream = stream
        self.script = client.register_script(self.SCRIPT)
        self.header = [str(len(header)), *(part for pair in header.items() for part in pair)]

    def write(self, scored: Scored) -> None:
        """Append every prediction of ``scored``, in order."""
        if scored.rows:
            values = [value for row in scored.rows for value in row]
            self.script(keys=[self.stream], args=[*self.header, str(len(scored.fields)), *scored.fields, *values])


class StreamScorer:
    """Turns a batch of stream messages into sink records and dead letters, with one model call for the good ones."""

    def __init__(self, model: LoadedModel, *, method: str = "predict") -> None:
        self.model = model
        self.predict = model_function(model, method)
        self.signature = model.signature
        self.outputs = [] if self.signature is None else [c.name for c in self.signature.outputs]
        self.label = f"model {model.version.ref}"
        self.header = {"model": model.version.name, "version": str(model.version.version)}

    def score(self, entries: Sequence[Entry]) -> tuple[Scored, list[DeadLetter]]:
        """The predictions of the messages that could be scored (in order), and the dead letters of the others."""
        dead: list[DeadLetter] = []
        kept: list[Kept] = []
        for entry in entries:
            try:
                kept.append((entry, _record(entry[1])))
            except InvalidInputError as exc:
                dead.append(DeadLetter(entry[0], entry[1], exc.message))
        scored = Scored([], [])
        if kept:
            kept, outputs = self._predict(kept, dead)
            scored = self._records(kept, outputs)
        position = {entry_id: i for i, (entry_id, _) in enumerate(entries)}
        return scored, sorted(dead, key=lambda letter: position[letter.entry_id])

    def _predict(self, kept: list[Kept], dead: list[DeadLetter]) -> tuple[list[Kept], Array]:
        """One model call for the batch; when it cannot be one (a record breaks the batch), one per record."""
        try:
            columns = numeric_records([record for _, record in kept], self.signature)
            if columns is None:
                try:  # the batch as a whole first: records are checked one by one only when one is bad
                    columns = self._columns([record for _, record in kept])
                except (InvalidInputError, SchemaMismatchError):
                    kept = self._checked(kept, dead)
                    if not kept:
                        return [], np.empty(0)
                    columns = self._columns([record for _, record in kept])
            return kept, np.asarray(self.predict(columns))
        except Exception:
            return self._one_by_one(kept, dead)

    def _columns(self, records: list[dict[str, Any]]) -> Columns:
        return check_columns(columns_from_records(records), self.signature, model=self.label)

    def _checked(self, kept: list[Kept], dead: list[DeadLetter]) -> list[Kept]:
        good = []
        for entry, record in kept:
            try:
                self._columns([record])
            except (InvalidInputError, SchemaMismatchError) as exc:
                dead.append(DeadLetter(entry[0], entry[1], exc.message))
            else:
                good.append((entry, record))
        return good

    def _one_by_one(self, kept: list[Kept], dead: list[DeadLetter]) -> tuple[list[Kept], Array]:
        good, outputs = [], []
        for entry, record in kept:
            try:
                outputs.append(np.asarray(self.predict(self._columns([record]))))
            except Exception as exc:
                dead.append(DeadLetter(entry[0], entry[1], f"{self.label} failed: {type(exc).__name__}: {exc}"))
            else:
                good.append((entry, record))
        return good, (np.concatenate(outputs) if outputs else np.empty(0))

    def _records(self, kept: list[Kept], outputs: Array) -> Scored:
        if not kept:
            return Scored([], [])
        tensors = [
            (name, v2.json_values(values) if values.ndim == 1 else [v2.json_values(row) for row in values])
            for name, values in v2.output_tensors(outputs, self.outputs)
        ]
        rows = []
        for i, ((entry_id, fields), _) in enumerate(kept):
            row = [fields.get("request_id", entry_id), entry_id]
            row.extend(orjson.dumps(values[i]).decode() for _, values in tensors)
            rows.append(row)
        return Scored(["request_id", "source_id", *(name for name, _ in tensors)], rows)


def _record(fields: dict[str, str]) -> dict[str, Any]:
    raw = fields.get("data")
    if raw is None:
        raise InvalidInputError("message has no field 'data' (one JSON record)", field="data")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"field 'data' is not valid JSON: {exc}", field="data") from exc
    if not isinstance(record, dict) or not record:
        shown = type(record).__name__ if not isinstance(record, dict) else "an empty object"
        raise InvalidInputError(f"field 'data' must be one JSON object (a record), got {shown}", field="data")
    return record


def serve_stream(
    model_ref: str,
    source: str,
    sink: str,
    *,
    group: str = DEFAULT_GROUP,
    consumer: str | None = None,
    batch_size: int = 256,
    block_ms: int = 1000,
    max_messages: int | None = None,
    reclaim_idle_ms: int | None = 30_000,
    method: str = "predict",
    stop: Callable[[], bool] | None = None,
    on_batch: Callable[[StreamStats], None] | None = None,
    stores: Stores | None = None,
) -> StreamStats:
    """Score the messages of ``source`` with ``model_ref`` and write the predictions to ``sink``, until stopped.

    ``source`` and ``sink`` are ``redis://HOST[:PORT][/DB]/STREAM``. Stops after
    ``max_messages`` messages (predicted or dead-lettered), or once ``stop()`` is true
    (checked between batches, at least every ``block_ms``); runs forever otherwise.
    ``reclaim_idle_ms``: take over messages other consumers of the group left pending
    that long (at start, then as often); ``None`` never does.

    Raises:
        InvalidInputError: a bad URI, batch size, or the sink is the source.
        NotFoundError: no such model, version or alias.
        StoreUnavailableError: Redis failed.

    Example:
        >>> stop = threading.Event()  # doctest: +SKIP
        >>> serve_stream("churn@champion", "redis://h/events", "redis://h/scores", stop=stop.is_set)  # doctest: +SKIP
    """
    for name, value, least in (("batch_size", batch_size, 1), ("block_ms", block_ms, 0)):
        if value < least:
            raise InvalidInputError(f"{name} must be at least {least}, got {value}", field=name)
    if reclaim_idle_ms is not None and reclaim_idle_ms < 0:
        raise InvalidInputError(f"reclaim_idle_ms must be at least 0, got {reclaim_idle_ms}", field="reclaim_idle_ms")
    source_url, source_stream = parse_stream_uri(source, field="source")
    sink_url, sink_stream = parse_stream_uri(sink, field="sink")
    if (source_url, source_stream) == (sink_url, sink_stream):
        raise InvalidInputError(f"the sink must not be the source stream ({source!r})", field="sink")
    model = load_model(model_ref, client=None if stores is None else StoresClient(stores))
    warm(model, method)
    scorer = StreamScorer(model, method=method)
    with StreamConsumer(source, group=group, consumer=consumer, field="source") as reader:
        writer = reader.client if sink_url == source_url else connect(sink_url)
        sink_writer = SinkWriter(writer, sink_stream, scorer.header)
        started = time.perf_counter()

        def write(entries: list[Entry]) -> list[DeadLetter]:
            scored, dead = scorer.score(entries)
            sink_writer.write(scored)
            return dead

        def report(handled: int, dead: int) -> None:
            if on_batch is not None:
                on_batch(StreamStats(handled - dead, dead, time.perf_counter() - started))

        try:
            handled, dead = consume(
                reader,
                write,
                batch=batch_size,
                block_ms=block_ms,
                max_messages=max_messages,
                reclaim_idle_ms=reclaim_idle_ms,
                should_stop=stop,
                on_batch=report,
            )
        finally:
            if writer is not reader.client:
                writer.close()
    return StreamStats(handled - dead, dead, time.perf_counter() - started)
