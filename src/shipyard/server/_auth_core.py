"""The core of auth: who a request is (token or session), role checks, the CSRF token; no routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from shipyard.errors import NotFoundError
from shipyard.server._auth_session import Sessions
from shipyard.server._auth_tokens import hash_token
from shipyard.store.auth import ROLES, ApiToken, Role
from shipyard.store.protocols import AuthStore

RANK = {role: rank for rank, role in enumerate(ROLES)}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_DOC_PATHS = ("/docs", "/redoc")  # FastAPI's own pages carry inline scripts


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the token's name and role (``request.state.principal``)."""

    name: str
    role: Role
    token_id: str | None = None


class AuthError(Exception):
    """A request refused by auth: 401 (who are you?), 403 (not allowed) or 429 (slow down)."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class _Auth:
    """What ``install`` arms an app with: the store, the mode and the session signer."""

    def __init__(self, auth: AuthStore | None, mode: Literal["token", "none"], sessions: Sessions) -> None:
        self.store, self.mode, self.sessions = auth, mode, sessions

    async def principal(self, request: Request) -> Principal:
        cached = getattr(request.state, "principal", None)
        if isinstance(cached, Principal):
            return cached
        principal = await self._authenticate(request)
        request.state.principal = principal
        return principal

    async def _authenticate(self, request: Request) -> Principal:
        if self.mode == "none":
            return Principal("local", "admin")
        if self.store is None:
            raise AuthError(401, "unauthenticated", "this server's store keeps no tokens; run it with --auth none")
        bearer = _bearer(request)
        if bearer is not None:
            token = await run_in_threadpool(self.store.find_token_by_hash, hash_token(bearer), touch_at=time.time())
            what = "the bearer token"
        else:
            tid = _session(request).get("tid")
            if not isinstance(tid, str):
                raise AuthError(401, "unauthenticated", "send 'Authorization: Bearer <token>' or log in at /login")
            token = await run_in_threadpool(_find_by_id, self.store, tid)
            what = "the session's token"
        if token is None:
            raise AuthError(401, "unauthenticated", f"{what} is not known")
        if not token.active:
            raise AuthError(401, "unauthenticated", f"{what} ({token.name!r}) was revoked")
        return Principal(token.name, token.role, token.id)  # type: ignore[arg-type]


def _find_by_id(store: AuthStore, token_id: str) -> ApiToken | None:
    try:
        token = store.get_token(token_id)
    except NotFoundError:
        return None
    return token if token.id == token_id else None  # a session names an id, never a name


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError(401, "unauthenticated", "the Authorization header must be 'Bearer <token>'")
    return value.strip()


def _session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = request.state.session
    return session


def _state(request: Request) -> _Auth:
    state = getattr(request.app.state, "shipyard_auth", None)
    if not isinstance(state, _Auth):  # fail closed: a route guarded on an app nobody armed
        raise AuthError(500, "auth_not_installed", "auth is not installed on this app (call install)")
    return state


def role_required(role: Role) -> Callable[..., Any]:
    """A FastAPI dependency that lets a request through only with at least ``role``.

    401 without credentials or with an unknown or revoked token, 403 when the role is too low.
    The identity is left in ``request.state.principal`` (a :class:`Principal`).
    """
    if role not in RANK:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")

    async def check(request: Request) -> Principal:
        principal = await _state(request).principal(request)
        if RANK[principal.role] < RANK[role]:
            raise AuthError(403, "forbidden", f"token {principal.name!r} has role {principal.role}; this needs {role}")
        return principal

    check.__name__ = f"requires_{role}"
    return check


def csrf_token(request: Request) -> str:
    """The session's CSRF token, for a hidden ``csrf_token`` field in every UI form."""
    session = _session(request)
    session["dirty"] = True  # the page shows it, so the browser must get the cookie that holds it
    token: str = session["csrf"]
    return token


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
