"""Settings resolution: environment variables, then ``shipyard.toml`` found upward, then defaults.

Example:
    >>> settings = resolve_settings()
    >>> settings.store_uri            # doctest: +SKIP
    'sqlite:////home/me/project/.shipyard/shipyard.db'
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import ConfigError

CONFIG_FILE = "shipyard.toml"
DEFAULT_DIR = ".shipyard"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where shipyard keeps its metadata and artifacts, and how the tracking threads behave.

    ``online_store`` is the feature store's online store (``sqlite:///...`` or ``redis://...``);
    ``None`` means a SQLite file beside the metadata.
    """

    store_uri: str
    artifact_uri: str
    token: str | None = None
    flush_interval: float = 1.0
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 60.0
    s3_endpoint_url: str | None = None
    online_store: str | None = None
    source: str = "defaults"
    extra: Mapping[str, str] = field(default_factory=dict)


def _find_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    section = data.get("shipyard", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [shipyard] must be a table")
    return section


def _absolute_file_uri(path: Path) -> str:
    return "file://" + str(path.resolve())


def _float(name: str, raw: object) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _online_uri(raw: object, base: Path) -> str:
    """The online store's URI; a relative SQLite path is relative to ``base``, as the store's is."""
    if not isinstance(raw, str) or "://" not in raw:
        raise ConfigError(f"online_store must be a URI such as sqlite:///online.db or redis://HOST:6379, got {raw!r}")
    if raw.startswith("sqlite:///") and not raw.startswith("sqlite:////"):
        return "sqlite:///" + str((base / raw.removeprefix("sqlite:///")).resolve())
    return raw


def resolve_settings(
    *,
    store_uri: str | None = None,
    artifact_uri: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings: explicit arguments win, then env vars, then ``shipyard.toml``, then defaults.

    Relative paths in ``shipyard.toml`` are relative to the file; the default is
    ``.shipyard/`` in the working directory.
    """
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    config_path = _find_config(cwd)
    file_values = _read_toml(config_path) if config_path else {}
    base = config_path.parent if config_path else cwd

    def pick(key: str, env_name: str) -> object | None:
        if env.get(env_name):
            return env[env_name]
        return file_values.get(key)

    store = store_uri or pick("store", "SHIPYARD_STORE")
    artifacts = artifact_uri or pick("artifacts", "SHIPYARD_ARTIFACTS")
    if store is None:
        store = "sqlite:///" + str((base / DEFAULT_DIR / "shipyard.db").resolve())
    if artifacts is None:
        artifacts = _absolute_file_uri(base / DEFAULT_DIR / "artifacts")
    store, artifacts = str(store), str(artifacts)
    if store.startswith("sqlite:///") and not store.startswith("sqlite:////"):
        relative = store.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            store = "sqlite:///" + str((base / relative).resolve())
    if artifacts.startswith("file://") and not artifacts.startswith("file:///"):
        artifacts = _absolute_file_uri(base / artifacts.removeprefix("file://"))
    elif "://" not in artifacts:
        artifacts = _absolute_file_uri(base / artifacts)

    token = pick("token", "SHIPYARD_TOKEN")
    online = pick("online_store", "SHIPYARD_ONLINE_STORE")
    endpoint = pick("s3_endpoint_url", "SHIPYARD_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL")
    return Settings(
        store_uri=store,
        artifact_uri=artifacts,
        token=str(token) if token else None,
        flush_interval=_float("flush_interval", pick("flush_interval", "SHIPYARD_FLUSH_INTERVAL") or 1.0),
        heartbeat_interval=_float(
            "heartbeat_interval", pick("heartbeat_interval", "SHIPYARD_HEARTBEAT_INTERVAL") or 10.0
        ),
        heartbeat_timeout=_float("heartbeat_timeout", pick("heartbeat_timeout", "SHIPYARD_HEARTBEAT_TIMEOUT") or 60.0),
        s3_endpoint_url=str(endpoint) if endpoint else None,
        online_store=_online_uri(online, base) if online else None,
        source=str(config_path) if config_path else "defaults",
    )
