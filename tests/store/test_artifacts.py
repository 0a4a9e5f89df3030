"""The content-addressed artifact store, on local disk and on S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import ConfigError, IntegrityError, NotFoundError
from shipyard.store.artifacts import FsspecArtifactStore
from shipyard.testing import S3Server


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def artifacts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FsspecArtifactStore]:
    if request.param == "file":
        yield FsspecArtifactStore(f"file://{tmp_path / 'artifacts'}")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = FsspecArtifactStore(f"s3://{server.bucket}/{tmp_path.name}", endpoint_url=server.endpoint_url)
    yield store


def test_put_is_content_addressed_and_deduplicated(artifacts: FsspecArtifactStore, tmp_path: Path) -> None:
    data = b"weights" * 1000
    first = tmp_path / "a.bin"
    first.write_bytes(data)
    digest, size = artifacts.put_file(str(first))
    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert artifacts.put_bytes(data) == (digest, size)
    assert artifacts.list_digests() == [digest]
    assert artifacts.get_bytes(digest) == data
    out = tmp_path / "out" / "copy.bin"
    artifacts.download(digest, str(out))
    assert out.read_bytes() == data


def test_missing_blob_is_not_found(artifacts: FsspecArtifactStore, tmp_path: Path) -> None:
    missing = "0" * 64
    assert not artifacts.exists(missing)
    with pytest.raises(NotFoundError, match=f"artifact blob {missing} is missing"):
        artifacts.get_bytes(missing)
    with pytest.raises(NotFoundError):
        artifacts.download(missing, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_tampered_blob_raises_and_leaves_no_file(artifacts: FsspecArtifactStore, tmp_path: Path) -> None:
    digest, _ = artifacts.put_bytes(b"the real model")
    with artifacts.fs.open(artifacts._path(digest), "wb") as handle:
        handle.write(b"a swapped model")
    with pytest.raises(IntegrityError, match=f"artifact blob {digest} .* is corrupted"):
        artifacts.get_bytes(digest)
    dest = tmp_path / "model.bin"
    with pytest.raises(IntegrityError):
        artifacts.download(digest, str(dest))
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_delete_removes_only_named_blobs(artifacts: FsspecArtifactStore) -> None:
    keep, _ = artifacts.put_bytes(b"keep")
    drop, _ = artifacts.put_bytes(b"drop")
    assert artifacts.delete([drop]) == 1
    assert artifacts.list_digests() == [keep]


def test_local_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = FsspecArtifactStore(f"file://{tmp_path}")
    for i in range(5):
        store.put_bytes(f"blob {i}".encode())
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_unknown_scheme_lists_the_known_ones() -> None:
    from shipyard.config import resolve_settings
    from shipyard.store import open_stores

    settings = resolve_settings(store_uri="mongodb://user:secret@host/db", artifact_uri="file:///tmp/x", env={})
    with pytest.raises(
        ConfigError,
        match=r"'mongodb://user:\*\*\*@host/db' has scheme 'mongodb'; known schemes: http, https, "
        r"postgresql, postgresql\+psycopg, sqlite",
    ):
        open_stores(settings)


@pytest.mark.s3
def test_s3_without_credentials_says_which_settings_to_set(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # Nowhere else for botocore's chain to find keys: no files, no instance metadata.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = FsspecArtifactStore(f"s3://{s3_server.bucket}/{tmp_path.name}", endpoint_url=s3_server.endpoint_url)
    for action in (lambda: store.put_bytes(b"weights"), store.list_digests, lambda: store.get_bytes("0" * 64)):
        with pytest.raises(
            ConfigError, match=r"no credentials.*set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) as info:
            action()
        assert "\n" not in str(info.value)
        assert type(info.value.__cause__).__name__ == "NoCredentialsError"
