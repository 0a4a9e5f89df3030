"""The `shipyard stream` command: score a Redis Stream with a model, writing predictions to another stream."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._common import console

if TYPE_CHECKING:
    from shipyard.serving.stream import StreamStats


def stream(
    ref: Annotated[str, typer.Argument(help="The model: NAME@ALIAS, NAME/VERSION or NAME (latest).")],
    source: Annotated[str, typer.Option("--source", help="redis://HOST[:PORT][/DB]/STREAM to read messages from.")],
    sink: Annotated[str, typer.Option("--sink", help="redis://HOST[:PORT][/DB]/STREAM to write predictions to.")],
    group: Annotated[str, typer.Option("--group", help="Redis consumer group.")] = "shipyard-stream",
    consumer: Annotated[
        str | None, typer.Option("--consumer", help="Consumer name in the group (default: one per host).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Most messages read and scored at once.")] = 256,
    block_ms: Annotated[int, typer.Option("--block-ms", help="Longest wait for new messages, in ms.")] = 1000,
    reclaim_idle_ms: Annotated[
        int, typer.Option("--reclaim-idle-ms", help="Take over messages other consumers left pending this long.")
    ] = 30_000,
    max_messages: Annotated[int | None, typer.Option("--max-messages", help="Stop after this many messages.")] = None,
    method: Annotated[str, typer.Option("--method", help="predict or predict_proba.")] = "predict",
    report_every: Annotated[float, typer.Option("--report-every", help="Seconds between throughput lines.")] = 5.0,
) -> None:
    """Score a Redis Stream continuously (consumer group, at-least-once); SIGTERM or Ctrl-C stops after the batch.

    Each message holds one JSON record in its 'data' field and a 'request_id'; each
    prediction goes to the sink with that request_id. Messages that cannot be scored go to
    SOURCE:dead with the reason. Exit 1 when Redis fails.

    Example: shipyard stream churn@champion --source redis://localhost/events --sink redis://localhost/scores
    """
    from shipyard.errors import StoreUnavailableError
    from shipyard.serving.stream import serve_stream

    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once

    reported = [time.monotonic()]

    def report(stats: StreamStats) -> None:
        if time.monotonic() - reported[0] >= report_every:
            reported[0] = time.monotonic()
            _print(stats)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stats = serve_stream(
            ref,
            source,
            sink,
            group=group,
            consumer=consumer,
            batch_size=batch_size,
            block_ms=block_ms,
            max_messages=max_messages,
            reclaim_idle_ms=reclaim_idle_ms,
            method=method,
            stop=lambda: bool(received),
            on_batch=report,
        )
    except StoreUnavailableError as exc:  # the work failed (Redis went away), not the input
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _print(stats, done=True)
    if received and received[0] == signal.SIGINT:
        raise typer.Exit(130)


def _print(stats: StreamStats, *, done: bool = False) -> None:
    lead = "stopped: " if done else ""
    console.print(
        f"{lead}predicted {stats.predicted}, dead-lettered {stats.dead} "
        f"in {stats.seconds:.1f}s ({stats.rate:,.0f} messages/s)",
        highlight=False,
    )
