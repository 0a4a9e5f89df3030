"""The SQL implementation of :class:`~shipyard.store.protocols.FlowRunStore`.

Claims (schedule slots, trigger events) are rows with a unique key inserted in the same
transaction as the run they start, so two schedulers racing on one slot enqueue it once,
and a scheduler that restarts finds what it already did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update
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
from shipyard.store.sql._flow_rows import (
    flow_info,
    flow_run,
    flow_run_row,
    queued_run,
    ref_json,
    task_row,
    task_run,
)
from shipyard.store.sql._ids import resolve_prefix
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
        self._task_sql: tuple[str, tuple[str, ...] | None] | None = None

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
        upsert(conn, s.flows, rows, keys=("name",), update=(*keep, "updated_at"))

    def list_flows(self) -> list[FlowInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.flows).order_by(s.flows.c.name)).all()
        return [flow_info(r) for r in rows]

    def find_flow(self, name: str) -> FlowInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(s.flows).where(s.flows.c.name == name)).first()
        return None if row is None else flow_info(row)

    # flow runs -------------------------------------------------------------------
    def create_flow_run(self, run: FlowRun, *, flow: FlowInfo | None = None) -> None:
        with self.db.write() as conn:
            if flow is not None:
                self._register(conn, [flow])
            conn.execute(s.flow_runs.insert().values(**flow_run_row(run)))

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
                .values(state=state, end_time=end_time, heartbeat_at=end_time, result_ref=ref_json(result), error=error)
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
            if row is None:  # a unique prefix of an id names it too
                run_id = resolve_prefix(conn, r.id, run_id, kind="flow run")
                row = conn.execute(select(r.state).where(r.id == run_id).with_for_update()).one()
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
            if row is None:  # a unique prefix of an id names it too
                run_id = resolve_prefix(conn, s.flow_runs.c.id, run_id, kind="flow run")
                row = conn.execute(select(s.flow_runs).where(s.flow_runs.c.id == run_id)).one()
            tasks = self._task_runs(conn, [run_id]) if with_tasks else []
        return flow_run(row, tuple(tasks))

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
        return [flow_run(row, ()) for row in rows]

    # task runs -------------------------------------------------------------------
    def save_task_runs(self, task_runs: Sequence[TaskRun]) -> None:
        if not task_runs:
            return
        rows = [task_row(t) for t in task_runs]
        with self.db.write() as conn:
            sql, order = self._task_upsert(conn)
            if order is None:
                conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]
            else:
                conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])

    def _task_upsert(self, conn: Connection) -> tuple[str, tuple[str, ...] | None]:
        """The task-run upsert compiled once for this dialect, and its positional parameter order.

        A run writes thousands of task rows; handing the driver the compiled SQL skips
        SQLAlchemy's per-row parameter processing, the largest part of the cost.
        """
        if self._task_sql is None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(s.task_runs).values({c.name: bindparam(c.name) for c in s.task_runs.c})
            stmt = insert.on_conflict_do_update(
                index_elements=["id"], set_={name: insert.excluded[name] for name in _TASK_UPDATE}
            )
            compiled = stmt.compile(dialect=conn.dialect)
            order = tuple(compiled.positiontup) if compiled.positiontup else None
            self._task_sql = (str(compiled), order)
        return self._task_sql

    def list_task_runs(self, flow_run_ids: Sequence[str]) -> list[TaskRun]:
        with self.db.read() as conn:
            return self._task_runs(conn, flow_run_ids)

    def _task_runs(self, conn: Connection, flow_run_ids: Sequence[str]) -> list[TaskRun]:
        t = s.task_runs.c
        rows = conn.execute(
            select(s.task_runs).where(t.flow_run_id.in_(list(flow_run_ids))).order_by(t.created_at, t.task_key)
        ).all()
        return [task_run(row) for row in rows]

    def find_cached_task_run(self, cache_key: str, *, newer_than: float | None) -> TaskRun | None:
        t = s.task_runs.c
        query = select(s.task_runs).where(
            t.cache_key == cache_key, t.state.in_(["succeeded", "cached"]), t.output.is_not(None)
        )
        if newer_than is not None:
            query = query.where(t.end_time >= newer_than)
        with self.db.read() as conn:
            row = conn.execute(query.order_by(t.end_time.desc()).limit(1)).first()
        return None if row is None else task_run(row)

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
                run = queued_run(request)
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
                conn.execute(s.flow_runs.insert().values(**flow_run_row(run)))
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

    def last_event_id(self, kind: str, name: str) -> int:
        e = s.flow_events.c
        with self.db.read() as conn:  # one index lookup on (kind, name, id), whatever the number of events
            value = conn.execute(select(func.max(e.id)).where(e.kind == kind, e.name == name)).scalar_one()
        return int(value or 0)
