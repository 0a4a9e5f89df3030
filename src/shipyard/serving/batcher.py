"""Dynamic batching: coalesce concurrent requests into one model call, off the event loop.

One :class:`Batcher` serves one loaded model. Requests wait in a bounded queue; a
collector task takes them into batches by the rule documented on
:class:`~shipyard.serving.models.BatchingConfig` and runs each batch on the model's own
thread, so the event loop keeps accepting and answering requests while the model
computes. A full queue refuses at once (:class:`OverloadedError`, answered 503 with
``Retry-After``) instead of growing: memory stays flat however hard clients push.
What is recorded per request (queue-time metrics, the prediction log) is handed to an
``on_batch`` hook once per model call, so the per-request path does none of it. A
``prepare`` hook, when set, turns a batch's requests into the model's input on the
model's thread first (features read by entity id, once per model call), and may refuse
some of them without failing the others.

Example:
    >>> batcher = Batcher(model_fn, BatchingConfig(max_batch_size=32), name="churn/3")  # doctest: +SKIP
    >>> batcher.start()  # doctest: +SKIP
    >>> result = await batcher.submit(columns)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from shipyard.errors import InvalidInputError, ModelFailedError, OverloadedError, ShipyardError
from shipyard.serving.models import BatchingConfig
from shipyard.serving.validation import Array, Columns

ModelFn = Callable[[Columns], Any]
_NO_OUTPUTS: Array = np.empty(0)


@dataclass(frozen=True, slots=True, eq=False)
class BatchResult:
    """What one request gets back: its rows of the output and how long each stage took."""

    outputs: Array
    queue_seconds: float
    compute_seconds: float
    batch_rows: int


@dataclass(frozen=True, slots=True, eq=False)
class AnsweredBatch:
    """One successful model call, as the per-batch hooks see it (metrics, prediction log).

    Per request, in batch order: its ``tags`` (request ids), ``counts`` (rows),
    ``queue_seconds`` and ``latency_seconds`` (arrival to answer). ``inputs`` and
    ``outputs`` hold every row of the batch; ``context``, when a ``prepare`` hook made the
    inputs, what the requests sent (entity ids, request values), one value per row.
    """

    tags: list[str]
    counts: list[int]
    queue_seconds: list[float]
    latency_seconds: list[float]
    inputs: Columns
    outputs: Array
    context: Mapping[str, Array] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """A batch's requests made into model input by a ``prepare`` hook.

    ``inputs`` holds the rows of every request not in ``failed`` (request index in the
    batch to the error it is answered with), in batch order; ``context`` the same rows of
    what those requests sent.
    """

    inputs: Columns
    failed: Mapping[int, Exception]
    context: Mapping[str, Array]


Prepare = Callable[[Sequence[Columns]], Prepared]


class BatchObserver(Protocol):
    """Receives what a batcher measures (metrics implement it)."""

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        """One model call finished: its rows, the requests it served, its duration."""
        ...

    def queue_depth(self, waiting: int) -> None:
        """The number of requests waiting changed."""
        ...


class BatcherClosedError(ShipyardError):
    """The batcher was closed (its model was swapped out); submit to the current one."""

    code = "closed"
    status = 503


@dataclass(slots=True, eq=False)
class _Pending:
    columns: Columns
    future: asyncio.Future[BatchResult]
    arrived: float
    tag: str


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Batcher:
    """A bounded queue in front of one model and the task that feeds it batches."""

    def __init__(
        self,
        model_fn: ModelFn,
        config: BatchingConfig,
        *,
        name: str,
        observer: BatchObserver | None = None,
        on_batch: Callable[[AnsweredBatch], None] | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._model_fn = model_fn
        self._prepare = prepare
        self._observer = observer
        self._on_batch = on_batch
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        # One future per idle spell and one timer per batch window, resolved by submit()
        # only when they must wake: not an Event set and a wait_for task per request.
        self._idle: asyncio.Future[None] | None = None
        self._filling: asyncio.Future[None] | None = None
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"shipyard-model-{name}")

    @property
    def depth(self) -> int:
        """Requests waiting, not counting the batch being computed."""
        return len(self._queue)

    def start(self) -> None:
        """Start the collector task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    def submit(self, columns: Columns, tag: str = "") -> asyncio.Future[BatchResult]:
        """Queue one request (``tag``: its id, for the batch hooks); the future resolves with its rows of the output.

        Enqueuing is synchronous, so a caller that read the current batcher and submits
        without awaiting in between can never find it closed by a swap.

        Raises:
            OverloadedError: ``max_queue`` requests are already waiting.
            BatcherClosedError: the batcher was closed.
        """
        if self._closed:
            raise BatcherClosedError(f"model {self.name} was swapped out")
        if len(self._queue) >= self.config.max_queue:
            raise OverloadedError(
                f"model {self.name} is overloaded: {len(self._queue)} requests are waiting "
                f"(max_queue={self.config.max_queue}); retry shortly"
            )
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(columns, future, time.perf_counter(), tag))
        self._queued_rows += columns.rows
        if self._idle is not None:
            _resolve(self._idle)
        elif self._filling is not None and self._queued_rows >= self.config.max_batch_size:
            _resolve(self._filling)
        if self._observer is not None:
            self._observer.queue_depth(len(self._queue))
        return future

    async def close(self) -> None:
        """Refuse new requests, finish the queued ones, then stop the thread."""
        self._closed = True
        for waiting in (self._idle, self._filling):
            if waiting is not None:
                _resolve(waiting)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._idle = loop.create_future()
                try:
                    await self._idle
                finally:
                    self._idle = None
            batch = await self._collect(loop)
            if self._observer is not None:
                self._observer.queue_depth(len(self._queue))
            live = [p for p in batch if not p.future.done()]  # a disconnected client cancels its future
            if live:
                await self._compute(live)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Pending]:
        config = self.config
        if (
            config.enabled
            and len(self._queue) > 1
            and config.max_delay_ms > 0
            and self._queued_rows < config.max_batch_size
            and not self._closed
        ):
            remaining = self._queue[0].arrived + config.max_delay_ms / 1000 - time.perf_counter()
            if remaining > 0:
                self._filling = loop.create_future()
                timer = loop.call_later(remaining, _resolve, self._filling)
                try:
                    await self._filling
                finally:
                    timer.cancel()
                    self._filling = None
        first = self._queue.popleft()
        batch, rows = [first], first.columns.rows
        while config.enabled and self._queue and rows + self._queue[0].columns.rows <= config.max_batch_size:
            item = self._queue.popleft()
            batch.append(item)
            rows += item.columns.rows
        self._queued_rows -= rows
        return batch

    async def _compute(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            inputs, outputs, prepared = await loop.run_in_executor(
                self._executor, self._call, [p.columns for p in batch]
            )
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # One bad request must not fail the others it was batched with: retry each alone.
            for pending in batch:
                await self._compute([pending])
            return
        if prepared is not None and prepared.failed:
            for index, refused in prepared.failed.items():
                _fail(batch[index], refused)
            batch = [p for i, p in enumerate(batch) if i not in prepared.failed]
            if not batch:
                return
        finished = time.perf_counter()
        seconds = finished - started
        if self._observer is not None:
            self._observer.batch_done(inputs.rows, len(batch), seconds)
        offset = 0
        for pending in batch:
            rows = pending.columns.rows
            if not pending.future.done():
                result = BatchResult(outputs[offset : offset + rows], started - pending.arrived, seconds, inputs.rows)
                pending.future.set_result(result)
            offset += rows
        if self._on_batch is not None:
            self._on_batch(
                AnsweredBatch(
                    tags=[p.tag for p in batch],
                    counts=[p.columns.rows for p in batch],
                    queue_seconds=[started - p.arrived for p in batch],
                    latency_seconds=[finished - p.arrived for p in batch],
                    inputs=inputs,
                    outputs=outputs,
                    context=None if prepared is None else prepared.context,
                )
            )

    def _call(self, parts: Sequence[Columns]) -> tuple[Columns, Array, Prepared | None]:
        prepared = None
        if self._prepare is None:
            inputs = parts[0] if len(parts) == 1 else _concatenate(parts)
        else:
            prepared = self._prepare(parts)
            inputs = prepared.inputs
            if inputs.rows == 0:  # every request was refused
                return inputs, _NO_OUTPUTS, prepared
        outputs = np.asarray(self._model_fn(inputs))
        if outputs.ndim == 0 or outputs.shape[0] != inputs.rows:
            raise ModelFailedError(
                f"model {self.name} returned output of shape {list(outputs.shape)} for {inputs.rows} rows; "
                "a model must return one prediction per row"
            )
        return inputs, outputs, prepared


def _concatenate(parts: Sequence[Columns]) -> Columns:
    """The requests of a batch as one input: one ``concatenate`` when they all came as matrices."""
    rows = sum(p.rows for p in parts)
    names = list(parts[0].data)
    matrices = [p.matrix for p in parts if p.matrix is not None]
    if len(matrices) == len(parts):
        matrix: Array = np.concatenate(matrices)
        return Columns(dict(zip(names, matrix.T, strict=True)), rows, matrix)
    return Columns({name: np.concatenate([p.data[name] for p in parts]) for name in names}, rows)


def _fail(pending: _Pending, exc: Exception) -> None:
    if pending.future.done():
        return
    if isinstance(exc, ShipyardError):
        pending.future.set_exception(exc)
    elif isinstance(exc, ValueError | TypeError | KeyError):
        pending.future.set_exception(
            InvalidInputError(f"the model rejected the input ({type(exc).__name__}: {exc})", field="inputs")
        )
    else:
        pending.future.set_exception(ModelFailedError(f"the model failed ({type(exc).__name__}: {exc})"))
