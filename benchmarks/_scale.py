"""``tracking.py --scale``: how searches, the runs table and metric histories grow with the store.

Runs are inserted in bulk with the store's own driver statements, 10,000 runs a transaction,
because 100,000 ``start_run`` calls would take minutes and measure nothing new; on PostgreSQL
the tables are then analyzed, as autovacuum would soon do. Every timed
call goes through the public ``Client``, and each answer is checked before it is printed.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

import shipyard as sy
from _workload import COMMON_FILTER, best_of, loss, run_metrics, run_params
from shipyard.store import close_stores
from shipyard.store.entities import MetricPoint
from shipyard.store.sql import _driver as driver

RUN_SIZES = (1_000, 10_000, 100_000)
HISTORY_SIZES = (10_000, 100_000, 1_000_000)
PAGE = 100  # one page of a filtered search
TABLE_ROWS = 50  # what `shipyard runs list` asks for by default
SEARCH_TARGET_S = 0.200
CHUNK = 10_000
EXPERIMENT = "scale"
INSERT_FINISHED_RUN = (
    "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, heartbeat_at, parent_run_id, "
    "user_name, lineage) VALUES (?, ?, ?, 'finished', ?, ?, ?, NULL, 'bench', '{}')"
)


@dataclass
class Line:
    """One measured operation at each size, in seconds."""

    label: str
    sizes: tuple[int, ...]
    seconds: list[float] = field(default_factory=list)


def _seed_runs(client: sy.Client, experiment_id: str, first: int, count: int) -> None:
    """Insert runs ``first .. first+count-1`` with the params and metrics ``_workload`` gives them."""
    base = 1_700_000_000.0
    for start in range(first, first + count, CHUNK):
        indexes = range(start, min(start + CHUNK, first + count))
        ids = {i: uuid.uuid4().hex for i in indexes}
        runs = [(ids[i], experiment_id, f"r{i}", base + i, base + i + 1, base + i + 1) for i in indexes]
        params = [(ids[i], k, v) for i in indexes for k, v in run_params(i).items()]
        points = [(ids[i], k, v, False, 0, base + i) for i in indexes for k, v in run_metrics(i).items()]
        with client.stores.runs.db.write() as conn:  # type: ignore[attr-defined]
            cur = driver.cursor(conn)
            cur.executemany(INSERT_FINISHED_RUN, runs)
            cur.executemany(driver.INSERT_PARAM, params)
            cur.executemany(driver.INSERT_METRICS, points)
            cur.executemany(driver.UPSERT_LATEST, points)
    if client.stores.runs.db.dialect == "postgresql":  # type: ignore[attr-defined]
        # What autovacuum does within a minute of a bulk load (and PostgreSQL's docs advise after
        # one): without statistics the planner takes the new 10,000-row tables for empty ones.
        with client.stores.runs.db.write() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql("ANALYZE runs, params, latest_metrics")


def _expected_page(runs: int) -> list[str]:
    """The names the filtered search's first page must hold: newest first, matching COMMON_FILTER."""
    names = []
    for index in range(runs - 1, -1, -1):
        if run_params(index)["model"] == "lgbm" and run_metrics(index)["auc"] > 0.5:
            names.append(f"r{index}")
            if len(names) == PAGE:
                break
    return names


def _check(what: str, got: Any, wanted: Any) -> None:
    if got != wanted:
        raise SystemExit(f"--scale: {what}: expected {wanted!r}, got {got!r}")


def _measure_runs(client: sy.Client, lines: dict[str, Line], repeats: int) -> None:
    experiment = client.create_experiment(EXPERIMENT)
    seeded = 0
    for size in RUN_SIZES:
        _seed_runs(client, experiment.id, seeded, size - seeded)
        seeded = size

        def search() -> list[str]:
            return [r.name for r in client.search_runs(EXPERIMENT, filter=COMMON_FILTER, max_results=PAGE)]

        def table() -> list[str]:
            return [r.name for r in client.search_runs(max_results=TABLE_ROWS)]

        search_s, names = best_of(repeats, search)
        _check(f"filtered search over {size:,} runs", names, _expected_page(size))
        table_s, rows = best_of(repeats, table)
        _check(f"runs table over {size:,} runs", rows, [f"r{i}" for i in range(size - 1, size - 1 - TABLE_ROWS, -1)])
        lines["search"].seconds.append(search_s)
        lines["table"].seconds.append(table_s)


