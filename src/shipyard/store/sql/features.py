"""The SQL implementation of :class:`~shipyard.store.protocols.FeatureRegistry`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy import exc as sa_exc

from shipyard.errors import ConflictError
from shipyard.store import schema as s
from shipyard.store.entities import FeatureDefinition, Materialization
from shipyard.store.sql._engine import Database
from shipyard.store.sql._upsert import upsert


class SqlFeatureRegistry:
    """Feature definitions (one row per version) and materialization progress."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save_feature_definitions(self, definitions: Sequence[FeatureDefinition]) -> list[FeatureDefinition]:
        """Store each definition as the next version of its name, unless its digest is the latest's.

        All of them commit together or none does, so an ``apply`` is never half done.
        """
        f = s.feature_definitions.c
        now = time.time()
        saved: list[FeatureDefinition] = []
        try:
            with self.db.write() as conn:
                for d in definitions:
                    latest = conn.execute(
                        select(s.feature_definitions)
                        .where(f.kind == d.kind, f.name == d.name)
                        .order_by(f.version.desc())
                        .limit(1)
                    ).first()
                    if latest is not None and latest.digest == d.digest:
                        saved.append(_to_entity(latest))
                        continue
                    version = 1 if latest is None else latest.version + 1
                    row = {
                        "kind": d.kind,
                        "name": d.name,
                        "version": version,
                        "digest": d.digest,
                        "spec": json.dumps(dict(d.spec), sort_keys=True),
                        "created_at": now,
                    }
                    conn.execute(s.feature_definitions.insert().values(**row))
                    saved.append(FeatureDefinition(d.kind, d.name, version, d.digest, dict(d.spec), now))
        except sa_exc.IntegrityError as exc:
            names = ", ".join(f"{d.kind} {d.name!r}" for d in definitions)
            raise ConflictError(f"another process applied one of {names} at the same time; apply again") from exc
        return saved

    def latest_feature_definitions(self, kind: str | None = None) -> list[FeatureDefinition]:
        f = s.feature_definitions.c
        latest = select(f.kind, f.name, func.max(f.version).label("version")).group_by(f.kind, f.name).subquery()
        query = select(s.feature_definitions).join(
            latest, (latest.c.kind == f.kind) & (latest.c.name == f.name) & (latest.c.version == f.version)
        )
        if kind is not None:
            query = query.where(f.kind == kind)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(f.kind, f.name)).all()
        return [_to_entity(row) for row in rows]

    def list_feature_definition_versions(self, kind: str, name: str) -> list[FeatureDefinition]:
        f = s.feature_definitions.c
        query = select(s.feature_definitions).where(f.kind == kind, f.name == name).order_by(f.version)
        with self.db.read() as conn:
            return [_to_entity(row) for row in conn.execute(query).all()]

    def record_materializations(self, records: Sequence[Materialization]) -> None:
        rows = [
            {
                "view": r.view,
                "start_time": r.start_time,
                "end_time": r.end_time,
                "max_event_time": r.max_event_time,
                "rows": r.rows,
                "updated_at": r.updated_at,
            }
            for r in records
        ]
        with self.db.write() as conn:
            upsert(conn, s.feature_materializations, rows, keys=("view",), update=tuple(rows[0])[1:] if rows else ())

    def list_materializations(self) -> list[Materialization]:
        m = s.feature_materializations.c
        with self.db.read() as conn:
            rows = conn.execute(select(s.feature_materializations).order_by(m.view)).all()
        return [Materialization(r.view, r.start_time, r.end_time, r.max_event_time, r.rows, r.updated_at) for r in rows]


def _to_entity(row: Row[Any]) -> FeatureDefinition:
    return FeatureDefinition(row.kind, row.name, row.version, row.digest, json.loads(row.spec), row.created_at)
