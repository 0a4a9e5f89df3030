"""Serving benchmark: one model behind shipyard, ``mlflow models serve`` and BentoML, under the same load.

Run ``bash benchmarks/setup_serving_peers.sh`` once, then::

    .venv/bin/python benchmarks/serving.py [--duration 15] [--workers 1] [--json results.json]

The model is a scikit-learn HistGradientBoostingClassifier on 20 numeric features
(``f0``..``f19``). Every server runs in its own process with ``OMP_NUM_THREADS=1`` and
is driven by ``_loadgen.py`` (raw asyncio sockets, 32 keep-alive connections, one
single-row request in flight on each, bounded in time) on 127.0.0.1. Two ceilings
frame the figures: the model's (in-process ``predict`` calls/s and batched rows/s) and
the load generator's (the same load against a do-nothing ASGI app).
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
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-serving" / "bin" / "python"
PYTHON = sys.executable
COLUMNS = [f"f{i}" for i in range(20)]
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
SHIPYARD_LAUNCH = "import typer; from shipyard.cli.serve import serve; app = typer.Typer(); app.command()(serve); app()"
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
BENTO_SERVICE = """
import pickle
import bentoml
import pandas as pd

with open({path!r}, "rb") as handle:
    MODEL = pickle.load(handle)
COLUMNS = {columns!r}


@bentoml.service
class Classifier:
    @bentoml.api
    def predict(self, data: list[list[float]]) -> list[int]:
        return MODEL.predict(pd.DataFrame(data, columns=COLUMNS)).tolist()
