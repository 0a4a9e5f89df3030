"""Feature-store definitions in Feast's vocabulary: entities, fields, feature views, services.

Every definition is a frozen dataclass checked when it is built, so a typo fails at the line
that made it, naming the field, rather than deep inside a training-frame join.

Example:
    >>> user = Entity("user", join_keys=["user_id"])
    >>> Field("clicks_7d", "float").dtype
    'float'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.features.sources import Source

# Declared type -> (DuckDB type, canonical name). Aliases let Feast and pandas spellings work.
DTYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
_ALIASES = {
    "int64": "int",
    "int32": "int",
    "integer": "int",
    "float64": "float",
    "float32": "float",
    "double": "float",
    "str": "string",
    "boolean": "bool",
    "datetime": "timestamp",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TTL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_name(kind: str, name: object, what: str = "name") -> str:
    """``name`` if it is an identifier usable as a column and in ``view:feature`` refs."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"{kind} {what} must be an identifier (letters, digits, '_', not starting with a digit), got {name!r}",
            field=what,
        )
    return name


def parse_ttl(ttl: object, *, owner: str = "feature view") -> dt.timedelta | None:
    """A ttl as a timedelta: ``None`` or zero mean "never expires"; strings like ``"7d"``, ``"12h"``.

    Example:
        >>> parse_ttl("7d")
        datetime.timedelta(days=7)
    """
    if ttl is None:
        return None
    if isinstance(ttl, dt.timedelta):
        value = ttl
    elif isinstance(ttl, str) and (m := _TTL.match(ttl)):
        value = dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        raise InvalidInputError(
            f"{owner} ttl must be a timedelta or a string such as '7d', '12h', '30m', '45s', '2w', got {ttl!r}",
            field="ttl",
        )
    if value < dt.timedelta(0):
        raise InvalidInputError(f"{owner} ttl must not be negative, got {ttl!r}", field="ttl")
    return value or None


