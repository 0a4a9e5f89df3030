"""Auth for the REST server and the UI: API tokens with roles, sessions, CSRF, the audit log.

Every route declares the role it needs::

    @router.get("/runs/{run_id}", dependencies=[Depends(role_required("reader"))])

and ``install(app, stores, mode=...)`` arms it. Roles are ordered ``admin > writer > reader``.

- **API tokens** (``shipyard tokens create NAME --role ...``) are sent as
  ``Authorization: Bearer <token>``. The store keeps only ``sha256(secret)``: the secret is
  256 random bits, so a fast hash cannot be brute-forced (a slow password hash buys nothing
  there and would cost every request); a leaked database yields no usable token. Each request
  looks its token up again, with no cache, so a revoked token fails from its next request.
- **UI login** is with an API token (``GET/POST /login``): no second kind of credential to
  store or rotate. It sets a signed session cookie (itsdangerous; ``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` over https) naming the token's id, never its secret; revoking the
  token ends its sessions too. ``POST /logout`` ends one. Five failed logins a minute from one
  client address answer 429 (the address is the socket's peer: put no proxy in front that
  hides it, or the limit is shared). The signing key is ``SHIPYARD_SESSION_SECRET``, or drawn
  per process.
- **CSRF**: every non-GET request that does not carry a bearer token and either carries the
  session cookie or is outside ``/api`` must send the session's CSRF token, as a form field
  ``csrf_token`` or an ``X-CSRF-Token`` header; otherwise 403. UI templates put
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`` in every form, with
  ``csrf_token`` from :func:`csrf_token` (htmx: ``hx-headers`` with ``X-CSRF-Token``).
- **Audit log**: every non-GET request (who, method + path, status, client address), every
  login and logout, and ``tokens create``/``revoke`` are recorded; admins read it at
  ``GET /api/v1/admin/audit`` or with ``shipyard tokens audit``.
- **Security headers** on every response: ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``, and outside ``/docs`` a
  ``Content-Security-Policy`` allowing only the server's own origin: no inline scripts or
  styles, no ``style=`` attributes, so UI pages load their JS and CSS from static files.
- ``mode="none"`` makes every request an admin named ``local``. It is meant only for a server
  bound to a loopback address; ``shipyard server`` checks the host, this module does not.

Secrets are never logged: neither tokens nor cookies appear in a log line or an audit entry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from shipyard.errors import InvalidInputError
from shipyard.server._auth_core import (
    _DOC_PATHS,
    CSP,
    SAFE_METHODS,
    AuthError,
    Principal,
    _Auth,
    _client,
    csrf_token,
    role_required,
)
from shipyard.server._auth_pages import add_auth_routes
from shipyard.server._auth_session import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Sessions, same_token
from shipyard.server._auth_tokens import hash_token, issue_token, revoke_token
from shipyard.store.auth import ROLES, AuditEntry, Role

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "Role",
    "csrf_token",
    "hash_token",
    "install",
    "issue_token",
    "revoke_token",
    "role_required",
]


def install(app: Any, stores: Any, *, mode: Literal["token", "none"] = "token") -> None:
    """Arm auth on ``app`` (session middleware, login routes, the token check).

    ``mode="none"`` makes every request an admin: allowed only on a loopback address, which
    the caller (``shipyard server``) checks.
    """
    if mode not in ("token", "none"):
        raise InvalidInputError(f"auth mode {mode!r} is not one of token, none", field="auth")
    state = _Auth(getattr(stores, "auth", None), mode, Sessions())
    app.state.shipyard_auth = state
    app.add_exception_handler(AuthError, _refusal)
    app.middleware("http")(_middleware)
    add_auth_routes(app)


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    path = request.url.path
    if exc.status == 401 and request.method == "GET" and not path.startswith("/api/"):
        return RedirectResponse(f"/login?next={_quote(path)}", status_code=303)
    body = {"error": {"code": exc.code, "message": exc.message, "field": None}}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


async def _middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    state: _Auth = request.app.state.shipyard_auth
    session = request.state.session = state.sessions.load(request)
    try:
        await _check_csrf(request, session, state.mode)
        response = await call_next(request)
    except AuthError as exc:
        response = await _refusal(request, exc)
    if request.method not in SAFE_METHODS and not request.url.path.startswith(("/login", "/logout")):
        principal = getattr(request.state, "principal", None)
        who = principal.name if isinstance(principal, Principal) else "anonymous"
        entry = AuditEntry(
            who, f"{request.method} {request.url.path}", response.status_code, time.time(), _client(request)
        )
        if state.store is not None:
            await run_in_threadpool(state.store.record_audit, [entry])
    if session.get("dirty") and not session.get("cleared"):
        state.sessions.save(response, request, session)
    _secure_headers(request, response)
    return response


async def _check_csrf(request: Request, session: dict[str, Any], mode: str) -> None:
    if request.method in SAFE_METHODS or _has_bearer(request):
        return
    origin = request.headers.get("origin")
    if mode == "none" and origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        # with no login, any page the browser opens could POST here (a no-cors fetch needs no cookie)
        raise AuthError(403, "cross_origin", f"a write from another site ({origin}) is refused")
    if SESSION_COOKIE not in request.cookies and request.url.path.startswith("/api/"):
        return  # a script without a browser session: nothing for another site to ride on
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        await request.body()  # cached, and replayed to the route after this check
        async with request.form() as form:
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if session.get("new") or not same_token(given, session["csrf"]):
        raise AuthError(403, "csrf", "the form's CSRF token is missing or stale; reload the page and submit again")


def _has_bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def _secure_headers(request: Request, response: Response) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith(_DOC_PATHS):
        headers.setdefault("Content-Security-Policy", CSP)