"""


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
    """A server process: started, waited on until ``ready_url`` answers 200, stopped."""

    def __init__(self, name: str, command: list[str], ready_url: str, *, cwd: Path, env: dict[str, str]) -> None:
        self.name, self.ready_url = name, ready_url
        self.log = cwd / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)

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

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(url: str, body: dict[str, Any] | None, *, duration: float, concurrency: int) -> dict[str, float]:
    """Run the load generator against ``url`` in its own process."""
    command = [PYTHON, str(HERE / "_loadgen.py"), "--url", url, "--concurrency", str(concurrency)]
    command += ["--duration", str(duration), "--warmup", "2"]
    if body is not None:
        command += ["--body", json.dumps(body)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per server")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="shipyard worker processes (one per core here)")
    parser.add_argument("--only", nargs="*", default=None, help="subset: trivial shipyard mlflow bentoml")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    wanted = set(args.only or ["trivial", "shipyard", "mlflow", "bentoml"])
    model, frame = train()
    row = frame.head(1)
    expected = int(model.predict(row)[0])
    results: dict[str, Any] = {
        "machine": f"{platform.system()} {os.cpu_count()} cores, Python {platform.python_version()}"
    }
    results["model_ceiling"] = model_ceiling(model, frame)
    print(f"model ceiling (in-process, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}): {results['model_ceiling']}")
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    with (tmp / "model.pkl").open("wb") as handle:
        pickle.dump(model, handle)
    env = {**os.environ, **QUIET}
    servers: dict[str, tuple[list[str], str, str, dict[str, Any], Path]] = {}
    port = 18000
    values = [float(v) for v in row.iloc[0]]
    if "trivial" in wanted:
        (tmp / "trivial.py").write_text(TRIVIAL_APP)
        cmd = [PYTHON, "-m", "uvicorn", "trivial:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        cmd += ["--loop", "uvloop", "--http", "httptools"]
        servers["trivial"] = (cmd, f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/", {"x": 1}, tmp)
    if "shipyard" in wanted:
        port += 1
        store = tmp / "shipyard"
        store.mkdir()
        env_store = {
            "SHIPYARD_STORE": f"sqlite:///{store}/shipyard.db",
            "SHIPYARD_ARTIFACTS": f"file://{store}/artifacts",
        }
        subprocess.run(
            [
                PYTHON,
                "-c",
                "import pickle, sys, pandas as pd, shipyard.registry as reg;"
                f"m = pickle.load(open({str(tmp / 'model.pkl')!r}, 'rb'));"
                f"x = pd.DataFrame([{values!r}] * 5, columns={COLUMNS!r});"
                "v = reg.log_model(m, 'bench', input_example=x).version; reg.set_alias('bench', 'champion', v)",
            ],
            cwd=store,
            env={**env, **env_store},
            check=True,
            timeout=120,
        )
        cmd = [PYTHON, "-c", SHIPYARD_LAUNCH, "bench@champion", "--port", str(port), "--workers", str(args.workers)]
        cmd += ["--poll-interval", "5"]
        body = {"columns": COLUMNS, "data": [values]}
        servers["shipyard"] = (
            cmd,
            f"http://127.0.0.1:{port}/v2/health/ready",
            f"http://127.0.0.1:{port}/models/bench/predict",
            body,
            store,
        )
        env_shipyard = {**env, **env_store}
    peers_ok = PEERS_PYTHON.exists()
    if not peers_ok and wanted & {"mlflow", "bentoml"}:
        print(f"peers not installed ({PEERS_PYTHON} missing): run bash benchmarks/setup_serving_peers.sh")
    if "mlflow" in wanted and peers_ok:
        port += 1
        mlmodel = tmp / "mlflow-model"
        subprocess.run(
            [
                str(PEERS_PYTHON),
                "-c",
                "import pickle, mlflow.sklearn;"
                f"m = pickle.load(open({str(tmp / 'model.pkl')!r}, 'rb'));"
                f"mlflow.sklearn.save_model(m, {str(mlmodel)!r}, skops_trusted_types={TRUSTED!r})",
            ],
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
        )
        mlflow = PEERS_PYTHON.parent / "mlflow"
        cmd = [
            str(mlflow),
            "models",
            "serve",
            "-m",
            str(mlmodel),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "--env-manager",
            "local",
        ]
        servers["mlflow"] = (
            cmd,
            f"http://127.0.0.1:{port}/ping",
            f"http://127.0.0.1:{port}/invocations",
            {"dataframe_split": {"columns": COLUMNS, "data": [values]}},
            tmp,
        )
    if "bentoml" in wanted and peers_ok:
        port += 1
        bento_dir = tmp / "bento"
        bento_dir.mkdir()
        (bento_dir / "service.py").write_text(BENTO_SERVICE.format(path=str(tmp / "model.pkl"), columns=COLUMNS))
        cmd = [
            str(PEERS_PYTHON.parent / "bentoml"),
            "serve",
            "service:Classifier",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ]
        servers["bentoml"] = (
            cmd,
            f"http://127.0.0.1:{port}/readyz",
            f"http://127.0.0.1:{port}/predict",
            {"data": [values]},
            bento_dir,
        )
    figures: dict[str, dict[str, float]] = {}
    for name, (cmd, ready, url, body, cwd) in servers.items():
        server_env = env_shipyard if name == "shipyard" else env
        if name in {"mlflow", "bentoml"}:  # `mlflow models serve` execs `uvicorn` found on PATH
            server_env = {**env, "PATH": f"{PEERS_PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"}
        server = Server(name, cmd, ready, cwd=cwd, env=server_env)
        try:
            server.wait()
            check = httpx.post(url, json=body, timeout=30) if name != "trivial" else None
            if check is not None:
                assert check.status_code == 200, f"{name}: {check.status_code} {check.text}"
                assert str(expected) in check.text, f"{name} answered {check.text}, expected {expected}"
            print(f"{name}: ready, loading for {args.duration:.0f}s ...", flush=True)
            figures[name] = load(
                url, body if name != "trivial" else {"x": 1}, duration=args.duration, concurrency=args.concurrency
            )
            print(f"  {figures[name]}", flush=True)
        except Exception as exc:
            print(f"{name}: FAILED: {exc}")
            figures[name] = {"error": str(exc)[:2000]}  # type: ignore[dict-item]
        finally:
            server.stop()
    results["servers"] = figures
    report(results, args)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table and the ratios."""
    figures = results["servers"]
    ok = {k: v for k, v in figures.items() if "rps" in v}
    print()
    print(f"single-row requests, {args.concurrency} concurrent keep-alive clients, {args.duration:.0f}s each, loopback")
    print(f"{'server':<10} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for name, f in ok.items():
        print(f"{name:<10} {f['rps']:>9.1f} {f['p50_ms']:>9.2f} {f['p99_ms']:>9.2f} {f['errors']:>7.0f}")
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
    print(
        f"shipyard vs one-row predict in-process: {ship['rps'] / ceiling['one_row_calls_per_s']:.1f}x "
        "(dynamic batching)"
    )


if __name__ == "__main__":
    main()
