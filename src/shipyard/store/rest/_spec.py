"""The REST API's operations, derived from the store Protocols: one per method, shared by server and client.

Each operation knows its route (``/api/v1/{group}/{method}``), its HTTP verb (``GET`` for a
read whose arguments are all scalars, else ``POST`` with a JSON body), the role it needs,
and two pydantic models built from the method's type hints: the arguments and the result.
The same models decode on both sides, so entities, ``NaN``/``inf`` and bytes round-trip.
"""

from __future__ import annotations

import inspect
import types
import typing
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from shipyard.store.auth import Role
from shipyard.store.entities import Page
from shipyard.store.protocols import (
    DatasetStore,
    FeatureRegistry,
    FlowRunStore,
    GarbageCollector,
    ModelStore,
    RunStore,
)

PREFIX = "/api/v1"
GROUPS: dict[str, type[Any]] = {
    "runs": RunStore,
    "datasets": DatasetStore,
    "models": ModelStore,
    "gc": GarbageCollector,
    "flows": FlowRunStore,
    "features": FeatureRegistry,
}
READ_PREFIXES = ("get_", "find_", "list_", "count_", "search_", "read_", "last_", "latest_", "load_", "referenced_")
READ_METHODS = frozenset({"run_datasets", "dataset_runs", "versions_for_runs", "list_artifacts"})
ADMIN_METHODS = frozenset({"purge_deleted"})
SCALARS = (str, int, float, bool, type(None))
WIRE = ConfigDict(ser_json_inf_nan="constants", ser_json_bytes="base64", val_json_bytes="base64", extra="forbid")


@dataclass(frozen=True)
class Operation:
    """One store method exposed over HTTP."""

    group: str
    name: str
    verb: Literal["GET", "POST"]
    role: Role
    args: type[BaseModel]
    result: type[BaseModel]
    var_keyword: str | None  # the ``**fields`` parameter, sent as one object
    paged: bool  # the method returns a ``Page``: the result carries ``next_page_token``
    doc: str

    @property
    def path(self) -> str:
        """The route, e.g. ``/api/v1/runs/create_run``."""
        return f"{PREFIX}/{self.group}/{self.name}"


def _is_scalar(hint: Any) -> bool:
    if hint in SCALARS:
        return True
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and all(
        a in SCALARS for a in typing.get_args(hint)
    )


def _wire_type(hint: Any) -> Any:
    """The pydantic type for a hint: ``Iterable`` (lazy in pydantic) is read as a list."""
    if typing.get_origin(hint) is Iterable:
        return list[typing.get_args(hint)[0]]  # type: ignore[misc]
    return hint


def _operation(group: str, protocol: type[Any], name: str) -> Operation:
    method = getattr(protocol, name)
    hints = typing.get_type_hints(method)
    fields: dict[str, Any] = {}
    var_keyword = None
    for param in list(inspect.signature(method).parameters.values())[1:]:
        hint = _wire_type(hints[param.name])
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = param.name
            fields[param.name] = (dict[str, hint], {})  # type: ignore[valid-type]
        else:
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (hint, default)
    title = "".join(part.title() for part in f"{group}_{name}".split("_"))
    with warnings.catch_warnings():  # a field named ``schema`` shadows a deprecated BaseModel method
        warnings.simplefilter("ignore", UserWarning)
        args = create_model(f"{title}Args", __config__=WIRE, **fields)
    returned = hints["return"]
    paged = typing.get_origin(returned) is Page
    if paged:
        result = create_model(
            f"{title}Result",
            __config__=WIRE,
            result=(list[typing.get_args(returned)[0]], ...),  # type: ignore[misc,arg-type]
            next_page_token=(str | None, None),
        )
    else:
        result = create_model(f"{title}Result", __config__=WIRE, result=(returned, None))
    reads = name.startswith(READ_PREFIXES) or name in READ_METHODS
    role: Role = "admin" if name in ADMIN_METHODS else "reader" if reads else "writer"
    verb: Literal["GET", "POST"] = (
        "GET" if reads and var_keyword is None and all(_is_scalar(f[0]) for f in fields.values()) else "POST"
    )
    doc = f"``{protocol.__name__}.{name}``: {(protocol.__doc__ or '').strip().splitlines()[0]}"
    return Operation(group, name, verb, role, args, result, var_keyword, paged, doc)


@cache
def operations() -> dict[tuple[str, str], Operation]:
    """Every store operation the REST API serves, keyed by (group, method name)."""
    found: dict[tuple[str, str], Operation] = {}
    for group, protocol in GROUPS.items():
        for name, member in vars(protocol).items():
            if callable(member) and not name.startswith("_"):
                found[group, name] = _operation(group, protocol, name)
    return found


def protocol_methods() -> set[tuple[str, str]]:
    """The (group, method) pairs the Protocols declare: what the OpenAPI document must list."""
    return {(g, n) for g, p in GROUPS.items() for n, m in vars(p).items() if callable(m) and not n.startswith("_")}
