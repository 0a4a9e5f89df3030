"""The token store and the audit log, on SQLite and PostgreSQL (the ``stores`` fixture)."""

from __future__ import annotations

import hashlib

import pytest

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.store import Stores
from shipyard.store.auth import AuditEntry
from shipyard.store.protocols import AuthStore


def _auth(stores: Stores) -> AuthStore:
    assert stores.auth is not None
    return stores.auth


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_a_token_is_found_by_its_hash_and_listed_without_it(stores: Stores) -> None:
    auth = _auth(stores)
    created = auth.create_token("ci", "writer", _hash("s1"))
    found = auth.find_token_by_hash(_hash("s1"))
    assert found is not None
    assert (found.id, found.name, found.role, found.active) == (created.id, "ci", "writer", True)
    assert auth.find_token_by_hash(_hash("s2")) is None
    assert [t.name for t in auth.list_tokens()] == ["ci"]
    assert not hasattr(auth.list_tokens()[0], "secret_hash")


def test_names_are_unique_and_roles_checked(stores: Stores) -> None:
    auth = _auth(stores)
    auth.create_token("ci", "reader", _hash("a"))
    with pytest.raises(ConflictError, match="'ci' exists"):
        auth.create_token("ci", "reader", _hash("b"))
    with pytest.raises(InvalidInputError, match="role 'root'") as info:
        auth.create_token("other", "root", _hash("c"))
    assert info.value.field == "role"


def test_revoke_by_name_or_id_keeps_the_first_time(stores: Stores) -> None:
    auth = _auth(stores)
    one = auth.create_token("one", "admin", _hash("1"))
    auth.create_token("two", "reader", _hash("2"))
    revoked = auth.revoke_token("one", at=100.0)
    assert revoked.revoked_at == 100.0
    assert not revoked.active
    assert auth.revoke_token(one.id, at=200.0).revoked_at == 100.0
    found = auth.find_token_by_hash(_hash("1"))
    assert found is not None
    assert not found.active
    assert auth.get_token("two").active
    with pytest.raises(NotFoundError, match="'three'"):
        auth.revoke_token("three", at=1.0)


def test_last_used_is_touched_at_most_once_a_minute(stores: Stores) -> None:
    auth = _auth(stores)
    auth.create_token("ci", "reader", _hash("s"))
    auth.find_token_by_hash(_hash("s"), touch_at=1000.0)
    auth.find_token_by_hash(_hash("s"), touch_at=1010.0)
    assert auth.get_token("ci").last_used == 1000.0
    auth.find_token_by_hash(_hash("s"), touch_at=1061.0)
    assert auth.get_token("ci").last_used == 1061.0


def test_audit_entries_come_back_newest_first_and_page(stores: Stores) -> None:
    auth = _auth(stores)
    auth.record_audit([AuditEntry("ci", f"POST /api/v1/x/{i}", 200, at=float(i), client="127.0.0.1") for i in range(5)])
    newest = auth.list_audit(limit=2)
    assert [e.action for e in newest] == ["POST /api/v1/x/4", "POST /api/v1/x/3"]
    assert newest[0].principal == "ci"
    assert newest[0].client == "127.0.0.1"
    older = auth.list_audit(limit=10, before_id=newest[-1].id)
    assert [e.at for e in older] == [2.0, 1.0, 0.0]
    with pytest.raises(InvalidInputError, match="limit 0"):
        auth.list_audit(limit=0)
