"""The UI session cookie (signed with itsdangerous), its CSRF token, and the login rate limit."""

from __future__ import annotations

import collections
import hmac
import os
import secrets
import threading
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "shipyard_session"
SESSION_MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECRET_ENV = "SHIPYARD_SESSION_SECRET"


class Sessions:
    """Signs and reads the session cookie: ``{"csrf": ..., "tid": token id or absent}``.

    The cookie names the token the browser logged in with, never its secret; every request
    looks the token up again, so revoking it ends its sessions at once. The signing key comes
    from ``SHIPYARD_SESSION_SECRET``, or is drawn per process (sessions then end on restart).
    """

    def __init__(self, secret: str | None = None) -> None:
        key = secret or os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(key, salt="shipyard-session")

    def load(self, request: Request) -> dict[str, Any]:
        """The request's session, or a new one (with a fresh CSRF token) marked to be sent back."""
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=SESSION_MAX_AGE_S)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                return data
        return {"csrf": self.new_csrf(), "new": True}

    @staticmethod
    def new_csrf() -> str:
        """A fresh CSRF token."""
        return secrets.token_urlsafe(32)

    def save(self, response: Response, request: Request, session: dict[str, Any]) -> None:
        """Set the cookie: HttpOnly, SameSite=Lax, Secure when the request came over https."""
        data = {k: v for k, v in session.items() if k in ("csrf", "tid")}
        response.set_cookie(
            SESSION_COOKIE,
            self._serializer.dumps(data),
            max_age=SESSION_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear(response: Response) -> None:
        """Remove the cookie."""
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the session's."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LoginLimiter:
    """At most ``max_failures`` failed logins per client address in a sliding ``window_s``."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.max_failures:
                return 0
            return max(1, int(recent[0] + self.window_s - now) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        """Count one failed login from ``client``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._prune(now)
            self._recent(client, now).append(now)

    def _recent(self, client: str, now: float) -> collections.deque[float]:
        recent = self._failures.setdefault(client, collections.deque(maxlen=self.max_failures))
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        return recent

    def _prune(self, now: float) -> None:
        for client in [c for c, d in self._failures.items() if not d or d[-1] <= now - self.window_s]:
            del self._failures[client]
        if len(self._failures) >= self.max_clients:  # a flood of live addresses: forget the oldest
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]
