"""The SQL implementation of :class:`~shipyard.store.protocols.AuthStore`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.store import schema as s
from shipyard.store.auth import ROLES, ApiToken, AuditEntry
from shipyard.store.sql._engine import Database

# last_used is a hint for "is this token still in use?", so it is written at most once a minute
# per token: a write transaction on every authenticated request would queue readers behind it.
TOUCH_EVERY_S = 60.0
_ACTION_MAX = 1000


class SqlAuthStore:
    """API tokens and the audit log, in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_token(self, name: str, role: str, secret_hash: str) -> ApiToken:
        """Store a new token under a unique ``name``; ``secret_hash`` is the sha256 hex of its secret."""
        if not name.strip() or len(name) > 250:
            raise InvalidInputError(f"token name {name!r} must be 1 to 250 characters", field="name")
        if role not in ROLES:
            raise InvalidInputError(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
        token = ApiToken(id=uuid.uuid4().hex, name=name, role=role, created_at=time.time())
        row = {"id": token.id, "name": name, "role": role, "secret_hash": secret_hash, "created_at": token.created_at}
        try:
            with self.db.write() as conn:
                conn.execute(s.api_tokens.insert().values(**row))
        except sa_exc.IntegrityError as exc:
            raise ConflictError(f"a token named {name!r} exists already; pick another name", field="name") from exc
        return token

    def find_token_by_hash(self, secret_hash: str, *, touch_at: float | None = None) -> ApiToken | None:
        """The token whose secret hashes to ``secret_hash`` (revoked ones too), or ``None``.

        With ``touch_at``, an active token's ``last_used`` is moved to it (at most once a minute).
        """
        t = s.api_tokens.c
        with self.db.read() as conn:
            row = conn.execute(select(s.api_tokens).where(t.secret_hash == secret_hash)).first()
        if row is None:
            return None
        token = _to_token(row)
        stale = token.last_used is None or (touch_at or 0.0) - token.last_used >= TOUCH_EVERY_S
        if touch_at is not None and token.active and stale:
            with self.db.write() as conn:
                conn.execute(update(s.api_tokens).where(t.id == token.id).values(last_used=touch_at))
        return token

    def get_token(self, id_or_name: str) -> ApiToken:
        """The token with this id, or else this name."""
        t = s.api_tokens.c
        with self.db.read() as conn:
            row = conn.execute(select(s.api_tokens).where(t.id == id_or_name)).first()
            if row is None:
                row = conn.execute(select(s.api_tokens).where(t.name == id_or_name)).first()
        if row is None:
            raise NotFoundError(f"no token has the id or name {id_or_name!r}", field="token")
        return _to_token(row)

    def list_tokens(self) -> list[ApiToken]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.api_tokens).order_by(s.api_tokens.c.created_at)).all()
        return [_to_token(row) for row in rows]

    def revoke_token(self, id_or_name: str, at: float) -> ApiToken:
        """Revoke the token (from its next request on); revoking it again keeps the first time."""
        token = self.get_token(id_or_name)
        if not token.active:
            return token
        t = s.api_tokens.c
        with self.db.write() as conn:
            conn.execute(update(s.api_tokens).where(t.id == token.id, t.revoked_at.is_(None)).values(revoked_at=at))
        return self.get_token(token.id)

    def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        rows = [
            {
                "at": e.at,
                "principal": e.principal[:250],
                "action": e.action[:_ACTION_MAX],
                "status": e.status,
                "client": (e.client or None) and e.client[:64],
            }
            for e in entries
        ]
        if rows:
            with self.db.write() as conn:
                conn.execute(s.audit_log.insert(), rows)

    def list_audit(self, *, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        """The newest entries first, ``limit`` of them, older than ``before_id`` when given (paging)."""
        if not 1 <= limit <= 10_000:
            raise InvalidInputError(f"limit {limit} must be between 1 and 10000", field="limit")
        a = s.audit_log.c
        query = select(s.audit_log).order_by(a.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(a.id < before_id)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(r.principal, r.action, r.status, r.at, r.client, r.id) for r in rows]


def _to_token(row: Row[Any]) -> ApiToken:
    return ApiToken(row.id, row.name, row.role, row.created_at, row.last_used, row.revoked_at)
