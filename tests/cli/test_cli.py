"""The ``shipyard`` command: tables on success, one line and exit status 2 on bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import shipyard as sy
from shipyard.config import Settings


def _shipyard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def two_runs(settings: Settings) -> list[str]:
    ids = []
    for name, auc in (("alpha", 0.7), ("beta", 0.9)):
        with sy.start_run(experiment="cli", name=name) as run:
            sy.log_params({"model": name})
            sy.log_metric("auc", auc)
        ids.append(run.id)
    return ids


def test_runs_list_filters_and_orders(two_runs: list[str]) -> None:
    result = _shipyard("runs", "list", "cli", "--filter", "metrics.auc > 0.8", "--order-by", "metrics.auc desc")
    assert result.returncode == 0, result.stderr
    assert "beta" in result.stdout
    assert "alpha" not in result.stdout
    assert "0.9" in result.stdout


def test_runs_show_and_delete_then_gc(two_runs: list[str]) -> None:
    shown = _shipyard("runs", "show", two_runs[0])
    assert shown.returncode == 0, shown.stderr
    assert "alpha" in shown.stdout
    assert "environment/requirements.txt" in shown.stdout
    assert _shipyard("runs", "delete", two_runs[0]).returncode == 0
    listed = _shipyard("runs", "list")
    assert "alpha" not in listed.stdout
    collected = _shipyard("gc")
    assert collected.returncode == 0, collected.stderr
    assert "runs=1" in collected.stdout
    assert sy.Client().find_run(two_runs[0]) is None
    assert sy.Client().get_run(two_runs[1]).metrics == {"auc": 0.9}


def test_experiments_list_and_db_upgrade(two_runs: list[str]) -> None:
    listed = _shipyard("experiments", "list")
    assert listed.returncode == 0, listed.stderr
    assert "cli" in listed.stdout
    assert re.search(r"│\s*cli\s*│\s*2\s*│", listed.stdout), listed.stdout  # two runs counted
    upgraded = _shipyard("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "up to date" in upgraded.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "nope"), "error: run 'nope' does not exist"),
        (("runs", "list", "missing-exp"), "error: experiment 'missing-exp' does not exist"),
        (("runs", "list", "--filter", "metrics.auc >"), "expected a number or a quoted string"),
        (("lineage", "ghost@champion"), "error: model 'ghost' does not exist"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(settings: Settings, args: tuple[str, ...], message: str) -> None:
    result = _shipyard(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
