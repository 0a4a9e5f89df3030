"""Content-addressed artifact storage on any fsspec filesystem (local disk, S3).

A blob lives at ``{root}/blobs/{digest[:2]}/{digest}`` where ``digest`` is the sha256 of its
bytes, so identical files are stored once. Local writes go to a temporary file and are
renamed into place; S3 puts are atomic by nature. Every read re-hashes the bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, IntegrityError, InvalidInputError, NotFoundError, StoreUnavailableError
from shipyard.store.registry import redact_uri

CHUNK = 1 << 20
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), "
    "or AWS_PROFILE for a profile in ~/.aws/credentials; shipyard reads botocore's standard chain"
)


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The sha256 hex digest and size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_digest(digest: str) -> None:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInputError(f"{digest!r} is not a sha256 hex digest", field="digest")


def save_verified(chunks: Iterable[bytes], digest: str, dest: str, *, where: str) -> None:
    """Write ``chunks`` to ``dest`` through a temporary file renamed into place only if they hash to ``digest``."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise IntegrityError(
                f"artifact blob {digest} in {where} is corrupted: its bytes hash to {hasher.hexdigest()}"
            )
        os.replace(temp, dest)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


class FsspecArtifactStore:
    """Blobs addressed by sha256 under one root URL (``file://...`` or ``s3://bucket/prefix``)."""

    def __init__(self, root: str, *, endpoint_url: str | None = None) -> None:
        import fsspec

        self.root = root.rstrip("/")
        protocol = root.split("://", 1)[0]
        options: dict[str, Any] = {}
        if protocol == "s3":
            # Its own client: a cached one would keep the credentials of whichever store came first.
            options["skip_instance_cache"] = True
            if endpoint_url:
                options["client_kwargs"] = {"endpoint_url": endpoint_url}
        try:
            self.fs = fsspec.filesystem(protocol, **options)
        except ImportError as exc:
            raise StoreUnavailableError(
                f"artifact store {redact_uri(root)} needs an extra: pip install 'shipyard[{protocol}]'"
            ) from exc
        self.local = protocol == "file"
        self._no_credentials, self._client_errors = _client_errors(protocol)
        self._base = self.root.split("://", 1)[1] if protocol != "memory" else self.root
        if self.local:
            Path(self._base, "blobs").mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _remote(self, action: str) -> Iterator[None]:
        """Turn the cloud SDK's errors into one line that says what to do, not its traceback."""
        try:
            yield
        except self._no_credentials as exc:
            raise ConfigError(
                f"artifact store {redact_uri(self.root)} has no credentials to {action} with: {CREDENTIALS_HINT}",
                field="AWS_ACCESS_KEY_ID",
            ) from exc
        except self._client_errors as exc:
            raise StoreUnavailableError(f"cannot {action} artifact store {redact_uri(self.root)}: {exc}") from exc

    def _path(self, digest: str) -> str:
        return f"{self._base}/blobs/{digest[:2]}/{digest}"

    def exists(self, digest: str) -> bool:
        """True when the blob is stored."""
        _check_digest(digest)
        if self.local:
            return os.path.exists(self._path(digest))
        with self._remote("read"):
            return bool(self.fs.exists(self._path(digest)))

    def put_file(self, path: str) -> tuple[str, int]:
        """Store a local file once; returns its digest and size."""
        digest, size = sha256_file(path)
        if not self.exists(digest):
            self._write(digest, path)
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes once; returns their digest and size."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            with tempfile.NamedTemporaryFile(delete=False) as handle:
                handle.write(data)
            try:
                self._write(digest, handle.name)
            finally:
                os.unlink(handle.name)
        return digest, len(data)

    def _write(self, digest: str, local_path: str) -> None:
        target = self._path(digest)
        try:
            if self.local:
                folder = os.path.dirname(target)
                os.makedirs(folder, exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                try:
                    with os.fdopen(fd, "wb") as out, open(local_path, "rb") as src:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(temp, target)
                except BaseException:
                    if os.path.exists(temp):
                        os.unlink(temp)
                    raise
            else:
                with self._remote("write to"):
                    self.fs.put_file(local_path, target)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write to artifact store {redact_uri(self.root)}: {exc}") from exc

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, verified against the digest."""
        _check_digest(digest)
        try:
            with self._remote("read"), self.fs.open(self._path(digest), "rb") as handle:
                data: bytes = handle.read()
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {digest} is missing from {redact_uri(self.root)}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise IntegrityError(
                f"artifact blob {digest} in {redact_uri(self.root)} is corrupted: its bytes hash to {actual}"
            )
        return data

    def download(self, digest: str, dest: str) -> None:
        """Copy the blob to a local file, verifying it; ``dest`` appears only once verified."""
        _check_digest(digest)
        try:
            with self._remote("read"), self.fs.open(self._path(digest), "rb") as src:
                save_verified(iter(lambda: src.read(CHUNK), b""), digest, dest, where=redact_uri(self.root))
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {digest} is missing from {redact_uri(self.root)}") from exc

    def signed_url(self, digest: str, *, expires_s: int = 3600) -> str:
        """A pre-signed GET URL for the blob, valid ``expires_s`` seconds (S3 roots only)."""
        _check_digest(digest)
        if not self.root.startswith("s3://"):
            raise InvalidInputError(
                f"artifact store {redact_uri(self.root)} is not on S3: it signs no URLs; download the blob instead",
                field="digest",
            )
        if not self.exists(digest):
            raise NotFoundError(f"artifact blob {digest} is missing from {redact_uri(self.root)}", field="digest")
        with self._remote("sign"):
            url: str = self.fs.sign(self._path(digest), expiration=expires_s)
        return url

    def delete(self, digests: Iterable[str]) -> int:
        """Remove blobs; returns how many were removed."""
        removed = 0
        with self._remote("delete from"):
            for digest in digests:
                _check_digest(digest)
                path = self._path(digest)
                if self.fs.exists(path):
                    self.fs.rm(path)
                    removed += 1
        return removed

    def list_digests(self) -> list[str]:
        """Every stored blob's digest."""
        base = f"{self._base}/blobs"
        with self._remote("list"):
            if not self.fs.exists(base):
                return []
            names = [str(p).rsplit("/", 1)[-1] for p in self.fs.find(base)]
        return sorted(n for n in names if len(n) == 64 and not n.startswith(".tmp-"))


def _client_errors(protocol: str) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """The SDK's "no credentials" errors and its other client-side errors, for remote protocols."""
    if protocol != "s3":
        return (), ()
    from botocore.exceptions import BotoCoreError, NoCredentialsError, PartialCredentialsError

    return (NoCredentialsError, PartialCredentialsError), (BotoCoreError,)
