"""``shipyard run FILE:FLOW`` (with a live view of task states) and ``shipyard scheduler``.

The lead registers these as top-level commands::

    app.command("run")(run.run)
    app.command("scheduler")(run.scheduler)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from shipyard.cli._common import client, console, seconds
from shipyard.cli.flows import dag_tree, state_text
from shipyard.errors import InvalidInputError
from shipyard.flows import _params
from shipyard.flows._loader import load_module
from shipyard.flows._run import RESUMABLE, LiveRun, execute
from shipyard.flows.api import flows_in, load_flow, resume
from shipyard.flows.models import FlowRun

_ACTIVE = ("running", "retrying")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--param {pair!r} must look like name=value", field="param")
        params[key.strip()] = value
    return params


class _LiveView:
    """What the terminal shows while a flow runs: counts by state and the tasks in flight."""

    def __init__(self) -> None:
        self.live: LiveRun | None = None
        self.started = time.monotonic()

    def attach(self, live: LiveRun) -> None:
        self.live = live

    def __rich__(self) -> Any:
        if self.live is None:
            return Text("starting ...", style="dim")
        tasks = self.live.tasks()
        counts = Counter(t.state for t in tasks)
        summary = Text(f"{self.live.run.flow_name}  {self.live.id}  {seconds(time.monotonic() - self.started)}  ")
        for state, n in sorted(counts.items()):
            summary.append_text(state_text(state))
            summary.append(f"={n}  ")
        table = Table("task", "state", "attempt", "running for", box=None)
        now = time.time()
        shown = [t for t in tasks if t.state in _ACTIVE][:15]
        shown += [t for t in tasks if t.state in ("failed", "crashed")][:5]
        for task in shown:
            took = now - task.start_time if task.start_time and task.state in _ACTIVE else task.duration
            table.add_row(task.task_key, state_text(task.state), str(task.attempts), seconds(took))
        return Group(summary, table)


def run(
    target: Annotated[str, typer.Argument(help="FILE.py:FLOW or module:FLOW")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="a flow parameter as name=value")] = None,
    executor: Annotated[str, typer.Option(help="local or ray")] = "local",
    resume_run: Annotated[
        str | None,
        typer.Option(
            "--resume", help="finish this failed or crashed run (id or unique prefix), reusing what succeeded"
        ),
    ] = None,
    live: Annotated[bool, typer.Option(help="show task states live while the flow runs")] = True,
) -> None:
    """Run a flow now, recorded; --resume RUN_ID re-runs only what failed or did not run."""
    if executor not in ("local", "ray"):
        raise InvalidInputError(f"--executor must be local or ray, got {executor!r}", field="executor")
    flow = load_flow(target)
    stores = client().stores
    view = _LiveView()
    display = Live(view, console=console, refresh_per_second=8, transient=True) if live else None
    if display is not None:
        display.start()
    try:
        if resume_run is not None:
            if param:
                raise InvalidInputError("--param cannot be combined with --resume: a run keeps its parameters")
            record = resume(resume_run, flow=flow, executor=executor, client=client(), watch=view.attach)
        else:
            raw = _parse_params(param or [])
            coerced = _params.coerce_params(flow.fn, flow.name, raw)
            checked = _params.bind_params(flow.fn, flow.name, (), coerced)
            record = execute(flow, checked, stores, executor=executor, watch=view.attach)
    finally:
        if display is not None:
            display.stop()
    _report(record, target)


def _report(record: FlowRun, target: str) -> None:
    console.print(dag_tree(record))
    if record.state == "succeeded":
        if record.result is not None:
            console.print(Text(f"result: {record.result!r}"[:2000]), highlight=False)
        return
    console.print(Text(f"flow run {record.id} {record.state}: {(record.error or '').splitlines()[0]}", style="red"))
    if record.state in RESUMABLE:
        # soft_wrap: one line however narrow the terminal, so it copies and pastes whole.
        console.print(f"finish it with: shipyard run {target} --resume {record.id}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)  # the work failed: status 1, apart from bad input's 2


def _announce(what: str, record: FlowRun) -> None:
    """One line per run the scheduler starts or ends: a scheduler that prints nothing looks dead."""
    line = Text(f"{time.strftime('%H:%M:%S')}  {record.flow_name}  {record.id[:12]}  ")
    line.append_text(state_text(what))
    if what == "started":
        line.append(f"  trigger={record.trigger}")
    else:
        line.append(f"  {seconds(record.duration)}")
        if record.error:
            line.append(f"  {record.error.splitlines()[0][:200]}", style="red")
    console.print(line, highlight=False, soft_wrap=True)


def scheduler(
    files: Annotated[list[str], typer.Argument(help="Python files (or modules) whose flows to schedule")],
    tick: Annotated[float, typer.Option(help="seconds between checks of schedules and triggers")] = 5.0,
    max_runs: Annotated[int, typer.Option(help="flow runs this scheduler executes at once")] = 4,
    once: Annotated[bool, typer.Option(help="check once, run what is due, wait for it, and exit")] = False,
) -> None:
    """Run schedules and triggers of the flows in FILES, and execute queued runs, until stopped.

    Several schedulers may run at once against one store: each schedule slot and each
    triggering event is claimed in a transaction, so it runs exactly once.
    """
    from shipyard.flows.scheduler import Scheduler

    flows = []
    for source in files:
        if ":" in source:
            flows.append(load_flow(source))
        else:
            flows.extend(flows_in(load_module(source)).values())
    if not flows:
        raise InvalidInputError(f"no flows found in {', '.join(files)}", field="files")
    sched = Scheduler(flows, client=client(), max_concurrent_runs=max_runs, tick_interval=tick, on_event=_announce)
    names = ", ".join(f.name for f in flows)
    if once:
        started = sched.tick()
        sched.run_pending(wait=True)
        console.print(f"enqueued {len(started)} runs of {names}; ran what was due")
        return
    console.print(f"scheduling {names}; every {tick:g} s, up to {max_runs} runs at once (Ctrl-C stops)")
    stop = threading.Event()
    try:
        sched.serve(stop)
    except KeyboardInterrupt:
        stop.set()
        console.print("stopping: waiting for running flows to finish")
    finally:
        sched.close()
