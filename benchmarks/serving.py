"""Serving benchmark: one model behind shipyard, ``mlflow models serve`` and BentoML, every answer checked.

Run ``bash benchmarks/setup_serving_peers.sh`` once, then::

    .venv/bin/python benchmarks/serving.py [--duration 15] [--workers 2] [--json results.json]

The model is a scikit-learn HistGradientBoostingClassifier on 20 numeric features
(``f0``..``f19``). Every server runs in its own process with ``OMP_NUM_THREADS=1`` and
is driven by ``_loadgen.py`` (raw asyncio sockets, 32 keep-alive connections, one
single-row request in flight on each, bounded in time) on 127.0.0.1 with 256 different
rows; every answer is parsed and compared with the in-process ``predict`` of its row.
Each peer runs in its best documented mode: BentoML with adaptive batching
(``batchable=True``, the same max batch size as shipyard) and as many workers, ``mlflow
models serve`` with as many workers. A server that fails, errs or answers one request
wrongly prints no figure, and no ratio is printed against it. Besides req/s and latency
percentiles, the server's CPU time per answered request (psutil, over its process tree)
is reported: it is what other load on a shared machine disturbs least. Two ceilings frame
the figures: the model's (in-process ``predict``) and the load generator's (the same load
against a do-nothing ASGI app).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/sklearn load: the model gets one thread everywhere

import argparse
import json
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-serving" / "bin" / "python"
PYTHON = sys.executable
COLUMNS = [f"f{i}" for i in range(20)]
ROWS = 256  # distinct single-row requests, cycled through by every client
MAX_BATCH = 64  # shipyard's default --max-batch-size, given to BentoML's batching too
QUIET = {
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
    "PYTHONWARNINGS": "ignore",
}
# MLflow 3.17 saves scikit-learn models with skops, which asks for HistGradientBoosting's tree type to be trusted.
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
TRIVIAL_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})
"""
# BentoML's documented mode for a model that takes batches: adaptive batching, rows concatenated on axis 0.
BENTO_SERVICE = """
import pickle
import bentoml
import numpy as np
import pandas as pd

with open({path!r}, "rb") as handle:
    MODEL = pickle.load(handle)
COLUMNS = {columns!r}


@bentoml.service(workers={workers})
class Classifier:
    @bentoml.api(batchable=True, max_batch_size={max_batch})
    def predict(self, data: np.ndarray) -> np.ndarray:
        return MODEL.predict(pd.DataFrame(data, columns=COLUMNS))
"""


@dataclass
class Target:
    """A server to measure: how to start it, where to send what, where its answer is."""

    name: str
    command: list[str]
    ready_url: str
    url: str
    bodies: list[Any]
    answer_key: str
    cwd: Path
    env: dict[str, str]


