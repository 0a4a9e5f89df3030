"""The team server: every store operation under ``/api/v1``, artifacts streamed, auth and the UI mounted.

    GET|POST /api/v1/{group}/{method}     one route per store Protocol method (see ``/docs``)
    GET      /api/v1/artifacts/{digest}   a blob's bytes, ``Range`` honoured (206)
    PUT      /api/v1/artifacts/{digest}   upload a blob as a streamed body, checked against its digest
    GET      /docs, /openapi.json         Swagger UI (offline) and the OpenAPI document

Errors answer ``{"error": {"code", "message", "field"}}`` with the error's status (404 not
found, 400/422 bad input, 409 conflict, 413 too large); no driver text reaches a body.
CORS is off: no cross-origin headers are sent unless ``cors_origins`` names some.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.config import Settings
from shipyard.errors import ConflictError, InvalidInputError, PayloadTooLargeError, ShipyardError
from shipyard.server import auth as auth_module
from shipyard.server._artifacts import ARTIFACTS, add_artifact_routes
from shipyard.server._operations import add_operation_routes
from shipyard.server.ui import mount_ui
from shipyard.store.registry import Stores, open_stores

log = logging.getLogger("shipyard.server")

BODY_LIMIT = 64 * 1024 * 1024
ARTIFACT_LIMIT = 16 * 1024**3


def create_app(
    settings_or_stores: Settings | Stores,
    *,
    auth: Literal["token", "none"] = "token",
    body_limit: int = BODY_LIMIT,
    artifact_limit: int = ARTIFACT_LIMIT,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    """The server app over the stores ``settings_or_stores`` resolve to.

    Example:
        >>> app = create_app(resolve_settings(), auth="none")  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    stores = settings_or_stores if isinstance(settings_or_stores, Stores) else open_stores(settings_or_stores)
    app = FastAPI(title="shipyard", version="1", docs_url=None, redoc_url=None, redirect_slashes=False)
    _errors(app)
    auth_module.install(app, stores, mode=auth)
    add_operation_routes(app, stores)
    add_artifact_routes(app, stores.artifacts)
    mount_ui(app, stores)
    from shipyard.serving.app import _docs  # the same offline Swagger UI as ``shipyard serve``

    _docs(app)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_headers=["*"], allow_methods=["*"])
    app.add_middleware(_BodyLimit, limit=body_limit, artifact_limit=artifact_limit)
    return app


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status)


def _errors(app: FastAPI) -> None:
    """Store errors keep their status; bad input is 4xx, and nothing else leaks a driver's text."""
    from sqlalchemy import exc as sql

    @app.exception_handler(ShipyardError)
    async def shipyard_error(request: Request, exc: ShipyardError) -> Response:
        return _error(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(where) or None
        return _error(422, "invalid_input", f"{field or 'request'}: {first.get('msg', 'invalid')}", field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, "http", str(exc.detail))

    @app.exception_handler(sql.DataError)
    @app.exception_handler(OverflowError)  # an integer past the database's 64 bits (SQLite's driver raises this)
    async def out_of_range(request: Request, exc: Exception) -> Response:
        bad = InvalidInputError("a value does not fit the store's column (too long or out of range)")
        return _error(bad.status, bad.code, bad.message)

    @app.exception_handler(sql.IntegrityError)
    async def clash(request: Request, exc: Exception) -> Response:
        bad = ConflictError("the write conflicts with what is stored (a duplicate or a missing parent)")
        return _error(bad.status, bad.code, bad.message)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "error", f"internal error ({type(exc).__name__}); the server log has the details")


class _BodyLimit:
    """Refuses a request body over the limit (413), by its Content-Length or while it streams."""

    def __init__(self, app: ASGIApp, *, limit: int, artifact_limit: int) -> None:
        self.app, self.limit, self.artifact_limit = app, limit, artifact_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.artifact_limit if scope["path"].startswith(ARTIFACTS) else self.limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _error(413, "payload_too_large", f"the body is {int(declared)} bytes; the limit is {limit}")(
                scope, receive, send
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLargeError(f"the body is over the limit of {limit} bytes", field="body")
            return message

        await self.app(scope, counted, send)


def loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``--auth none`` is allowed only there)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["create_app", "loopback"]
