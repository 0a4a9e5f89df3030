"""Structured JSON access logs with a request id, as a pure ASGI middleware (no per-request task)."""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("shipyard.serving.access")
REQUEST_ID = b"x-request-id"


class _RequestIds:
    """Unique ids without a system call each (``uuid4`` reads ``os.urandom`` per request).

    A random 64-bit prefix per process, drawn again in every forked worker, then a counter:
    32 hex characters, like a ``uuid4().hex``.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_ids = _RequestIds()


class AccessLog:
    """Give each request an id (``X-Request-ID`` when the client sent one), echo it, log one JSON line.

    Handlers add ``model``, ``version`` and ``arm`` to ``scope["shipyard"]``; the line has
    ``ts``, ``request_id``, ``method``, ``path``, ``status``, ``duration_ms``, ``client`` and those.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID) or _ids.next()
        started = time.perf_counter()
        info: dict[str, Any] = {"request_id": request_id, "started": started}
        scope["shipyard"] = info
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID, request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                # makeRecord + handle is what .info() does, less its walk up the stack for the caller's
                # file and line, which no access line shows and which cost as much as the rest
                record = access_logger.makeRecord(
                    access_logger.name, logging.INFO, __file__, 0, _line(scope, info, status, started), (), None
                )
                access_logger.handle(record)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")[:128]
            return text
    return None


def _line(scope: Scope, info: dict[str, Any], status: int, started: float) -> str:
    client = scope.get("client")
    record = {
        "ts": time.time(),
        "request_id": info["request_id"],
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    for key in ("model", "version", "arm"):
        if key in info:
            record[key] = info[key]
    return orjson.dumps(record).decode()
