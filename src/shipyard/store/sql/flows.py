"""The SQL implementation of :class:`~shipyard.store.protocols.FlowRunStore`.

Claims (schedule slots, trigger events) are rows with a unique key inserted in the same
transaction as the run they start, so two schedulers racing on one slot enqueue it once,
and a scheduler that restarts finds what it already did.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.errors import ConflictError, NotFoundError
from shipyard.store import schema as s
from shipyard.store.entities import (
    FlowEvent,
    FlowInfo,
    FlowRun,
    FlowRunRequest,
    StoredValue,
    TaskLogLine,
    TaskRun,
    ValueRef,
)
from shipyard.store.sql._engine import Database
from shipyard.store.sql._upsert import upsert

_TASK_UPDATE = (
    "state",
    "attempts",
    "start_time",
    "end_time",
    "resources",
    "tags",
    "upstream",
    "inputs",
    "input_hash",
    "cache_key",
    "output",
    "error",
    "kind",
    "reused_from",
    "tracking_run_id",
    "options",
)
_LIVE_TASK_STATES = ("pending", "running", "retrying")


@functools.lru_cache(maxsize=1024)
def _dumps_items(items: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(dict(items), default=repr)


def _dumps_mapping(value: Mapping[str, Any]) -> str:
    """JSON of a small mapping that repeats across rows (resources, options), encoded once."""
    try:
        return _dumps_items(tuple(value.items()))
    except TypeError:  # an unhashable value: encode it directly
        return json.dumps(dict(value), default=repr)


@functools.lru_cache(maxsize=1024)
def _loads_cached(text: str) -> Any:
    return json.loads(text)


def _loads_small(text: str) -> Any:
    """JSON of a repeated small value, decoded once; callers must not mutate the result."""
    return _loads_cached(text) if len(text) < 200 else json.loads(text)


def _ref_dict(ref: ValueRef) -> dict[str, Any]:
    return {"digest": ref.digest, "serializer": ref.serializer, "size": ref.size, "type_name": ref.type_name}


def _ref_json(ref: ValueRef | None) -> str | None:
    return None if ref is None else json.dumps(_ref_dict(ref))


def _ref(raw: str | None) -> ValueRef | None:
    return None if raw is None else ValueRef(**json.loads(raw))


def _insert_ignore(conn: Connection, table: Any, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its key exists; True when this call inserted it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    # RETURNING, not rowcount: psycopg reports -1 for a conflicting-or-not INSERT here.
    result = conn.execute(dialect.insert(table).values(**row).on_conflict_do_nothing().returning(key))
    return result.first() is not None


class SqlFlowRunStore:
    """Flows, flow runs, task runs, task logs, values, claims, trigger cursors and events."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # flows -----------------------------------------------------------------------
    def register_flows(self, flows: Sequence[FlowInfo]) -> None:
        if not flows:
            return
        with self.db.write() as conn:
            self._register(conn, flows)

    def _register(self, conn: Connection, flows: Sequence[FlowInfo]) -> None:
        rows = [
            {
                "name": f.name,
                "description": f.description,
                "entrypoint": f.entrypoint,
                "schedule": f.schedule,
                "timezone": f.timezone,
                "triggers": json.dumps(list(f.triggers)),
                "owners": json.dumps(list(f.owners)),
                "max_active_runs": f.max_active_runs,
                "created_at": f.created_at,
                "updated_at": f.updated_at,
            }
            for f in flows
        ]
        keep = ("description", "entrypoint", "schedule", "timezone", "triggers", "owners", "max_active_runs")
        upsert.execute(conn, s.flows, rows, keys=("name",), update=(*keep, "updated_at"))

    def list_flows(self) -> list[FlowInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.flows).order_by(s.flows.c.name)).all()
        return [_flow_info(r) for r in rows]

    def find_flow(self, name: str) -> FlowInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(s.flows).where(s.flows.c.name == name)).first()
        return None if row is None else _flow_info(row)

    # flow runs -------------------------------------------------------------------
    def create_flow_run(self, run: FlowRun, *, flow: FlowInfo | None = None) -> None:
        with self.db.write() as conn:
            if flow is not None:
                self._register(conn, [flow])
            conn.execute(s.flow_runs.insert().values(**_flow_run_row(run)))

    def start_flow_run(
        self, run_id: str, *, from_states: Sequence[str], tracking_run_id: str | None, executor: str, at: float
    ) -> FlowRun:
        r = s.flow_runs.c
        with self.db.write() as conn:
            result = conn.execute(
                update(s.flow_runs)
                .where(r.id == run_id, r.state.in_(list(from_states)))
                .values(
                    state="running",
                    start_time=func.coalesce(r.start_time, at),
                    end_time=None,
                    heartbeat_at=at,
                    tracking_run_id=tracking_run_id,
                    executor=executor,
                    run_count=r.run_count + 1,
                    error=None,
                    cancel_requested=False,
                )
            )
            if result.rowcount == 0:
                row = conn.execute(select(r.state).where(r.id == run_id)).first()
                if row is None:
                    raise NotFoundError(f"flow run {run_id!r} does not exist", field="run_id")
                allowed = ", ".join(from_states)
                raise ConflictError(
                    f"flow run {run_id} is {row.state}; it can only be started from: {allowed}", field="run_id"
                )
        return self.get_flow_run(run_id)

    def end_flow_run(
        self, run_id: str, state: str, *, end_time: float, result: ValueRef | None, error: str | None
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(s.flow_runs)
                .where(s.flow_runs.c.id == run_id)
                .values(
                    state=state, end_time=end_time, heartbeat_at=end_time, result_ref=_ref_json(result), error=error
                )
            )

    def heartbeat_flow_runs(self, run_ids: Sequence[str], at: float) -> list[str]:
        r = s.flow_runs.c
        with self.db.write() as conn:
            conn.execute(
                update(s.flow_runs).where(r.id.in_(list(run_ids)), r.state == "running").values(heartbeat_at=at)
            )
            cancelled = conn.execute(select(r.id).where(r.id.in_(list(run_ids)), r.cancel_requested.is_(True)))
            return list(cancelled.scalars())

    def crash_stale_flow_runs(self, older_than: float) -> list[str]:
        r = s.flow_runs.c
        stale = and_(r.state == "running", r.heartbeat_at < older_than)
        with self.db.read() as conn:
            ids = list(conn.execute(select(r.id).where(stale)).scalars())
        if not ids:
            return []
        with self.db.write() as conn:
            ids = list(conn.execute(select(r.id).where(r.id.in_(ids), stale)).scalars())
            conn.execute(
                update(s.flow_runs)
                .where(r.id.in_(ids))
                .values(
                    state="crashed",
                    end_time=r.heartbeat_at,
                    error="the process running this flow run stopped beating (killed, or the machine died)",
                )
            )
            t = s.task_runs.c
            conn.execute(
                update(s.task_runs)
                .where(t.flow_run_id.in_(ids), t.state.in_(_LIVE_TASK_STATES))
                .values(state="crashed", error="the flow run's process died while this task was live")
            )
        return ids

    def request_cancel(self, run_id: str, at: float) -> FlowRun:
        r = s.flow_runs.c
        with self.db.write() as conn:
            row = conn.execute(select(r.state).where(r.id == run_id).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"flow run {run_id!r} does not exist", field="run_id")
            if row.state == "pending":
                conn.execute(
                    update(s.flow_runs)
                    .where(r.id == run_id)
                    .values(state="cancelled", end_time=at, error="cancelled before it started")
                )
            elif row.state == "running":
                conn.execute(update(s.flow_runs).where(r.id == run_id).values(cancel_requested=True))
            else:
                raise ConflictError(f"flow run {run_id} is already {row.state}; only pending or running runs cancel")
        return self.get_flow_run(run_id)

    def get_flow_run(self, run_id: str, *, with_tasks: bool = True) -> FlowRun:
        with self.db.read() as conn:
            row = conn.execute(select(s.flow_runs).where(s.flow_runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"flow run {run_id!r} does not exist", field="run_id")
            tasks = self._task_runs(conn, [run_id]) if with_tasks else []
        return _flow_run(row, tuple(tasks))

    def list_flow_runs(
        self, flow_name: str | None = None, *, states: Sequence[str] = (), limit: int = 50
    ) -> list[FlowRun]:
        r = s.flow_runs.c
        query = select(s.flow_runs).order_by(r.created_at.desc(), r.id).limit(limit)
        if flow_name is not None:
            query = query.where(r.flow_name == flow_name)
        if states:
            query = query.where(r.state.in_(list(states)))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_flow_run(row, ()) for row in rows]

    # task runs -------------------------------------------------------------------
    def save_task_runs(self, task_runs: Sequence[TaskRun]) -> None:
        if not task_runs:
            return
        rows = [_task_row(t) for t in task_runs]
        with self.db.write() as conn:
            upsert.execute(conn, s.task_runs, rows, keys=("id",), update=_TASK_UPDATE)

    def list_task_runs(self, flow_run_ids: Sequence[str]) -> list[TaskRun]:
        with self.db.read() as conn:
            return self._task_runs(conn, flow_run_ids)

    def _task_runs(self, conn: Connection, flow_run_ids: Sequence[str]) -> list[TaskRun]:
        t = s.task_runs.c
        rows = conn.execute(
            select(s.task_runs).where(t.flow_run_id.in_(list(flow_run_ids))).order_by(t.created_at, t.task_key)
        ).all()
        return [_task_run(row) for row in rows]

    def find_cached_task_run(self, cache_key: str, *, newer_than: float | None) -> TaskRun | None:
        t = s.task_runs.c
        query = select(s.task_runs).where(
            t.cache_key == cache_key, t.state.in_(["succeeded", "cached"]), t.output.is_not(None)
        )
        if newer_than is not None:
            query = query.where(t.end_time >= newer_than)
        with self.db.read() as conn:
            row = conn.execute(query.order_by(t.end_time.desc()).limit(1)).first()
        return None if row is None else _task_run(row)

    def append_task_logs(self, lines: Sequence[TaskLogLine]) -> None:
        if not lines:
            return
        rows = [
            {
                "flow_run_id": x.flow_run_id,
                "task_run_id": x.task_run_id,
                "task_key": x.task_key,
                "stream": x.stream,
                "text": x.text,
                "timestamp": x.timestamp,
            }
            for x in lines
        ]
        with self.db.write() as conn:
            conn.execute(s.task_logs.insert(), rows)

    def read_task_logs(
        self, flow_run_id: str, *, task_key: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[TaskLogLine]:
        g = s.task_logs.c
        query = select(s.task_logs).where(g.flow_run_id == flow_run_id, g.id > after_id)
        if task_key is not None:
            query = query.where(g.task_key == task_key)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(g.id).limit(limit)).all()
        return [
            TaskLogLine(r.flow_run_id, r.task_run_id, r.task_key, r.stream, r.text, r.timestamp, id=r.id) for r in rows
        ]

    # values ----------------------------------------------------------------------
    def save_values(self, values: Sequence[StoredValue]) -> None:
        if not values:
            return
        now = time.time()
        unique = {v.digest: v for v in values}
        rows = [{"digest": v.digest, "size": v.size, "data": v.data, "created_at": now} for v in unique.values()]
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        with self.db.write() as conn:
            conn.execute(dialect.insert(s.flow_values).on_conflict_do_nothing(), rows)

    def load_inline_values(self, digests: Sequence[str]) -> dict[str, bytes]:
        v = s.flow_values.c
        with self.db.read() as conn:
            rows = conn.execute(select(v.digest, v.data).where(v.digest.in_(list(digests)), v.data.is_not(None)))
            return {row.digest: bytes(row.data) for row in rows}

    # queue, claims and cursors ---------------------------------------------------
    def enqueue_flow_runs(self, requests: Sequence[FlowRunRequest]) -> list[FlowRun]:
        created: list[FlowRun] = []
        with self.db.write() as conn:
            for request in requests:
                run = _queued_run(request)
                if request.cursor is not None and not self._move_cursor(conn, request):
                    continue
                if request.claim_key is not None:
                    claim = {
                        "flow_name": request.flow_name,
                        "claim_key": request.claim_key,
                        "slot_time": request.scheduled_time,
                        "flow_run_id": run.id,
                        "claimed_at": run.created_at,
                    }
                    if not _insert_ignore(conn, s.flow_claims, claim):
                        continue
                conn.execute(s.flow_runs.insert().values(**_flow_run_row(run)))
                created.append(run)
        return created

    def _move_cursor(self, conn: Connection, request: FlowRunRequest) -> bool:
        cursor = request.cursor
        assert cursor is not None
        c = s.flow_trigger_cursors.c
        if cursor.expected is None:
            row = {
                "flow_name": request.flow_name,
                "trigger_key": cursor.key,
                "value": cursor.new,
                "updated_at": time.time(),
            }
            return _insert_ignore(conn, s.flow_trigger_cursors, row)
        result = conn.execute(
            update(s.flow_trigger_cursors)
            .where(c.flow_name == request.flow_name, c.trigger_key == cursor.key, c.value == cursor.expected)
            .values(value=cursor.new, updated_at=time.time())
        )
        return bool(result.rowcount == 1)

    def claim_queued_flow_runs(self, flow_names: Sequence[str], *, limit: int, at: float) -> list[FlowRun]:
        r = s.flow_runs.c
        claimed: list[str] = []
        with self.db.write() as conn:
            # Lock the flows' rows so two schedulers count active runs one after the other.
            locked = conn.execute(
                select(s.flows.c.name, s.flows.c.max_active_runs)
                .where(s.flows.c.name.in_(list(flow_names)))
                .with_for_update()
            )
            limits: dict[str, int | None] = {row.name: row.max_active_runs for row in locked}
            counted = conn.execute(
                select(r.flow_name, func.count().label("n"))
                .where(r.flow_name.in_(list(flow_names)), r.state == "running")
                .group_by(r.flow_name)
            )
            active: dict[str, int] = {row.flow_name: int(row.n) for row in counted}
            queued = conn.execute(
                select(r.id, r.flow_name)
                .where(r.flow_name.in_(list(flow_names)), r.state == "pending")
                .order_by(r.priority.desc(), func.coalesce(r.scheduled_time, r.created_at), r.created_at, r.id)
            ).all()
            for row in queued:
                if len(claimed) >= limit:
                    break
                cap = limits.get(row.flow_name)
                if cap is not None and active.get(row.flow_name, 0) >= cap:
                    continue
                result = conn.execute(
                    update(s.flow_runs)
                    .where(r.id == row.id, r.state == "pending")
                    .values(state="running", start_time=at, heartbeat_at=at)
                )
                if result.rowcount == 1:
                    claimed.append(row.id)
                    active[row.flow_name] = active.get(row.flow_name, 0) + 1
        return [self.get_flow_run(run_id) for run_id in claimed]

    def last_slot_time(self, flow_name: str) -> float | None:
        c = s.flow_claims.c
        with self.db.read() as conn:
            value = conn.execute(select(func.max(c.slot_time)).where(c.flow_name == flow_name)).scalar_one()
        return None if value is None else float(value)

    def init_trigger_cursors(self, flow_name: str, values: Mapping[str, str]) -> dict[str, str]:
        c = s.flow_trigger_cursors.c
        now = time.time()
        with self.db.write() as conn:
            for key, value in values.items():
                row = {"flow_name": flow_name, "trigger_key": key, "value": value, "updated_at": now}
                _insert_ignore(conn, s.flow_trigger_cursors, row)
            rows = conn.execute(select(c.trigger_key, c.value).where(c.flow_name == flow_name))
            return {row.trigger_key: row.value for row in rows}

    # events ----------------------------------------------------------------------
    def emit_events(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[FlowEvent]:
        now = time.time()
        out: list[FlowEvent] = []
        with self.db.write() as conn:
            for kind, name, payload in events:
                text = json.dumps(dict(payload), default=str)
                row = conn.execute(
                    s.flow_events.insert()
                    .values(kind=kind, name=name, payload=text, created_at=now)
                    .returning(s.flow_events.c.id)
                ).one()
                out.append(FlowEvent(int(row.id), kind, name, dict(payload), now))
        return out

    def list_events(self, kind: str, name: str, *, after_id: int = 0, limit: int = 1000) -> list[FlowEvent]:
        e = s.flow_events.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.flow_events).where(e.kind == kind, e.name == name, e.id > after_id).order_by(e.id).limit(limit)
            ).all()
        return [FlowEvent(int(r.id), r.kind, r.name, json.loads(r.payload), r.created_at) for r in rows]


