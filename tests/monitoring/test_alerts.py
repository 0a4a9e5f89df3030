"""Alerts: a rule fires once, resolves, fires again; each transition notifies once (log, webhook, event)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.monitoring.alerts import webhook
from shipyard.monitoring.monitor import history, monitor
from shipyard.monitoring.rules import parse_rule, read_rules
from shipyard.store import Stores
from tests.monitoring.conftest import Hook, churn_traffic, train_churn, write_log

T0 = 1_800_000_000.0
HOUR = 3600.0


def _register(name: str = "churn") -> None:
    model, frame, _ = train_churn()
    with sy.start_run(experiment="churn"):
        mv = sy.log_model(model, name, input_example=frame.head(5), training_data=frame)
    sy.set_alias(name, "champion", mv.version)


def _serve_hour(stores: Stores, hour: int, *, shift: float, rows: int = 300) -> None:
    frame, _ = churn_traffic(100 + hour, rows, shift=shift)
    inputs = {c: frame[c].to_numpy() for c in frame.columns}
    write_log(
        stores, model="churn", inputs=inputs, outputs=np.zeros(rows), at=T0 + hour * HOUR + 60, prefix=f"h{hour}-"
    )


def test_an_alert_fires_resolves_and_fires_again_notifying_once_per_change(
    settings: Settings, stores: Stores, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    _register()
    rules = ["churn-drift: psi(tenure) > 0.2", "slow: psi(tenure) > 0.2 for 2 windows", "share_drifted > 0.9"]
    shifts = {0: 0.0, 1: 12.0, 2: 12.0, 4: 0.0, 5: 12.0}  # hour 3 has no traffic at all
    for hour, shift in shifts.items():
        _serve_hour(stores, hour, shift=shift)
    states: list[tuple[str, str]] = []
    with caplog.at_level(logging.INFO, logger="shipyard.monitoring"):
        for hour in range(6):
            report = monitor(
                "churn@champion", window="1h", end=T0 + (hour + 1) * HOUR, rules=rules, notifiers=[webhook(hook.url)]
            )
            states.append((report.alerts["churn-drift"].state, report.alerts["slow"].state))
            if hour == 3:
                assert report.empty
                assert "no predictions between" in report.summary()

    assert states == [
        ("ok", "ok"),
        ("firing", "ok"),
        ("firing", "firing"),  # held for 2 windows: the slow rule fires now
        ("firing", "firing"),  # an empty window changes nothing
        ("resolved", "resolved"),
        ("firing", "resolved"),  # one window again: the slow rule waits for a second
    ]
    sent = [(p["alert"], p["state"]) for p in hook.received]
    assert sent == [
        ("churn-drift", "firing"),
        ("slow", "firing"),
        ("churn-drift", "resolved"),
        ("slow", "resolved"),
        ("churn-drift", "firing"),
    ]
    assert hook.received[0]["value"] > 0.2
    assert hook.received[0]["ref"] == "churn@champion"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert ")]
    assert len(logged) == 5
    assert logged[0].startswith("alert churn-drift firing: psi(tenure) = ")
    events = stores.flows.list_events("alert", "churn-drift")
    assert [e.payload["step"] for e in events] == [1, 5]  # one event per firing, none on resolve
    assert stores.flows.list_events("alert", "share_drifted > 0.9") == []  # 1 of 2 features: never above 0.9
    # every window's report is stored, in order, with the states it ended with
    assert [(r["step"], r["alerts"]["churn-drift"]["state"]) for r in history("churn@champion")] == list(
        enumerate(s for s, _ in states)
    )


def test_a_rule_on_an_unknown_feature_is_refused_naming_the_features(settings: Settings, stores: Stores) -> None:
    _register()
    _serve_hour(stores, 0, shift=0.0)
    with pytest.raises(
        InvalidInputError, match=r"names feature 'tenur', which the model does not have; its features are: plan, tenure"
    ):
        monitor("churn@champion", window="1h", end=T0 + HOUR, rules=["psi(tenur) > 0.2"])
    assert history("churn@champion") == []  # refused before anything was stored


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("psi plan > 0.2", "does not read as"),
        ("psi(plan) => 0.2", "does not read as"),
        ("psi > 0.2", "psi is per feature; write psi(FEATURE)"),
        ("roc_auc(plan) < 0.8", "roc_auc is per window and takes no feature"),
        ("entropy(plan) > 1", "unknown statistic 'entropy'"),
        ("psi(plan) > 0.2 for 0 windows", "needs N >= 1"),
    ],
)
def test_bad_rules_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        parse_rule(text)


def test_rules_read_from_a_file_name_the_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "rules.txt"
    good.write_text("# drift\nchurn-drift: psi(plan) > 0.2 for 2 windows\n\nroc_auc < 0.8\n")
    assert [r.describe() for r in read_rules(good)] == [
        "churn-drift: psi(plan) > 0.2 for 2 windows",
        "roc_auc < 0.8: roc_auc < 0.8",
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("roc_auc < 0.8\nmissing_rate(tenure) >> 0.1\n")
    with pytest.raises(InvalidInputError, match=r"bad.txt:2: rule 'missing_rate\(tenure\) >> 0.1' does not read"):
        read_rules(bad)
    with pytest.raises(InvalidInputError, match="two rules are named"):
        read_rules_text(tmp_path, "a: roc_auc < 0.8\na: f1 < 0.5\n")


def read_rules_text(folder: Path, text: str) -> object:
    path = folder / "twice.txt"
    path.write_text(text)
    return read_rules(path)


def test_without_a_stored_profile_the_training_runs_dataset_is_the_reference(
    settings: Settings, stores: Stores
) -> None:
    model, frame, y = train_churn()
    with sy.start_run(experiment="churn"):
        sy.log_dataset(frame.assign(churned=y), "churn-train")
        mv = sy.log_model(model, "churn", input_example=frame.head(5))  # no training_data=
    sy.set_alias("churn", "champion", mv.version)
    _serve_hour(stores, 0, shift=12.0)

    report = monitor("churn@champion", window="1h", end=T0 + HOUR)

    assert report.drift is not None
    assert report.drift.drifted == ["tenure"]
    assert report.notes == ("reference: dataset churn-train@1, the training run's input (no stored training profile)",)
