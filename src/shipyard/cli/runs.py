"""``shipyard runs``: list, show and delete runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table

from shipyard.cli._common import JsonOption, client, console, emit_json, number, record, seconds, when

app = typer.Typer(help="Runs: one execution of training code and what it logged.", no_args_is_help=True)


@app.command("list")
def list_runs(
    experiment: Annotated[str | None, typer.Argument(help="experiment name; all when omitted")] = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help='e.g. "metrics.auc > 0.9"')] = None,
    order_by: Annotated[list[str] | None, typer.Option("--order-by", "-o", help='e.g. "metrics.auc desc"')] = None,
    limit: Annotated[int, typer.Option(help="at most this many runs")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs with their status, duration and latest metrics."""
    page = client().search_runs(experiment, filter=filter, order_by=order_by or [], max_results=limit)
    if as_json:
        emit_json({**record(run, exclude=("lineage",)), "duration": run.duration} for run in page.items)
        return
    metric_keys = sorted({k for run in page.items for k in run.metrics if not k.startswith("system/")})[:6]
    # The id is never cut: its 12 characters are a prefix every command accepts back.
    table = Table(Column("run id", no_wrap=True, min_width=12), "experiment", "name", "status", "started")
    for heading in ("duration", *metric_keys):
        table.add_column(heading)
    for run in page.items:
        values = [number(run.metrics[k]) if k in run.metrics else "-" for k in metric_keys]
        table.add_row(
            run.id[:12], run.experiment, run.name, run.status, when(run.start_time), seconds(run.duration), *values
        )
    console.print(table)


@app.command("show")
def show_run(run_id: Annotated[str, typer.Argument(help="the run id, or a unique prefix of it")]) -> None:
    """Show one run: params, latest metrics, tags, lineage and artifacts."""
    c = client()
    run = c.get_run(run_id)
    console.print(
        f"[bold]{run.experiment}/{run.name}[/bold]  {run.id}  status={run.status}  "
        f"started={when(run.start_time)}  duration={seconds(run.duration)}"
    )
    for title, values in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        table = Table("key", "value", title=title)
        for key, value in sorted(values.items()):
            table.add_row(key, number(value) if isinstance(value, float) else str(value))
        console.print(table)
    console.print_json(json.dumps(dict(run.lineage), default=str))
    artifacts = Table("path", "size", "sha256", title="artifacts")
    for ref in c.list_artifacts(run.id):
        artifacts.add_row(ref.path, str(ref.size), ref.digest[:16])
    console.print(artifacts)


@app.command("delete")
def delete_run(
    run_id: Annotated[str, typer.Argument(help="the run id, or a unique prefix of it")],
    force: Annotated[bool, typer.Option("--force", help="delete it even if it produced model versions")] = False,
) -> None:
    """Delete a run (shipyard gc removes it for good)."""
    c = client()
    run = c.get_run(run_id)
    c.delete_run(run.id, force=force)
    console.print(f"deleted run {run.id}")
