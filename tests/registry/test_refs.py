"""References, aliases, tags and metadata updates; every miss names what exists."""

from __future__ import annotations

from typing import Any

import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.registry import ModelRef, parse_model_ref
from shipyard.tracking.api import start_run


def _three_versions() -> None:
    for factor in (1, 2, 3):
        reg.log_model(lambda values, f=factor: [v * f for v in values], "churn")


def test_parse_model_ref() -> None:
    assert parse_model_ref("churn@champion") == ModelRef("churn", alias="champion")
    assert parse_model_ref("churn/3") == ModelRef("churn", version=3)
    assert parse_model_ref("churn") == ModelRef("churn")
    assert str(parse_model_ref("churn/3")) == "churn/3"
    for bad, message in (
        ("churn@3", "no valid alias after '@'; for version 3 write 'churn/3'"),
        ("churn/x", "the version after '/' must be a positive integer"),
        ("churn/0", "the version after '/' must be a positive integer"),
        ("@champion", "model reference must be"),
        ("", "model reference must be"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            parse_model_ref(bad)


def test_versions_are_numbered_and_latest_is_the_default(settings: Settings) -> None:
    _three_versions()
    assert [v.version for v in reg.list_model_versions("churn")] == [1, 2, 3]
    assert reg.get_model_version("churn").version == 3
    assert reg.load_model("churn").predict([1, 2]) == [3, 6]
    assert reg.load_model("churn/1").predict([1, 2]) == [1, 2]
    assert reg.get_model("churn").latest_version == 3


def test_aliases_set_move_and_delete(settings: Settings) -> None:
    _three_versions()
    mv = reg.set_alias("churn", "champion", 1)
    assert (mv.version, mv.aliases) == (1, ("champion",))
    reg.set_alias("churn", "staging", 2)
    assert reg.load_model("churn@champion").predict([5]) == [5]
    reg.set_alias("churn", "champion", 3)
    assert reg.load_model("churn@champion").version.version == 3
    assert reg.get_model_version("churn/1").aliases == ()
    assert dict(reg.get_model("churn").aliases) == {"champion": 3, "staging": 2}
    reg.delete_alias("churn", "champion")
    with pytest.raises(NotFoundError, match="model 'churn' has no alias 'champion'; its aliases are: staging"):
        reg.load_model("churn@champion")
    assert reg.get_model_version("churn/3").version == 3  # the version outlives its alias


def test_unknown_model_version_and_alias(settings: Settings) -> None:
    _three_versions()
    reg.set_alias("churn", "staging", 1)
    reg.set_alias("churn", "shadow", 2)
    with pytest.raises(NotFoundError, match="model 'churn' has no alias 'champion'; its aliases are: shadow, staging"):
        reg.load_model("churn@champion")
    with pytest.raises(NotFoundError, match="model 'churn' has no version 7; its versions are: 1, 2, 3"):
        reg.load_model("churn/7")
    with pytest.raises(NotFoundError, match="model 'fraud' does not exist; registered models are: churn"):
        reg.load_model("fraud")
    with pytest.raises(NotFoundError, match="model 'fraud' does not exist"):
        reg.list_model_versions("fraud")
    with pytest.raises(NotFoundError, match="model 'churn' has no alias 'nope'; its aliases are: shadow, staging"):
        reg.delete_alias("churn", "nope")
    with pytest.raises(NotFoundError, match="model 'churn' has no version 9"):
        reg.set_alias("churn", "champion", 9)
    with pytest.raises(InvalidInputError, match="alias 'v2' looks like a version number"):
        reg.set_alias("churn", "v2", 2)
    with pytest.raises(InvalidInputError, match="version must be a positive integer, got '2'"):
        reg.set_alias("churn", "champion", "2")  # type: ignore[arg-type]


def test_bad_model_names_are_refused_before_anything_is_stored(settings: Settings, stores: Any) -> None:
    for bad in ("", "a/b", "a@b"):
        with pytest.raises(InvalidInputError, match="model name must be a non-empty string without '@' or '/'"):
            reg.log_model(lambda x: x, bad)
    assert stores.artifacts.list_digests() == []


def test_tags_and_metadata(settings: Settings) -> None:
    reg.log_model(lambda x: x, "churn", description="first cut", owner="ana", team="growth")
    reg.set_model_tags("churn", {"domain": "retention"})
    reg.set_model_tags("churn", {"validated": True}, version=1)
    model = reg.get_model("churn")
    assert (model.owner, model.team, dict(model.tags)) == ("ana", "growth", {"domain": "retention"})
    assert dict(reg.get_model_version("churn/1").tags) == {"validated": "True"}

    updated = reg.update_model("churn", description="predicts churn", team="core")
    assert (updated.description, updated.owner, updated.team) == ("predicts churn", "ana", "core")
    mv = reg.update_model_version("churn", intended_use="weekly retention mails", limitations="not for pricing")
    assert (mv.description, mv.intended_use, mv.limitations) == (
        "first cut",
        "weekly retention mails",
        "not for pricing",
    )
    assert [m.name for m in reg.list_models()] == ["churn"]
    with pytest.raises(NotFoundError, match="model 'nope' does not exist"):
        reg.update_model("nope", owner="x")


def test_passport_metrics(settings: Settings) -> None:
    with start_run("churn", "train") as run:
        run.log_metric("auc", 0.5, step=0)
        run.log_metric("auc", 0.91, step=1)  # buffered: log_model must flush it first
        run.log_metric("loss", 0.2)
        from_run = reg.log_model(lambda x: x, "churn")
        given = reg.log_model(lambda x: x, "churn", metrics={"auc": 0.88, "rows": 1000})
    assert dict(from_run.metrics) == {"auc": 0.91, "loss": 0.2}
    assert dict(given.metrics) == {"auc": 0.88, "rows": 1000.0}
    with pytest.raises(InvalidInputError, match="metric 'auc' must be a number, got 'high'"):
        reg.log_model(lambda x: x, "churn", metrics={"auc": "high"})  # type: ignore[dict-item]
