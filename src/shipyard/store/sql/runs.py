"""The SQL implementation of :class:`~shipyard.store.protocols.RunStore`."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.store import schema as s
from shipyard.store.entities import ArtifactRef, Experiment, MetricPoint, Page, Run
from shipyard.store.sql import _driver as driver
from shipyard.store.sql._engine import Database
from shipyard.store.sql._filter import compile_filter, compile_order_by
from shipyard.store.sql._ids import resolve_prefix
from shipyard.store.sql._upsert import upsert

_MAX_PAGE = 50_000
REOPENED_TAG = "shipyard.reopened"


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
        artifacts: Sequence[ArtifactRef] = (),
    ) -> Run:
        run_id = _new_id()
        name = name or run_id[:8]
        lineage_json = json.dumps(lineage, default=str)
        with self.db.write() as conn:
            cur = driver.cursor(conn)
            try:
                cur.execute(
                    driver.INSERT_RUN,
                    (run_id, experiment_id, name, start_time, start_time, parent_run_id, user, lineage_json),
                )
            except cur.errors.IntegrityError as exc:
                raise NotFoundError(f"experiment id {experiment_id!r} does not exist", field="experiment") from exc
            if tags:
                cur.executemany(driver.INSERT_TAG, [(run_id, k, v) for k, v in tags.items()])
            if artifacts:
                cur.executemany(
                    driver.UPSERT_ARTIFACT, [(run_id, a.path, a.digest, a.size, start_time) for a in artifacts]
                )
            experiment = cur.execute("SELECT name FROM experiments WHERE id = ?", (experiment_id,))[0][0]
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            experiment=experiment,
            name=name,
            status="running",
            start_time=start_time,
            end_time=None,
            parent_run_id=parent_run_id,
            user=user,
            tags=dict(tags),
            lineage=json.loads(lineage_json),
        )

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            runs = self._load_runs(conn, [run_id])
            if not runs:  # a unique prefix of an id names it too
                alive = s.runs.c.deleted_at.is_(None)
                runs = self._load_runs(conn, [resolve_prefix(conn, s.runs.c.id, run_id, kind="run", where=alive)])
        return runs[0]

    def end_run(self, run_id: str, status: str, end_time: float, points: Sequence[MetricPoint] = ()) -> None:
        with self.db.write() as conn:
            if points:
                self._write_points(conn, run_id, points)
            self._record_reopen(conn, run_id, status)
            cur = driver.cursor(conn)
            cur.execute(driver.END_RUN, (status, end_time, end_time, run_id))
            if cur.rowcount() == 0:
                raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")

    def _record_reopen(self, conn: Connection, run_id: str, status: str) -> None:
        # A live process whose heartbeat lapsed (a long GC pause, a suspended laptop) may still
        # end its run: it wins, as the one that knows, and the flip stays recorded in a tag.
        row = conn.execute(select(s.runs.c.status, s.runs.c.heartbeat_at).where(s.runs.c.id == run_id)).first()
        if row is not None and row.status == "failed" and status != "failed":
            note = f"marked failed when its heartbeat lapsed (last beat {row.heartbeat_at}); then ended {status}"
            tag = {"run_id": run_id, "key": REOPENED_TAG, "value": note}
            upsert(conn, s.tags, [tag], keys=("run_id", "key"), update=("value",))

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
            if conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is None:
                alive = s.runs.c.deleted_at.is_(None)
                run_id = resolve_prefix(conn, s.runs.c.id, run_id, kind="run", where=alive)
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
        with self.db.write() as conn:
            self._write_points(conn, run_id, points)

    def _write_points(self, conn: Connection, run_id: str, points: Sequence[MetricPoint]) -> None:
        # NaN != NaN: the cheapest NaN test, and SQLite would store NaN as NULL, so keep a flag.
        rows = [(run_id, k, 0.0 if v != v else v, v != v, step, ts) for k, v, step, ts in points]
        latest: dict[str, tuple[Any, ...]] = {}
        for row in rows:
            held = latest.get(row[1])
            if held is None or (row[4], row[5]) >= (held[4], held[5]):
                latest[row[1]] = row
        cur = driver.cursor(conn)
        try:
            cur.executemany(driver.INSERT_METRICS, rows)
        except cur.errors.IntegrityError as exc:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc
        cur.executemany(driver.UPSERT_LATEST, latest.values())

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        if not params:
            return
        try:
            with self.db.write() as conn:
                cur = driver.cursor(conn)
                cur.executemany(driver.INSERT_PARAM, [(run_id, k, v) for k, v in params.items()])
            return
        except self.db.integrity_error:  # a key exists already, or there is no such run: see below
            pass  # a key exists already, or there is no such run: sort it out below
        with self.db.write() as conn:
            if conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")
            existing = dict(
                conn.execute(
                    select(s.params.c.key, s.params.c.value).where(
                        s.params.c.run_id == run_id, s.params.c.key.in_(list(params))
                    )
                ).all()
            )
            for key, new in params.items():
                if key in existing and existing[key] != new:
                    raise ConflictError(
                        f"param {key!r} of run {run_id} is already {existing[key]!r}; "
                        f"params are immutable, cannot set {new!r}",
                        field=f"params.{key}",
                    )
            fresh = [(run_id, k, v) for k, v in params.items() if k not in existing]
            if fresh:
                driver.cursor(conn).executemany(driver.INSERT_PARAM, fresh)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
        try:
            with self.db.write() as conn:
                upsert(conn, s.tags, rows, keys=("run_id", "key"), update=("value",))
        except sa_exc.IntegrityError as exc:
            raise NotFoundError(f"run {run_id!r} does not exist", field="run_id") from exc

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        nan = math.nan
        with self.db.read() as conn, driver.paused_gc():
            rows = driver.cursor(conn).iterate(driver.SELECT_HISTORY, (run_id, key))
            points = [MetricPoint(key, nan if is_nan else value, step, ts) for value, is_nan, step, ts in rows]
            if not points and conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is None:
                raise NotFoundError(f"run {run_id!r} does not exist", field="run_id")
        return points

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
        r, e = s.runs.c, s.experiments.c
        query = (
            select(
                r.id,
                r.experiment_id,
                e.name,
                r.name,
                r.status,
                r.start_time,
                r.end_time,
                r.parent_run_id,
                r.user_name,
                r.lineage,
            )
            .join_from(s.runs, s.experiments, e.id == r.experiment_id)
            .where(*where)
            # Newest first; id breaks ties in the same direction so ix_runs_start serves both.
            .order_by(*compile_order_by(order_by), r.start_time.desc(), r.id.desc())
            .limit(max_results + 1)
            .offset(offset)
        )
        with self.db.read() as conn:
            rows = [tuple(row) for row in conn.execute(query)]
            more = len(rows) > max_results
            runs = self._assemble(conn, rows[:max_results])
        return Page(runs, _encode_token(offset + max_results) if more else None)

    def _load_runs(self, conn: Connection, ids: Sequence[str]) -> list[Run]:
        if not ids:
            return []
        rows = driver.cursor(conn).select_in(
            "SELECT r.id, r.experiment_id, e.name, r.name, r.status, r.start_time, r.end_time, r.parent_run_id, "
            "r.user_name, r.lineage FROM runs r JOIN experiments e ON e.id = r.experiment_id "
            "WHERE {in} AND r.deleted_at IS NULL",
            "r.id",
            ids,
        )
        order = {run_id: i for i, run_id in enumerate(ids)}
        return self._assemble(conn, sorted(rows, key=lambda row: order[row[0]]))

    def _assemble(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[Run]:
        """Runs from their rows, with params, tags and latest metrics fetched in three queries."""
        if not rows:
            return []
        ids = [row[0] for row in rows]
        cur = driver.cursor(conn)
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        for run_id, key, value in cur.select_in("SELECT run_id, key, value FROM params WHERE {in}", "run_id", ids):
            params[run_id][key] = value
        for run_id, key, value in cur.select_in("SELECT run_id, key, value FROM tags WHERE {in}", "run_id", ids):
            tags[run_id][key] = value
        latest = "SELECT run_id, key, value, is_nan FROM latest_metrics WHERE {in}"
        for run_id, key, value, is_nan in cur.select_in(latest, "run_id", ids):
            metrics[run_id][key] = math.nan if is_nan else value
        return [
            Run(
                id=run_id,
                experiment_id=exp_id,
                experiment=exp_name,
                name=name,
                status=status,
                start_time=start,
                end_time=end,
                parent_run_id=parent,
                user=user,
                params=params[run_id],
                metrics=metrics[run_id],
                tags=tags[run_id],
                lineage=orjson.loads(lineage),
            )
            for run_id, exp_id, exp_name, name, status, start, end, parent, user, lineage in rows
        ]

    # artifacts -------------------------------------------------------------------
    def record_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        if not refs:
            return
        now = time.time()
        rows = [{"run_id": run_id, "path": a.path, "digest": a.digest, "size": a.size, "created_at": now} for a in refs]
        try:
            with self.db.write() as conn:
                upsert(conn, s.artifacts, rows, keys=("run_id", "path"), update=("digest", "size", "created_at"))
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

    def count_runs(self, experiment_id: str | None = None) -> int:
        """How many live runs there are, in one experiment or in all."""
        query = select(func.count()).select_from(s.runs).where(s.runs.c.deleted_at.is_(None))
        if experiment_id is not None:
            query = query.where(s.runs.c.experiment_id == experiment_id)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 250:
        raise InvalidInputError(
            f"{kind} name must be a non-empty string of at most 250 characters, got {name!r}", field="name"
        )
