"""``shipyard flows``: list flows and runs, show a run's DAG, tail logs, cancel, backfill, cards."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from shipyard.cli._common import JsonOption, client, console, emit_json, record, seconds, when
from shipyard.errors import InvalidInputError
from shipyard.flows import api as flows_api
from shipyard.flows._graph import topological
from shipyard.flows.models import FINAL_FLOW_STATES, FlowInfo, FlowRun, TaskRun

app = typer.Typer(help="Flows: DAGs of tasks, their runs, schedules and triggers.", no_args_is_help=True)

STATE_STYLES = {
    "pending": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "succeeded": "green",
    "cached": "green",
    "failed": "bold red",
    "crashed": "bold red",
    "skipped": "dim",
    "cancelled": "magenta",
}
_HEAVY = ("tasks", "result", "result_ref", "params_ref")
_MAPPED = re.compile(r"^(?P<base>.+)\[(?P<index>\d+)\]$")
_COLLAPSE = 12
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def state_text(state: str) -> Text:
    """A state, coloured."""
    return Text(state, style=STATE_STYLES.get(state, ""))


@app.command("list")
def list_flows(as_json: JsonOption = False) -> None:
    """List flows that ran or were scheduled here, with their schedule and last run."""
    stores = client().stores
    flows_api.crash_stale_runs(stores)
    if as_json:
        emit_json(
            _flow_json(info, stores.flows.list_flow_runs(info.name, limit=1)) for info in stores.flows.list_flows()
        )
        return
    table = Table("flow", "schedule", "triggers", "owners", Column("last run", no_wrap=True, min_width=12), "state")
    table.add_column("started")
    for info in stores.flows.list_flows():
        last = stores.flows.list_flow_runs(info.name, limit=1)
        schedule = f"{info.schedule} ({info.timezone})" if info.schedule else "-"
        row = (last[0].id[:12], state_text(last[0].state), when(last[0].start_time)) if last else ("-", "-", "-")
        table.add_row(info.name, schedule, "; ".join(info.triggers) or "-", ", ".join(info.owners) or "-", *row)
    console.print(table)


def _flow_json(info: FlowInfo, last: list[FlowRun]) -> dict[str, object]:
    run = last[0] if last else None
    return {
        **record(info),
        "last_run": None if run is None else {"id": run.id, "state": run.state, "start_time": run.start_time},
    }


@app.command("runs")
def list_runs(
    flow: Annotated[str | None, typer.Argument(help="flow name; all flows when omitted")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", "-s", help="only runs in this state")] = None,
    limit: Annotated[int, typer.Option(help="at most this many runs")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List flow runs, newest first."""
    runs = flows_api.list_flow_runs(flow, states=state or (), limit=limit, client=client())
    if as_json:
        emit_json({**record(run, exclude=_HEAVY), "duration": run.duration} for run in runs)
        return
    # The full id, never folded or cut: it is what users paste back into show/logs/cancel.
    table = Table(Column("run id", no_wrap=True, min_width=32), "flow", "state", "trigger", "started", "duration")
    table.add_column("executor")
    table.add_column("error")
    for run in runs:
        error = (run.error or "").splitlines()[0][:80] if run.error else ""
        table.add_row(
            run.id,
            run.flow_name,
            state_text(run.state),
            run.trigger,
            when(run.start_time or run.created_at),
            seconds(run.duration),
            run.executor,
            error,
        )
    console.print(table)


@app.command("show")
def show_run(run_id: Annotated[str, typer.Argument(help="the flow run id, or a unique prefix of it")]) -> None:
    """Show a run's DAG as a tree, with each task's state, attempts and timing."""
    run = flows_api.get_flow_run(run_id, client=client())
    console.print(dag_tree(run))
    if run.error:
        console.print(Text(f"error: {run.error.splitlines()[0]}", style="red"))


def _task_label(task: TaskRun, others: Sequence[str]) -> Text:
    label = Text(task.task_key, style="bold")
    label.append("  ")
    label.append_text(state_text(task.state))
    if task.attempts > 1:
        label.append(f"  attempts={task.attempts}")
    label.append(f"  {seconds(task.duration)}")
    if task.reused_from:
        label.append(f"  reused {task.reused_from[:8]}", style="dim")
    if others:
        label.append(f"  (also after {', '.join(others)})", style="dim")
    if task.error and task.state in ("failed", "crashed", "retrying"):
        label.append(f"\n{task.error.splitlines()[0]}", style="red")
    return label


def dag_tree(run: FlowRun) -> Tree:
    """The run's tasks as a tree: each task under the first task it waited for."""
    header = Text(f"{run.flow_name}  {run.id}  ", style="bold")
    header.append_text(state_text(run.state))
    header.append(f"  started {when(run.start_time)}  {seconds(run.duration)}  trigger={run.trigger}")
    tree = Tree(header)
    tasks = topological(run.tasks)
    keys = {t.task_key for t in tasks}
    children: dict[str | None, list[TaskRun]] = defaultdict(list)
    for task in tasks:
        parents = [k for k in task.upstream if k in keys]
        children[parents[0] if parents else None].append(task)
    _add_children(tree, None, children)
    return tree


def _add_children(branch: Tree, parent: str | None, children: dict[str | None, list[TaskRun]]) -> None:
    groups: dict[str, list[TaskRun]] = defaultdict(list)
    for task in children.get(parent, []):
        match = _MAPPED.match(task.task_key)
        groups[match.group("base") if match else task.task_key].append(task)
    for base, members in groups.items():
        if len(members) > _COLLAPSE:
            _add_collapsed(branch, base, members, children)
            continue
        for task in members:
            others = [k for k in task.upstream if k != parent]
            node = branch.add(_task_label(task, others if len(others) <= 3 else [*others[:3], "..."]))
            _add_children(node, task.task_key, children)


