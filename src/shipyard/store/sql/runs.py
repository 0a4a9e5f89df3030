"""The SQL implementation of :class:`~shipyard.store.protocols.RunStore`."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, or_, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.store import schema as s
from shipyard.store.entities import ArtifactRef, Experiment, MetricPoint, Page, Run
from shipyard.store.sql._engine import Database
from shipyard.store.sql._filter import compile_filter, compile_order_by
from shipyard.store.sql._upsert import upsert

_MAX_PAGE = 50_000


def _new_id() -> str:
    return uuid.uuid4().hex


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"page_token {token!r} is not one search_runs returned", field="page_token") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"page_token {token!r} is not one search_runs returned", field="page_token")
    return offset


def _metric_value(row: Row[Any]) -> float:
    return math.nan if row.is_nan else float(row.value)


class SqlRunStore:
    """Experiments, runs, params, metrics, tags and artifact records in SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # experiments -----------------------------------------------------------------
    def create_experiment(self, name: str) -> Experiment:
        _check_name("experiment", name)
        experiment = Experiment(id=_new_id(), name=name, created_at=time.time())
        try:
            with self.db.write() as conn:
                conn.execute(
                    s.experiments.insert().values(id=experiment.id, name=name, created_at=experiment.created_at)
                )
        except sa_exc.IntegrityError:
            found = self.find_experiment(name)
            if found is None:
                raise ConflictError(f"experiment {name!r} exists but is deleted") from None
            return found
        return experiment

    def find_experiment(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(s.experiments).where(s.experiments.c.name == name, s.experiments.c.deleted_at.is_(None))
            ).first()
        return None if row is None else Experiment(row.id, row.name, row.created_at)

    def get_experiment(self, name: str) -> Experiment:
        found = self.find_experiment(name)
        if found is None:
            known = ", ".join(e.name for e in self.list_experiments()) or "none"
            raise NotFoundError(f"experiment {name!r} does not exist; experiments are: {known}", field="experiment")
        return found

    def list_experiments(self) -> list[Experiment]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.experiments).where(s.experiments.c.deleted_at.is_(None)).order_by(s.experiments.c.name)
            ).all()
        return [Experiment(r.id, r.name, r.created_at) for r in rows]

    # runs ------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        user: str,
        parent_run_id: str | None,
        lineage: Mapping[str, Any],
        tags: Mapping[str, str],
        start_time: float,
    ) -> Run:
        run_id = _new_id()
        with self.db.write() as conn:
            conn.execute(
                s.runs.insert().values(
                    id=run_id,
                    experiment_id=experiment_id,
                    name=name or run_id[:8],
                    status="running",
                    start_time=start_time,
                    heartbeat_at=start_time,
                    parent_run_id=parent_run_id,
                    user_name=user,
                    lineage=json.dumps(lineage, default=str),
                )
            )
            if tags:
                conn.execute(s.tags.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            runs = self._load_runs(conn, [run_id])
        if not runs:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")
        return runs[0]

    def end_run(self, run_id: str, status: str, end_time: float) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(status=status, end_time=end_time, heartbeat_at=end_time)
            )
        if result.rowcount == 0:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")

    def heartbeat(self, run_ids: Sequence[str], at: float) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(s.runs).where(s.runs.c.id.in_(run_ids), s.runs.c.status == "running").values(heartbeat_at=at)
            )

    def fail_stale_runs(self, older_than: float) -> list[str]:
        stale = and_(s.runs.c.status == "running", s.runs.c.heartbeat_at < older_than)
        with self.db.read() as conn:
            ids = list(conn.execute(select(s.runs.c.id).where(stale)).scalars())
        if not ids:
            return []
        with self.db.write() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id.in_(ids), stale)
                .values(status="failed", end_time=s.runs.c.heartbeat_at)
            )
        return ids

    def delete_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id, s.runs.c.deleted_at.is_(None))
                .values(deleted_at=time.time())
            )
        if result.rowcount == 0:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")

    # logged data -----------------------------------------------------------------
    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "key": p.key,
                "value": 0.0 if math.isnan(p.value) else p.value,
                "is_nan": math.isnan(p.value),
                "step": p.step,
                "timestamp": p.timestamp,
            }
            for p in points
        ]
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            held = latest.get(row["key"])
            if held is None or (row["step"], row["timestamp"]) >= (held["step"], held["timestamp"]):
                latest[row["key"]] = row
        newer = or_(
            upsert.excluded("step") > s.latest_metrics.c.step,
            and_(
                upsert.excluded("step") == s.latest_metrics.c.step,
                upsert.excluded("timestamp") >= s.latest_metrics.c.timestamp,
            ),
        )
        try:
            with self.db.write() as conn:
                conn.execute(s.metrics.insert(), rows)
                upsert.execute(
                    conn,
                    s.latest_metrics,
                    list(latest.values()),
                    keys=("run_id", "key"),
                    update=("value", "is_nan", "step", "timestamp"),
                    where=newer,
                )
        except sa_exc.IntegrityError as exc:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        if not params:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
        with self.db.write() as conn:
            existing = dict(
                conn.execute(
                    select(s.params.c.key, s.params.c.value).where(
                        s.params.c.run_id == run_id, s.params.c.key.in_(list(params))
                    )
                ).all()
            )
            changed = {k: (existing[k], v) for k, v in params.items() if k in existing and existing[k] != v}
            if changed:
                key, (old, new) = next(iter(changed.items()))
                raise ConflictError(
                    f"param {key!r} of run {run_id} is already {old!r}; params are immutable, cannot set {new!r}",
                    field=f"params.{key}",
                )
            fresh = [r for r in rows if r["key"] not in existing]
            if fresh:
                try:
                    conn.execute(s.params.insert(), fresh)
                except sa_exc.IntegrityError as exc:
                    raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
        try:
            with self.db.write() as conn:
                upsert.execute(conn, s.tags, rows, keys=("run_id", "key"), update=("value",))
        except sa_exc.IntegrityError as exc:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        m = s.metrics.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(m.value, m.is_nan, m.step, m.timestamp)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.id)
            ).all()
            if not rows and conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")
        nan = math.nan
        return [MetricPoint(key, nan if is_nan else value, step, ts) for value, is_nan, step, ts in rows]

    # search ----------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None,
        order_by: Sequence[str],
        max_results: int,
        page_token: str | None,
    ) -> Page[Run]:
        if not 0 < max_results <= _MAX_PAGE:
            raise InvalidInputError(
                f"max_results must be between 1 and {_MAX_PAGE}, got {max_results}", field="max_results"
            )
        offset = _decode_token(page_token) if page_token else 0
        where: list[ColumnElement[bool]] = [s.runs.c.deleted_at.is_(None)]
        if experiment_ids:
            where.append(s.runs.c.experiment_id.in_(experiment_ids))
        if filter and filter.strip():
            where.append(compile_filter(filter, self.db.dialect))
        query = (
            select(s.runs.c.id)
            .where(*where)
            .order_by(*compile_order_by(order_by), s.runs.c.start_time.desc(), s.runs.c.id)
            .limit(max_results + 1)
            .offset(offset)
        )
        with self.db.read() as conn:
            ids = list(conn.execute(query).scalars())
            more = len(ids) > max_results
            runs = self._load_runs(conn, ids[:max_results])
        return Page(runs, _encode_token(offset + max_results) if more else None)

    def _load_runs(self, conn: Connection, ids: Sequence[str]) -> list[Run]:
        if not ids:
            return []
        r, e = s.runs.c, s.experiments.c
        rows = conn.execute(
            select(s.runs, e.name.label("experiment_name"))
            .join(s.experiments, e.id == r.experiment_id)
            .where(r.id.in_(ids), r.deleted_at.is_(None))
        ).all()
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        for p in conn.execute(select(s.params).where(s.params.c.run_id.in_(ids))):
            params[p.run_id][p.key] = p.value
        for t in conn.execute(select(s.tags).where(s.tags.c.run_id.in_(ids))):
            tags[t.run_id][t.key] = t.value
        for m in conn.execute(select(s.latest_metrics).where(s.latest_metrics.c.run_id.in_(ids))):
            metrics[m.run_id][m.key] = _metric_value(m)
        by_id = {
            row.id: Run(
                id=row.id,
                experiment_id=row.experiment_id,
                experiment=row.experiment_name,
                name=row.name,
                status=row.status,
                start_time=row.start_time,
                end_time=row.end_time,
                parent_run_id=row.parent_run_id,
                user=row.user_name,
                params=params[row.id],
                metrics=metrics[row.id],
                tags=tags[row.id],
                lineage=json.loads(row.lineage),
            )
            for row in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    # artifacts -------------------------------------------------------------------
    def record_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        if not refs:
            return
        now = time.time()
        rows = [{"run_id": run_id, "path": a.path, "digest": a.digest, "size": a.size, "created_at": now} for a in refs]
        try:
            with self.db.write() as conn:
                upsert.execute(
                    conn, s.artifacts, rows, keys=("run_id", "path"), update=("digest", "size", "created_at")
                )
        except sa_exc.IntegrityError as exc:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRef]:
        a = s.artifacts.c
        query = select(a.path, a.digest, a.size).where(a.run_id == run_id)
        if prefix:
            query = query.where(or_(a.path == prefix, a.path.startswith(prefix.rstrip("/") + "/", autoescape=True)))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(a.path)).all()
        return [ArtifactRef(r.path, r.digest, r.size) for r in rows]

    def count_runs(self) -> int:
        """How many runs exist, deleted ones included (for tests and the CLI summary)."""
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(s.runs)).scalar_one())


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 250:
        raise InvalidInputError(
            f"{kind} name must be a non-empty string of at most 250 characters, got {name!r}", field="name"
        )
