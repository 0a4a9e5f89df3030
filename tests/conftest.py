"""Fixtures: every store-backed test runs on SQLite and on PostgreSQL; S3 through moto's server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.store import Stores, close_stores, open_stores
from shipyard.testing import ServiceMissing, in_ci, moto_s3_server, postgres_schema, sqlite_settings


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: integration services must be present)")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for a fresh, empty store: SQLite in tmp_path, or a new PostgreSQL schema."""
    base = sqlite_settings(tmp_path, heartbeat_interval=0.2, heartbeat_timeout=2.0, flush_interval=0.2)
    if request.param == "sqlite":
        chosen = base
        _export(monkeypatch, chosen)
        yield chosen
        close_stores(chosen)
        return
    try:
        schema_cm = postgres_schema()
        uri = schema_cm.__enter__()
    except ServiceMissing as exc:
        _missing(str(exc))
        return
    chosen = replace(base, store_uri=uri)
    _export(monkeypatch, chosen)
    try:
        yield chosen
    finally:
        close_stores(chosen)
        schema_cm.__exit__(None, None, None)


def _export(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the module-level API (sy.start_run, ...) at these settings, as a user's env would."""
    monkeypatch.setenv("SHIPYARD_STORE", settings.store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", str(settings.flush_interval))
    monkeypatch.setenv("SHIPYARD_HEARTBEAT_INTERVAL", str(settings.heartbeat_interval))
    monkeypatch.setenv("SHIPYARD_HEARTBEAT_TIMEOUT", str(settings.heartbeat_timeout))
    monkeypatch.chdir(Path(settings.artifact_uri.removeprefix("file://")).parent)


@pytest.fixture
def stores(settings: Settings) -> Stores:
    """The opened stores for ``settings``."""
    return open_stores(settings)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """moto's S3 server on a loopback port, for the whole session."""
    try:
        with moto_s3_server() as server:
            yield server
    except ServiceMissing as exc:
        _missing(str(exc))