def _check_text(kind: str, name: str, what: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInputError(f"{kind} {name!r}: {what} must be a string, got {value!r}", field=what)


def _check_about(kind: str, obj: Any) -> None:
    """Check the owner, description and tags every definition carries; keep a copy of the tags."""
    for what in ("owner", "description"):
        _check_text(kind, obj.name, what, getattr(obj, what))
    tags = obj.tags
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidInputError(
            f"{kind} {obj.name!r}: tags must be a mapping of str to str, got {tags!r}", field="tags"
        )
    object.__setattr__(obj, "tags", dict(tags))


@dataclass(frozen=True, slots=True)
class Field:
    """A named, typed column: a feature, or a value sent with a request.

    ``dtype`` is one of ``int``, ``float``, ``string``, ``bool``, ``timestamp`` (``int64``,
    ``float64``, ``str``... are accepted and normalized).
    """

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        check_name("field", self.name)
        raw = self.dtype.lower() if isinstance(self.dtype, str) else self.dtype
        dtype = _ALIASES.get(raw, raw) if isinstance(raw, str) else raw
        if dtype not in DTYPES:
            raise InvalidInputError(
                f"field {self.name!r} has dtype {self.dtype!r}; expected one of: {', '.join(DTYPES)}", field="dtype"
            )
        object.__setattr__(self, "dtype", dtype)
        _check_text("field", self.name, "description", self.description)


@dataclass(frozen=True, slots=True)
class Entity:
    """What features are about (a user, a product), identified by its join key columns."""

    name: str
    join_keys: tuple[str, ...] = ()
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("entity", self.name)
        keys = self.join_keys or (self.name,)
        if isinstance(keys, str) or not isinstance(keys, Sequence):
            raise InvalidInputError(
                f"entity {self.name!r}: join_keys must be a list of column names, got {keys!r}", field="join_keys"
            )
        for key in keys:
            check_name(f"entity {self.name!r}", key, "join_keys")
        object.__setattr__(self, "join_keys", tuple(keys))
        _check_about("entity", self)


def _check_schema(kind: str, name: str, schema: object, what: str = "schema") -> tuple[Field, ...]:
    if isinstance(schema, (str, Field)) or not isinstance(schema, Sequence):
        raise InvalidInputError(f"{kind} {name!r}: {what} must be a list of Field, got {schema!r}", field=what)
    seen: set[str] = set()
    for item in schema:
        if not isinstance(item, Field):
            raise InvalidInputError(f"{kind} {name!r}: {what} must hold Field objects, got {item!r}", field=what)
        if item.name in seen:
            raise InvalidInputError(f"{kind} {name!r}: {what} names {item.name!r} twice", field=what)
        seen.add(item.name)
    return tuple(schema)


@dataclass(frozen=True, slots=True)
class FeatureView:
    """Features of one or more entities read from a source, as of each row's event time.

    ``timestamp_field`` and ``created_timestamp_field`` default to the source's. A value
    older than ``ttl`` (a timedelta or ``"7d"``) at lookup time counts as absent.

    Example:
        >>> from shipyard.features import FileSource
        >>> user = Entity("user", join_keys=["user_id"])
        >>> view = FeatureView("activity", entities=[user], ttl="7d",
        ...                    source=FileSource("events.parquet", timestamp_field="ts"),
        ...                    schema=[Field("clicks_7d", "float")])
        >>> view.ttl
        datetime.timedelta(days=7)
    """

    name: str
    entities: tuple[Entity, ...]
    schema: tuple[Field, ...]
    source: Source
    ttl: dt.timedelta | str | None = None
    timestamp_field: str = ""
    created_timestamp_field: str | None = None
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    online: bool = True

    def __post_init__(self) -> None:
        from shipyard.features.sources import Source

        check_name("feature view", self.name)
        where = f"feature view {self.name!r}"
        if isinstance(self.entities, Entity) or not isinstance(self.entities, Sequence) or not self.entities:
            raise InvalidInputError(f"{where}: entities must be a non-empty list of Entity", field="entities")
        if not all(isinstance(e, Entity) for e in self.entities):
            raise InvalidInputError(
                f"{where}: entities must hold Entity objects, got {self.entities!r}", field="entities"
            )
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "schema", _check_schema("feature view", self.name, self.schema))
        if not self.schema:
            raise InvalidInputError(f"{where}: schema must list at least one Field", field="schema")
        if not isinstance(self.source, Source):
            raise InvalidInputError(f"{where}: source must be a shipyard source, got {self.source!r}", field="source")
        object.__setattr__(self, "ttl", parse_ttl(self.ttl, owner=where))
        ts = self.timestamp_field or self.source.timestamp_field
        if not ts:
            raise InvalidInputError(
                f"{where}: timestamp_field is required (on the view or its source)", field="timestamp_field"
            )
        check_name(where, ts, "timestamp_field")
        object.__setattr__(self, "timestamp_field", ts)
        created = self.created_timestamp_field or self.source.created_timestamp_field
        if created is not None:
            check_name(where, created, "created_timestamp_field")
        object.__setattr__(self, "created_timestamp_field", created)
        _check_about("feature view", self)
        clash = set(self.join_keys) & ({f.name for f in self.schema} | {ts})
        if clash:
            raise InvalidInputError(
                f"{where}: {sorted(clash)} is both a join key and a feature or timestamp", field="schema"
            )

    @property
    def max_age(self) -> dt.timedelta | None:
        """The ttl as a timedelta (``None``: values never expire)."""
        return self.ttl if isinstance(self.ttl, dt.timedelta) else None

    @property
    def join_keys(self) -> tuple[str, ...]:
        """The join key columns of all its entities, in order."""
        return tuple(key for entity in self.entities for key in entity.join_keys)

    @property
    def features(self) -> tuple[str, ...]:
        """Its feature names."""
        return tuple(f.name for f in self.schema)


