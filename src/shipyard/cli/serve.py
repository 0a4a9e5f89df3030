"""``shipyard serve``: serve registered models over HTTP (Open Inference Protocol v2 and plain JSON)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import Annotated

import typer

from shipyard.errors import InvalidInputError


def serve(
    refs: Annotated[list[str], typer.Argument(help="Models to serve: NAME@ALIAS, NAME/VERSION or NAME (latest).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes, forked after the models are loaded.")] = 1,
    canary: Annotated[
        list[str] | None, typer.Option(help="NAME@ALIAS=PERCENT: route that share of NAME's traffic there.")
    ] = None,
    shadow: Annotated[
        list[str] | None, typer.Option(help="NAME@ALIAS: mirror NAME's requests there; answers are not returned.")
    ] = None,
    max_batch_size: Annotated[int, typer.Option(help="Most rows in one model call.")] = 64,
    max_delay_ms: Annotated[float, typer.Option(help="Longest a request waits for a batch to fill.")] = 2.0,
    max_queue: Annotated[int, typer.Option(help="Requests waiting per model before 503.")] = 256,
    batching: Annotated[bool, typer.Option(help="Coalesce concurrent requests into batches.")] = True,
    method: Annotated[str, typer.Option(help="predict or predict_proba.")] = "predict",
    poll_interval: Annotated[float, typer.Option(help="Seconds between checks for moved aliases; 0: never.")] = 5.0,
    log_sample_rate: Annotated[float, typer.Option(help="Share of predictions logged to the store, 0-1.")] = 1.0,
    body_limit: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 8 * 1024 * 1024,
    access_log: Annotated[bool, typer.Option(help="Write one JSON line per request to stderr.")] = True,
    online_store: Annotated[
        str | None,
        typer.Option(
            help="Online feature store (sqlite:///PATH or redis://HOST:PORT) feeding models logged with a "
            "feature service; default: SHIPYARD_ONLINE_STORE, else the one beside the metadata store."
        ),
    ] = None,
) -> None:
    """Serve models with dynamic batching, hot swap on alias moves, canary and shadow arms, /metrics and /docs.

    A model logged with a feature service is served by entity id: a request gives the ids
    (e.g. {"records": [{"user_id": 42}]}) and the features are read from the online store.

    Example: shipyard serve churn@champion --canary churn@challenger=10 --workers 2
    """
    from shipyard.serving import serve as run_server
    from shipyard.serving.models import BatchingConfig, ModelSpec, ServingConfig

    _logging(access_log)
    batch = BatchingConfig(
        enabled=batching, max_batch_size=max_batch_size, max_delay_ms=max_delay_ms, max_queue=max_queue
    )
    canaries = dict(_canary(text) for text in canary or [])
    shadows = {_name(ref): ref for ref in shadow or []}
    specs = []
    for ref in refs:
        name = _name(ref)
        canary_ref, percent = canaries.pop(name, (None, 0.0))
        specs.append(
            ModelSpec(
                ref,
                canary=canary_ref,
                canary_percent=percent,
                shadow=shadows.pop(name, None),
                batching=batch,
                method=method,
            )
        )
    leftover = sorted(set(canaries) | set(shadows))
    if leftover:
        raise InvalidInputError(
            f"--canary/--shadow name model(s) not served: {', '.join(leftover)}; serve them first", field="canary"
        )
    config = ServingConfig(
        models=tuple(specs),
        body_limit=body_limit,
        poll_interval=poll_interval,
        log_sample_rate=log_sample_rate,
        online_store=online_store,
    )
    run_server(config, host=host, port=port, workers=workers)


def _name(ref: str) -> str:
    from shipyard.registry import parse_model_ref

    return parse_model_ref(ref).name


def _canary(text: str) -> tuple[str, tuple[str, float]]:
    ref, sep, percent = text.rpartition("=")
    try:
        value = float(percent)
    except ValueError:
        value = -1.0
    if not sep or not 0 <= value <= 100:
        raise InvalidInputError(f"--canary must be NAME@ALIAS=PERCENT (0-100), got {text!r}", field="canary")
    return _name(ref), (ref, value)


def _logging(access_log: bool) -> None:
    access = logging.getLogger("shipyard.serving.access")
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    if any(getattr(h, "_shipyard_serve", False) for h in access.handlers):
        return  # configured by an earlier call in this process
    handler = logging.StreamHandler(sys.stderr)
    handler._shipyard_serve = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name, level in (("shipyard.serving", logging.INFO), ("uvicorn.error", logging.INFO)):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
    lines = _BlockWriter()
    lines._shipyard_serve = True  # type: ignore[attr-defined]
    lines.setFormatter(logging.Formatter("%(message)s"))
    access.propagate = False
    access.addHandler(lines)


class _BlockWriter(logging.Handler):
    """Access lines to stderr in blocks, every ``INTERVAL`` seconds and at exit, not one write per request.

    One write (and flush) per request cost the event loop more than a model call's
    share; here a request only appends its line to a list. A thread per process (started
    by the first line, so again in each forked worker) writes what gathered.
    """

    INTERVAL = 0.2

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[str] = []
        self._pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))  # under the handler's lock (Handler.handle)
        except Exception:
            self.handleError(record)
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._write_forever, name="shipyard-access-log", daemon=True).start()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            lines, self._lines = self._lines, []
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()

    def _write_forever(self) -> None:
        while True:
            time.sleep(self.INTERVAL)
            self.flush()
