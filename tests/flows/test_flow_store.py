"""The FlowRunStore contract, on SQLite and PostgreSQL: claims, cursors, queue, cancel, crash, events."""

from __future__ import annotations

import time

import pytest

from shipyard.errors import ConflictError, NotFoundError
from shipyard.store import Stores
from shipyard.store.entities import CursorMove, FlowInfo, FlowRunRequest, StoredValue


def _info(name: str, max_active_runs: int | None = None) -> FlowInfo:
    now = time.time()
    return FlowInfo(name, "", None, None, "UTC", (), (), max_active_runs, now, now)


def test_a_claim_key_enqueues_once(stores: Stores) -> None:
    request = FlowRunRequest("nightly", {}, "schedule", claim_key="cron:2026-01-01T03:00:00+00:00", scheduled_time=1.0)

    first = stores.flows.enqueue_flow_runs([request, request])
    again = stores.flows.enqueue_flow_runs([request])

    assert len(first) == 1
    assert again == []
    assert stores.flows.last_slot_time("nightly") == 1.0


def test_a_cursor_moves_only_from_the_value_read(stores: Stores) -> None:
    assert stores.flows.init_trigger_cursors("f", {"dataset:events": "2"}) == {"dataset:events": "2"}
    assert stores.flows.init_trigger_cursors("f", {"dataset:events": "9"}) == {"dataset:events": "2"}

    moved = stores.flows.enqueue_flow_runs(
        [
            FlowRunRequest("f", {}, "dataset:events@3", cursor=CursorMove("dataset:events", "2", "3")),
            FlowRunRequest("f", {}, "dataset:events@3", cursor=CursorMove("dataset:events", "2", "3")),
            FlowRunRequest("f", {}, "dataset:events@4", cursor=CursorMove("dataset:events", "3", "4")),
        ]
    )

    assert [r.trigger for r in moved] == ["dataset:events@3", "dataset:events@4"]
    assert stores.flows.init_trigger_cursors("f", {}) == {"dataset:events": "4"}


def test_the_queue_is_claimed_by_priority_within_max_active_runs(stores: Stores) -> None:
    stores.flows.register_flows([_info("capped", max_active_runs=1), _info("free")])
    low, high = stores.flows.enqueue_flow_runs(
        [FlowRunRequest("capped", {}, "a", priority=0), FlowRunRequest("capped", {}, "b", priority=9)]
    )
    free = stores.flows.enqueue_flow_runs([FlowRunRequest("free", {}, "c"), FlowRunRequest("free", {}, "d")])

    claimed = stores.flows.claim_queued_flow_runs(["capped", "free"], limit=10, at=time.time())
    assert {r.id for r in claimed} == {high.id, free[0].id, free[1].id}
    assert all(r.state == "running" for r in claimed)
    assert stores.flows.claim_queued_flow_runs(["capped"], limit=10, at=time.time()) == []

    stores.flows.end_flow_run(high.id, "succeeded", end_time=time.time(), result=None, error=None)
    assert [r.id for r in stores.flows.claim_queued_flow_runs(["capped"], limit=10, at=time.time())] == [low.id]


def test_cancel_a_queued_run_at_once_and_a_running_one_by_request(stores: Stores) -> None:
    queued, running = stores.flows.enqueue_flow_runs([FlowRunRequest("f", {}, "a"), FlowRunRequest("f", {}, "b")])
    stores.flows.start_flow_run(running.id, from_states=["pending"], tracking_run_id=None, executor="local", at=1.0)

    assert stores.flows.request_cancel(queued.id, time.time()).state == "cancelled"
    asked = stores.flows.request_cancel(running.id, time.time())
    assert (asked.state, asked.cancel_requested) == ("running", True)
    assert stores.flows.heartbeat_flow_runs([running.id], time.time()) == [running.id]
    with pytest.raises(ConflictError, match="already cancelled"):
        stores.flows.request_cancel(queued.id, time.time())
    with pytest.raises(ConflictError, match="it can only be started from: failed"):
        stores.flows.start_flow_run(queued.id, from_states=["failed"], tracking_run_id=None, executor="local", at=1.0)
    with pytest.raises(NotFoundError):
        stores.flows.get_flow_run("nope")


def test_runs_that_stop_beating_are_crashed(stores: Stores) -> None:
    (run,) = stores.flows.enqueue_flow_runs([FlowRunRequest("f", {}, "a")])
    stores.flows.start_flow_run(run.id, from_states=["pending"], tracking_run_id=None, executor="local", at=100.0)

    assert stores.flows.crash_stale_flow_runs(older_than=50.0) == []
    assert stores.flows.crash_stale_flow_runs(older_than=200.0) == [run.id]
    crashed = stores.flows.get_flow_run(run.id)
    assert (crashed.state, crashed.end_time) == ("crashed", 100.0)


def test_events_and_values(stores: Stores) -> None:
    first, second = stores.flows.emit_events([("alert", "drift", {"score": 1}), ("alert", "drift", {"score": 2})])

    assert [e.payload for e in stores.flows.list_events("alert", "drift")] == [{"score": 1}, {"score": 2}]
    assert stores.flows.list_events("alert", "drift", after_id=first.id) == [
        e for e in stores.flows.list_events("alert", "drift") if e.id == second.id
    ]
    stores.flows.save_values([StoredValue("a" * 64, 3, b"abc"), StoredValue("b" * 64, 9, None)])
    stores.flows.save_values([StoredValue("a" * 64, 3, b"abc")])
    assert stores.flows.load_inline_values(["a" * 64, "b" * 64]) == {"a" * 64: b"abc"}
