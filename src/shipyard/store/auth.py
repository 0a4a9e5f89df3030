"""The records of the team server's auth: API tokens (never their secret) and audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["reader", "writer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "writer", "admin")  # in rank order: admin > writer > reader


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A named API token with a role; the store keeps only the sha256 of its secret."""

    id: str
    name: str
    role: str  # reader | writer | admin
    created_at: float
    last_used: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        """Whether the token still authenticates (it was never revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One write: who (token name), what (method + path, or the operation), when, and its status."""

    principal: str
    action: str
    status: int
    at: float
    client: str | None = None
    id: int = 0