def _flow_info(row: Row[Any]) -> FlowInfo:
    return FlowInfo(
        name=row.name,
        description=row.description,
        entrypoint=row.entrypoint,
        schedule=row.schedule,
        timezone=row.timezone,
        triggers=tuple(json.loads(row.triggers)),
        owners=tuple(json.loads(row.owners)),
        max_active_runs=row.max_active_runs,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _queued_run(request: FlowRunRequest) -> FlowRun:
    import uuid

    return FlowRun(
        id=uuid.uuid4().hex,
        flow_name=request.flow_name,
        state="pending",
        params=dict(request.params),
        created_at=time.time(),
        start_time=None,
        end_time=None,
        heartbeat_at=None,
        tracking_run_id=None,
        executor="local",
        trigger=request.trigger,
        scheduled_time=request.scheduled_time,
        priority=request.priority,
        run_count=0,
        error=None,
        result_ref=None,
        params_ref=None,
        entrypoint=request.entrypoint,
    )


def _flow_run_row(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow_name": run.flow_name,
        "state": run.state,
        "params": json.dumps(dict(run.params), default=repr),
        "params_ref": _ref_json(run.params_ref),
        "created_at": run.created_at,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "heartbeat_at": run.heartbeat_at,
        "tracking_run_id": run.tracking_run_id,
        "executor": run.executor,
        "trigger": run.trigger,
        "scheduled_time": run.scheduled_time,
        "priority": run.priority,
        "run_count": run.run_count,
        "error": run.error,
        "result_ref": _ref_json(run.result_ref),
        "entrypoint": run.entrypoint,
        "cancel_requested": run.cancel_requested,
    }


def _flow_run(row: Row[Any], tasks: tuple[TaskRun, ...]) -> FlowRun:
    return FlowRun(
        id=row.id,
        flow_name=row.flow_name,
        state=row.state,
        params=json.loads(row.params),
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        heartbeat_at=row.heartbeat_at,
        tracking_run_id=row.tracking_run_id,
        executor=row.executor,
        trigger=row.trigger,
        scheduled_time=row.scheduled_time,
        priority=row.priority,
        run_count=row.run_count,
        error=row.error,
        result_ref=_ref(row.result_ref),
        params_ref=_ref(row.params_ref),
        entrypoint=row.entrypoint,
        cancel_requested=bool(row.cancel_requested),
        tasks=tasks,
    )


def _task_row(t: TaskRun) -> dict[str, Any]:
    return {
        "id": t.id,
        "flow_run_id": t.flow_run_id,
        "task_key": t.task_key,
        "name": t.name,
        "state": t.state,
        "attempts": t.attempts,
        "created_at": t.created_at,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "resources": _dumps_mapping(t.resources),
        "tags": json.dumps(list(t.tags)) if t.tags else "[]",
        "upstream": json.dumps(list(t.upstream)) if t.upstream else "[]",
        "inputs": json.dumps({k: None if v is None else _ref_dict(v) for k, v in t.inputs.items()}),
        "input_hash": t.input_hash,
        "cache_key": t.cache_key,
        "output": _ref_json(t.output),
        "error": t.error,
        "kind": t.kind,
        "reused_from": t.reused_from,
        "tracking_run_id": t.tracking_run_id,
        "options": _dumps_mapping(t.options),
    }


def _task_run(row: Row[Any]) -> TaskRun:
    inputs = {k: None if v is None else ValueRef(**v) for k, v in json.loads(row.inputs).items()}
    return TaskRun(
        id=row.id,
        flow_run_id=row.flow_run_id,
        task_key=row.task_key,
        name=row.name,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        resources=dict(_loads_small(row.resources)),
        tags=tuple(_loads_small(row.tags)),
        upstream=tuple(json.loads(row.upstream)),
        inputs=inputs,
        input_hash=row.input_hash,
        cache_key=row.cache_key,
        output=_ref(row.output),
        error=row.error,
        kind=row.kind,
        reused_from=row.reused_from,
        tracking_run_id=row.tracking_run_id,
        options=dict(_loads_small(row.options)),
    )
