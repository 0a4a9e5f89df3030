"""``Client``: search pages behave as lists and page on; batches write what they are given."""

from __future__ import annotations

import math
import time

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.store.entities import MetricPoint


def _runs(client: sy.Client, count: int) -> list[str]:
    ids = []
    for index in range(count):
        with sy.start_run("paged", f"r{index}", client=client) as run:
            sy.log_metric("auc", index / 10)
        ids.append(run.id)
    return ids


def test_search_runs_page_is_a_list_with_a_token_for_the_next_page(settings: Settings) -> None:
    client = sy.Client(settings=settings)
    _runs(client, 5)
    first = client.search_runs("paged", order_by=["metrics.auc desc"], max_results=2)
    assert len(first) == 2
    assert [run.name for run in first] == ["r4", "r3"]
    assert first[0].metrics == {"auc": 0.4}
    assert isinstance(first, list)
    assert first.next_page_token is not None

    names, token = [run.name for run in first], first.next_page_token
    while token is not None:
        page = client.search_runs("paged", order_by=["metrics.auc desc"], max_results=2, page_token=token)
        names += [run.name for run in page]
        token = page.next_page_token
    assert names == ["r4", "r3", "r2", "r1", "r0"]
    assert len(page) == 1  # the last page holds what is left and says there is no more


def test_search_runs_rejects_a_token_it_did_not_issue(settings: Settings) -> None:
    client = sy.Client(settings=settings)
    with pytest.raises(InvalidInputError, match="page_token 'junk' is not one search_runs returned"):
        client.search_runs(page_token="junk")


def test_log_batch_keeps_each_points_step_and_checks_them_first(settings: Settings) -> None:
    client = sy.Client(settings=settings)
    experiment = client.create_experiment("batches")
    assert client.create_experiment("batches") == experiment
    with sy.start_run("batches", "b", client=client) as run:
        pass
    now = time.time()
    client.log_batch(
        run.id,
        [MetricPoint("loss", 1 / (1 + step), step, now) for step in range(100)]
        + [MetricPoint("loss", math.nan, 100, now)],
        params={"lr": 0.1},
        tags={"team": "a"},
    )
    history = client.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(101))
    assert history[99].value == pytest.approx(0.01)
    assert math.isnan(history[100].value)
    got = client.get_run(run.id)
    assert (got.params, got.tags["team"]) == ({"lr": "0.1"}, "a")

    with pytest.raises(InvalidInputError, match="metric 'loss' must be a number"):
        client.log_batch(run.id, [MetricPoint("loss", 0.5, 101, now), MetricPoint("loss", "high", 102, now)])  # type: ignore[arg-type]
    assert len(client.get_metric_history(run.id, "loss")) == 101  # nothing of the bad batch was written
    with pytest.raises(NotFoundError):
        client.log_batch("0" * 32, [MetricPoint("loss", 0.5, 0, now)])
