"""Definitions to and from the JSON specs the metadata store versions, and what breaks readers."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.features.models import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
)
from shipyard.features.sources import source_from_spec, spec_digest

ENTITY, VIEW, ON_DEMAND, SERVICE = "entity", "feature_view", "on_demand_feature_view", "feature_service"
KINDS = (ENTITY, VIEW, ON_DEMAND, SERVICE)


def kind_of(obj: Definition) -> str:
    """The stored kind of a definition."""
    if isinstance(obj, Entity):
        return ENTITY
    if isinstance(obj, FeatureView):
        return VIEW
    if isinstance(obj, OnDemandFeatureView):
        return ON_DEMAND
    return SERVICE


def _fields(fields: tuple[Field, ...]) -> list[dict[str, str]]:
    return [{"name": f.name, "dtype": f.dtype, "description": f.description} for f in fields]


def _common(obj: Entity | FeatureView | OnDemandFeatureView | FeatureService) -> dict[str, Any]:
    return {"owner": obj.owner, "description": obj.description, "tags": dict(obj.tags)}


def _entity_spec(e: Entity) -> dict[str, Any]:
    return {"name": e.name, "join_keys": list(e.join_keys), **_common(e)}


def _function_spec(function: Callable[..., Any]) -> dict[str, str]:
    try:
        code = inspect.getsource(function)
    except (OSError, TypeError):
        code = getattr(getattr(function, "__code__", None), "co_code", b"").hex()
    path = f"{function.__module__}:{function.__qualname__}"
    try:
        file = inspect.getsourcefile(function) or ""
    except TypeError:
        file = ""
    # The file lets another process load a function defined in a definitions file (not importable by name).
    return {"function": path, "file": file, "code_digest": hashlib.sha256(code.encode()).hexdigest()}


def to_spec(obj: Definition) -> dict[str, Any]:
    """The JSON description of a definition (what ``apply`` versions)."""
    if isinstance(obj, Entity):
        return _entity_spec(obj)
    if isinstance(obj, FeatureView):
        ttl = None if obj.max_age is None else obj.max_age.total_seconds()
        return {
            "entities": [_entity_spec(e) for e in obj.entities],
            "schema": _fields(obj.schema),
            "source": obj.source.spec(),
            "ttl_seconds": ttl,
            "timestamp_field": obj.timestamp_field,
            "created_timestamp_field": obj.created_timestamp_field,
            "online": obj.online,
            **_common(obj),
        }
    if isinstance(obj, OnDemandFeatureView):
        return {
            "sources": [v.name for v in obj.sources],
            "request_schema": _fields(obj.request_schema),
            "schema": _fields(obj.schema),
            **_function_spec(obj.function),
            **_common(obj),
        }
    # on_missing only when not the default: services applied before it existed keep their digest
    policy = {} if obj.on_missing == "reject" else {"on_missing": obj.on_missing}
    return {"features": list(obj.refs), **policy, **_common(obj)}


def digest(spec: Mapping[str, Any]) -> str:
    """The digest that decides whether a definition changed."""
    return spec_digest(spec)


def _load_fields(items: list[dict[str, str]]) -> tuple[Field, ...]:
    return tuple(Field(f["name"], f["dtype"], f.get("description", "")) for f in items)


def _load_entity(name: str, spec: Mapping[str, Any]) -> Entity:
    return Entity(name, tuple(spec["join_keys"]), spec["description"], spec["owner"], spec["tags"])


def _load_function(path: str, file: str, view: str) -> Callable[..., Any]:
    from shipyard.features._repo import MODULE_PREFIX, load_module

    module, _, qualname = path.partition(":")
    try:
        target: Any = load_module(file) if module.startswith(MODULE_PREFIX) else importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
        function = target.function if isinstance(target, OnDemandFeatureView) else target
    except (ImportError, AttributeError, OSError, NotFoundError):
        function = None
    if callable(function):
        return function  # type: ignore[no-any-return]

    def unavailable(_: Any) -> Any:
        raise InvalidInputError(
            f"on-demand feature view {view!r}: its function {path} cannot be imported in this process; "
            "apply the view here (FeatureStore.apply) or make the function importable",
            field="function",
        )

    return unavailable


def from_spec(kind: str, name: str, spec: Mapping[str, Any], views: Mapping[str, FeatureView]) -> Definition:
    """Rebuild a stored definition; ``views`` resolves the views an on-demand view reads."""
    common = {"owner": spec["owner"], "description": spec["description"], "tags": spec["tags"]}
    if kind == ENTITY:
        return _load_entity(name, spec)
    if kind == VIEW:
        ttl = spec["ttl_seconds"]
        return FeatureView(
            name,
            entities=tuple(_load_entity(e["name"], e) for e in spec["entities"]),
            schema=_load_fields(spec["schema"]),
            source=source_from_spec(spec["source"]),
            ttl=None if ttl is None else dt.timedelta(seconds=ttl),
            timestamp_field=spec["timestamp_field"],
            created_timestamp_field=spec["created_timestamp_field"],
            online=spec["online"],
            **common,
        )
    if kind == ON_DEMAND:
        return OnDemandFeatureView(
            name,
            sources=tuple(views[v] for v in spec["sources"]),
            request_schema=_load_fields(spec["request_schema"]),
            schema=_load_fields(spec["schema"]),
            function=_load_function(spec["function"], spec.get("file", ""), name),
            **common,
        )
    return FeatureService(name, features=tuple(spec["features"]), on_missing=spec.get("on_missing", "reject"), **common)


def breaking_changes(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why readers of ``old`` would break on ``new``: a removed feature, a changed dtype or key."""
    problems: list[str] = []
    if kind in (VIEW, ON_DEMAND):
        before = {f["name"]: f["dtype"] for f in old["schema"]}
        after = {f["name"]: f["dtype"] for f in new["schema"]}
        problems += [f"feature {name!r} removed" for name in before if name not in after]
        problems += [
            f"feature {name!r} changed dtype {dtype} -> {after[name]}"
            for name, dtype in before.items()
            if name in after and after[name] != dtype
        ]
    if kind == VIEW:
        keys_before = [k for e in old["entities"] for k in e["join_keys"]]
        keys_after = [k for e in new["entities"] for k in e["join_keys"]]
        if keys_before != keys_after:
            problems.append(f"join keys changed {keys_before} -> {keys_after}")
    if kind == ENTITY and old["join_keys"] != new["join_keys"]:
        problems.append(f"join keys changed {old['join_keys']} -> {new['join_keys']}")
    if kind == SERVICE:
        problems += [f"feature {ref!r} removed" for ref in old["features"] if ref not in new["features"]]
    return problems
