"""Artifacts through a shipyard server: uploads and downloads streamed, every read verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from shipyard.errors import IntegrityError
from shipyard.store.artifacts import CHUNK, _check_digest, save_verified, sha256_file
from shipyard.store.registry import redact_uri
from shipyard.store.rest._client import RestClient, raise_for
from shipyard.store.rest._spec import PREFIX

ARTIFACTS = f"{PREFIX}/artifacts"


class RestArtifactStore:
    """The ``ArtifactStore`` Protocol over ``/api/v1/artifacts`` on a shipyard server."""

    def __init__(self, root: str, *, client: RestClient) -> None:
        self.root = root
        self._client = client

    def exists(self, digest: str) -> bool:
        """Whether the server holds the blob."""
        _check_digest(digest)
        answer: bool = self._client.request("GET", f"{ARTIFACTS}/{digest}/exists").json()["result"]
        return answer

    def put_file(self, path: str) -> tuple[str, int]:
        """Upload a local file as a streamed body (skipped when the server already holds it)."""
        digest, size = sha256_file(path)
        if not self.exists(digest):
            with open(path, "rb") as handle:
                self._client.request("PUT", f"{ARTIFACTS}/{digest}", content=_chunks(handle))
        return digest, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Upload bytes under their sha256."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._client.request("PUT", f"{ARTIFACTS}/{digest}", content=data)
        return digest, len(data)

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, re-hashed here."""
        _check_digest(digest)
        data = self._client.request("GET", f"{ARTIFACTS}/{digest}").content
        _verify(digest, hashlib.sha256(data).hexdigest())
        return data

    def download(self, digest: str, dest: str) -> None:
        """Stream the blob to ``dest``; the file appears only once its hash matched."""
        _check_digest(digest)
        with self._client.http.stream("GET", f"{ARTIFACTS}/{digest}") as response:
            if response.status_code >= 400:
                response.read()
                raise_for(response)
            save_verified(response.iter_bytes(CHUNK), digest, dest, where=redact_uri(self.root))

    def signed_url(self, digest: str, *, expires_s: int = 3600) -> str:
        """A pre-signed URL straight to the blob on S3, when the server's artifacts are there."""
        _check_digest(digest)
        params = {"expires_s": expires_s}
        answer: str = self._client.request("GET", f"{ARTIFACTS}/{digest}/url", params=params).json()["result"]
        return answer

    def delete(self, digests: Iterable[str]) -> int:
        """Delete blobs (an admin operation on the server); the number deleted."""
        answer: int = self._client.request("POST", f"{ARTIFACTS}/delete", json={"digests": list(digests)}).json()[
            "result"
        ]
        return answer

    def list_digests(self) -> list[str]:
        """Every blob's digest."""
        answer: list[str] = self._client.request("GET", ARTIFACTS).json()["result"]
        return answer


def _chunks(handle: object) -> Iterable[bytes]:
    read = handle.read  # type: ignore[attr-defined]
    while chunk := read(CHUNK):
        yield chunk


def _verify(digest: str, actual: str) -> None:
    if actual != digest:
        raise IntegrityError(f"artifact blob {digest} arrived corrupted: its bytes hash to {actual}")