@dataclass(frozen=True, slots=True)
class OnDemandFeatureView:
    """Features computed by a Python function of request values and other views' features.

    The same ``function`` runs in ``get_historical_features`` and ``get_online_features``:
    it takes a pandas DataFrame (one column per source feature and request field) and
    returns one with the columns of ``schema``. Build it with :func:`on_demand`.
    """

    name: str
    sources: tuple[FeatureView, ...]
    request_schema: tuple[Field, ...]
    schema: tuple[Field, ...]
    function: Callable[[pd.DataFrame], pd.DataFrame]
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("on-demand feature view", self.name)
        where = f"on-demand feature view {self.name!r}"
        if not isinstance(self.sources, Sequence) or not all(isinstance(v, FeatureView) for v in self.sources):
            raise InvalidInputError(f"{where}: sources must be a list of FeatureView", field="sources")
        object.__setattr__(self, "sources", tuple(self.sources))
        request = _check_schema("on-demand feature view", self.name, self.request_schema, "request_schema")
        object.__setattr__(self, "request_schema", request)
        object.__setattr__(self, "schema", _check_schema("on-demand feature view", self.name, self.schema))
        if not self.schema:
            raise InvalidInputError(f"{where}: schema must list at least one Field", field="schema")
        if not callable(self.function):
            raise InvalidInputError(f"{where}: function must be callable, got {self.function!r}", field="function")
        inputs = [f for v in self.sources for f in v.features] + [f.name for f in request]
        if len(set(inputs)) != len(inputs):
            raise InvalidInputError(f"{where}: its inputs name a column twice: {inputs}", field="sources")
        _check_about("on-demand feature view", self)

    @property
    def features(self) -> tuple[str, ...]:
        """Its feature names."""
        return tuple(f.name for f in self.schema)


def on_demand(
    *,
    sources: Sequence[FeatureView] = (),
    request: Sequence[Field] = (),
    schema: Sequence[Field],
    name: str | None = None,
    owner: str = "",
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[[pd.DataFrame], pd.DataFrame]], OnDemandFeatureView]:
    """Turn a function of a DataFrame into an :class:`OnDemandFeatureView` named after it.

    Example:
        >>> @on_demand(request=[Field("amount", "float")], schema=[Field("amount_x2", "float")])
        ... def doubled(df):
        ...     return df.assign(amount_x2=df["amount"] * 2)[["amount_x2"]]
        >>> doubled.features
        ('amount_x2',)
    """

    def wrap(function: Callable[[pd.DataFrame], pd.DataFrame]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name or function.__name__,
            tuple(sources),
            tuple(request),
            tuple(schema),
            function,
            owner=owner,
            description=description or (function.__doc__ or "").strip().split("\n")[0],
            tags=dict(tags or {}),
        )

    return wrap


ON_MISSING = ("reject", "null")


@dataclass(frozen=True, slots=True)
class FeatureService:
    """The named set of features a model uses: whole views and ``"view:feature"`` refs.

    ``on_missing`` is what serving by entity id does when an entity has no value in a view,
    or only one older than the view's ttl: ``"reject"`` (the default) answers the request
    422 naming the entity and the view; ``"null"`` hands the model nulls (NaN in float
    columns) for a model that tolerates them. It is stored with the service's definition.
    """

    name: str
    features: tuple[FeatureView | OnDemandFeatureView | str, ...]
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    on_missing: str = "reject"

    def __post_init__(self) -> None:
        check_name("feature service", self.name)
        if self.on_missing not in ON_MISSING:
            raise InvalidInputError(
                f"feature service {self.name!r}: on_missing must be 'reject' or 'null', got {self.on_missing!r}",
                field="on_missing",
            )
        if isinstance(self.features, str) or not isinstance(self.features, Sequence) or not self.features:
            raise InvalidInputError(
                f"feature service {self.name!r}: features must be a non-empty list of views or 'view:feature' refs",
                field="features",
            )
        for item in self.features:
            if isinstance(item, str):
                parse_ref(item)
            elif not isinstance(item, (FeatureView, OnDemandFeatureView)):
                raise InvalidInputError(
                    f"feature service {self.name!r}: {item!r} is not a view or a 'view:feature' ref", field="features"
                )
        object.__setattr__(self, "features", tuple(self.features))
        _check_about("feature service", self)

    @property
    def refs(self) -> tuple[str, ...]:
        """Its features as ``"view:feature"`` refs, in order, without duplicates."""
        out: list[str] = []
        for item in self.features:
            refs = [item] if isinstance(item, str) else [f"{item.name}:{f}" for f in item.features]
            out.extend(r for r in refs if r not in out)
        return tuple(out)


def parse_ref(ref: object) -> tuple[str, str]:
    """Split ``"view:feature"`` into its two names."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidInputError(f"feature ref must be 'view:feature', got {ref!r}", field="features")
    view, _, name = ref.partition(":")
    check_name(f"feature ref {ref!r}", view, "features")
    check_name(f"feature ref {ref!r}", name, "features")
    return view, name


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
AnyDict = dict[str, Any]
