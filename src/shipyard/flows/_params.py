"""Flow parameters checked against the function's type hints, and parsed from CLI strings.

Checked before anything is recorded: a missing, unknown or mistyped parameter raises
:class:`~shipyard.errors.InvalidInputError` naming it, and no flow run exists.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime as dt
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.errors import InvalidInputError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def type_name(annotation: Any) -> str:
    """A readable name for a type hint: ``list[float]``, ``str | None``."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def hints_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type hints of ``fn``'s parameters (unresolvable ones are left out)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a forward reference that does not resolve: check what we can
        return {k: v for k, v in getattr(fn, "__annotations__", {}).items() if not isinstance(v, str)}


def matches(value: Any, annotation: Any) -> bool:
    """True when ``value`` is an instance of the type hint ``annotation`` (containers checked deeply)."""
    if annotation in (Any, inspect.Parameter.empty, object):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is typing.Annotated:
        return matches(value, args[0])
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is None:
        return not isinstance(annotation, type) or isinstance(value, annotation)
    return _matches_generic(value, origin, args)


def _matches_generic(value: Any, origin: Any, args: tuple[Any, ...]) -> bool:
    if isinstance(origin, type) and not isinstance(value, origin):
        return False
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(matches(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args, strict=True)))
    if isinstance(value, Mapping):
        if len(args) == 2:
            return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        return True
    if isinstance(value, cabc.Iterable) and len(args) == 1 and not isinstance(value, str | bytes):
        return all(matches(v, args[0]) for v in value)
    return True


def bind_params(
    fn: Callable[..., Any], flow_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Every parameter's value (defaults filled in), checked against the type hints."""
    signature = inspect.signature(fn)
    parameters = signature.parameters
    for name in kwargs:
        if name not in parameters and not _takes_var_keyword(signature):
            known = ", ".join(parameters) or "none"
            raise InvalidInputError(
                f"flow {flow_name!r} has no parameter {name!r}; its parameters are: {known}", field=name
            )
    hints = hints_of(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        missing = [p for p in parameters.values() if p.default is p.empty and p.name not in kwargs]
        missing = missing[len(args) :]
        if missing:
            p = missing[0]
            raise InvalidInputError(
                f"flow {flow_name!r} is missing required parameter {p.name!r} "
                f"({type_name(hints.get(p.name, p.annotation))})",
                field=p.name,
            ) from exc
        raise InvalidInputError(f"flow {flow_name!r} called with bad arguments: {exc}") from exc
    bound.apply_defaults()
    for name, value in bound.arguments.items():
        hint = hints.get(name, inspect.Parameter.empty)
        if parameters[name].kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if not matches(value, hint):
            raise InvalidInputError(
                f"parameter {name!r} of flow {flow_name!r} must be {type_name(hint)}, "
                f"got {value!r} ({type(value).__name__})",
                field=name,
            )
    return dict(bound.arguments)


def _takes_var_keyword(signature: inspect.Signature) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def coerce_params(fn: Callable[..., Any], flow_name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse string values (from ``--param k=v`` or a stored JSON record) into the hinted types."""
    hints = hints_of(fn)
    parameters = inspect.signature(fn).parameters
    out: dict[str, Any] = {}
    for name, value in raw.items():
        param = parameters.get(name)
        hint = hints.get(name, param.annotation if param is not None else inspect.Parameter.empty)
        out[name] = _coerce(value, hint, name, flow_name)
    return out


def _coerce(value: Any, hint: Any, name: str, flow_name: str) -> Any:
    try:
        return _parse(value, hint)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"parameter {name!r} of flow {flow_name!r} must be {type_name(hint)}, cannot read {value!r}: {exc}",
            field=name,
        ) from exc


def _parse(value: Any, hint: Any) -> Any:  # noqa: C901 - one branch per type family
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if isinstance(value, str) and value.lower() in {"none", "null"} and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                parsed = _parse(value, option)
            except (ValueError, TypeError):
                continue
            if matches(parsed, option):
                return parsed
        return value
    if origin is typing.Literal:
        return next((option for option in args if str(option) == str(value)), value)
    if isinstance(value, str):
        if hint is bool:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return value.lower() in _TRUE
        if hint in (int, float):
            return hint(value)
        if hint in (dt.date, dt.datetime):
            return hint.fromisoformat(value)
        if origin in (list, dict, tuple, set, frozenset) or hint in (list, dict, tuple, set, frozenset):
            value = json.loads(value)
        else:
            return value
    if isinstance(value, list | tuple) and (origin or hint) in (list, tuple, set, frozenset):
        container = origin or hint
        if container is tuple and args and args[-1] is not Ellipsis:
            return tuple(_parse(v, a) for v, a in zip(value, args, strict=False))
        return container(_parse(v, args[0] if args else Any) for v in value)
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        return {_parse(k, args[0]): _parse(v, args[1]) for k, v in value.items()}
    return value
