"""The ``shipyard`` command, driven through the installed console script: tables on success,
one line and exit status 2 on bad input, never a traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings

# The console script pip installed next to this interpreter (what users type), not `python -m`.
SCRIPT = shutil.which("shipyard", path=str(Path(sys.executable).parent)) or shutil.which("shipyard")


def _shipyard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None, "the shipyard console script is not installed"
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


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


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_runs_list_prints_runs_in_the_order_asked(settings: Settings, direction: str) -> None:
    # Logged in an order that is neither ascending nor descending, so only a real sort passes.
    aucs = {"r3": 0.83, "r1": 0.61, "r4": 0.94, "r2": 0.72, "r0": 0.55}
    for name, auc in aucs.items():
        with sy.start_run(experiment="order", name=name):
            sy.log_metric("auc", auc)

    result = _shipyard("runs", "list", "order", "-f", "metrics.auc > 0.6", "-o", f"metrics.auc {direction}")

    assert result.returncode == 0, result.stderr
    printed = re.findall(r"\b(r[0-4])\b", result.stdout)
    expected = sorted((n for n, a in aucs.items() if a > 0.6), key=aucs.__getitem__, reverse=direction == "desc")
    assert printed == expected


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
        (("lineage", "ghost@champion"), "error: no model, dataset or run is named 'ghost'"),
        (("runs", "show", "abcde"), "an id prefix needs at least 6 hex characters"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(settings: Settings, args: tuple[str, ...], message: str) -> None:
    result = _shipyard(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# usage errors: one line, the usage, exit 2 ---------------------------------------------------
@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (("runs", "list", "--limt", "3"), "error: No such option: --limt"),
        (("bogus",), "error: No such command 'bogus'"),
        (("runs", "show"), "error: Missing argument"),
        (("runs", "list", "--limit", "abc"), "error: Invalid value for '--limit'"),
        (("scheduler",), "error: Missing argument 'files'"),
        (("flows", "runs", "--json", "extra", "more"), "error: Got unexpected extra argument"),
    ],
)
def test_usage_errors_print_one_line_and_the_usage(tmp_path: Path, args: tuple[str, ...], first_line: str) -> None:
    result = _shipyard(*args, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith(first_line), result.stderr
    assert lines[1].startswith("Usage: shipyard")
    assert lines[2].startswith("Try 'shipyard")
    assert "--help" in lines[2]
    assert len(lines) == 3


def test_bare_shipyard_prints_help_and_version_prints_the_version(tmp_path: Path) -> None:
    bare = _shipyard(cwd=tmp_path)
    version = _shipyard("--version", cwd=tmp_path)
    group = _shipyard("flows", cwd=tmp_path)

    assert bare.returncode == 0, bare.stderr
    assert "Usage: shipyard" in bare.stdout
    assert "experiments" in bare.stdout
    assert "scheduler" in bare.stdout
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"shipyard {sy.__version__}"
    assert group.returncode == 0
    assert "backfill" in group.stdout
    assert "Traceback" not in bare.stderr + version.stderr + group.stderr


def _command_paths() -> list[tuple[str, ...]]:
    import typer.main

    from shipyard.cli.main import app

    def walk(command: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found += walk(sub, (*path, name))
        return found

    return walk(typer.main.get_command(app), ())


def test_every_help_text_reads_as_plain_text(tmp_path: Path) -> None:
    paths = _command_paths()
    assert ("flows", "backfill") in paths
    assert ("runs", "list") in paths
    # One process walks every command's --help through the real entry point (one per command is slow).
    code = (
        "import sys\nfrom shipyard.cli.main import main\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = ['shipyard', *path.split(), '--help']\n"
        "    print('=== ' + path)\n"
        "    try:\n        main()\n    except SystemExit as exc:\n        assert exc.code == 0, (path, exc.code)\n"
    )
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-c", code, *(" ".join(p) for p in paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("=== ") == len(paths)
    assert "``" not in result.stdout
    assert ":class:" not in result.stdout
    assert ":func:" not in result.stdout


# --json for scripts -------------------------------------------------------------------------
def test_list_commands_print_json_arrays(two_runs: list[str]) -> None:
    runs = _shipyard("runs", "list", "cli", "--json", "-o", "metrics.auc desc")
    experiments = _shipyard("experiments", "list", "--json")
    models = _shipyard("models", "list", "--json")
    datasets = _shipyard("datasets", "list", "--json")

    assert runs.returncode == 0, runs.stderr
    parsed = json.loads(runs.stdout)
    assert [r["id"] for r in parsed] == [two_runs[1], two_runs[0]]
    assert parsed[0]["metrics"] == {"auc": 0.9}
    assert parsed[0]["params"] == {"model": "beta"}
    assert [(e["name"], e["runs"]) for e in json.loads(experiments.stdout)] == [("cli", 2)]
    assert json.loads(models.stdout) == []
    assert json.loads(datasets.stdout) == []


def test_a_run_id_prefix_from_the_table_works_everywhere(two_runs: list[str]) -> None:
    listed = _shipyard("runs", "list", "cli")
    shown_ids = re.findall(r"│\s*([0-9a-f]{12})\s*│", listed.stdout)
    assert sorted(shown_ids) == sorted(i[:12] for i in two_runs)

    shown = _shipyard("runs", "show", two_runs[0][:6])
    lineage = _shipyard("lineage", two_runs[0][:8])
    deleted = _shipyard("runs", "delete", two_runs[0][:12])

    assert shown.returncode == 0, shown.stderr
    assert two_runs[0] in shown.stdout
    assert lineage.returncode == 0, lineage.stderr
    assert "alpha" in lineage.stdout
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted run {two_runs[0]}" in deleted.stdout
    assert sy.Client().find_run(two_runs[0]) is None
