"""``shipyard run``/``flows``/``scheduler``/``lineage`` through the installed console script:
a failed flow exits 1 with a resume hint that works, logs show the exception, backfill's
--end is inclusive, the scheduler says what it runs, and suggested fixes work when followed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.config import Settings

from .test_cli import SCRIPT

PIPE = """
import os
from pathlib import Path

from shipyard import flow, task


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def total(xs: list[int]) -> int:
    if Path(os.environ["FLOW_MARKS"], "broken").exists():
        raise ValueError("the total is broken")
    return sum(xs)


@flow(schedule="0 3 * * *")
def branches(n: int = 3) -> int:
    \"\"\"Add the first n numbers.\"\"\"
    return total(numbers(n))
"""


@pytest.fixture
def project(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding pipe.py; commands run from it, as a user runs them."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pipe.py").write_text(PIPE)
    (folder / "marks").mkdir()
    monkeypatch.setenv("FLOW_MARKS", str(folder / "marks"))
    return folder


def _shipyard(project: Path, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=120, cwd=project)


def _hint(output: str) -> list[str]:
    match = re.search(r"finish it with: shipyard (.+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1).split()


def test_a_failed_flow_exits_1_and_its_resume_hint_works(project: Path) -> None:
    (project / "marks" / "broken").touch()
    failed = _shipyard(project, "run", "pipe.py:branches", "--no-live")

    assert failed.returncode == 1, failed.stdout + failed.stderr
    hint = _hint(failed.stdout)
    assert hint[:2] == ["run", "pipe.py:branches"]
    assert "Traceback" not in failed.stderr

    (project / "marks" / "broken").unlink()
    resumed = _shipyard(project, *hint, "--no-live")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "result: 3" in resumed.stdout
    assert sy.Client().get_flow_run(hint[-1]).state == "succeeded"


def test_flows_logs_shows_the_failed_tasks_exception(project: Path) -> None:
    (project / "marks" / "broken").touch()
    run_id = _hint(_shipyard(project, "run", "pipe.py:branches", "--no-live").stdout)[-1]

    logs = _shipyard(project, "flows", "logs", run_id[:8])
    one_task = _shipyard(project, "flows", "logs", run_id[:8], "total")

    assert logs.returncode == 0, logs.stderr
    assert "[total-0] failed" in logs.stdout
    assert "ValueError: the total is broken" in logs.stdout
    assert 'pipe.py", line' in logs.stdout  # the traceback, down to the user's line
    assert "ValueError: the total is broken" in one_task.stdout


def test_flows_runs_prints_whole_ids_and_json(project: Path) -> None:
    first = _shipyard(project, "run", "pipe.py:branches", "--no-live")
    assert first.returncode == 0, first.stderr
    run_id = sy.Client().stores.flows.list_flow_runs("branches")[0].id

    narrow = _shipyard(project, "flows", "runs", columns=80)
    as_json = _shipyard(project, "flows", "runs", "--json")

    assert run_id in narrow.stdout  # whole, even on a narrow terminal
    assert [r["id"] for r in json.loads(as_json.stdout)] == [run_id]
    assert json.loads(as_json.stdout)[0]["state"] == "succeeded"
    shown = _shipyard(project, "flows", "show", run_id[:6])
    assert shown.returncode == 0, shown.stderr
    assert run_id in shown.stdout


def test_backfill_end_is_inclusive_and_the_scheduler_says_what_it_runs(project: Path) -> None:
    assert _shipyard(project, "run", "pipe.py:branches", "--no-live").returncode == 0

    queued = _shipyard(project, "flows", "backfill", "branches", "--start", "2026-11-01", "--end", "2026-11-03")
    ran = _shipyard(project, "scheduler", "pipe.py", "--once")

    assert queued.returncode == 0, queued.stderr
    assert "queued 3 runs" in queued.stdout
    slots = re.findall(r"slot (2026-11-0\d)T03:00", queued.stdout)
    assert slots == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert ran.returncode == 0, ran.stderr
    ids = re.findall(r"^\s*([0-9a-f]{32})\s+slot", queued.stdout, re.MULTILINE)
    for run_id in ids:
        assert re.search(rf"branches\s+{run_id[:12]}\s+started", ran.stdout), ran.stdout
        assert re.search(rf"branches\s+{run_id[:12]}\s+succeeded", ran.stdout), ran.stdout


def test_flows_card_renders_its_markdown(project: Path) -> None:
    assert _shipyard(project, "run", "pipe.py:branches", "--no-live").returncode == 0

    card = _shipyard(project, "flows", "card", "branches")

    assert card.returncode == 0, card.stderr
    assert "Add the first n numbers." in card.stdout
    assert "## " not in card.stdout  # rendered headings, not Markdown source
    assert "|---|" not in card.stdout
    assert "Schedule: 0 3 * * * (UTC)" in card.stdout


@pytest.fixture
def model_and_dataset(settings: Settings) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 0, 1]})
    with sy.start_run(experiment="lineage", name="fit"):
        sy.log_dataset(frame, name="churn-train")
        sy.log_model(LogisticRegression().fit(frame[["a"]], frame.y), name="churn", input_example=frame[["a"]][:2])


@pytest.mark.parametrize("ref", ["churn-train@1", "churn-train", "dataset:churn-train/1", "dataset:churn-train@1"])
def test_lineage_takes_a_dataset_as_datasets_show_names_it(model_and_dataset: None, tmp_path: Path, ref: str) -> None:
    result = _shipyard(tmp_path, "lineage", ref)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dataset churn-train@1")
    assert "run lineage/fit" in result.stdout


def test_a_suggested_fix_works_when_followed(model_and_dataset: None, tmp_path: Path) -> None:
    wrong = _shipyard(tmp_path, "lineage", "churn@1")
    suggested = re.search(r"write '([^']+)'", wrong.stderr)

    assert wrong.returncode == 2
    assert suggested, wrong.stderr
    followed = _shipyard(tmp_path, "lineage", suggested.group(1))
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.startswith("model_version churn/1")


@pytest.mark.parametrize("args", [("models", "show", "churn-train@1"), ("models", "card", "churn-train/1")])
def test_a_dataset_given_as_a_model_suggests_commands_that_work(
    model_and_dataset: None, tmp_path: Path, args: tuple[str, ...]
) -> None:
    wrong = _shipyard(tmp_path, *args)
    commands = re.findall(r"shipyard ([a-z]+ [a-z]+ \S+?|lineage \S+?)[);]?(?:\s|$)", wrong.stderr)

    assert wrong.returncode == 2
    assert "'churn-train' is a dataset, not a model" in wrong.stderr
    assert len(commands) == 2, wrong.stderr
    for command in commands:
        followed = _shipyard(tmp_path, *command.split())
        assert followed.returncode == 0, (command, followed.stderr)
        assert "churn-train@1" in followed.stdout


def test_datasets_take_the_models_version_syntax_too(model_and_dataset: None, tmp_path: Path) -> None:
    slash = _shipyard(tmp_path, "datasets", "show", "churn-train/1")
    at = _shipyard(tmp_path, "datasets", "show", "churn-train@1")
    listed = _shipyard(tmp_path, "datasets", "list", "--json")

    assert slash.returncode == 0, slash.stderr
    assert slash.stdout == at.stdout
    assert [(d["name"], d["version"], d["num_rows"]) for d in json.loads(listed.stdout)] == [("churn-train", 1, 4)]


def test_flows_list_json(project: Path) -> None:
    assert _shipyard(project, "run", "pipe.py:branches", "--no-live").returncode == 0

    flows = json.loads(_shipyard(project, "flows", "list", "--json").stdout)

    summary = [(f["name"], f["schedule"], f["last_run"]["state"]) for f in flows]
    assert summary == [("branches", "0 3 * * *", "succeeded")]


def test_deleting_a_run_with_model_versions_suggests_force_and_force_works(
    model_and_dataset: None, tmp_path: Path
) -> None:
    run_id = sy.Client().search_runs("lineage").items[0].id

    refused = _shipyard(tmp_path, "runs", "delete", run_id[:8])
    forced = _shipyard(tmp_path, "runs", "delete", run_id[:8], "--force")

    assert refused.returncode == 2
    assert "churn/1" in refused.stderr
    assert "shipyard runs delete --force" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert sy.Client().find_run(run_id) is None