def _measure_history(client: sy.Client, lines: dict[str, Line], repeats: int) -> None:
    for size in HISTORY_SIZES:
        with sy.start_run("history", f"h{size}", client=client) as run:
            now = time.time()
            for first in range(0, size, CHUNK * 5):
                steps = range(first, min(first + CHUNK * 5, size))
                client.log_batch(run.id, [MetricPoint("loss", loss(s), s, now) for s in steps])
        seconds, history = best_of(repeats, lambda run_id=run.id: client.get_metric_history(run_id, "loss"))
        _check(f"history of {size:,} points", (len(history), history[-1].step), (size, size - 1))
        lines["history"].seconds.append(seconds)


@contextmanager
def _engine(name: str) -> Iterator[str | None]:
    """A fresh store URI for ``name``, or None when that engine is not available here."""
    if name == "SQLite":
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
            yield f"sqlite:///{Path(folder) / 'shipyard.db'}"
        return
    from shipyard.testing import ServiceMissing, postgres_schema

    try:
        schema = postgres_schema(os.environ.get("SHIPYARD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
        uri = schema.__enter__()
    except ServiceMissing:
        yield None
        return
    try:
        yield uri
    finally:
        schema.__exit__(None, None, None)


def run_scale(log: Callable[[str], None], repeats: int = 3) -> list[tuple[str, Line]]:
    """Measure every line on SQLite and PostgreSQL; returns (engine, line) pairs."""
    results = []
    for engine in ("SQLite", "PostgreSQL"):
        with _engine(engine) as uri, tempfile.TemporaryDirectory(prefix="bench-scale-art-") as artifacts:
            if uri is None:
                log(f"{engine}: not reachable, skipped")
                continue
            client = sy.Client(uri, Path(artifacts).as_uri())
            lines = {
                "search": Line(f"search_runs, filter, first {PAGE}", RUN_SIZES),
                "table": Line(f"runs table ({TABLE_ROWS} newest)", RUN_SIZES),
                "history": Line("get_metric_history", HISTORY_SIZES),
            }
            started = time.perf_counter()
            log(f"{engine}: inserting and searching {RUN_SIZES[-1]:,} runs (load {os.getloadavg()[0]:.2f}) ...")
            _measure_runs(client, lines, repeats)
            log(f"{engine}: logging and reading {HISTORY_SIZES[-1]:,}-point histories ...")
            _measure_history(client, lines, repeats)
            log(f"{engine}: done in {time.perf_counter() - started:.0f} s")
            close_stores(client.settings)
            results += [(engine, line) for line in lines.values()]
    return results


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def render_scale(results: list[tuple[str, Line]]) -> Table:
    """Timings per size, the growth per 10x, and the search target."""
    table = Table(
        title="Tracking at scale: shipyard through Client (best of 3; a shared machine: figures are noisy)",
        caption=f"filter: {COMMON_FILTER}. Target: filtered search over 100k runs < 200 ms, growth ≤ 10x per 10x.",
    )
    for column in ("engine", "operation", "sizes", "times", "growth per 10x", "target"):
        table.add_column(column, justify="left" if column in {"engine", "operation"} else "right")
    for engine, line in results:
        growth = [later / earlier for earlier, later in zip(line.seconds, line.seconds[1:], strict=False)]
        linear = all(g <= 10 for g in growth)
        verdict = "linear or better" if linear else "[red]worse than linear[/red]"
        if line.label.startswith("search_runs"):
            fast = line.seconds[-1] < SEARCH_TARGET_S
            verdict = ("[green]met[/green]" if fast and linear else "[red]missed[/red]") + f" ({verdict})"
        table.add_row(
            engine,
            line.label,
            " / ".join(_size(n) for n in line.sizes),
            " / ".join(f"{s * 1e3:,.1f} ms" for s in line.seconds),
            " / ".join(f"{g:.1f}x" for g in growth),
            verdict,
        )
    return table
