"""API token secrets and their records, without the web stack: what ``shipyard tokens`` needs.

The CLI imports this (not :mod:`shipyard.server.auth`), so ``shipyard`` starts without
FastAPI or Starlette, and works where the ``ui`` extra is not installed.
"""

from __future__ import annotations

import getpass
import hashlib
import secrets
import time

from shipyard.errors import InvalidInputError
from shipyard.store.auth import ROLES, ApiToken, AuditEntry
from shipyard.store.protocols import AuthStore

TOKEN_PREFIX = "sy_"


def hash_token(secret: str) -> str:
    """The sha256 hex digest under which a token's secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(auth: AuthStore, name: str, role: str, *, by: str | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret (shown once, stored hashed); audited.

    Example:
        >>> token, secret = issue_token(stores.auth, "ci", "writer")  # doctest: +SKIP
    """
    if role not in ROLES:
        raise InvalidInputError(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = auth.create_token(name, role, hash_token(secret))
    auth.record_audit([AuditEntry(by or _local_user(), f"token create {name} ({role})", 200, time.time())])
    return token, secret


def revoke_token(auth: AuthStore, id_or_name: str, *, by: str | None = None) -> ApiToken:
    """Revoke a token by id or name (it stops working from its next request); audited."""
    token = auth.revoke_token(id_or_name, time.time())
    auth.record_audit([AuditEntry(by or _local_user(), f"token revoke {token.name}", 200, time.time())])
    return token


def _local_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
