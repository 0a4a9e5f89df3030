"""``shipyard monitor``: drift and performance of a served model, once or as a service, and its HTML report.

``shipyard monitor churn@champion --window 1h`` monitors one window and exits (0, also
when the window held no predictions: it says so). ``--every 10m`` keeps monitoring until
SIGTERM or Ctrl-C, finishing the window in progress first. ``shipyard monitor report
churn@champion OUT.html`` writes the report with every stored window's scores.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from shipyard.cli._common import client, console
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:  # the monitoring stack (pandas, pyarrow) loads when a command runs, not for every command
    from shipyard.monitoring.monitor import MonitorReport
    from shipyard.monitoring.rules import Rule


class _RunByDefault(TyperGroup):
    """``shipyard monitor REF ...`` means ``shipyard monitor run REF ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    help="Monitor a served model: drift against its training profile, performance from labels, alerts.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    ref: Annotated[str, typer.Argument(help="the served model, e.g. churn@champion")],
    window: Annotated[str, typer.Option(help="the window of prediction logs to read: 1h, 10m, 1d")] = "1h",
    every: Annotated[str | None, typer.Option(help="keep monitoring at this interval (10m) until stopped")] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", help="an alert rule, e.g. 'churn-drift: psi(plan) > 0.2 for 2 windows'"),
    ] = None,
    rules_file: Annotated[Path | None, typer.Option("--rules", help="a file of alert rules, one per line")] = None,
    hook: Annotated[str | None, typer.Option("--webhook", help="POST each alert transition as JSON here")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus gauges on 127.0.0.1:PORT/metrics (with --every)")
    ] = None,
    max_runs: Annotated[int | None, typer.Option(help="with --every, stop after this many windows")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print each report as one JSON line")] = False,
) -> None:
    """Monitor REF's last --window of prediction logs once, or every --every until stopped."""
    from shipyard.monitoring._logs import parse_window
    from shipyard.monitoring.alerts import Notifier, webhook
    from shipyard.monitoring.monitor import monitor

    rules = _rules(rule or [], rules_file)
    notifiers: list[Notifier] = [webhook(hook)] if hook else []
    window_seconds = parse_window(window, field="window")
    options: dict[str, Any] = {"window": window_seconds, "rules": rules, "notifiers": notifiers, "client": client()}
    if every is None:
        if metrics_port is not None or max_runs is not None:
            raise InvalidInputError("--metrics-port and --max-runs go with --every", field="every")
        with console.status(f"monitoring {ref}: the last {window} of prediction logs"):
            report = monitor(ref, **options)
        _show(report, as_json=as_json)
        return
    _serve(
        ref, parse_window(every, field="every"), options, metrics_port=metrics_port, max_runs=max_runs, as_json=as_json
    )


def _rules(texts: list[str], path: Path | None) -> list[Rule]:
    from shipyard.monitoring.rules import parse_rules, read_rules

    from_file = read_rules(path) if path is not None else []
    return parse_rules([*from_file, *texts])


def _serve(
    ref: str, every: float, options: dict[str, Any], *, metrics_port: int | None, max_runs: int | None, as_json: bool
) -> None:
    from shipyard.monitoring._service import MAX_RUNS, MonitorGauges, run_every

    if max_runs is not None and max_runs < 1:
        raise InvalidInputError(f"--max-runs must be at least 1, got {max_runs}", field="max_runs")
    gauges = MonitorGauges() if metrics_port is not None else None
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if gauges is not None and metrics_port is not None:
            port = gauges.serve(metrics_port)
            console.print(f"Prometheus gauges on http://127.0.0.1:{port}/metrics", highlight=False)
        console.print(f"monitoring {ref} every {every:g} s (Ctrl-C or SIGTERM stops)", highlight=False)

        def on_report(report: MonitorReport) -> None:
            if gauges is not None:
                gauges.update(report)
            _show(report, as_json=as_json)

        try:
            count = run_every(
                ref, every=every, stop=stop, max_runs=max_runs or MAX_RUNS, on_report=on_report, **options
            )
        except KeyboardInterrupt:
            console.print("stopped")
            raise typer.Exit(130) from None
        console.print(f"stopped after {count} windows", highlight=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if gauges is not None:
            gauges.close()


def _show(report: MonitorReport, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), default=str))
        return
    console.print(report.summary(), highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if report.drift is not None and report.drift.columns:
        table = Table("feature", "method", "score", "threshold", "drifted", "missing")
        for name, column in report.drift.columns.items():
            missing = report.values.get(f"missing_rate({name})", float("nan"))
            table.add_row(
                name,
                column.method,
                f"{column.score:.4g}",
                f"{column.threshold:g}",
                "yes" if column.drifted else "",
                f"{missing:.1%}",
            )
        console.print(table)
    for change in report.transitions:
        console.print(
            f"alert {change.rule.name}: {change.state} ({change.rule.subject} = {change.value:.4g})", highlight=False
        )


@app.command("report")
def report(
    ref: Annotated[str, typer.Argument(help="the monitored model, e.g. churn@champion")],
    out: Annotated[Path, typer.Argument(help="the HTML file to write")],
    limit: Annotated[int, typer.Option(help="the most recent windows to plot")] = 100,
) -> None:
    """Write REF's monitoring report as HTML: the latest window's drift and every window's scores over time."""
    if limit < 1:
        raise InvalidInputError(f"--limit must be at least 1, got {limit}", field="limit")
    from shipyard.monitoring.monitor import report_html

    with console.status(f"rendering the report of {ref}"):
        html = report_html(ref, limit=limit, client=client())
    folder = out.resolve().parent
    if not folder.is_dir():
        raise InvalidInputError(f"cannot write {out}: folder {folder} does not exist", field="out")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    console.print(f"wrote {out} ({len(html.encode()) / 1024:.1f} KiB)", highlight=False)
