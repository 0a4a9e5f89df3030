"""``shipyard models`` through Typer's test runner (the group the lead mounts in cli/main.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import shipyard.registry as reg
from shipyard.cli.models import app
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError

runner = CliRunner()


@pytest.fixture
def churn_model(settings: Settings) -> None:
    reg.log_model(
        lambda x: x,
        "churn",
        input_example={"tenure": [1, 2]},
        metrics={"auc": 0.91},
        owner="ana",
        team="growth",
        description="predicts churn",
    )
    reg.log_model(lambda x: x, "churn", metrics={"auc": 0.93})


def test_list(churn_model: None) -> None:
    reg.set_alias("churn", "champion", 1)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "churn" in line)
    for value in ("churn", "2", "champion→1", "ana", "growth"):
        assert value in row


def test_show(churn_model: None) -> None:
    result = runner.invoke(app, ["show", "churn/1"])
    assert result.exit_code == 0, result.output
    assert "model churn/1" in result.output
    assert "predicts churn" in result.output
    assert "auc" in result.output
    assert "0.91" in result.output
    assert "tenure" in result.output
    assert "integer" in result.output


def test_alias_set_move_and_delete(churn_model: None) -> None:
    assert runner.invoke(app, ["alias", "churn", "champion", "1"]).exit_code == 0
    result = runner.invoke(app, ["alias", "churn", "champion", "2"])
    assert result.exit_code == 0, result.output
    assert "churn@champion → version 2" in result.output
    assert reg.get_model_version("churn@champion").version == 2
    result = runner.invoke(app, ["alias", "churn", "champion", "--delete"])
    assert result.exit_code == 0, result.output
    assert reg.get_model("churn").aliases == {}


def test_errors_propagate_for_main_to_print(churn_model: None) -> None:
    result = runner.invoke(app, ["alias", "churn", "champion"])
    assert isinstance(result.exception, InvalidInputError)
    assert "give the version churn@champion should point at" in str(result.exception)
    result = runner.invoke(app, ["show", "churn@nope"])
    assert isinstance(result.exception, NotFoundError)
    assert str(result.exception) == "model 'churn' has no alias 'nope'; its aliases are: none"


def test_card_prints_or_writes(churn_model: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["card", "churn/1"])
    assert result.exit_code == 0, result.output
    assert "churn — version 1" in result.output
    assert "Intended use" in result.output
    target = tmp_path / "CARD.md"
    result = runner.invoke(app, ["card", "churn", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == reg.model_card("churn/2")
