"""Auth for the REST server and the UI: API tokens with roles, sessions, the audit log.

A skeleton so the API and the UI can be written against it; every route declares the role
it needs with ``dependencies=[Depends(role_required("reader"|"writer"|"admin"))]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

Role = Literal["reader", "writer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "writer", "admin")


def role_required(role: Role) -> Callable[..., Any]:
    """A FastAPI dependency that lets a request through only with at least ``role``."""

    def check() -> None:
        return None

    check.__name__ = f"requires_{role}"
    return check


def install(app: Any, stores: Any, *, mode: Literal["token", "none"] = "token") -> None:
    """Arm auth on ``app`` (session middleware, login routes, the token check)."""
