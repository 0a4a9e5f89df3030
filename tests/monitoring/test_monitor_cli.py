"""``shipyard monitor`` through the installed console script: once, as a service, its report, its errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.store import Stores
from shipyard.testing import free_port
from tests.monitoring.conftest import Hook, churn_traffic, train_churn, write_log

SCRIPT = shutil.which("shipyard", path=str(Path(sys.executable).parent)) or shutil.which("shipyard")
DRIFT = "churn-drift: psi(tenure) > 0.2"
# The command is the same on both engines (the engines are tested by the library tests): SQLite only, to stay fast.
pytestmark = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


def _shipyard(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None, "the shipyard console script is not installed"
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120
    )


@pytest.fixture
def served(settings: Settings, stores: Stores) -> None:
    """churn@champion with a training profile, and ten minutes ago an hour's worth of drifted, labelled traffic."""
    model, frame, _ = train_churn()
    with sy.start_run(experiment="churn"):
        mv = sy.log_model(model, "churn", input_example=frame.head(5), training_data=frame)
    sy.set_alias("churn", "champion", mv.version)
    traffic, labels = churn_traffic(1, 300, shift=12.0)
    outputs = np.asarray(sy.load_model("churn@champion").predict(traffic), dtype=np.float64)
    inputs = {c: traffic[c].to_numpy() for c in traffic.columns}
    _, ids = write_log(stores, model="churn", inputs=inputs, outputs=outputs, at=time.time() - 600)
    sy.log_labels(ids, labels, model="churn")


def test_monitor_once_reports_drift_performance_and_fires_the_webhook(served: None, hook: Hook, tmp_path: Path) -> None:
    done = _shipyard("monitor", "churn@champion", "--window", "1h", "--rule", DRIFT, "--webhook", hook.url)

    assert done.returncode == 0, done.stderr
    assert "300 predictions, 300 labelled; drifted: tenure" in done.stdout
    assert "firing: churn-drift" in done.stdout
    assert "alert churn-drift: firing (psi(tenure) = " in done.stdout
    assert [(p["alert"], p["state"]) for p in hook.received] == [("churn-drift", "firing")]

    again = _shipyard("monitor", "churn@champion", "--window", "1h", "--rule", DRIFT, "--webhook", hook.url, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["step"], report["rows"], report["alerts"]["churn-drift"]["state"]) == (1, 300, "firing")
    assert report["values"]["accuracy"] < 0.8
    assert report["transitions"] == []
    assert len(hook.received) == 1  # still firing: no second notification

    out = tmp_path / "report.html"
    written = _shipyard("monitor", "report", "churn@champion", str(out))
    assert written.returncode == 0, written.stderr
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert "churn@champion" in html
    assert "tenure" in html
    assert out.stat().st_size < 200_000  # summaries, not rows
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_empty_window_is_reported_and_exits_0(served: None) -> None:
    done = _shipyard("monitor", "churn@champion", "--window", "1m")
    assert done.returncode == 0, done.stderr
    assert "no predictions between" in done.stdout


BAD_INPUT = [
    (["churn@champion", "--rule", "psi(tenur) > 0.2"], "names feature 'tenur', which the model does not have"),
    (["churn@champion", "--window", "1x"], "window must be a positive duration such as '1h'"),
    (["churn@champion", "--rule", "psi plan > 1"], "does not read as"),
    (["churn@nope"], "has no alias 'nope'"),
    (["churn@champion", "--metrics-port", "9"], "--metrics-port and --max-runs go with --every"),
    (["report", "churn@champion", "x.html"], "has no stored monitoring report"),
]


def test_bad_input_is_one_line_and_exit_2(served: None) -> None:
    for args, message in BAD_INPUT:
        done = _shipyard("monitor", *args)
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert message in done.stderr, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_every_serves_gauges_and_stops_cleanly_on_sigterm(served: None) -> None:
    assert SCRIPT is not None
    port = free_port()
    args = [SCRIPT, "monitor", "churn@champion", "--every", "1s", "--metrics-port", str(port), "--rule", DRIFT]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    try:
        gauges = ""
        deadline = time.monotonic() + 60
        while "shipyard_monitor_drift_score{" not in gauges and time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    gauges = response.read().decode()
            except OSError:
                continue
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert 'shipyard_monitor_drift_score{feature="tenure",ref="churn@champion"}' in gauges
    assert 'shipyard_monitor_share_drifted{ref="churn@champion"}' in gauges
    assert 'shipyard_monitor_alert_firing{alert="churn-drift",ref="churn@champion"} 1.0' in gauges
    assert 'shipyard_monitor_performance{metric="accuracy",ref="churn@champion"}' in gauges
    assert "stopped after" in out


def test_every_stops_after_max_runs(served: None) -> None:
    done = _shipyard("monitor", "churn@champion", "--every", "1s", "--max-runs", "2", "--window", "1h")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("300 predictions") == 2
    assert "stopped after 2 windows" in done.stdout
