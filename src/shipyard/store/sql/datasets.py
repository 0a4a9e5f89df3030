"""The SQL implementation of :class:`~shipyard.store.protocols.DatasetStore`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy import exc as sa_exc

from shipyard.errors import NotFoundError
from shipyard.store import schema as s
from shipyard.store.entities import DatasetVersion, RunDataset
from shipyard.store.sql._engine import Database
from shipyard.store.sql._upsert import upsert

GOLDEN_TAG = "golden"


class SqlDatasetStore:
    """Dataset versions, their tags and their links to runs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find_dataset_version_by_digest(self, name: str, digest: str) -> DatasetVersion | None:
        d = s.dataset_versions.c
        with self.db.read() as conn:
            row = conn.execute(select(s.dataset_versions).where(d.name == name, d.digest == digest)).first()
            return None if row is None else self._to_entity(conn, row)

    def create_dataset_version(
        self,
        name: str,
        *,
        digest: str,
        format: str,
        schema: Mapping[str, str],
        stats: Mapping[str, Any],
        num_rows: int | None,
        artifact_digest: str,
        source: str | None,
        created_by_run: str | None,
    ) -> DatasetVersion:
        d = s.dataset_versions.c
        now = time.time()
        try:
            with self.db.write() as conn:
                upsert(conn, s.datasets, [{"name": name, "created_at": now}], keys=("name",), update=())
                existing = conn.execute(select(s.dataset_versions).where(d.name == name, d.digest == digest)).first()
                if existing is not None:
                    return self._to_entity(conn, existing)
                version = conn.execute(
                    select(func.coalesce(func.max(d.version), 0) + 1).where(d.name == name)
                ).scalar_one()
                conn.execute(
                    s.dataset_versions.insert().values(
                        name=name,
                        version=version,
                        digest=digest,
                        format=format,
                        schema=json.dumps(dict(schema)),
                        stats=json.dumps(stats, default=str),
                        num_rows=num_rows,
                        artifact_digest=artifact_digest,
                        source=source,
                        created_at=now,
                        created_by_run=created_by_run,
                    )
                )
        except sa_exc.IntegrityError:
            # Another process registered the same content first: theirs is the version.
            found = self.find_dataset_version_by_digest(name, digest)
            if found is None:
                raise
            return found
        return self.get_dataset_version(name, version)

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        d = s.dataset_versions.c
        query = select(s.dataset_versions).where(d.name == name)
        query = query.where(d.version == version) if version is not None else query.order_by(d.version.desc()).limit(1)
        with self.db.read() as conn:
            row = conn.execute(query).first()
            if row is not None:
                return self._to_entity(conn, row)
            versions = list(conn.execute(select(d.version).where(d.name == name).order_by(d.version)).scalars())
        if not versions:
            raise NotFoundError(f"dataset {name!r} does not exist", field="dataset")
        listed = ", ".join(str(v) for v in versions)
        raise NotFoundError(f"dataset {name!r} has no version {version}; its versions are: {listed}", field="version")

    def list_datasets(self, *, golden: bool = False) -> list[DatasetVersion]:
        d = s.dataset_versions.c
        latest = select(d.name, func.max(d.version).label("version")).group_by(d.name).subquery()
        query = select(s.dataset_versions).join(latest, (latest.c.name == d.name) & (latest.c.version == d.version))
        if golden:
            t = s.dataset_tags.c
            golden_names = select(t.name).where(t.key == GOLDEN_TAG, t.value.in_(["true", "1", "yes"]))
            query = query.where(d.name.in_(golden_names))
        with self.db.read() as conn:
            return [self._to_entity(conn, row) for row in conn.execute(query.order_by(d.name))]

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        d = s.dataset_versions.c
        with self.db.read() as conn:
            rows = conn.execute(select(s.dataset_versions).where(d.name == name).order_by(d.version)).all()
            return [self._to_entity(conn, row) for row in rows]

    def set_dataset_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        self.get_dataset_version(name, version)
        rows = [{"name": name, "version": version, "key": k, "value": v} for k, v in tags.items()]
        with self.db.write() as conn:
            upsert(conn, s.dataset_tags, rows, keys=("name", "version", "key"), update=("value",))

    def link_datasets(self, links: Sequence[RunDataset]) -> None:
        rows = [{"run_id": x.run_id, "name": x.name, "version": x.version, "role": x.role} for x in links]
        try:
            with self.db.write() as conn:
                upsert(conn, s.run_datasets, rows, keys=("run_id", "name", "version", "role"), update=())
        except sa_exc.IntegrityError as exc:
            raise NotFoundError(f"run {links[0].run_id!r} does not exist", field="run_id") from exc

    def run_datasets(self, run_ids: Sequence[str]) -> list[RunDataset]:
        r = s.run_datasets.c
        with self.db.read() as conn:
            rows = conn.execute(select(s.run_datasets).where(r.run_id.in_(run_ids)).order_by(r.name, r.version)).all()
        return [RunDataset(x.run_id, x.name, x.version, x.role) for x in rows]

    def dataset_runs(self, name: str, version: int) -> list[RunDataset]:
        r = s.run_datasets.c
        with self.db.read() as conn:
            rows = conn.execute(select(s.run_datasets).where(r.name == name, r.version == version)).all()
        return [RunDataset(x.run_id, x.name, x.version, x.role) for x in rows]

    def _to_entity(self, conn: Connection, row: Row[Any]) -> DatasetVersion:
        t = s.dataset_tags.c
        tags = dict(conn.execute(select(t.key, t.value).where(t.name == row.name, t.version == row.version)).all())
        return DatasetVersion(
            name=row.name,
            version=row.version,
            digest=row.digest,
            format=row.format,
            schema=json.loads(row.schema),
            stats=json.loads(row.stats),
            num_rows=row.num_rows,
            artifact_digest=row.artifact_digest,
            source=row.source,
            created_at=row.created_at,
            created_by_run=row.created_by_run,
            tags=tags,
        )
