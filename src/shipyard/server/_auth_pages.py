"""The auth routes ``install`` adds: the login page, logout, and the admins' audit log."""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard.server._auth_core import AuthError, Principal, _Auth, _client, csrf_token, role_required
from shipyard.server._auth_session import CSRF_FIELD, LoginLimiter, Sessions
from shipyard.server._auth_tokens import hash_token
from shipyard.store.auth import AuditEntry

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shipyard: log in</title>
<link rel="stylesheet" href="/ui/static/app.css"></head>
<body><main><h1>shipyard</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="{csrf_field}" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label>API token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form></main></body></html>
"""


def add_auth_routes(app: FastAPI) -> None:
    """``GET/POST /login``, ``POST /logout`` and ``GET /api/v1/admin/audit`` on ``app``."""
    limiter = LoginLimiter()

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:
        return _page(request, next, None, 200)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        state: _Auth = request.app.state.shipyard_auth
        client = _client(request) or "unknown"
        wait = limiter.retry_after(client)
        if wait:
            await _audit(state, "anonymous", "login", 429, request)
            raise AuthError(429, "too_many_logins", f"too many failed logins; try again in {wait}s", retry_after=wait)
        async with request.form() as form:
            secret, target = str(form.get("token") or ""), _safe_next(str(form.get("next") or "/"))
        token = None
        if secret and state.store is not None:
            token = await run_in_threadpool(state.store.find_token_by_hash, hash_token(secret), touch_at=time.time())
        if token is None or not token.active:
            limiter.failed(client)
            await _audit(state, "anonymous", "login", 401, request)
            return _page(request, target, "That token is unknown or revoked.", 401)
        session = request.state.session
        session.update(tid=token.id, csrf=Sessions.new_csrf(), dirty=True)  # a new CSRF token per login
        request.state.principal = Principal(token.name, token.role, token.id)  # type: ignore[arg-type]
        await _audit(state, token.name, "login", 303, request)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        state: _Auth = request.app.state.shipyard_auth
        principal = await _maybe_principal(state, request)
        await _audit(state, principal, "logout", 303, request)
        response = RedirectResponse("/login", status_code=303)
        request.state.session["cleared"] = True
        Sessions.clear(response)
        return response

    @app.get("/api/v1/admin/audit", tags=["admin"], dependencies=[Depends(role_required("admin"))])
    def audit(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        state: _Auth = request.app.state.shipyard_auth
        entries = [] if state.store is None else state.store.list_audit(limit=limit, before_id=before_id)
        return {"entries": [dataclasses.asdict(e) for e in entries]}


def _page(request: Request, target: str, message: str | None, status: int) -> HTMLResponse:
    body = _PAGE.format(
        message=f'<p role="alert">{html.escape(message)}</p>' if message else "",
        csrf_field=CSRF_FIELD,
        csrf=html.escape(csrf_token(request)),
        next=html.escape(_safe_next(target)),
    )
    return HTMLResponse(body, status_code=status)


def _safe_next(target: str) -> str:
    """Only a path on this server: never ``//host`` or ``https://...`` (an open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _maybe_principal(state: _Auth, request: Request) -> str:
    try:
        return (await state.principal(request)).name
    except AuthError:
        return "anonymous"


async def _audit(state: _Auth, who: str, action: str, status: int, request: Request) -> None:
    if state.store is not None:
        entry = AuditEntry(who, action, status, time.time(), _client(request))
        await run_in_threadpool(state.store.record_audit, [entry])
