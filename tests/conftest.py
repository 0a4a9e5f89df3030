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


# Folders whose store-backed tests also run against a live ``shipyard server`` (the REST backend).
REMOTE_FOLDERS = ("tests/tracking/", "tests/registry/", "tests/datasets/", "tests/test_client.py")
# Tests that stay local, and why: they reach past the store API into what a server hides.
LOCAL_ONLY = {
    "tests/registry/test_integrity.py::test_tampered_model_file_is_refused": "rewrites a blob file on disk",
    "tests/registry/test_integrity.py::test_tampered_manifest_is_refused": "rewrites a blob file on disk",
    "tests/datasets/test_datasets.py::test_tampered_blob_fails_to_load": "rewrites a blob file on disk",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``server`` param of ``settings`` runs only in REMOTE_FOLDERS, and not for the LOCAL_ONLY tests."""
    root = Path(str(config.rootpath))
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        remote = callspec is not None and callspec.params.get("settings") == "server"
        where = Path(str(item.path)).relative_to(root).as_posix()
        if remote and (not where.startswith(REMOTE_FOLDERS) or f"{where}::{item.originalname}" in LOCAL_ONLY):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("server", marks=pytest.mark.postgres),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for a fresh, empty store: SQLite in tmp_path, a new PostgreSQL schema, or a live server.

    ``server``: a ``shipyard server`` app (auth none) on a loopback port, over a new PostgreSQL
    schema and artifacts in tmp_path, as a team runs it; the settings point both stores at it
    over HTTP (the REST backend).
    """
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
    if request.param == "server":
        try:
            yield from _remote(replace(base, store_uri=uri), monkeypatch)
        finally:
            schema_cm.__exit__(None, None, None)
        return
    chosen = replace(base, store_uri=uri)
    _export(monkeypatch, chosen)
    try:
        yield chosen
    finally:
        close_stores(chosen)
        schema_cm.__exit__(None, None, None)


def _remote(backing: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    from shipyard.server._thread import serving
    from shipyard.server.app import create_app

    with serving(create_app(backing, auth="none")) as url:
        chosen = replace(backing, store_uri=url, artifact_uri=url)
        _export(monkeypatch, chosen)
        monkeypatch.chdir(Path(backing.artifact_uri.removeprefix("file://")).parent)
        try:
            yield chosen
        finally:
            close_stores(chosen)
            close_stores(backing)


def _export(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the module-level API (sy.start_run, ...) at these settings, as a user's env would."""
    monkeypatch.setenv("SHIPYARD_STORE", settings.store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", str(settings.flush_interval))
    monkeypatch.setenv("SHIPYARD_HEARTBEAT_INTERVAL", str(settings.heartbeat_interval))
    monkeypatch.setenv("SHIPYARD_HEARTBEAT_TIMEOUT", str(settings.heartbeat_timeout))
    if settings.artifact_uri.startswith("file://"):  # a server's settings: _remote changes folder
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