def _add_collapsed(branch: Tree, base: str, members: list[TaskRun], children: dict[str | None, list[TaskRun]]) -> None:
    counts = Counter(t.state for t in members)
    durations = [t.duration for t in members if t.duration is not None]
    label = Text(f"{base}[0..{len(members) - 1}]", style="bold")
    label.append(f"  {len(members)} mapped tasks: ")
    label.append(", ".join(f"{n} {state}" for state, n in counts.most_common()))
    if durations:
        label.append(f"  {seconds(min(durations))}..{seconds(max(durations))}")
    node = branch.add(label)
    for task in members:
        if task.state not in ("succeeded", "cached"):
            node.add(_task_label(task, []))
    downstream = [c for t in members for c in children.get(t.task_key, [])]
    seen: set[str] = set()
    for task in downstream:
        if task.task_key not in seen:
            seen.add(task.task_key)
            child = node.add(_task_label(task, []))
            _add_children(child, task.task_key, children)


@app.command("logs")
def logs(
    run_id: Annotated[str, typer.Argument(help="the flow run id, or a unique prefix of it")],
    task: Annotated[str | None, typer.Argument(help="a task key (name-0) or name; all tasks when omitted")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines until the run ends")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls with --follow")] = 0.5,
) -> None:
    """Print what a run's tasks printed and logged, then each failed task's exception; --follow tails a running run."""
    c = client()
    run = flows_api.get_flow_run(run_id, client=c)
    task_key = _task_key(run, task) if task else None
    after = 0
    while True:
        lines = c.stores.flows.read_task_logs(run.id, task_key=task_key, after_id=after)
        for line in lines:
            prefix = "" if task_key else f"[{line.task_key}] "
            style = "red" if line.stream == "stderr" else ""
            console.print(Text(f"{prefix}{line.text}", style=style), highlight=False)
            after = line.id
        if not follow or (run.state in FINAL_FLOW_STATES and not lines):
            _print_task_errors(run, task_key)
            return
        time.sleep(interval)
        run = flows_api.get_flow_run(run.id, client=c)


def _print_task_errors(run: FlowRun, task_key: str | None) -> None:
    """The exception (type, message, traceback) each failed task recorded: what a log tail is read for."""
    for task in run.tasks:
        if task.error and task.state in ("failed", "crashed") and task_key in (None, task.task_key):
            console.print(Text(f"[{task.task_key}] {task.state}:", style="bold red"), highlight=False)
            console.print(Text(task.error.rstrip(), style="red"), highlight=False)


def _task_key(run: FlowRun, task: str) -> str:
    keys = {t.task_key for t in run.tasks}
    if task in keys:
        return task
    named = sorted(t.task_key for t in run.tasks if t.name == task)
    if len(named) == 1:
        return named[0]
    known = ", ".join(sorted(keys)[:20]) or "none"
    hint = f"task {task!r} ran {len(named)} times; pick one of: {', '.join(named[:10])}" if named else None
    raise InvalidInputError(hint or f"flow run {run.id} has no task {task!r}; its tasks are: {known}", field="task")


@app.command("cancel")
def cancel(run_id: Annotated[str, typer.Argument(help="the flow run id, or a unique prefix of it")]) -> None:
    """Cancel a queued run, or ask a running one to stop."""
    run = flows_api.cancel_flow_run(run_id, client=client())
    if run.state == "cancelled":
        console.print(f"cancelled flow run {run.id}")
    else:
        console.print(f"asked flow run {run.id} to stop; its process cancels it at its next heartbeat")


@app.command("backfill")
def backfill(
    flow: Annotated[str, typer.Argument(help="flow name (a scheduled flow the store knows)")],
    start: Annotated[str, typer.Option(help="first slot time, ISO 8601 (e.g. 2026-11-01 or 2026-11-01T03:00)")],
    end: Annotated[str, typer.Option(help="last slot time, ISO 8601, inclusive; a date alone includes its whole day")],
    priority: Annotated[int, typer.Option(help="queue priority of these runs (higher first)")] = -1,
) -> None:
    """Queue one run per schedule slot between START and END; slots already run are skipped."""
    from shipyard.flows.scheduler import backfill as enqueue

    last = _parse_time(end, "end")
    if _DATE_ONLY.match(end.strip()):  # --end 2026-11-03 means through that day, slot 03:00 included
        last += 86_400 - 1e-6
    runs = enqueue(flow, _parse_time(start, "start"), last, priority=priority, client=client())
    console.print(f"queued {len(runs)} runs of {flow}; a running `shipyard scheduler` picks them up")
    for run in runs:
        slot = dt.datetime.fromtimestamp(run.scheduled_time or 0, dt.UTC).isoformat()
        console.print(f"  {run.id}  slot {slot}")


def _parse_time(value: str, field: str) -> float:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"--{field} {value!r} is not an ISO 8601 time such as 2026-11-01T03:00", field=field
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@app.command("card")
def card(
    flow: Annotated[str, typer.Argument(help="flow name, or FILE.py:FLOW to include its code's description")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the Markdown here")] = None,
) -> None:
    """Print (or write) the flow's DAG card: purpose, tasks, schedule, owners, recent runs, outputs."""
    from shipyard.flows.card import flow_card

    target: object = flow
    if ":" in flow:
        from shipyard.flows.api import load_flow

        target = load_flow(flow)
    text = flow_card(target, client=client())  # type: ignore[arg-type]
    if output is None:
        console.print(Markdown(text))  # rendered as `models card` renders its Markdown
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
