"""``shipyard serve`` in a subprocess: several workers forked after one load, metrics summed over them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.store import open_stores
from shipyard.testing import free_port, port_open
from tests.serving.conftest import log_constant_model, metric_samples

# The lead registers serve in shipyard.cli.main; until then the test mounts the command itself.
LAUNCH = "import typer; from shipyard.cli.serve import serve; app = typer.Typer(); app.command()(serve); app()"
ROW = {"tenure": 3, "charges": 70.5, "age": 40}


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args], stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
        )


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{log.read_text()}")
        time.sleep(0.1)


def test_serve_with_two_workers(store: Settings, tmp_path: Path) -> None:
    log_constant_model(1.0, alias="champion")
    log_constant_model(2.0, alias="challenger")
    port = free_port()
    log = tmp_path / "server.log"
    args = ["toy@champion", "--port", str(port), "--workers", "2", "--shadow", "toy@challenger", "--poll-interval", "0"]
    proc = _start(args, log)
    try:
        _wait_listening(proc, port, log)
        n = 30
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(n):
                # a new connection each time, so the kernel spreads them over both workers
                answer = httpx.post(f"http://127.0.0.1:{port}/models/toy/predict", json={"records": [ROW]})
                assert answer.json() == {"model": "toy", "version": 1, "predictions": [1.0]}
            text = http.get("/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    output = log.read_text()
    assert code == 0, output
    counted = [v for labels, v in metric_samples(text, "shipyard_requests_total") if labels["arm"] == "primary"]
    assert sum(counted) == n  # whichever worker answered the scrape, it reports both workers' requests
    assert "with 2 worker(s)" in output
    access = [line for line in output.splitlines() if '"path":"/models/toy/predict"' in line]
    assert len(access) == n
    # the models were loaded once, before the fork: one prediction-log run per arm, not one per worker
    stores = open_stores(store)
    experiment = stores.runs.get_experiment("serving")
    runs = stores.runs.search_runs([experiment.id], filter=None, order_by=[], max_results=10, page_token=None).items
    assert sorted(r.name for r in runs) == ["toy@challenger", "toy@champion"]
    assert {r.status for r in runs} == {"finished"}


def test_sigterm_ends_one_worker_serving_runs_finished(settings: Settings, tmp_path: Path) -> None:
    # `settings`: SQLite and PostgreSQL (tests/conftest.py), exported to the server's environment
    log_constant_model(1.0, alias="champion")
    port = free_port()
    log = tmp_path / "server.log"
    script = Path(sys.executable).parent / "shipyard"  # the installed console script, as a user runs it
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(script), "serve", "toy@champion", "--port", str(port), "--poll-interval", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        _wait_listening(proc, port, log)
        # one keep-alive connection through the server's own HTTP protocol (header block and body in one
        # write): answers with and without a body must stay framed right, one after the other
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(3):
                assert http.post("/models/toy/predict", json={"records": [ROW]}).json()["predictions"] == [1.0]
                assert http.head("/v2/health/live").status_code in {200, 405}
                assert http.get("/nowhere").status_code == 404
                assert "shipyard_requests_total" in http.get("/metrics").text
                assert http.get("/docs/assets/swagger-ui.css").text.startswith(".swagger-ui")  # a file, streamed
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    stores = open_stores(settings)
    experiment = stores.runs.get_experiment("serving")
    runs = stores.runs.search_runs([experiment.id], filter=None, order_by=[], max_results=10, page_token=None).items
    assert [(r.name, r.status) for r in runs] == [("toy@champion", "finished")]
    # the prediction made before the signal was written to the run's log on the way out
    artifacts = stores.runs.list_artifacts(runs[0].id)
    assert any(a.path.startswith("predictions/") for a in artifacts)


def test_serve_refuses_bad_arguments(store: Settings) -> None:
    from shipyard.cli.serve import serve
    from shipyard.errors import InvalidInputError, NotFoundError

    log_constant_model(1.0, alias="champion")
    with pytest.raises(InvalidInputError, match="NAME@ALIAS=PERCENT"):
        serve(["toy@champion"], canary=["toy@challenger"], access_log=False)
    with pytest.raises(InvalidInputError, match="not served: other"):
        serve(["toy@champion"], canary=["other@x=10"], access_log=False)
    with pytest.raises(NotFoundError, match="no alias 'nothing'"):
        serve(["toy@nothing"], access_log=False)
