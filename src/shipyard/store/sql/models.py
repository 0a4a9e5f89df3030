"""The SQL implementation of :class:`~shipyard.store.protocols.ModelStore`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.store import schema as s
from shipyard.store.entities import ModelVersion, RegisteredModel
from shipyard.store.sql._engine import Database
from shipyard.store.sql._upsert import upsert

_MODEL_FIELDS = {"description", "owner", "team"}
_VERSION_FIELDS = {"description", "intended_use", "limitations"}
_MODEL_LEVEL = 0  # model_tags.version for tags of the registered model itself


class SqlModelStore:
    """Registered models, their versions, aliases and tags."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure_registered_model(
        self, name: str, *, description: str, owner: str | None, team: str | None
    ) -> RegisteredModel:
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "@/"):
            raise InvalidInputError(
                f"model name must be a non-empty string without '@' or '/', got {name!r}", field="name"
            )
        now = time.time()
        row = {
            "name": name,
            "description": description,
            "owner": owner,
            "team": team,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as conn:
            upsert(conn, s.registered_models, [row], keys=("name",), update=())
            fill = {k: v for k, v in (("description", description), ("owner", owner), ("team", team)) if v}
            if fill:
                conn.execute(update(s.registered_models).where(s.registered_models.c.name == name).values(**fill))
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = conn.execute(
                select(s.registered_models).where(
                    s.registered_models.c.name == name, s.registered_models.c.deleted_at.is_(None)
                )
            ).first()
            if row is None:
                known = ", ".join(conn.execute(select(s.registered_models.c.name)).scalars()) or "none"
                raise NotFoundError(f"model {name!r} does not exist; registered models are: {known}", field="model")
            return self._model(conn, row)

    def update_registered_model(self, name: str, **fields: str | None) -> RegisteredModel:
        unknown = set(fields) - _MODEL_FIELDS
        if unknown:
            raise InvalidInputError(f"cannot set {sorted(unknown)} on a model; settable: {sorted(_MODEL_FIELDS)}")
        self.get_registered_model(name)
        with self.db.write() as conn:
            conn.execute(
                update(s.registered_models)
                .where(s.registered_models.c.name == name)
                .values(updated_at=time.time(), **fields)
            )
        return self.get_registered_model(name)

    def list_registered_models(self) -> list[RegisteredModel]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.registered_models)
                .where(s.registered_models.c.deleted_at.is_(None))
                .order_by(s.registered_models.c.name)
            ).all()
            return [self._model(conn, r) for r in rows]

    def create_model_version(
        self,
        name: str,
        *,
        run_id: str | None,
        flavor: str,
        artifact_path: str,
        manifest_digest: str,
        signature: Mapping[str, Any] | None,
        metrics: Mapping[str, float],
        description: str,
        intended_use: str,
        limitations: str,
    ) -> ModelVersion:
        v = s.model_versions.c
        for attempt in range(5):
            try:
                with self.db.write() as conn:
                    version = conn.execute(
                        select(func.coalesce(func.max(v.version), 0) + 1).where(v.name == name)
                    ).scalar_one()
                    conn.execute(
                        s.model_versions.insert().values(
                            name=name,
                            version=version,
                            run_id=run_id,
                            flavor=flavor,
                            artifact_path=artifact_path,
                            manifest_digest=manifest_digest,
                            signature=None if signature is None else json.dumps(signature),
                            metrics=json.dumps(dict(metrics)),
                            description=description,
                            intended_use=intended_use,
                            limitations=limitations,
                            created_at=time.time(),
                        )
                    )
                break
            except sa_exc.IntegrityError:
                if attempt == 4:
                    raise
        return self.get_model_version(name, version)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        v = s.model_versions.c
        with self.db.read() as conn:
            row = conn.execute(
                select(s.model_versions).where(v.name == name, v.version == version, v.deleted_at.is_(None))
            ).first()
            if row is not None:
                return self._version(conn, row)
        model = self.get_registered_model(name)
        versions = ", ".join(str(x.version) for x in self.list_model_versions(name)) or "none"
        raise NotFoundError(
            f"model {model.name!r} has no version {version}; its versions are: {versions}", field="version"
        )

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        v = s.model_versions.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.model_versions).where(v.name == name, v.deleted_at.is_(None)).order_by(v.version)
            ).all()
            return [self._version(conn, r) for r in rows]

    def versions_for_runs(self, run_ids: Sequence[str]) -> list[ModelVersion]:
        v = s.model_versions.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.model_versions)
                .where(v.run_id.in_(run_ids), v.deleted_at.is_(None))
                .order_by(v.name, v.version)
            ).all()
            return [self._version(conn, r) for r in rows]

    def set_alias(self, name: str, alias: str, version: int) -> None:
        if not isinstance(alias, str) or not alias.isidentifier():
            raise InvalidInputError(f"alias must be a word such as 'champion', got {alias!r}", field="alias")
        if alias.startswith("v") and alias[1:].isdigit():
            raise InvalidInputError(f"alias {alias!r} looks like a version number; pick a word", field="alias")
        self.get_model_version(name, version)
        with self.db.write() as conn:
            upsert(
                conn,
                s.model_aliases,
                [{"name": name, "alias": alias, "version": version}],
                keys=("name", "alias"),
                update=("version",),
            )

    def delete_alias(self, name: str, alias: str) -> None:
        model = self.get_registered_model(name)
        with self.db.write() as conn:
            result = conn.execute(
                delete(s.model_aliases).where(s.model_aliases.c.name == name, s.model_aliases.c.alias == alias)
            )
        if result.rowcount == 0:
            aliases = ", ".join(sorted(model.aliases)) or "none"
            raise NotFoundError(f"model {name!r} has no alias {alias!r}; its aliases are: {aliases}", field="alias")

    def set_model_tags(self, name: str, version: int | None, tags: Mapping[str, str]) -> None:
        if version is None:
            self.get_registered_model(name)
        else:
            self.get_model_version(name, version)
        level = _MODEL_LEVEL if version is None else version
        rows = [{"name": name, "version": level, "key": k, "value": str(val)} for k, val in tags.items()]
        with self.db.write() as conn:
            upsert(conn, s.model_tags, rows, keys=("name", "version", "key"), update=("value",))

    def update_model_version(self, name: str, version: int, **fields: str) -> ModelVersion:
        unknown = set(fields) - _VERSION_FIELDS
        if unknown:
            raise InvalidInputError(f"cannot set {sorted(unknown)} on a version; settable: {sorted(_VERSION_FIELDS)}")
        self.get_model_version(name, version)
        with self.db.write() as conn:
            conn.execute(
                update(s.model_versions)
                .where(s.model_versions.c.name == name, s.model_versions.c.version == version)
                .values(**fields)
            )
        return self.get_model_version(name, version)

    # rows -> entities ------------------------------------------------------------
    def _tags(self, conn: Connection, name: str, version: int) -> dict[str, str]:
        t = s.model_tags.c
        return dict(conn.execute(select(t.key, t.value).where(t.name == name, t.version == version)).all())

    def _model(self, conn: Connection, row: Row[Any]) -> RegisteredModel:
        a = s.model_aliases.c
        aliases = dict(conn.execute(select(a.alias, a.version).where(a.name == row.name)).all())
        latest = conn.execute(
            select(func.max(s.model_versions.c.version)).where(
                s.model_versions.c.name == row.name, s.model_versions.c.deleted_at.is_(None)
            )
        ).scalar()
        return RegisteredModel(
            name=row.name,
            description=row.description,
            owner=row.owner,
            team=row.team,
            created_at=row.created_at,
            aliases=aliases,
            tags=self._tags(conn, row.name, _MODEL_LEVEL),
            latest_version=latest,
        )

    def _version(self, conn: Connection, row: Row[Any]) -> ModelVersion:
        a = s.model_aliases.c
        aliases = tuple(
            conn.execute(
                select(a.alias).where(a.name == row.name, a.version == row.version).order_by(a.alias)
            ).scalars()
        )
        return ModelVersion(
            name=row.name,
            version=row.version,
            run_id=row.run_id,
            flavor=row.flavor,
            artifact_path=row.artifact_path,
            manifest_digest=row.manifest_digest,
            signature=None if row.signature is None else json.loads(row.signature),
            metrics=json.loads(row.metrics),
            description=row.description,
            intended_use=row.intended_use,
            limitations=row.limitations,
            created_at=row.created_at,
            aliases=aliases,
            tags=self._tags(conn, row.name, row.version),
        )
