"""The RunStore contract, on every backend the ``stores`` fixture provides."""

from __future__ import annotations

import math
import time

import pytest

from shipyard.errors import ConflictError, InvalidFilterError, InvalidInputError, NotFoundError
from shipyard.store import Stores
from shipyard.store.entities import MetricPoint


def _run(stores: Stores, experiment: str = "exp", name: str = "r", **tags: str) -> str:
    exp = stores.runs.find_experiment(experiment) or stores.runs.create_experiment(experiment)
    run = stores.runs.create_run(
        exp.id, name=name, user="tester", parent_run_id=None, lineage={"python": "3"}, tags=tags, start_time=time.time()
    )
    return run.id


def test_experiment_create_is_idempotent_and_missing_one_is_named(stores: Stores) -> None:
    first = stores.runs.create_experiment("churn")
    assert stores.runs.create_experiment("churn").id == first.id
    with pytest.raises(NotFoundError, match="experiment 'nope' does not exist; experiments are: churn"):
        stores.runs.get_experiment("nope")


def test_metrics_keep_nan_and_infinities_and_latest_follows_step(stores: Stores) -> None:
    run_id = _run(stores)
    stores.runs.log_metrics(
        run_id,
        [
            MetricPoint("loss", math.nan, 0, 1.0),
            MetricPoint("loss", math.inf, 1, 2.0),
            MetricPoint("loss", -math.inf, 2, 3.0),
            MetricPoint("loss", 0.5, 3, 4.0),
        ],
    )
    stores.runs.log_metrics(run_id, [MetricPoint("loss", 9.0, 1, 5.0)])  # an older step arriving late
    history = stores.runs.get_metric_history(run_id, "loss")
    assert [p.step for p in history] == [0, 1, 1, 2, 3]
    assert math.isnan(history[0].value)
    assert history[1].value == math.inf
    assert history[3].value == -math.inf
    assert stores.runs.get_run(run_id).metrics == {"loss": 0.5}


def test_params_are_immutable_but_tags_overwrite(stores: Stores) -> None:
    run_id = _run(stores)
    stores.runs.log_params(run_id, {"lr": "0.1"})
    stores.runs.log_params(run_id, {"lr": "0.1"})  # the same value again is fine
    with pytest.raises(ConflictError, match=r"param 'lr'.*already '0\.1'"):
        stores.runs.log_params(run_id, {"lr": "0.2", "depth": "3"})
    assert stores.runs.get_run(run_id).params == {"lr": "0.1"}  # nothing half-written
    stores.runs.set_tags(run_id, {"team": "a"})
    stores.runs.set_tags(run_id, {"team": "b"})
    assert stores.runs.get_run(run_id).tags == {"team": "b"}


def test_unknown_run_is_not_found(stores: Stores) -> None:
    with pytest.raises(NotFoundError, match="run 'missing' does not exist"):
        stores.runs.get_run("missing")
    with pytest.raises(NotFoundError):
        stores.runs.log_metrics("missing", [MetricPoint("x", 1.0, 0, 0.0)])
    with pytest.raises(NotFoundError):
        stores.runs.get_metric_history("missing", "x")


def test_stale_runs_are_failed_and_fresh_ones_kept(stores: Stores) -> None:
    stale, fresh = _run(stores, name="stale"), _run(stores, name="fresh")
    stores.runs.heartbeat([stale], time.time() - 100)
    stores.runs.heartbeat([fresh], time.time())
    assert stores.runs.fail_stale_runs(time.time() - 50) == [stale]
    assert stores.runs.get_run(stale).status == "failed"
    assert stores.runs.get_run(fresh).status == "running"


def _populate(stores: Stores) -> dict[str, str]:
    ids = {}
    rows = [
        ("a", "lgbm", "growth", 0.95, 0.70),
        ("b", "xgb", "growth", 0.85, 0.85),
        ("c", "xgb", "risk", 0.91, 0.60),
        ("d", "linear", "growth", 0.99, 0.90),
        ("e", "lgbm", "risk", 0.50, 0.40),
    ]
    for name, model, team, auc, f1 in rows:
        run_id = _run(stores, name=name, team=team)
        stores.runs.log_params(run_id, {"model": model, "depth": str(len(name) * 3 + ord(name) % 5)})
        stores.runs.log_metrics(run_id, [MetricPoint("auc", auc, 0, 1.0), MetricPoint("f1", f1, 0, 1.0)])
        stores.runs.end_run(run_id, "finished" if name != "e" else "failed", time.time())
        ids[name] = run_id
    return ids


def _names(stores: Stores, filter: str, order_by: tuple[str, ...] = ("name",)) -> list[str]:
    page = stores.runs.search_runs([], filter=filter, order_by=list(order_by), max_results=100, page_token=None)
    return [r.name for r in page.items]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (
            "(metrics.auc > 0.9 or metrics.f1 > 0.8) and params.model in ('lgbm', 'xgb') and tags.team = 'growth'",
            ["a", "b"],
        ),
        ("metrics.auc >= 0.91 and not params.model = 'linear'", ["a", "c"]),
        ("params.model like 'x%'", ["b", "c"]),
        ("params.model ilike 'LG%'", ["a", "e"]),
        ("status = 'failed'", ["e"]),
        ("status != 'failed' and tags.team not in ('risk')", ["a", "b", "d"]),
        ("name in ('a', 'e') or metrics.f1 = 0.9", ["a", "d", "e"]),
        ("duration >= 0 and start_time > 0 and metrics.missing > 1", []),
        ("attributes.name = 'c'", ["c"]),
        ("metrics.`auc` < 0.6", ["e"]),
    ],
)
def test_search_filter_language(stores: Stores, filter: str, expected: list[str]) -> None:
    _populate(stores)
    assert _names(stores, filter) == expected


def test_search_order_and_pages(stores: Stores) -> None:
    _populate(stores)
    assert _names(stores, "", ("metrics.auc desc",)) == ["d", "a", "c", "b", "e"]
    assert _names(stores, "", ("params.model", "metrics.f1 asc")) == ["e", "a", "d", "c", "b"]
    seen, token = [], None
    while True:
        page = stores.runs.search_runs([], filter=None, order_by=["name"], max_results=2, page_token=token)
        seen += [r.name for r in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("filter", "position", "message"),
    [
        ("metrics.auc >", 13, "expected a number or a quoted string"),
        ("metrics.auc > 0.9 and", 21, "expected a field"),
        ("(metrics.auc > 0.9", 18, "expected '\\)'"),
        ("bogus.x = 1", 0, "unknown field prefix 'bogus'"),
        ("colour = 'red'", 0, "unknown attribute 'colour'"),
        ("metrics.auc = 'high'", 12, "is a number; compare it with a number"),
        ("metrics.auc > 0.9 metrics.f1 > 1", 18, "expected 'and', 'or'"),
        ("params.x = 1 ; drop table runs", 13, "unexpected character ';'"),
    ],
)
def test_malformed_filter_points_at_the_position(stores: Stores, filter: str, position: int, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message) as info:
        stores.runs.search_runs([], filter=filter, order_by=[], max_results=10, page_token=None)
    assert info.value.position == position
    assert info.value.field == "filter"


def test_bad_paging_arguments(stores: Stores) -> None:
    with pytest.raises(InvalidInputError, match="max_results"):
        stores.runs.search_runs([], filter=None, order_by=[], max_results=0, page_token=None)
    with pytest.raises(InvalidInputError, match="page_token"):
        stores.runs.search_runs([], filter=None, order_by=[], max_results=10, page_token="garbage")
