"""The feature store users call: apply definitions, build training frames, materialize, serve.

Example:
    >>> store = FeatureStore()  # doctest: +SKIP
    >>> store.apply([user, activity])  # doctest: +SKIP
    >>> train = store.get_historical_features(entity_df, ["activity:clicks_7d"])  # doctest: +SKIP
    >>> store.materialize(end="now")  # doctest: +SKIP
    >>> store.get_online_features({"user_id": [42]}, ["activity:clicks_7d"]).to_dict()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.features import _specs
from shipyard.features._arrow import to_arrow
from shipyard.features._resolve import Features, Resolved, expand, resolve_refs
from shipyard.features.models import Definition, FeatureService, FeatureView
from shipyard.features.online import OnlineStore, open_online_store
from shipyard.store import Stores
from shipyard.store.entities import FeatureDefinition, Materialization
from shipyard.tracking.api import HasStores, active_run, resolve_stores

if TYPE_CHECKING:
    from shipyard.features._lookup import OnlineResponse

ONLINE_ENV = "SHIPYARD_ONLINE_STORE"


@dataclass(frozen=True, slots=True)
class Change:
    """What ``apply`` would do to one definition: ``create``, ``update`` or ``unchanged``."""

    kind: str
    name: str
    action: str
    version: int | None
    breaking: tuple[str, ...] = ()


def default_online_uri(stores: Stores) -> str:
    """The settings' online store (``SHIPYARD_ONLINE_STORE`` or ``online_store`` in ``shipyard.toml``).

    Else a SQLite file beside the metadata (or the artifacts).
    """
    settings = stores.settings
    if settings.online_store:
        return settings.online_store
    if os.environ.get(ONLINE_ENV):  # settings built by hand (not resolved) still honour the variable
        return os.environ[ONLINE_ENV]
    if settings.store_uri.startswith("sqlite:///") and settings.store_uri != "sqlite:///:memory:":
        folder = Path(settings.store_uri.removeprefix("sqlite:///")).parent
    elif settings.artifact_uri.startswith("file://"):
        folder = Path(settings.artifact_uri.removeprefix("file://")).parent
    else:
        folder = Path(".shipyard").absolute()
    return f"sqlite:///{folder / 'online_features.db'}"


def _to_us(value: object, what: str) -> int:
    if value == "now":
        return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInputError(
                f"{what} must be a datetime, an ISO string or 'now', got {value!r}", field=what
            ) from exc
    if not isinstance(value, dt.datetime):
        raise InvalidInputError(f"{what} must be a datetime, an ISO string or 'now', got {value!r}", field=what)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # naive means UTC, as in the joins
    return int(value.timestamp() * 1_000_000)


class FeatureStore:
    """Definitions in the metadata store, training frames from sources, values in an online store.

    Args:
        online_store: the online store's URI (``sqlite:///...`` or ``redis://...``);
            ``SHIPYARD_ONLINE_STORE`` or a SQLite file beside the metadata by default.
        client: the client whose stores to use; the settings in force when ``None``.
    """

    def __init__(self, *, online_store: str | None = None, client: HasStores | None = None) -> None:
        self._stores = resolve_stores(client)
        self.online_uri = online_store or default_online_uri(self._stores)
        self._online: OnlineStore | None = None
        self._lock = threading.Lock()
        self._live: dict[tuple[str, str], Definition] = {}
        self._cache: dict[tuple[str, str], Definition] | None = None

    @property
    def stores(self) -> Stores:
        """The metadata and artifact stores (so a FeatureStore can stand for a client)."""
        return self._stores

    @property
    def online(self) -> OnlineStore:
        """The online store, opened on first use."""
        with self._lock:  # serving threads share one store
            if self._online is None:
                self._online = open_online_store(self.online_uri)
            return self._online

    def close(self) -> None:
        """Close the online store's connections."""
        if self._online is not None:
            self._online.close()
            self._online = None

    # -- definitions -------------------------------------------------------------------------

    def plan(self, objects: Iterable[Definition]) -> list[Change]:
        """What :meth:`apply` would store, and which changes would break readers."""
        latest = {(d.kind, d.name): d for d in self._stores.features.latest_feature_definitions()}
        changes = []
        for obj in expand(objects):
            kind, spec = _specs.kind_of(obj), _specs.to_spec(obj)
            old = latest.get((kind, obj.name))
            if old is None:
                changes.append(Change(kind, obj.name, "create", 1))
            elif old.digest == _specs.digest(spec):
                changes.append(Change(kind, obj.name, "unchanged", old.version))
            else:
                breaking = tuple(_specs.breaking_changes(kind, old.spec, spec))
                changes.append(Change(kind, obj.name, "update", old.version + 1, breaking))
        return changes

    def apply(self, objects: Iterable[Definition], *, force: bool = False) -> list[FeatureDefinition]:
        """Store the definitions, each changed one as a new version, all at once or none.

        A change that breaks readers (a removed feature, a changed dtype or join key) is
        refused unless ``force=True``; a forced one also drops the view's online values (they
        have the old schema), so materialize it again. Referenced entities are applied with
        their views.

        Raises:
            ConflictError: a breaking change without ``force``.
            InvalidInputError: a service names a feature no view has.
        """
        objects = expand(objects)
        changes = self.plan(objects)
        breaking = [f"{c.kind} {c.name!r}: {', '.join(c.breaking)}" for c in changes if c.breaking]
        if breaking and not force:
            raise ConflictError(
                f"apply would break readers of {'; '.join(breaking)}; pass force=True to apply anyway", field="force"
            )
        self._check_services(objects)
        rows = []
        for obj in objects:
            spec = _specs.to_spec(obj)
            rows.append(FeatureDefinition(_specs.kind_of(obj), obj.name, 0, _specs.digest(spec), spec))
        saved = self._stores.features.save_feature_definitions(rows)
        self._forget_online([c.name for c in changes if c.kind == _specs.VIEW and c.breaking])
        for obj in objects:
            self._live[(_specs.kind_of(obj), obj.name)] = obj
        self._cache = None
        return saved

    def _forget_online(self, views: Sequence[str]) -> None:
        """Drop online values written under a schema a forced change broke; materialize again."""
        now = time.time()
        for name in views:
            self.online.delete_view(name)
        self._stores.features.record_materializations([Materialization(v, 0.0, 0.0, None, 0, now) for v in views])

    def _check_services(self, objects: Sequence[Definition]) -> None:
        known = {k: v for k, v in self._definitions().items() if k[0] in (_specs.VIEW, _specs.ON_DEMAND)}
        known.update({(_specs.kind_of(o), o.name): o for o in objects})
        features = {
            f"{name}:{f}"
            for (kind, name), obj in known.items()
            if kind != _specs.ENTITY
            for f in getattr(obj, "features", ())
        }
        for obj in objects:
            if isinstance(obj, FeatureService):
                unknown = [ref for ref in obj.refs if ref not in features]
                if unknown:
                    raise InvalidInputError(
                        f"feature service {obj.name!r} names unknown features {unknown}; known: {sorted(features)}",
                        field="features",
                    )

    def refresh(self) -> None:
        """Forget cached definitions: the next call reads what other processes applied."""
        self._cache = None

    def _definitions(self) -> dict[tuple[str, str], Definition]:
        if self._cache is not None:
            return self._cache
        stored = self._stores.features.latest_feature_definitions()
        out: dict[tuple[str, str], Definition] = {}
        views: dict[str, FeatureView] = {}
        order = {kind: i for i, kind in enumerate(_specs.KINDS)}
        for d in sorted(stored, key=lambda d: order[d.kind]):
            live = self._live.get((d.kind, d.name))
            if live is not None and _specs.digest(_specs.to_spec(live)) == d.digest:
                obj = live
            else:
                obj = _specs.from_spec(d.kind, d.name, d.spec, views)
            out[(d.kind, d.name)] = obj
            if isinstance(obj, FeatureView):
                views[obj.name] = obj
        self._cache = out
        return out

    def list_feature_views(self) -> list[FeatureView]:
        """Every applied feature view, by name."""
        return [o for (k, _), o in sorted(self._definitions().items()) if isinstance(o, FeatureView)]

    def get_feature_view(self, name: str) -> FeatureView:
        """The applied feature view ``name``; the error lists the known ones."""
        obj = self._definitions().get((_specs.VIEW, name))
        if not isinstance(obj, FeatureView):
            known = ", ".join(v.name for v in self.list_feature_views()) or "none"
            raise NotFoundError(f"feature view {name!r} does not exist; known views: {known}", field="feature_view")
        return obj

    def get_feature_service(self, name: str, *, version: int | None = None) -> FeatureService:
        """The applied feature service ``name``: its latest definition, or the one of ``version``.

        A model records the version of its service (``load_model(...).feature_service``), so
        serving asks for the features the model was trained with even after the service changed.

        Raises:
            NotFoundError: no service of that name, or no such version; the message lists what exists.

        Example:
            >>> ref = load_model("churn@champion").feature_service  # doctest: +SKIP
            >>> store.get_feature_service(ref.name, version=ref.version).refs  # doctest: +SKIP
            ('activity:clicks_7d', 'activity:sessions_7d')
        """
        if version is None:
            obj = self._definitions().get((_specs.SERVICE, name))
            if isinstance(obj, FeatureService):
                return obj
        versions = self._stores.features.list_feature_definition_versions(_specs.SERVICE, name)
        if not versions:
            known = ", ".join(d.name for d in self._stores.features.latest_feature_definitions(_specs.SERVICE))
            raise NotFoundError(
                f"feature service {name!r} does not exist; known services: {known or 'none'}", field="feature_service"
            )
        chosen = versions[-1] if version is None else next((d for d in versions if d.version == version), None)
        if chosen is None:
            listed = ", ".join(str(d.version) for d in versions)
            raise NotFoundError(
                f"feature service {name!r} has no version {version!r}; its versions are: {listed}",
                field="version",
            )
        return cast(FeatureService, _specs.from_spec(_specs.SERVICE, name, chosen.spec, {}))

    def resolve(self, features: Features) -> Resolved:
        """Resolve refs (or a service) to the views to read and the on-demand views to run."""
        return resolve_refs(self._definitions(), features)

    # -- offline, materialization, online: in _store_ops to keep this module readable ----------

    def get_historical_features(
        self,
        entity_df: Any,
        features: Features,
        *,
        timestamp_field: str = "event_timestamp",
        full_feature_names: bool = False,
        to: str = "pandas",
        dataset_name: str | None = None,
    ) -> Any:
        """A point-in-time-correct training frame: each entity row with features as of its timestamp.

        For each row and feature view: the latest value at or before the row's timestamp and
        within the view's ttl (ties on event time go to the latest created), else null. Rows
        are never dropped and keep their order. Inside an active run, the frame is logged as
        a dataset (``dataset_name``, the service's name or ``training-features``) and the
        features used are recorded on the run.

        ``to`` is ``"pandas"``, ``"arrow"`` (a Table) or ``"batches"``: a
        ``pyarrow.RecordBatchReader`` that streams the frame without holding it (not logged).

        Example:
            >>> store.get_historical_features(entity_df, ["activity:clicks_7d"])  # doctest: +SKIP
        """
        from shipyard.features._store_ops import historical

        if to not in ("pandas", "arrow", "batches"):
            raise InvalidInputError(f"to must be 'pandas', 'arrow' or 'batches', got {to!r}", field="to")
        entity = to_arrow(entity_df, what="entity_df")
        resolved = self.resolve(features)
        reader = historical(entity, resolved, timestamp_field=timestamp_field, full_feature_names=full_feature_names)
        if to == "batches":
            return reader
        table = reader.read_all()
        service = features.name if isinstance(features, FeatureService) else None
        self._log_to_run(table, resolved, dataset_name or service or "training-features")
        return table if to == "arrow" else table.to_pandas()

    def _log_to_run(self, table: pa.Table, resolved: Resolved, name: str) -> None:
        run = active_run()
        if run is None or run.stores.settings.store_uri != self._stores.settings.store_uri:
            return
        from shipyard.datasets import log_dataset

        log_dataset(table, name, role="input", source="feature-store", client=self)
        run.set_tags({"shipyard.features": ",".join(f"{v}:{f}" for v, f in resolved.refs)})

    def materialize(
        self,
        start: object = None,
        end: object = "now",
        *,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Materialization]:
        """Copy each view's latest value per entity with event time in (start, end] online.

        Idempotent: re-running never replaces a value with an older one. ``progress`` is
        called as ``(view, rows_done, rows_total)``.
        """
        from shipyard.features._store_ops import materialize

        start_us = None if start is None else _to_us(start, "start")
        end_us = _to_us(end, "end")
        chosen = self._online_views(views)
        return materialize(self, chosen, {v.name: start_us for v in chosen}, end_us, progress)

    def materialize_incremental(
        self,
        end: object = "now",
        *,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Materialization]:
        """Materialize each view from where its last materialization ended up to ``end``."""
        from shipyard.features._store_ops import materialize

        end_us = _to_us(end, "end")
        done = {m.view: m for m in self._stores.features.list_materializations()}
        chosen = self._online_views(views)
        starts = {v.name: int(done[v.name].end_time * 1_000_000) if v.name in done else None for v in chosen}
        return materialize(self, chosen, starts, end_us, progress)

    def _online_views(self, names: Sequence[str] | None) -> list[FeatureView]:
        if names is None:
            return [v for v in self.list_feature_views() if v.online]
        return [self.get_feature_view(n) for n in names]

    def get_online_features(
        self, entity_rows: Any, features: Features, *, full_feature_names: bool = False
    ) -> OnlineResponse:
        """The latest values of ``features`` for a batch of entities, one batched read per view.

        A missing entity gives nulls with status ``missing``; a value older than its view's
        ttl gives null with status ``expired``; on-demand features are computed from the
        fetched values and the request values in ``entity_rows``.
        """
        from shipyard.features._store_ops import online_features

        entity = to_arrow(entity_rows, what="entity_rows")
        return online_features(self.online, entity, self.resolve(features), full_feature_names=full_feature_names)

    def push(self, feature_view: str | FeatureView, df: Any, *, to: str = "online") -> int:
        """Write fresh rows of a view to the online store, the offline store, or both.

        Every column is checked first: a missing column or a wrong type writes nothing.
        ``to="offline"``/``"both"`` adds a Parquet file to the view's source, which must be
        a :class:`FileSource` over a folder (or a glob) of Parquet files.
        """
        from shipyard.features._lookup import check_push, push_offline, push_rows

        if to not in ("online", "offline", "both"):
            raise InvalidInputError(f"to must be 'online', 'offline' or 'both', got {to!r}", field="to")
        view = feature_view if isinstance(feature_view, FeatureView) else self.get_feature_view(feature_view)
        table = to_arrow(df, what="df")
        check_push(view, table)
        if to != "online":
            push_offline(view, table)
        return table.num_rows if to == "offline" else push_rows(self.online, view, table)
