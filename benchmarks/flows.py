"""shipyard flows against Prefect 3: per-task overhead and time to the first task.

Two workloads of trivial tasks (each returns its input), in one command:

* fan-out: one flow maps a task over 1,000 integers and gathers the results;
* chain: one flow runs 200 tasks, each taking the previous one's future.

Each tool runs in its own fresh process with a fresh store (shipyard: an SQLite file;
Prefect: a fresh ``PREFECT_HOME`` and its ephemeral API server), from its own virtualenv
(Prefect's is built by ``benchmarks/setup_prefect.sh``). A worker prints one JSON line.

* time to first task: from calling the first flow to the first task starting, in a fresh
  process whose store is empty (it includes creating the store / starting the server);
* per-task overhead: wall time of a whole flow run divided by its number of tasks, median
  of ``--repeat`` warm runs (the task bodies are trivial, so this is all overhead);
* recorded: task runs the tool's store holds for the last run (shipyard reads them back
  from its store; Prefect through its client).

Usage::

    bash benchmarks/setup_prefect.sh          # once
    .venv/bin/python benchmarks/flows.py      # both tools, then the ratios
    .venv/bin/python benchmarks/flows.py --skip-prefect --fanout 200

Only the standard library is imported at the top: the same file is the Prefect worker,
run by Prefect's virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFECT_PYTHON = HERE / ".venv-prefect" / "bin" / "python"
STARTS: list[float] = []


# shipyard ------------------------------------------------------------------------------
def shipyard_worker(fanout: int, chain: int, repeat: int) -> dict[str, Any]:
    """Measure shipyard in this process (a fresh store in a temporary folder)."""
    folder = tempfile.mkdtemp(prefix="shipyard-bench-")
    os.environ["SHIPYARD_STORE"] = f"sqlite:///{folder}/shipyard.db"
    os.environ["SHIPYARD_ARTIFACTS"] = f"file://{folder}/artifacts"
    import shipyard
    from shipyard.flows import flow, task
    from shipyard.flows.api import resolve_stores

    @task
    def noop(x: int) -> int:
        if not STARTS:
            STARTS.append(time.time())
        return x

    @flow
    def fan(n: int) -> int:
        return len(noop.map(list(range(n))).result())

    @flow
    def line(n: int) -> int:
        value: Any = 0
        for _ in range(n):
            value = noop(value)
        return int(value.result())

    called = time.time()
    fan.run(n=fanout)
    first_task = STARTS[0] - called
    warm_first_task = _first_task_again(lambda: line.run(n=1))
    fan_times, fan_runs = _timed(lambda: fan.run(n=fanout), repeat)
    line_times, line_runs = _timed(lambda: line.run(n=chain), repeat)
    stores = resolve_stores()
    recorded = {
        "fanout": len(stores.flows.get_flow_run(fan_runs[-1].id).tasks),
        "chain": len(stores.flows.get_flow_run(line_runs[-1].id).tasks),
    }
    states = {r.state for r in (*fan_runs, *line_runs)}
    result = _report("shipyard", getattr(shipyard, "__version__", "dev"), first_task, fanout, chain,
                     fan_times, line_times, recorded, states)  # fmt: skip
    result["warm_first_task_s"] = warm_first_task
    return result


# prefect -------------------------------------------------------------------------------
def prefect_worker(fanout: int, chain: int, repeat: int) -> dict[str, Any]:
    """Measure Prefect 3 in this process (its ephemeral server, a fresh PREFECT_HOME)."""
    import prefect
    from prefect import flow, task

    @task
    def noop(x: int) -> int:
        if not STARTS:
            STARTS.append(time.time())
        return x

    @flow
    def fan(n: int) -> int:
        futures = noop.map(list(range(n)))
        return len(futures.result())

    @flow
    def line(n: int) -> int:
        value: Any = 0
        for _ in range(n):
            value = noop.submit(value)
        return int(value.result())

    called = time.time()
    fan(n=fanout)
    first_task = STARTS[0] - called
    errors: list[str] = []
    warm_first_task = _first_task_again(lambda: line(n=1), errors)
    fan_times, _ = _timed(lambda: fan(n=fanout), repeat, errors)
    line_times, _ = _timed(lambda: line(n=chain), repeat, errors)
    recorded = _prefect_recorded(fanout, chain)
    result = _report("prefect", prefect.__version__, first_task, fanout, chain, fan_times, line_times, recorded, set())
    result["errors"] = errors
    result["warm_first_task_s"] = warm_first_task
    return result


def _prefect_recorded(fanout: int, chain: int) -> dict[str, Any]:
    """Task runs Prefect's API holds for the latest run of each flow (recorded asynchronously)."""
    try:
        import asyncio

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
        from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

        async def count(name: str) -> int:
            async with get_client() as client:
                runs = await client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[name])), sort=FlowRunSort.START_TIME_DESC, limit=1
                )
                flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id]))
                total = 0
                while True:  # the API pages by 200
                    page = await client.read_task_runs(
                        flow_run_filter=flow_run, sort=TaskRunSort.ID_DESC, limit=200, offset=total
                    )
                    total += len(page)
                    if len(page) < 200:
                        return total

        time.sleep(3)  # task runs reach Prefect's server through its event pipeline
        return {"fanout": asyncio.run(count("fan")), "chain": asyncio.run(count("line"))}
    except Exception as exc:  # reporting only: never fail the benchmark on it
        return {"error": f"{type(exc).__name__}: {exc}"}


