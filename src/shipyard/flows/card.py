"""The DAG card: a Markdown page per flow a reviewer or an on-call engineer can read.

It says what the flow is for (its docstring), its parameters, its tasks with their inputs,
outputs and resource needs (from the latest run: the DAG is built at run time), its
schedule, triggers and owners, its recent runs and failure rate, and the datasets and
model versions its runs produced.

Example:
    >>> print(flow_card(retrain))   # doctest: +SKIP
    # Flow `retrain`
    ...
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from shipyard.errors import NotFoundError
from shipyard.flows._params import hints_of, type_name
from shipyard.flows.api import Flow, crash_stale_runs
from shipyard.store import Stores
from shipyard.store.entities import FlowInfo, FlowRun, TaskRun
from shipyard.tracking.api import HasStores, resolve_stores

_FAILED = ("failed", "crashed")


def flow_card(flow: Flow | str, *, client: HasStores | None = None, recent: int = 20) -> str:
    """The Markdown card of ``flow`` (a :class:`Flow`, or the name of one the store knows)."""
    stores = resolve_stores(client if client is not None else flow.client if isinstance(flow, Flow) else None)
    crash_stale_runs(stores)
    name = flow.name if isinstance(flow, Flow) else flow
    info = flow.info() if isinstance(flow, Flow) else stores.flows.find_flow(name)
    if info is None:
        known = ", ".join(f.name for f in stores.flows.list_flows()) or "none"
        raise NotFoundError(f"flow {name!r} is not known here; known flows: {known}", field="flow")
    runs = stores.flows.list_flow_runs(name, limit=recent)
    latest = next((r for r in runs if r.state != "pending"), None)
    tasks = stores.flows.get_flow_run(latest.id).tasks if latest is not None else ()
    parts = [
        f"# Flow `{name}`",
        _purpose(info),
        _overview(info, flow if isinstance(flow, Flow) else None),
        _parameters(flow) if isinstance(flow, Flow) else "",
        _tasks(tasks, latest),
        _runs(runs),
        _outputs(stores, runs, tasks),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _purpose(info: FlowInfo) -> str:
    text = info.description.strip() or "_No description: add a docstring to the flow function._"
    return "## Purpose\n\n" + text


def _overview(info: FlowInfo, flow: Flow | None) -> str:
    schedule = f"`{info.schedule}` ({info.timezone})" if info.schedule else "none"
    if flow is not None and flow.schedule is not None:
        schedule += f", catch-up: {flow.schedule.catchup}"
    rows = [
        ("owners", ", ".join(info.owners) or "_none declared_"),
        ("schedule", schedule),
        ("triggers", "; ".join(info.triggers) or "none"),
        ("entrypoint", f"`{info.entrypoint}`" if info.entrypoint else "_unknown_"),
        ("max active runs", str(info.max_active_runs) if info.max_active_runs else "unlimited"),
    ]
    if flow is not None and flow.tag_limits:
        rows.append(("tag limits", ", ".join(f"{tag}: {n}" for tag, n in flow.tag_limits.items())))
    return "## Overview\n\n" + _fields(rows)


def _parameters(flow: Flow) -> str:
    hints = hints_of(flow.fn)
    rows = []
    for param in inspect.signature(flow.fn).parameters.values():
        default = "_required_" if param.default is param.empty else f"`{param.default!r}`"
        rows.append((f"`{param.name}`", type_name(hints.get(param.name, param.annotation)), default))
    return "## Parameters\n\n" + (_table(("name", "type", "default"), rows) if rows else "none")


def _tasks(tasks: Sequence[TaskRun], latest: FlowRun | None) -> str:
    if latest is None:
        return "## Tasks\n\n_The flow has not run yet: its DAG is built when it runs._"
    by_name: dict[str, list[TaskRun]] = defaultdict(list)
    for task in tasks:
        by_name[task.name].append(task)
    names_of = {t.task_key: t.name for t in tasks}
    rows = []
    for name, calls in by_name.items():
        first = calls[0]
        upstream = sorted({names_of.get(k, k) for t in calls for k in t.upstream} - {name})
        inputs = ", ".join(
            f"`{arg}`: {_short(ref.type_name) if ref else 'unstored'}" for arg, ref in first.inputs.items()
        )
        outputs = sorted({f"{_short(t.output.type_name)} ({t.output.serializer})" for t in calls if t.output})
        options = first.options
        rows.append(
            (
                f"`{name}`",
                str(len(calls)),
                ", ".join(f"`{u}`" for u in upstream) or "-",
                inputs or "-",
                ", ".join(outputs) or "-",
                _resources(first.resources),
                f"retries={options.get('retries', 0)}, timeout={options.get('timeout') or '-'}, "
                f"cache={options.get('cache', False)}, kind={first.kind}",
            )
        )
    header = ("task", "calls", "after", "inputs", "output", "resources", "options")
    when = _when(latest.start_time)
    return f"## Tasks\n\nAs called in the latest run (`{latest.id}`, {when}):\n\n" + _table(header, rows)


def _resources(resources: Any) -> str:
    memory = float(resources.get("memory", 0))
    text = f"{resources.get('cpus', 0):g} cpu"
    if memory:
        text += f", {memory / 1e9:g} GB"
    if resources.get("gpus"):
        text += f", {resources['gpus']:g} gpu"
    return text


def _runs(runs: Sequence[FlowRun]) -> str:
    finished = [r for r in runs if r.state in ("succeeded", *_FAILED)]
    if not runs:
        return "## Recent runs\n\nnone yet"
    failed = sum(1 for r in finished if r.state in _FAILED)
    rate = f"{failed / len(finished):.0%}" if finished else "n/a"
    counts = ", ".join(f"{n} {state}" for state, n in Counter(r.state for r in runs).most_common())
    rows = [
        (f"`{r.id[:12]}`", r.state, r.trigger, _when(r.start_time or r.created_at), _duration(r.duration))
        for r in runs[:10]
    ]
    summary = f"Last {len(runs)} runs: {counts}. Failure rate: **{rate}** ({failed} of {len(finished)} finished)."
    return "## Recent runs\n\n" + summary + "\n\n" + _table(("run", "state", "trigger", "started", "took"), rows)


def _outputs(stores: Stores, runs: Sequence[FlowRun], tasks: Sequence[TaskRun]) -> str:
    run_ids = {r.tracking_run_id for r in runs if r.tracking_run_id}
    run_ids |= {t.tracking_run_id for t in tasks if t.tracking_run_id}
    run_ids |= _child_runs(stores, runs, run_ids)
    if not run_ids:
        return "## Datasets and models\n\nnone recorded"
    links = stores.datasets.run_datasets(sorted(run_ids))
    written = sorted({f"`{x.name}@{x.version}`" for x in links if x.role == "output"})
    read = sorted({f"`{x.name}@{x.version}`" for x in links if x.role == "input"})
    models = sorted({f"`{v.name}/{v.version}`" for v in stores.models.versions_for_runs(sorted(run_ids))})
    rows = [
        ("datasets written", ", ".join(written) or "none"),
        ("datasets read", ", ".join(read) or "none"),
        ("model versions", ", ".join(models) or "none"),
    ]
    return "## Datasets and models\n\nFrom the recent runs above:\n\n" + _fields(rows)


def _child_runs(stores: Stores, runs: Sequence[FlowRun], parents: set[str]) -> set[str]:
    """Tracking runs started inside tasks: children of a flow run's tracking run, in its experiment."""
    children: set[str] = set()
    experiments: set[str] = set()
    for run_id in list(parents):
        try:
            experiments.add(stores.runs.get_run(run_id).experiment_id)
        except NotFoundError:
            continue
    if not experiments:
        return children
    page = stores.runs.search_runs(sorted(experiments), filter=None, order_by=[], max_results=1000, page_token=None)
    for run in page.items:
        if run.parent_run_id in parents:
            children.add(run.id)
    return children


def _short(type_name_: str) -> str:
    return type_name_.removeprefix("builtins.")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _fields(rows: Sequence[tuple[str, str]]) -> str:
    # Key/value facts as a bullet list, as the model card writes them: a table with an
    # empty header renders as blank rows in a terminal and on GitHub alike.
    return "\n".join(f"- **{label[:1].upper() + label[1:]}:** {value}" for label, value in rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
