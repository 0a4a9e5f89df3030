"""shipyard flows against Prefect 3: per-task overhead and time to the first task.

Two workloads of trivial tasks (each returns its input), in one command:

* fan-out: one flow maps a task over 1,000 integers and gathers the results;
* chain: one flow runs 200 tasks in sequence, each taking the previous one's result.

Each tool runs in its own fresh process with a fresh store, from its own virtualenv
(Prefect's is built by ``benchmarks/setup_prefect.sh``): shipyard on an SQLite file, embedded;
Prefect against a ``prefect server start`` on loopback with a fresh ``PREFECT_HOME`` (its
SQLite database), the mode its documentation recommends beyond quick experiments: its
ephemeral in-process server answered 503 ("database is locked") under this load and
stalled calls for up to a minute, so figures taken that way measured its retries.

* server start: ``prefect server start`` until ``/api/health`` answers (shipyard has none);
* time to first task: from calling the first flow to the first task starting, in a fresh
  process whose store is empty (shipyard: it includes creating the store);
* per-task overhead: wall time of a whole flow run divided by its number of tasks, median
  of ``--repeat`` warm runs (the task bodies are trivial, so this is all overhead);
* recorded: every flow run timed is read back from the tool's store (shipyard's store,
  Prefect's API) and must hold one completed task run per task, or nothing is printed.
  shipyard's runs are read at once after they return; Prefect records task runs after
  the flow returns (events its server ingests), so each Prefect call starts once the previous
  run is fully recorded, outside the clock (left to pile up, that backlog stalled the next call
  for up to a minute), and the longest such wait is printed as its own line.

The whole comparison runs ``--rounds`` times (3 by default), each time with fresh processes
and stores, and the table shows the median of the rounds. Any failed call fails the round:
figures from a run where either side failed are never printed.

Usage::

    bash benchmarks/setup_prefect.sh          # once
    .venv/bin/python benchmarks/flows.py      # both tools, three rounds, then the medians
    .venv/bin/python benchmarks/flows.py --skip-prefect --fanout 200 --rounds 1

Only the standard library is imported at the top: the same file is the Prefect worker,
run by Prefect's virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFECT_BIN = HERE / ".venv-prefect" / "bin"
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

    def call(which: Any, n: int) -> Any:
        record = which.run(n=n)
        if record.state != "succeeded":
            raise RuntimeError(f"shipyard flow run {record.id} ended {record.state}: {record.error}")
        return record

    called = time.time()
    first = call(fan, fanout)
    first_task = STARTS[0] - called
    warm_first_task = _first_task_again(lambda: call(line, 1))
    fan_times, fan_runs = _timed(lambda: call(fan, fanout), repeat)
    line_times, line_runs = _timed(lambda: call(line, chain), repeat)
    flows = resolve_stores().flows

    def completed(runs: list[Any]) -> list[int]:
        return [sum(t.state == "succeeded" for t in flows.get_flow_run(r.id).tasks) for r in runs]

    recorded = {"fanout": completed([first, *fan_runs]), "chain": completed(line_runs)}
    return _report("shipyard", shipyard.__version__, first_task, warm_first_task, fan_times, line_times, recorded)


# prefect -------------------------------------------------------------------------------
def prefect_worker(fanout: int, chain: int, repeat: int) -> dict[str, Any]:
    """Measure Prefect 3 in this process, against the server at ``PREFECT_API_URL``."""
    import prefect
    from prefect import flow, task

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
        value = 0
        for _ in range(n):
            value = noop(value)  # Prefect 3 runs a directly called task at once: its fastest chain
        return value

    previous: list[tuple[Any, int]] = []
    lags: list[float] = []

    def settle() -> None:
        # Prefect records task runs after the flow returns (events its server ingests); left
        # to run, that backlog stalled the next call for up to a minute. Each timed call starts
        # once the previous run is fully recorded, outside the clock: Prefect's best case.
        if previous:
            start = time.perf_counter()
            _prefect_completed([previous[-1][0]], previous[-1][1])
            lags.append(time.perf_counter() - start)

    def call(which: Any, n: int) -> Any:
        state = which(n=n, return_state=True)
        if not state.is_completed():
            raise RuntimeError(f"prefect flow run {state.state_details.flow_run_id} ended {state.type}: {state}")
        previous.append((state.state_details.flow_run_id, n))
        return state.state_details.flow_run_id

    called = time.time()
    first = call(fan, fanout)
    first_task = STARTS[0] - called
    warm_first_task = _first_task_again(lambda: call(line, 1), settle)
    fan_times, fan_runs = _timed(lambda: call(fan, fanout), repeat, settle)
    line_times, line_runs = _timed(lambda: call(line, chain), repeat, settle)
    recorded = {
        "fanout": _prefect_completed([first, *fan_runs], fanout),
        "chain": _prefect_completed(line_runs, chain),
    }
    result = _report("prefect", prefect.__version__, first_task, warm_first_task, fan_times, line_times, recorded)
    result["record_lag_s"] = lags
    return result


def _prefect_completed(flow_run_ids: list[Any], expected: int, wait: float = 120.0) -> list[int]:
    """Completed task runs Prefect's API holds for each flow run, waited for up to ``wait`` s
    (task runs reach the server through its event pipeline, after the flow returns).
    """
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async def count(flow_run_id: Any) -> int:
        async with get_client() as client:
            done, offset = 0, 0
            flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            while True:  # the API pages by 200
                page = await client.read_task_runs(
                    flow_run_filter=flow_run, sort=TaskRunSort.ID_DESC, limit=200, offset=offset
                )
                offset += len(page)
                done += sum(1 for t in page if t.state is not None and t.state.is_completed())
                if len(page) < 200:
                    return done

    deadline = time.monotonic() + wait
    while True:
        counts = [asyncio.run(count(i)) for i in flow_run_ids]
        if all(c == expected for c in counts) or time.monotonic() > deadline:
            return counts
        time.sleep(1)


@contextlib.contextmanager
def prefect_server(env: dict[str, str], timeout: float = 180.0) -> Iterator[tuple[dict[str, str], float]]:
    """``prefect server start`` on a free loopback port with a fresh home; yields the client
    environment and the seconds until ``/api/health`` answered. Stopped on exit.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tempfile.mkdtemp(prefix="prefect-bench-")
    server_env = {**env, "PREFECT_HOME": home}
    log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed in the finally below
    command = [str(PREFECT_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
               "--no-ui", "--analytics-off"]  # fmt: skip
    started = time.monotonic()
    server = subprocess.Popen(command, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        while True:
            if server.poll() is not None or time.monotonic() - started > timeout:
                tail = (Path(home) / "server.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"prefect server did not become healthy in {timeout:g} s:\n{tail}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.2)
        yield {**server_env, "PREFECT_API_URL": url}, time.monotonic() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# shared --------------------------------------------------------------------------------
def _first_task_again(call: Callable[[], Any], settle: Callable[[], None] = lambda: None) -> float:
    """Seconds from a call to its first task starting, in a process and store already warm."""
    settle()
    STARTS.clear()
    called = time.time()
    call()
    return STARTS[0] - called


def _timed(
    call: Callable[[], Any], repeat: int, settle: Callable[[], None] = lambda: None
) -> tuple[list[float], list[Any]]:
    """Wall times and results of ``repeat`` calls (``settle`` runs before each, untimed);
    any failure fails the benchmark.
    """
    times, results = [], []
    for _ in range(repeat):
        settle()
        start = time.perf_counter()
        results.append(call())
        times.append(time.perf_counter() - start)
    return times, results


def _report(
    tool: str,
    version: str,
    first_task: float,
    warm_first_task: float,
    fan_times: list[float],
    line_times: list[float],
    recorded: dict[str, list[int]],
) -> dict[str, Any]:
    return {
        "tool": tool,
        "version": version,
        "first_task_s": first_task,
        "warm_first_task_s": warm_first_task,
        "fanout_wall_s": fan_times,
        "chain_wall_s": line_times,
        "recorded": recorded,
    }


def _run_worker(python: Path | str, tool: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    command = [str(python), str(Path(__file__).resolve()), "--worker", tool,
               "--fanout", str(args.fanout), "--chain", str(args.chain), "--repeat", str(args.repeat)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{tool} worker failed (exit {done.returncode}); no figures published:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    _verify(result, args)
    return result


def _verify(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Every timed flow run must be in the tool's store with one completed task run per task."""
    expected = {"fanout": (args.fanout, args.repeat + 1), "chain": (args.chain, args.repeat)}
    for workload, (tasks, runs) in expected.items():
        counts = result["recorded"][workload]
        if counts != [tasks] * runs:
            raise SystemExit(
                f"{result['tool']}: the store holds {counts} completed task runs for the {workload} flow runs, "
                f"expected {[tasks] * runs}; no figures published"
            )


def _figures(result: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    """One round's figures for one tool."""
    figures = {
        "first_task_s": result["first_task_s"],
        "warm_first_task_s": result["warm_first_task_s"],
        "fanout_ms": statistics.median(result["fanout_wall_s"]) / args.fanout * 1e3,
        "chain_ms": statistics.median(result["chain_wall_s"]) / args.chain * 1e3,
    }
    for key in ("server_start_s", "record_lag_s"):  # Prefect's only: shipyard has no server, no lag
        if key in result:
            figures[key] = result[key] if key == "server_start_s" else max(result[key])
    return figures


def _round(args: argparse.Namespace, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    results = {"shipyard": _run_worker(sys.executable, "shipyard", args, env)}
    if not args.skip_prefect:
        prefect_env = {**env, "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        prefect_env.pop("PREFECT_API_URL", None)
        with prefect_server(prefect_env) as (client_env, server_start):
            results["prefect"] = _run_worker(PREFECT_BIN / "python", "prefect", args, client_env)
        results["prefect"]["server_start_s"] = server_start
    return results


def _print(rounds: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    tools = list(rounds[0])
    per_round = {tool: [_figures(r[tool], args) for r in rounds] for tool in tools}
    medians = {tool: {k: statistics.median(f[k] for f in figs) for k in figs[0]} for tool, figs in per_round.items()}
    rows = [
        ("server start (until /api/health)", "server_start_s", "s"),
        ("time to first task (fresh store)", "first_task_s", "s"),
        ("time to first task (warm process)", "warm_first_task_s", "s"),
        (f"fan-out of {args.fanout}: overhead per task", "fanout_ms", "ms"),
        (f"chain of {args.chain}: overhead per task", "chain_ms", "ms"),
        ("task runs in the store after return (max)", "record_lag_s", "s"),
    ]
    header = f"{'median of ' + str(len(rounds)) + ' verified rounds':38}"
    header += "".join(f" {tool + ' ' + rounds[0][tool]['version']:>18}" for tool in tools)
    print(header + (f" {'ratio':>8}" if len(tools) == 2 else ""))
    for label, key, unit in rows:
        values = [medians[tool].get(key) for tool in tools]
        if all(v is None for v in values):
            continue
        line = f"{label:38}" + "".join(f" {'—':>18}" if v is None else f" {v:>15.3f} {unit:2}" for v in values)
        if len(tools) == 2 and None not in values:
            line += f" {values[1] / values[0]:>7.1f}x"
        print(line)
    checked = {tool: sum(len(c) for c in rounds[0][tool]["recorded"].values()) * len(rounds) for tool in tools}
    print(f"{'flow runs read back, all task runs in':38}" + "".join(f" {checked[t]:>15} ok" for t in tools))
    for tool in tools:
        for key in ("first_task_s", "fanout_ms", "chain_ms"):
            print(f"  {tool} {key} per round: {[round(f[key], 3) for f in per_round[tool]]}")


def main() -> None:
    """Run both workers ``--rounds`` times, verify every run, and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs of each workload per round")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes and stores; the table shows medians")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--worker", choices=["shipyard", "prefect"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measure = shipyard_worker if args.worker == "shipyard" else prefect_worker
        print(json.dumps(measure(args.fanout, args.chain, args.repeat)))
        return
    if not args.skip_prefect and not (PREFECT_BIN / "python").exists():
        raise SystemExit(f"{PREFECT_BIN / 'python'} is missing: run `bash benchmarks/setup_prefect.sh` first")
    env = {**os.environ, "DO_NOT_TRACK": "true"}
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        rounds.append(_round(args, env))
    _print(rounds, args)
    if args.json:
        print(json.dumps(rounds))


if __name__ == "__main__":
    main()
