"""Artifact routes: blobs streamed through the server, both ways, with HTTP Range on download."""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response

from shipyard.errors import InvalidInputError
from shipyard.server.auth import role_required
from shipyard.store.protocols import ArtifactStore
from shipyard.store.rest._spec import PREFIX

ARTIFACTS = f"{PREFIX}/artifacts"
Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the blob's sha256, 64 lowercase hex digits")]


class DeleteArgs(BaseModel):
    """The blobs to delete."""

    digests: list[str]


def add_artifact_routes(app: FastAPI, artifacts: ArtifactStore) -> None:
    """``PUT|GET /api/v1/artifacts/{digest}``, ``.../exists``, ``.../url`` (S3), the listing and the (admin) delete."""
    reader, writer, admin = (Depends(role_required(r)) for r in ("reader", "writer", "admin"))

    @app.get(ARTIFACTS, tags=["artifacts"], dependencies=[reader])
    async def list_digests() -> dict[str, list[str]]:
        return {"result": await run_in_threadpool(artifacts.list_digests)}

    @app.get(f"{ARTIFACTS}/{{digest}}/exists", tags=["artifacts"], dependencies=[reader])
    async def exists(digest: Digest) -> dict[str, bool]:
        return {"result": await run_in_threadpool(artifacts.exists, digest)}

    @app.get(f"{ARTIFACTS}/{{digest}}/url", tags=["artifacts"], dependencies=[reader])
    async def signed_url(digest: Digest, expires_s: Annotated[int, Query(ge=1, le=7 * 24 * 3600)] = 3600) -> Any:
        """A pre-signed S3 URL to fetch the blob directly (S3 artifact roots only; 400 elsewhere)."""
        sign = getattr(artifacts, "signed_url", None)
        if sign is None:
            raise InvalidInputError("this server's artifact store signs no URLs; download the blob", field="digest")
        return {"result": await run_in_threadpool(lambda: sign(digest, expires_s=expires_s))}

    @app.get(f"{ARTIFACTS}/{{digest}}", tags=["artifacts"], dependencies=[reader], response_class=FileResponse)
    async def download(digest: Digest) -> Response:
        """The blob's bytes (verified against its digest first); ``Range: bytes=a-b`` answers 206."""
        fd, tmp = tempfile.mkstemp(prefix="shipyard-dl-")
        os.close(fd)
        try:
            await run_in_threadpool(artifacts.download, digest, tmp)
        except BaseException:
            os.unlink(tmp)
            raise
        return FileResponse(tmp, media_type="application/octet-stream", background=BackgroundTask(os.unlink, tmp))

    @app.put(f"{ARTIFACTS}/{{digest}}", tags=["artifacts"], dependencies=[writer])
    async def upload(digest: Digest, request: Request) -> JSONResponse:
        """Store the streamed request body under ``digest``; refused when the bytes hash differently."""
        fd, tmp = tempfile.mkstemp(prefix="shipyard-up-")
        sha = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    sha.update(chunk)
                    out.write(chunk)
            if sha.hexdigest() != digest:
                raise InvalidInputError(
                    f"the uploaded bytes hash to {sha.hexdigest()}, not to {digest}", field="digest"
                )
            stored, size = await run_in_threadpool(artifacts.put_file, tmp)
        finally:
            os.unlink(tmp)
        return JSONResponse({"result": [stored, size]})

    @app.post(f"{ARTIFACTS}/delete", tags=["artifacts"], dependencies=[admin])
    async def delete(body: DeleteArgs) -> dict[str, int]:
        return {"result": await run_in_threadpool(artifacts.delete, body.digests)}
