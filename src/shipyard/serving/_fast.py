"""The data routes as a pure ASGI middleware, answered before FastAPI's stack is entered.

``POST /models/{name}/predict`` and ``POST /v2/models/{name}[/versions/{v}]/infer`` are
matched here by splitting the path, and their handlers called at once: no exception
middleware, router, per-route exception wrapper or dependency solving in between, which
together cost more event-loop time per request than the handler (cProfile under
``benchmarks/serving.py``). FastAPI's routes for the same paths stay: they are what the
OpenAPI document at ``/docs`` describes, and what any other method or path reaches.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("shipyard.serving")
Handler = Callable[[Request, str, str | None], Awaitable[Response]]
Fallback = Callable[[Exception], Response]


class DataRoutes:
    """Send the data routes to their handlers; everything else to the app behind."""

    def __init__(self, app: ASGIApp, *, predict: Handler, infer: Handler, fallback: Fallback) -> None:
        self.app = app
        self._predict = predict
        self._infer = infer
        self._fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _match(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        handler, name, version = route
        try:
            response = await (self._predict if handler == "predict" else self._infer)(
                Request(scope, receive), name, version
            )
        except Exception as exc:
            # the handlers answer every ShipyardError themselves; this is a bug, answered as FastAPI's route would
            logger.exception("unexpected error", exc_info=exc)
            response = self._fallback(exc)
        await response(scope, receive, send)


def _match(scope: Scope) -> tuple[str, str, str | None] | None:
    parts = scope["path"].split("/")
    # "/models/churn/predict" -> ["", "models", "churn", "predict"]
    if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict" and parts[2]:
        return "predict", parts[2], None
    if len(parts) >= 5 and parts[1] == "v2" and parts[2] == "models" and parts[-1] == "infer" and parts[3]:
        if len(parts) == 5:
            return "infer", parts[3], None
        if len(parts) == 7 and parts[4] == "versions" and parts[5]:
            return "infer", parts[3], parts[5]
    return None
