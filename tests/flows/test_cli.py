"""``shipyard run`` and ``shipyard flows ...``, registered the way cli/main.py registers them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shipyard.cli import flows as flows_cli
from shipyard.cli import run as run_cli
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.flows import get_flow_run, list_flow_runs

PIPELINE = """
import os
from pathlib import Path

from shipyard.flows import flow, task, get_logger


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(retries=0)
def square(x: int) -> int:
    print(f"squaring {x}")
    if Path(os.environ["FLOW_MARKS"], "broken").exists() and x == 2:
        raise ValueError("two is broken")
    return x * x


@task
def total(xs: list[int]) -> int:
    get_logger().info("adding %d numbers", len(xs))
    return sum(xs)


@flow(schedule="0 3 * * *", owners=["data-team"])
def squares(n: int = 3, scale: float = 1.0) -> float:
    \"\"\"Sum the squares of the first n numbers.\"\"\"
    return total(square.map(numbers(n))).result() * scale
"""


@pytest.fixture
def app() -> typer.Typer:
    cli = typer.Typer()
    cli.add_typer(flows_cli.app, name="flows")
    cli.command("run")(run_cli.run)
    cli.command("scheduler")(run_cli.scheduler)
    return cli


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / "pipeline.py"
    file.write_text(PIPELINE)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("FLOW_MARKS", str(marks))
    monkeypatch.setenv("COLUMNS", "200")
    return file


def _invoke(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=True)


def test_run_a_flow_from_a_file_with_params(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    result = _invoke(app, "run", f"{pipeline}:squares", "--param", "n=4", "-p", "scale=0.5", "--no-live")

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "result: 7.0" in result.output  # type: ignore[attr-defined]
    assert "square-0[3]" in result.output  # type: ignore[attr-defined]
    runs = list_flow_runs("squares")
    assert len(runs) == 1
    assert runs[0].params == {"n": 4, "scale": 0.5}


def test_bad_params_and_targets_are_shipyard_errors(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    bad_type = _invoke(app, "run", f"{pipeline}:squares", "--param", "n=three")
    unknown = _invoke(app, "run", f"{pipeline}:squares", "--param", "m=3")
    missing = _invoke(app, "run", f"{pipeline}:nope")
    malformed = _invoke(app, "run", f"{pipeline}:squares", "--param", "n")

    assert isinstance(bad_type.exception, InvalidInputError)  # type: ignore[attr-defined]
    assert "parameter 'n' of flow 'squares' must be int, cannot read 'three'" in str(bad_type.exception)  # type: ignore[attr-defined]
    assert "has no parameter 'm'" in str(unknown.exception)  # type: ignore[attr-defined]
    assert isinstance(missing.exception, NotFoundError)  # type: ignore[attr-defined]
    assert "its flows are: squares" in str(missing.exception)  # type: ignore[attr-defined]
    assert "must look like name=value" in str(malformed.exception)  # type: ignore[attr-defined]
    assert list_flow_runs("squares") == []


def test_a_failed_run_resumes_from_the_cli(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    marks = pipeline.parent / "marks"
    (marks / "broken").touch()
    failed = _invoke(app, "run", f"{pipeline}:squares", "--param", "n=4")
    assert failed.exit_code == 1  # type: ignore[attr-defined]
    run_id = list_flow_runs("squares")[0].id
    assert f"--resume {run_id}" in failed.output  # type: ignore[attr-defined]
    assert "two is broken" in failed.output  # type: ignore[attr-defined]

    before = {t.task_key: t.start_time for t in get_flow_run(run_id).tasks}
    (marks / "broken").unlink()
    resumed = _invoke(app, "run", f"{pipeline}:squares", "--resume", run_id)

    assert resumed.exit_code == 0, resumed.output  # type: ignore[attr-defined]
    run = get_flow_run(run_id)
    assert run.state == "succeeded"
    assert run.result == 14.0
    after = {t.task_key: t.start_time for t in run.tasks}
    rerun = sorted(k for k in after if after[k] != before.get(k))
    assert rerun == ["square-0[2]", "total-0"]


def test_flows_list_runs_show_and_logs(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    assert _invoke(app, "run", f"{pipeline}:squares", "--no-live").exit_code == 0  # type: ignore[attr-defined]
    run_id = list_flow_runs("squares")[0].id

    listed = _invoke(app, "flows", "list")
    runs = _invoke(app, "flows", "runs", "squares")
    shown = _invoke(app, "flows", "show", run_id)
    logs = _invoke(app, "flows", "logs", run_id)
    one_task = _invoke(app, "flows", "logs", run_id, "total")
    followed = _invoke(app, "flows", "logs", run_id, "square-0[1]", "--follow")
    ambiguous = _invoke(app, "flows", "logs", run_id, "square")

    assert "squares" in listed.output
    assert "0 3 * * * (UTC)" in listed.output
    assert "data-team" in listed.output  # type: ignore[attr-defined]
    assert run_id in runs.output
    assert "succeeded" in runs.output
    for key in ("numbers-0", "square-0[0]", "square-0[2]", "total-0"):
        assert key in shown.output  # type: ignore[attr-defined]
    assert "[square-0[1]] squaring 1" in logs.output  # type: ignore[attr-defined]
    assert "INFO shipyard.task: adding 3 numbers" in one_task.output  # type: ignore[attr-defined]
    assert followed.output.strip() == "squaring 1"  # type: ignore[attr-defined]
    assert isinstance(ambiguous.exception, InvalidInputError)  # type: ignore[attr-defined]


def test_show_collapses_a_wide_fan_out(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    assert _invoke(app, "run", f"{pipeline}:squares", "-p", "n=40", "--no-live").exit_code == 0  # type: ignore[attr-defined]
    shown = _invoke(app, "flows", "show", list_flow_runs("squares")[0].id)

    assert "square-0[0..39]  40 mapped tasks: 40 succeeded" in shown.output  # type: ignore[attr-defined]
    assert "total-0" in shown.output  # type: ignore[attr-defined]


def test_cancel_and_backfill_from_the_cli(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    assert _invoke(app, "run", f"{pipeline}:squares", "--no-live").exit_code == 0  # type: ignore[attr-defined]

    queued = _invoke(app, "flows", "backfill", "squares", "--start", "2026-01-01", "--end", "2026-01-03T12:00")
    again = _invoke(app, "flows", "backfill", "squares", "--start", "2026-01-01", "--end", "2026-01-03T12:00")
    pending = list_flow_runs("squares", states=["pending"])
    cancelled = _invoke(app, "flows", "cancel", pending[0].id)
    twice = _invoke(app, "flows", "cancel", pending[0].id)
    bad_time = _invoke(app, "flows", "backfill", "squares", "--start", "yesterday", "--end", "2026-01-03")

    assert "queued 3 runs of squares" in queued.output  # type: ignore[attr-defined]
    assert "queued 0 runs" in again.output  # type: ignore[attr-defined]
    assert len(pending) == 3
    assert f"cancelled flow run {pending[0].id}" in cancelled.output  # type: ignore[attr-defined]
    assert "already cancelled" in str(twice.exception)  # type: ignore[attr-defined]
    assert "--start 'yesterday' is not an ISO 8601 time" in str(bad_time.exception)  # type: ignore[attr-defined]

    ran = _invoke(app, "scheduler", str(pipeline), "--once", "--max-runs", "4")
    assert ran.exit_code == 0, ran.output  # type: ignore[attr-defined]
    states = sorted(r.state for r in list_flow_runs("squares"))
    assert states == ["cancelled", "succeeded", "succeeded", "succeeded"]


def test_live_view_shows_while_running(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    result = _invoke(app, "run", f"{pipeline}:squares", "-p", "n=5")

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "result: 30.0" in result.output  # type: ignore[attr-defined]


def test_flows_card_prints_or_writes_markdown(app: typer.Typer, pipeline: Path, settings: Settings) -> None:
    assert _invoke(app, "run", f"{pipeline}:squares", "--no-live").exit_code == 0  # type: ignore[attr-defined]
    out = pipeline.parent / "card.md"

    printed = _invoke(app, "flows", "card", "squares")
    written = _invoke(app, "flows", "card", f"{pipeline}:squares", "--output", str(out))

    # Rendered as `models card` renders: Markdown, not its source (no '#', no backticks, no pipes).
    assert "Flow squares" in printed.output  # type: ignore[attr-defined]
    assert "# Flow" not in printed.output  # type: ignore[attr-defined]
    assert "| `n` |" not in printed.output  # type: ignore[attr-defined]
    assert "Sum the squares of the first n numbers." in printed.output  # type: ignore[attr-defined]
    assert written.exit_code == 0  # type: ignore[attr-defined]
    text = out.read_text()
    assert "| `n` | int | `3` |" in text
    assert "- **Owners:** data-team" in text