def train() -> tuple[Any, pd.DataFrame]:
    """The model and its data: 5,000 rows, 20 numeric features."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(x, columns=COLUMNS)
    return HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, y), frame


def model_ceiling(model: Any, frame: pd.DataFrame, seconds: float = 3.0) -> dict[str, float]:
    """In-process predict: one-row calls/s and 32-row batch rows/s (the model's own limit)."""
    one, batch = frame.head(1), frame.head(32)
    result = {}
    for label, data in (("one_row_calls_per_s", one), ("batch32_rows_per_s", batch)):
        for _ in range(20):
            model.predict(data)
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            model.predict(data)
            calls += 1
        rate = calls / (time.perf_counter() - started)
        result[label] = round(rate * (len(data) if label.startswith("batch") else 1), 1)
    return result


class Server:
    """A server process: started, waited on until ``ready_url`` answers 200, stopped; its CPU time."""

    def __init__(self, target: Target) -> None:
        self.name, self.ready_url = target.name, target.ready_url
        self.log = target.cwd / f"{target.name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                target.command, cwd=target.cwd, env=target.env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and every process under it, so far."""
        root = psutil.Process(self.proc.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check(target: Target, expected: list[int], count: int = 8) -> None:
    """A few requests one by one, each answer compared with the in-process prediction of its row."""
    for body, want in list(zip(target.bodies, expected, strict=True))[:count]:
        answer = httpx.post(target.url, json=body, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"{target.name}: {answer.status_code} {answer.text[:500]}")
        value = answer.json()
        for part in filter(None, target.answer_key.split(".")):
            value = value[part]
        if value != [want]:
            raise RuntimeError(f"{target.name} answered {answer.text[:300]}, expected [{want}]")


def load(server: Server, target: Target, expected: list[Any], *, duration: float, concurrency: int) -> dict[str, Any]:
    """Run the load generator against ``target`` in its own process; add the server's CPU time per answer."""
    requests = target.cwd / f"{target.name}-requests.jsonl"
    with requests.open("w", encoding="utf-8") as handle:
        for body, want in zip(target.bodies, expected, strict=True):
            handle.write(json.dumps({"body": body, "expected": want}) + "\n")
    command = [PYTHON, str(HERE / "_loadgen.py"), "--url", target.url, "--requests", str(requests)]
    command += ["--answer-key", target.answer_key, "--concurrency", str(concurrency)]
    command += ["--duration", str(duration), "--warmup", "2"]
    cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=True)
    cpu = server.cpu_seconds() - cpu_before
    wall = time.perf_counter() - wall_before
    figures = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    figures["cpu_us_per_request"] = round(cpu / max(1, figures["answered"]) * 1e6, 1)
    figures["cores"] = round(cpu / wall, 2)
    return figures


def verified(figures: dict[str, Any]) -> bool:
    """Whether every answer of the run was right: no error, no wrong answer, some answers."""
    if "error" in figures:
        return False
    return figures["errors"] == 0 and figures["wrong"] == 0 and figures["requests"] > 0


def targets(args: argparse.Namespace, tmp: Path, rows: list[list[float]], env: dict[str, str]) -> list[Target]:
    """What to start for each server wanted (peers only when their venv exists)."""
    wanted = set(args.only or ["trivial", "shipyard", "mlflow", "bentoml"])
    found: list[Target] = []
    port = 18000
    if "trivial" in wanted:
        (tmp / "trivial.py").write_text(TRIVIAL_APP)
        cmd = [PYTHON, "-m", "uvicorn", "trivial:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        cmd += ["--loop", "uvloop", "--http", "httptools"]
        url = f"http://127.0.0.1:{port}/"
        found.append(Target("trivial", cmd, url, url, [{"x": 1}] * len(rows), "ok", tmp, env))
    if "shipyard" in wanted:
        found.append(shipyard_target(args, tmp, rows, env, port + 1))
    if not PEERS_PYTHON.exists() and wanted & {"mlflow", "bentoml"}:
        print(f"peers not installed ({PEERS_PYTHON} missing): run bash benchmarks/setup_serving_peers.sh")
        return found
    peer_env = {**env, "PATH": f"{PEERS_PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"}  # mlflow execs `uvicorn`
    if "mlflow" in wanted:
        mlmodel = tmp / "mlflow-model"
        save = (
            f"import pickle, mlflow.sklearn; m = pickle.load(open({str(tmp / 'model.pkl')!r}, 'rb'));"
            f"mlflow.sklearn.save_model(m, {str(mlmodel)!r}, skops_trusted_types={TRUSTED!r})"
        )
        subprocess.run([str(PEERS_PYTHON), "-c", save], env=env, check=True, timeout=300, capture_output=True)
        cmd = [str(PEERS_PYTHON.parent / "mlflow"), "models", "serve", "-m", str(mlmodel), "-p", str(port + 2)]
        cmd += ["-h", "127.0.0.1", "--env-manager", "local", "--workers", str(args.workers)]
        bodies = [{"dataframe_split": {"columns": COLUMNS, "data": [row]}} for row in rows]
        base = f"http://127.0.0.1:{port + 2}"
        found.append(Target("mlflow", cmd, f"{base}/ping", f"{base}/invocations", bodies, "predictions", tmp, peer_env))
    if "bentoml" in wanted:
        bento_dir = tmp / "bento"
        bento_dir.mkdir()
        service = BENTO_SERVICE.format(
            path=str(tmp / "model.pkl"), columns=COLUMNS, workers=args.workers, max_batch=MAX_BATCH
        )
        (bento_dir / "service.py").write_text(service)
        cmd = [str(PEERS_PYTHON.parent / "bentoml"), "serve", "service:Classifier", "--port", str(port + 3)]
        cmd += ["--host", "127.0.0.1"]
        base = f"http://127.0.0.1:{port + 3}"
        bodies = [{"data": [row]} for row in rows]
        found.append(Target("bentoml", cmd, f"{base}/readyz", f"{base}/predict", bodies, "", bento_dir, peer_env))
    return found


def shipyard_target(
    args: argparse.Namespace, tmp: Path, rows: list[list[float]], env: dict[str, str], port: int
) -> Target:
    """Register the model in a fresh store and serve it with `shipyard serve` (default settings but workers)."""
    store = tmp / "shipyard"
    store.mkdir()
    env = {**env, "SHIPYARD_STORE": f"sqlite:///{store}/shipyard.db", "SHIPYARD_ARTIFACTS": f"file://{store}/artifacts"}
    register = (
        "import pickle, pandas as pd, shipyard.registry as reg;"
        f"m = pickle.load(open({str(tmp / 'model.pkl')!r}, 'rb'));"
        f"x = pd.DataFrame({rows[:5]!r}, columns={COLUMNS!r});"
        "v = reg.log_model(m, 'bench', input_example=x).version; reg.set_alias('bench', 'champion', v)"
    )
    subprocess.run([PYTHON, "-c", register], cwd=store, env=env, check=True, timeout=120)
    cmd = [str(Path(PYTHON).parent / "shipyard"), "serve", "bench@champion", "--port", str(port)]
    cmd += ["--workers", str(args.workers), "--max-batch-size", str(MAX_BATCH)]
    base = f"http://127.0.0.1:{port}"
    bodies = [{"columns": COLUMNS, "data": [row]} for row in rows]
    return Target(
        "shipyard", cmd, f"{base}/v2/health/ready", f"{base}/models/bench/predict", bodies, "predictions", store, env
    )


def measure(target: Target, expected: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Start one server, check it, load it, stop it; the figures, or the error."""
    server = Server(target)
    try:
        server.wait()
        answers: list[Any] = [True] * len(expected) if target.name == "trivial" else [[e] for e in expected]
        if target.name != "trivial":
            check(target, expected)
        print(f"{target.name}: ready, loading for {args.duration:.0f}s ...", flush=True)
        figures = load(server, target, answers, duration=args.duration, concurrency=args.concurrency)
    except Exception as exc:
        return {"error": str(exc)[:2000]}
    finally:
        server.stop()
    if not verified(figures):
        print(
            f"  {target.name} FAILED verification: {figures['errors']} errors, {figures['wrong']} wrong answers "
            f"out of {figures['answered']}; e.g. {figures['samples'][:2]}"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per server")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server (one per core here)")
    parser.add_argument("--only", nargs="*", default=None, help="subset: trivial shipyard mlflow bentoml")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model, frame = train()
    sample = frame.sample(ROWS, random_state=1)
    rows = [[float(v) for v in row] for row in sample.itertuples(index=False)]
    expected = [int(v) for v in model.predict(pd.DataFrame(rows, columns=COLUMNS))]
    results: dict[str, Any] = {
        "machine": f"{platform.system()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "model_ceiling": model_ceiling(model, frame),
    }
    print(f"model ceiling (in-process, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}): {results['model_ceiling']}")
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    with (tmp / "model.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    env = {**os.environ, **QUIET}
    figures = {}
    for target in targets(args, tmp, rows, env):
        figures[target.name] = measure(target, expected, args)
        if "error" in figures[target.name]:
            print(f"{target.name}: FAILED: {figures[target.name]['error']}")
    for found in figures.values():
        found["verified"] = verified(found)
    results["servers"] = figures
    report(results, args)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table, the ratios and the targets, from verified runs only."""
    ok = {k: v for k, v in results["servers"].items() if verified(v)}
    failed = sorted(set(results["servers"]) - set(ok))
    print()
    print(
        f"single-row requests ({ROWS} rows, every answer checked), {args.concurrency} concurrent keep-alive clients, "
        f"{args.duration:.0f}s each, {args.workers} worker(s) per server, loopback"
    )
    print(f"{'server':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'cores':>6} {'CPU us/req':>11}")
    for name, f in ok.items():
        print(
            f"{name:<10} {f['rps']:>9.1f} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} {f['max_ms']:>8.2f} "
            f"{f['cores']:>6.2f} {f['cpu_us_per_request']:>11.1f}"
        )
    if failed:
        print(f"no figures for {', '.join(failed)}: failed or answered wrongly (see above)")
    ceiling = results["model_ceiling"]
    print(
        f"model ceiling: {ceiling['one_row_calls_per_s']:.0f} one-row predict calls/s, "
        f"{ceiling['batch32_rows_per_s']:.0f} rows/s in 32-row batches (in-process, one thread)"
    )
    ship = ok.get("shipyard")
    if ship is None:
        return
    for peer in ("mlflow", "bentoml"):
        if peer in ok:
            p = ok[peer]
            print(
                f"shipyard vs {peer}: {ship['rps'] / p['rps']:.1f}x throughput, "
                f"p99 {ship['p99_ms']:.1f} ms vs {p['p99_ms']:.1f} ms ({p['p99_ms'] / ship['p99_ms']:.1f}x lower)"
            )
    if "trivial" in ok:
        print(
            f"shipyard reaches {ship['rps'] / ok['trivial']['rps']:.0%} of the load generator's ceiling "
            f"({ok['trivial']['rps']:.0f} req/s against a do-nothing app)"
        )
    targets_met = [
        ("p99 <= 3x p50", ship["p99_ms"] <= 3 * ship["p50_ms"]),
        (">= 4,000 req/s", ship["rps"] >= 4000),
    ]
    if "bentoml" in ok:
        targets_met.append(("p99 <= 1/5 of BentoML's (batching)", ship["p99_ms"] * 5 <= ok["bentoml"]["p99_ms"]))
    print("targets: " + ", ".join(f"{label}: {'met' if met else 'MISSED'}" for label, met in targets_met))


if __name__ == "__main__":
    main()
