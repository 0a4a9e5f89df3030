"""Settings resolution: explicit arguments, env vars, shipyard.toml found upward, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import resolve_settings
from shipyard.errors import ConfigError


def test_default_is_dot_shipyard_in_the_working_directory(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, env={})
    assert settings.store_uri == f"sqlite:///{tmp_path / '.shipyard' / 'shipyard.db'}"
    assert settings.artifact_uri == f"file://{tmp_path / '.shipyard' / 'artifacts'}"
    assert settings.source == "defaults"


def test_toml_is_found_upward_and_relative_paths_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[shipyard]\nstore = "sqlite:///meta/db.sqlite"\nartifacts = "blobs"\nflush_interval = 0.5\n'
    )
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    settings = resolve_settings(cwd=deep, env={})
    assert settings.store_uri == f"sqlite:///{tmp_path / 'meta' / 'db.sqlite'}"
    assert settings.artifact_uri == f"file://{tmp_path / 'blobs'}"
    assert settings.flush_interval == 0.5
    assert settings.source == str(tmp_path / "shipyard.toml")


def test_env_beats_toml_and_arguments_beat_env(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('store = "sqlite:///from-toml.db"\n')
    env = {"SHIPYARD_STORE": "postgresql://u@h/db", "SHIPYARD_ARTIFACTS": "s3://bucket/x", "SHIPYARD_TOKEN": "t"}
    settings = resolve_settings(cwd=tmp_path, env=env)
    assert (settings.store_uri, settings.artifact_uri, settings.token) == ("postgresql://u@h/db", "s3://bucket/x", "t")
    assert resolve_settings(store_uri="sqlite:////x.db", cwd=tmp_path, env=env).store_uri == "sqlite:////x.db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("store = [", "cannot read"),
        ("shipyard = 3", "must be a table"),
        ("flush_interval = 'soon'", "flush_interval must be a number of seconds, got 'soon'"),
        ("heartbeat_timeout = -1", "heartbeat_timeout must be positive"),
    ],
)
def test_malformed_config_is_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "shipyard.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        resolve_settings(cwd=tmp_path, env={})


def test_online_store_from_toml_and_env_reaches_the_feature_store(tmp_path: Path) -> None:
    from shipyard.client import Client
    from shipyard.features import FeatureStore

    (tmp_path / "shipyard.toml").write_text('[shipyard]\nonline_store = "sqlite:///online/features.db"\n')
    deep = tmp_path / "a"
    deep.mkdir()
    settings = resolve_settings(cwd=deep, env={})
    assert settings.online_store == f"sqlite:///{tmp_path / 'online' / 'features.db'}"  # relative to the file
    store = FeatureStore(client=Client(settings=settings))
    assert store.online_uri == settings.online_store
    store.close()

    redis = resolve_settings(cwd=deep, env={"SHIPYARD_ONLINE_STORE": "redis://127.0.0.1:6379/0"})
    assert redis.online_store == "redis://127.0.0.1:6379/0"  # the variable beats the file


def test_online_store_default_is_beside_the_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.client import Client
    from shipyard.features import FeatureStore

    monkeypatch.delenv("SHIPYARD_ONLINE_STORE", raising=False)

    settings = resolve_settings(cwd=tmp_path, env={})
    assert settings.online_store is None
    store = FeatureStore(client=Client(settings=settings))
    assert store.online_uri == f"sqlite:///{tmp_path / '.shipyard' / 'online_features.db'}"
    store.close()


def test_malformed_online_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('online_store = "features.db"\n')
    with pytest.raises(ConfigError, match=r"online_store must be a URI such as sqlite:///online.db .*'features.db'"):
        resolve_settings(cwd=tmp_path, env={})