# shared --------------------------------------------------------------------------------
def _first_task_again(call: Any, errors: list[str] | None = None) -> float:
    """Seconds from a call to its first task starting, in a process and store already warm."""
    while True:
        STARTS.clear()
        called = time.time()
        try:
            call()
        except Exception as exc:
            if errors is None or len(errors) >= 10:
                raise
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            time.sleep(5)
            continue
        return STARTS[0] - called


def _timed(call: Any, repeat: int, errors: list[str] | None = None) -> tuple[list[float], list[Any]]:
    """Wall times of ``repeat`` successful calls; with ``errors``, a failed call is noted and
    retried (Prefect's ephemeral server answers 503 when its SQLite is busy), its time not counted.
    """
    times, results = [], []
    while len(times) < repeat:
        start = time.perf_counter()
        try:
            results.append(call())
        except Exception as exc:
            if errors is None or len(errors) >= 10:
                raise
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            time.sleep(5)
            continue
        times.append(time.perf_counter() - start)
    return times, results


def _report(
    tool: str,
    version: str,
    first_task: float,
    fanout: int,
    chain: int,
    fan_times: list[float],
    line_times: list[float],
    recorded: dict[str, Any],
    states: set[str],
) -> dict[str, Any]:
    return {
        "tool": tool,
        "version": version,
        "first_task_s": first_task,
        "fanout": {"tasks": fanout, "wall_s": fan_times, "per_task_ms": statistics.median(fan_times) / fanout * 1e3},
        "chain": {"tasks": chain, "wall_s": line_times, "per_task_ms": statistics.median(line_times) / chain * 1e3},
        "recorded": recorded,
        "states": sorted(states),
    }


def _run_worker(python: Path | str, tool: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    command = [str(python), str(Path(__file__).resolve()), "--worker", tool,
               "--fanout", str(args.fanout), "--chain", str(args.chain), "--repeat", str(args.repeat)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{tool} worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _print(results: dict[str, dict[str, Any]]) -> None:
    ours, theirs = results["shipyard"], results.get("prefect")
    rows = [
        ("time to first task (fresh store)", "first_task_s", None, "s"),
        ("time to first task (warm process)", "warm_first_task_s", None, "s"),
        (f"fan-out of {ours['fanout']['tasks']}: overhead per task", "fanout", "per_task_ms", "ms"),
        (f"chain of {ours['chain']['tasks']}: overhead per task", "chain", "per_task_ms", "ms"),
    ]
    title = f"{'':38} {'shipyard ' + ours['version']:>18}"
    if theirs:
        title += f" {'prefect ' + theirs['version']:>18} {'ratio':>8}"
    print(title)
    for label, key, sub, unit in rows:
        mine = ours[key] if sub is None else ours[key][sub]
        line = f"{label:38} {mine:>15.3f} {unit:2}"
        if theirs:
            other = theirs[key] if sub is None else theirs[key][sub]
            line += f" {other:>15.3f} {unit:2} {other / mine:>7.1f}x"
        print(line)
    print(f"{'task runs recorded (last run)':38} {json.dumps(ours['recorded']):>18}", end="")
    print(f" {json.dumps(theirs['recorded']):>18}" if theirs else "")
    if theirs and theirs.get("errors"):
        print(f"prefect calls that failed and were retried (not timed): {theirs['errors']}")
    for tool, result in results.items():
        print(f"{tool}: fan-out wall times {[round(t, 3) for t in result['fanout']['wall_s']]} s, "
              f"chain wall times {[round(t, 3) for t in result['chain']['wall_s']]} s")  # fmt: skip


def main() -> None:
    """Run both workers and print the figures and the ratios (prefect / shipyard)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--worker", choices=["shipyard", "prefect"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "shipyard":
        print(json.dumps(shipyard_worker(args.fanout, args.chain, args.repeat)))
        return
    if args.worker == "prefect":
        print(json.dumps(prefect_worker(args.fanout, args.chain, args.repeat)))
        return

    env = {**os.environ, "DO_NOT_TRACK": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    results = {"shipyard": _run_worker(sys.executable, "shipyard", args, env)}
    if not args.skip_prefect:
        if not PREFECT_PYTHON.exists():
            raise SystemExit(f"{PREFECT_PYTHON} is missing: run `bash benchmarks/setup_prefect.sh` first")
        home = tempfile.mkdtemp(prefix="prefect-bench-")
        prefect_env = {
            **env,
            "PREFECT_HOME": home,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # Its default of 20 s is too short on a small or busy machine; the wait is measured anyway.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        }
        prefect_env.pop("PREFECT_API_URL", None)
        results["prefect"] = _run_worker(PREFECT_PYTHON, "prefect", args, prefect_env)
    _print(results)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
