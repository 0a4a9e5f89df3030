"""The DAG card: purpose, parameters, tasks, schedule, triggers, owners, runs, produced data."""

from __future__ import annotations

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.errors import NotFoundError
from shipyard.flows import Resources, flow, on_dataset, task
from shipyard.flows.card import flow_card

FAIL = {"now": False}


@task(resources=Resources(cpus=2, memory="2GB"), retries=1, retry_delay=0)
def featurize(day: str) -> pd.DataFrame:
    from shipyard.datasets.api import log_dataset

    frame = pd.DataFrame({"day": [day] * 3, "x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    log_dataset(frame, name="features", role="output")
    return frame


@task(track=True)
def train(frame: pd.DataFrame) -> str:
    from sklearn.linear_model import LinearRegression

    from shipyard.registry.api import log_model

    if FAIL["now"]:
        raise RuntimeError("training diverged")
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    return log_model(model, name="doubler").ref


@flow(schedule="0 3 * * *", triggers=[on_dataset("events")], owners=["ml-team", "ana@example.com"])
def retrain(day: str = "2026-11-01") -> str:
    """Retrain the doubler every night on the day's features."""
    return train(featurize(day)).result()


def test_the_card_describes_the_flow_its_runs_and_what_they_produced(settings: Settings) -> None:
    retrain.run()
    FAIL["now"] = True
    try:
        retrain.run(day="2026-11-02")
    finally:
        FAIL["now"] = False

    card = flow_card(retrain)

    assert card.startswith("# Flow `retrain`")
    assert "Retrain the doubler every night on the day's features." in card
    assert "- **Owners:** ml-team, ana@example.com" in card
    assert "- **Schedule:** `0 3 * * *` (UTC), catch-up: latest" in card
    assert "- **Triggers:** new version of dataset 'events'" in card
    assert "| `day` | str | `'2026-11-01'` |" in card
    assert "| `featurize` | 1 | - | `day`: str | pandas.DataFrame (parquet-pandas) | 2 cpu, 2 GB |" in card
    assert "retries=1" in card
    assert "| `train` | 1 | `featurize` | `frame`: pandas.DataFrame | - |" in card  # it failed: no output
    assert "Failure rate: **50%** (1 of 2 finished)" in card
    assert "- **Datasets written:** `features@1`, `features@2`" in card
    assert "- **Model versions:** `doubler/1`" in card


def test_a_card_by_name_uses_what_the_store_recorded(settings: Settings) -> None:
    retrain.run()

    card = flow_card("retrain")

    assert "Retrain the doubler" in card
    assert "## Parameters" not in card  # only the code knows its signature
    with pytest.raises(NotFoundError, match="flow 'nope' is not known here; known flows: retrain"):
        flow_card("nope")


def test_a_flow_that_never_ran_says_so(settings: Settings) -> None:
    @flow
    def fresh() -> None:
        return None

    card = flow_card(fresh)

    assert "_No description: add a docstring to the flow function._" in card
    assert "its DAG is built when it runs" in card
    assert "none yet" in card
