"""``shipyard datasets`` commands, run through Typer's test runner against a real store."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from shipyard.cli.datasets import app
from shipyard.config import Settings
from shipyard.datasets import get_dataset, list_datasets, log_dataset
from shipyard.errors import InvalidInputError, NotFoundError


def table_rows(output: str) -> dict[str, list[str]]:
    """Rich table body rows keyed by their first cell."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that Rich does not wrap table cells
    return CliRunner()


@pytest.fixture
def logged(settings: Settings) -> None:
    log_dataset(pd.DataFrame({"age": [30, 40, 50], "city": ["paris", "lyon", "paris"]}), "people")
    log_dataset(pd.DataFrame({"age": [30, 40]}), "people")
    log_dataset(pd.DataFrame({"x": [1.5]}), "tiny")


@pytest.mark.usefixtures("logged")
def test_list_shows_latest_versions(runner: CliRunner) -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert rows["people"][:4] == ["2", "2", get_dataset("people").digest[:12], ""]
    assert rows["tiny"][:4] == ["1", "1", get_dataset("tiny").digest[:12], ""]


@pytest.mark.usefixtures("logged")
def test_golden_marks_and_unmarks(runner: CliRunner) -> None:
    result = runner.invoke(app, ["golden", "people@1"])
    assert result.exit_code == 0, result.output
    assert "people@1 is golden" in result.output
    assert [v.name for v in list_datasets(golden=True)] == ["people"]
    assert table_rows(runner.invoke(app, ["list"]).output)["people"][3] == "yes"
    golden_rows = table_rows(runner.invoke(app, ["list", "--golden"]).output)
    assert list(golden_rows) == ["people"]
    result = runner.invoke(app, ["golden", "people", "--unset"])
    assert result.exit_code == 0, result.output
    assert "no longer golden" in result.output
    assert list_datasets(golden=True) == []


@pytest.mark.usefixtures("logged")
def test_show_prints_schema_and_statistics(runner: CliRunner) -> None:
    result = runner.invoke(app, ["show", "people@1"])
    assert result.exit_code == 0, result.output
    assert "people@1" in result.output
    assert "rows=3" in result.output
    rows = table_rows(result.output)
    assert rows["age"][:7] == ["int64", "3", "0", "30", "50", "40", "10"]
    assert rows["city"][:3] == ["large_string", "3", "0"]
    assert rows["city"][-2:] == ["2", "paris (2), lyon (1)"]


@pytest.mark.usefixtures("logged")
def test_errors_propagate_for_the_main_wrapper(runner: CliRunner) -> None:
    result = runner.invoke(app, ["show", "ghost"])
    assert isinstance(result.exception, NotFoundError)
    result = runner.invoke(app, ["golden", "people@x"])
    assert isinstance(result.exception, InvalidInputError)
