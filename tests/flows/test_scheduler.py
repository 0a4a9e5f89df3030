"""The scheduler: cron slots and trigger events each run exactly once, however many schedulers race."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.flows import Schedule, emit_event, flow, list_flow_runs, on_alert, on_dataset, on_model, sensor, task
from shipyard.flows.scheduler import Scheduler, backfill
from shipyard.store import Stores

SEEN: list[str] = []


@task
def note(what: str) -> str:
    SEEN.append(what)
    return what


@flow(schedule="* * * * *")
def every_minute(label: str = "tick") -> str:
    return note(label).result()


def _race(schedulers: list[Scheduler], now: float) -> None:
    barrier = threading.Barrier(len(schedulers))
    errors: list[BaseException] = []

    def go(s: Scheduler) -> None:
        try:
            barrier.wait()
            s.tick(now)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_two_schedulers_at_once_never_double_run_a_slot(settings: Settings, stores: Stores) -> None:
    first, second = Scheduler([every_minute]), Scheduler([every_minute])
    first.register()
    second.register()
    registered = stores.flows.find_flow("every_minute")
    assert registered is not None
    start = registered.created_at
    catch_all = every_minute.with_options(schedule=Schedule("* * * * *", catchup="all"))
    first, second = Scheduler([catch_all]), Scheduler([catch_all])

    for minutes in (3, 5, 5, 9):
        _race([first, second], start + minutes * 60 + 1)

    runs = stores.flows.list_flow_runs("every_minute", limit=100)
    slots = Counter(r.scheduled_time for r in runs)
    assert len(runs) == 9
    assert set(slots.values()) == {1}
    assert all(r.state == "pending" for r in runs)

    restarted = Scheduler([catch_all])
    assert restarted.tick(start + 9 * 60 + 1) == []  # nothing repeated
    assert len(restarted.tick(start + 11 * 60 + 1)) == 2  # nothing skipped


def test_catchup_latest_runs_only_the_newest_missed_slot(settings: Settings, stores: Stores) -> None:
    scheduler = Scheduler([every_minute])
    scheduler.register()
    info = stores.flows.find_flow("every_minute")
    assert info is not None

    runs = scheduler.tick(info.created_at + 10 * 60 + 1)

    assert len(runs) == 1
    assert runs[0].scheduled_time is not None
    assert runs[0].scheduled_time > info.created_at + 9 * 60
    assert runs[0].trigger.startswith("schedule:")


def test_queued_runs_execute_by_priority_within_limits(settings: Settings, stores: Stores) -> None:
    SEEN.clear()
    scheduler = Scheduler([every_minute.with_options(max_active_runs=1)], max_concurrent_runs=3)
    scheduler.register()
    info = stores.flows.find_flow("every_minute")
    assert info is not None
    low = backfill("every_minute", info.created_at - 180, info.created_at - 61, priority=-5)
    high = backfill("every_minute", info.created_at - 60, info.created_at, priority=5)
    again = backfill("every_minute", info.created_at - 180, info.created_at, priority=0)
    assert (len(low), len(high), len(again)) == (2, 1, 0)

    claimed = scheduler.run_pending(wait=True)
    assert [r.id for r in claimed] == [high[0].id]  # max_active_runs=1: one at a time, highest priority first
    while scheduler.run_pending(wait=True):
        pass

    runs = {r.id: r for r in stores.flows.list_flow_runs("every_minute")}
    assert all(r.state == "succeeded" for r in runs.values())
    order = sorted(runs.values(), key=lambda r: r.start_time or 0)
    assert [r.id for r in order] == [
        high[0].id,
        *sorted((r.id for r in low), key=lambda i: runs[i].scheduled_time or 0),
    ]
    assert SEEN == ["tick"] * 3


@task
def consume(dataset: str) -> str:
    SEEN.append(dataset)
    return dataset


@flow(triggers=[on_dataset("events", param="dataset")])
def on_new_events(dataset: str = "none") -> str:
    return consume(dataset).result()


def _log_dataset_version(stores: Stores, name: str, digest: str) -> int:
    version = stores.datasets.create_dataset_version(
        name,
        digest=digest * 64,
        format="parquet",
        schema={"x": "int64"},
        stats={},
        num_rows=1,
        artifact_digest=digest * 64,
        source=None,
        created_by_run=None,
    )
    return version.version


def test_a_new_dataset_version_fires_the_triggered_flow_exactly_once(settings: Settings, stores: Stores) -> None:
    SEEN.clear()
    _log_dataset_version(stores, "events", "a")  # before the scheduler: the baseline, not an event
    schedulers = [Scheduler([on_new_events]) for _ in range(3)]
    for s in schedulers:
        s.register()
    _race(schedulers, time.time())
    assert stores.flows.list_flow_runs("on_new_events") == []

    version = _log_dataset_version(stores, "events", "b")
    _race(schedulers, time.time())
    _race(schedulers, time.time())

    runs = stores.flows.list_flow_runs("on_new_events")
    assert len(runs) == 1
    assert runs[0].trigger == f"dataset:events@{version}"
    for s in schedulers:
        s.run_pending(wait=True)
    assert [f"events@{version}"] == SEEN
    assert list_flow_runs("on_new_events")[0].state == "succeeded"

    restarted = Scheduler([on_new_events])
    assert restarted.tick() == []


@flow(triggers=[on_model("churn", "champion", param="model"), on_alert("churn-drift", param="alert")])
def retrain(model: str = "", alert: dict[str, object] | None = None) -> None:
    return None


def test_model_alias_moves_and_alerts_fire_once_each(settings: Settings, stores: Stores) -> None:
    stores.models.ensure_registered_model("churn", description="", owner=None, team=None)
    for _ in range(2):
        stores.models.create_model_version(
            "churn",
            run_id=None,
            flavor="sklearn",
            artifact_path="model",
            manifest_digest="c" * 64,
            signature=None,
            metrics={},
            description="",
            intended_use="",
            limitations="",
        )
    stores.models.set_alias("churn", "champion", 1)
    scheduler = Scheduler([retrain])
    assert scheduler.tick() == []

    stores.models.set_alias("churn", "champion", 2)
    emit_event("alert", "churn-drift", {"column": "f0", "score": 0.4})
    emit_event("alert", "other-alert", {})
    fired = scheduler.tick()

    assert sorted(r.trigger for r in fired) == ["alert:churn-drift#1", "model:churn@champion=2"]
    params = {r.trigger: r.params for r in fired}
    assert params["model:churn@champion=2"] == {"model": "churn/2"}
    assert params["alert:churn-drift#1"] == {"alert": {"column": "f0", "score": 0.4}}
    assert scheduler.tick() == []
    scheduler.run_pending(wait=True)
    assert {r.state for r in stores.flows.list_flow_runs("retrain")} == {"succeeded"}


def test_a_sensor_fires_once_per_key(settings: Settings, stores: Stores) -> None:
    answers = iter([None, "file-1", "file-1", ("file-2", {"label": "second"})])

    @flow(triggers=[sensor(lambda: next(answers), interval=0)])
    def sensed(label: str = "first") -> str:
        return label

    scheduler = Scheduler([sensed])
    fired = [r for _ in range(4) for r in scheduler.tick()]

    assert [r.params for r in fired] == [{}, {"label": "second"}]
    scheduler.run_pending(wait=True)
    assert sorted(r.state for r in stores.flows.list_flow_runs("sensed")) == ["succeeded", "succeeded"]


def test_bad_schedules_are_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match="schedule '61 \\* \\* \\* \\*' is not a valid cron expression"):
        flow(schedule="61 * * * *")(lambda: None)
    with pytest.raises(InvalidInputError, match="timezone 'Mars/Olympus' is unknown"):
        Schedule("0 3 * * *", timezone="Mars/Olympus")
    with pytest.raises(InvalidInputError, match="catchup must be one of latest, all, none"):
        Schedule("0 3 * * *", catchup="sometimes")


def test_schedules_follow_their_timezone() -> None:
    paris = Schedule("0 3 * * *", timezone="Europe/Paris")
    # 2026-07-01 00:00 UTC -> the next 03:00 in Paris (summer, UTC+2) is 01:00 UTC.
    start = 1782864000.0
    assert paris.slots(start, start + 86400)[0] == start + 3600
