"""What every command group shares: the client, the console, time formatting."""

from __future__ import annotations

import datetime as dt

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
