"""The scheduler: turns schedules and triggers into queued runs, and runs the queue.

Every tick it computes the cron slots due since the last claimed one and polls each
trigger from its stored cursor; each slot or event becomes a run request whose claim (a
unique row, or a cursor moved from the value it read) is written in the same transaction
as the queued run. Two schedulers racing on one slot therefore enqueue it once, and a
restarted scheduler resumes from the claims and cursors in the store: it neither skips nor
repeats a slot. Queued runs are then claimed by priority (highest first, then oldest slot)
within each flow's ``max_active_runs`` and this scheduler's ``max_concurrent_runs``, and run
on one shared executor, so concurrent runs still respect the machine's capacity.

Example:
    >>> scheduler = Scheduler([nightly, on_new_data])   # doctest: +SKIP
    >>> scheduler.serve(threading.Event())              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.flows import _params
from shipyard.flows.api import Flow, crash_stale_runs, run_queued
from shipyard.flows.executors import Executor, LocalExecutor
from shipyard.flows.triggers import Firing, Schedule, Trigger, slot_key
from shipyard.store import Stores
from shipyard.store.entities import CursorMove, FlowInfo, FlowRun, FlowRunRequest
from shipyard.tracking.api import HasStores, resolve_stores

_SLOTS_PER_TICK = 1000


class Scheduler:
    """Schedules, triggers and the run queue for a set of flows."""

    def __init__(
        self,
        flows: Sequence[Flow],
        *,
        client: HasStores | None = None,
        executor: Executor | None = None,
        max_concurrent_runs: int = 4,
        tick_interval: float = 5.0,
        on_event: Callable[[str, FlowRun], None] | None = None,
    ) -> None:
        """``on_event(what, run)`` is called with ``"started"`` and then the final state of each run it executes."""
        if max_concurrent_runs < 1:
            raise InvalidInputError(f"max_concurrent_runs must be >= 1, got {max_concurrent_runs}", field="max_runs")
        names = [f.name for f in flows]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"two flows are named {duplicates[0]!r}; flow names must be unique", field="flows")
        self.stores: Stores = resolve_stores(client)
        self.flows = {f.name: f for f in flows}
        self.executor = executor or LocalExecutor()
        self.max_concurrent_runs = max_concurrent_runs
        self.tick_interval = tick_interval
        self._pool = ThreadPoolExecutor(max_concurrent_runs, thread_name_prefix="shipyard-flow-run")
        self._running: set[Future[FlowRun]] = set()
        self._lock = threading.Lock()
        self._registered = False
        self._last_poll: dict[tuple[str, str], float] = {}
        self._on_event = on_event or (lambda what, run: None)

    def register(self) -> None:
        """Record the flows (schedule, triggers, owners) and start each trigger's cursor at 'now'."""
        for flow in self.flows.values():
            if flow.schedule is not None:
                self._params(flow, flow.schedule.params)  # a schedule whose runs would all fail: say so now
        self.stores.flows.register_flows([f.info() for f in self.flows.values()])
        for flow in self.flows.values():
            baselines = {t.key: t.baseline(self.stores) for t in flow.triggers}
            if baselines:
                self.stores.flows.init_trigger_cursors(flow.name, baselines)
        self._registered = True

    # schedules and triggers ------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[FlowRun]:
        """Enqueue the runs that schedules and triggers call for now; returns the runs this call enqueued."""
        now = time.time() if now is None else now
        if not self._registered:
            self.register()
        crash_stale_runs(self.stores)
        enqueued: list[FlowRun] = []
        for flow in self.flows.values():
            try:
                requests = self._schedule_requests(flow, now) + self._trigger_requests(flow, now)
                if requests:
                    enqueued.extend(self.stores.flows.enqueue_flow_runs(requests))
            except Exception as exc:  # one broken trigger must not stop the others
                print(f"shipyard scheduler: flow {flow.name!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return enqueued

    def _schedule_requests(self, flow: Flow, now: float) -> list[FlowRunRequest]:
        schedule = flow.schedule
        if schedule is None:
            return []
        # Slots before the flow was first registered are never due: a backfill runs those.
        info = self.stores.flows.find_flow(flow.name)
        last = max(self.stores.flows.last_slot_time(flow.name) or 0.0, info.created_at if info is not None else now)
        due = schedule.slots(last, now)[:_SLOTS_PER_TICK]
        if schedule.catchup == "latest":
            due = due[-1:]
        elif schedule.catchup == "none":
            due = [s for s in due[-1:] if now - s <= schedule.grace]
        params = self._params(flow, schedule.params)
        return [_slot_request(flow, schedule, slot, params, "schedule") for slot in due]

    def _trigger_requests(self, flow: Flow, now: float) -> list[FlowRunRequest]:
        if not flow.triggers:
            return []
        cursors = self.stores.flows.init_trigger_cursors(flow.name, {})
        requests: list[FlowRunRequest] = []
        for trigger in flow.triggers:
            if not self._poll_due(flow, trigger, now):
                continue
            cursor = cursors.get(trigger.key)
            if cursor is None:  # a trigger added since registration: it starts at 'now'
                self.stores.flows.init_trigger_cursors(flow.name, {trigger.key: trigger.baseline(self.stores)})
                continue
            for firing in trigger.poll(self.stores, cursor):
                requests.append(self._firing_request(flow, trigger, cursor, firing))
                cursor = firing.cursor
        return requests

    def _poll_due(self, flow: Flow, trigger: Trigger, now: float) -> bool:
        interval = getattr(trigger, "interval", None)
        if interval is None:
            return True
        key = (flow.name, trigger.key)
        if now - self._last_poll.get(key, float("-inf")) < interval:
            return False
        self._last_poll[key] = now
        return True

    def _firing_request(self, flow: Flow, trigger: Trigger, cursor: str, firing: Firing) -> FlowRunRequest:
        move = None if firing.claim_key is not None else CursorMove(trigger.key, cursor, firing.cursor)
        return FlowRunRequest(
            flow_name=flow.name,
            params=self._params(flow, firing.params),
            trigger=firing.label,
            priority=trigger.priority,
            claim_key=firing.claim_key,
            cursor=move,
            entrypoint=flow.entrypoint,
        )

    def _params(self, flow: Flow, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters for a queued run: checked now, stored as given (defaults fill in at run time)."""
        _params.bind_params(flow.fn, flow.name, (), dict(params))
        return dict(params)

    # the queue ---------------------------------------------------------------------------
    def run_pending(self, *, wait: bool = False) -> list[FlowRun]:
        """Claim queued runs of these flows (within the limits) and start them; ``wait`` for them to end."""
        with self._lock:
            self._running = {f for f in self._running if not f.done()}
            free = self.max_concurrent_runs - len(self._running)
        claimed = (
            self.stores.flows.claim_queued_flow_runs(list(self.flows), limit=free, at=time.time()) if free > 0 else []
        )
        futures = [self._pool.submit(self._execute, record) for record in claimed]
        with self._lock:
            self._running.update(futures)
        if wait:
            self.wait()
        return claimed

    def _execute(self, record: FlowRun) -> FlowRun:
        flow = self.flows[record.flow_name]
        self._on_event("started", record)
        try:
            final = run_queued(flow, record, stores=self.stores, executor=self.executor)
        except Exception as exc:  # bad stored parameters and the like: the run ends failed, with why
            self.stores.flows.end_flow_run(record.id, "failed", end_time=time.time(), result=None, error=str(exc))
            self._on_event("failed", record)
            raise
        self._on_event(final.state, final)
        return final

    def wait(self) -> None:
        """Block until the runs this scheduler started have ended."""
        while True:
            with self._lock:
                running = [f for f in self._running if not f.done()]
            if not running:
                return
            for future in running:
                future.exception()

    def serve(self, stop: threading.Event) -> None:
        """Tick and run the queue every ``tick_interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.tick()
            self.run_pending()
            stop.wait(self.tick_interval)

    def close(self) -> None:
        """Wait for running flows, then release the executor's workers."""
        self.wait()
        self._pool.shutdown(wait=True)
        self.executor.close()


def _slot_request(
    flow: Flow | FlowInfo,
    schedule: Schedule,
    slot: float,
    params: Mapping[str, Any],
    trigger: str,
    priority: int | None = None,
) -> FlowRunRequest:
    return FlowRunRequest(
        flow_name=flow.name,
        params=dict(params),
        trigger=f"{trigger}:{slot_key(slot).removeprefix('cron:')}",
        priority=schedule.priority if priority is None else priority,
        scheduled_time=slot,
        claim_key=slot_key(slot),
        entrypoint=flow.entrypoint,
    )


def backfill(
    flow_name: str, start: float, end: float, *, priority: int = -1, client: HasStores | None = None
) -> list[FlowRun]:
    """Queue a run for every slot of the flow's schedule in ``[start, end]`` not already claimed.

    Slots a scheduler already ran (or queued) are skipped by their claims, so a backfill
    over a period the scheduler covered adds nothing. Runs execute with the flow's default
    parameters when a scheduler picks them up.
    """
    stores = resolve_stores(client)
    info = stores.flows.find_flow(flow_name)
    if info is None:
        known = ", ".join(f.name for f in stores.flows.list_flows()) or "none"
        raise NotFoundError(f"flow {flow_name!r} is not known here; known flows: {known}", field="flow")
    if info.schedule is None:
        raise InvalidInputError(f"flow {flow_name!r} has no schedule to backfill", field="flow")
    if end < start:
        raise InvalidInputError("--end must not be before --start", field="end")
    schedule = Schedule(info.schedule, timezone=info.timezone)
    slots = schedule.slots(start - 1e-6, end)
    requests = [_slot_request(info, schedule, slot, {}, "backfill", priority) for slot in slots]
    return stores.flows.enqueue_flow_runs(requests)
