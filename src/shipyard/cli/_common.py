"""What every command group shares: the client, the console, time formatting, ``--json`` output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any

import typer
from rich.console import Console

from shipyard.client import Client

console = Console()


def client() -> Client:
    """A client for the settings in force (env, shipyard.toml, defaults)."""
    return Client()


def when(timestamp: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration as ``1.2s``/``3m04s``, or ``-``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes}m{rest:02d}s"


def number(value: float) -> str:
    """A metric value, compact."""
    return f"{value:.6g}"


def dataset_ref(ref: str) -> str:
    """``NAME/3`` as datasets spell it (``NAME@3``): one version syntax for models and datasets."""
    name, sep, number = ref.rpartition("/")
    return f"{name}@{number}" if sep and number.isdigit() else ref


JsonOption = Annotated[bool, typer.Option("--json", help="print a JSON array instead of a table, for scripts")]


def emit_json(rows: Iterable[Mapping[str, Any]]) -> None:
    """Print ``rows`` as one JSON array on stdout: no colour, no wrapping, so scripts can parse it."""
    sys.stdout.write(json.dumps(list(rows), default=str, indent=2) + "\n")


def record(obj: Any, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A frozen dataclass as plain JSON-ready data (mappings and tuples become dicts and lists)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in exclude}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, set, frozenset)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record(value)
    return value
