"""Task inputs and outputs by content: sha256-addressed, small ones inline, large ones as artifacts.

A value up to ``INLINE_LIMIT`` bytes is kept in the metadata store's ``flow_values`` table,
written in the same batched transaction as the task runs that point at it; a file per value
would cost an fsync each (milliseconds) for the thousands of small values a fan-out makes.
Larger values go to the artifact store. Both are verified against their digest on read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from shipyard.errors import IntegrityError, NotFoundError
from shipyard.flows._serializers import DEFAULT_SERIALIZERS, Serializer, deserialize
from shipyard.store import Stores
from shipyard.store.entities import StoredValue, ValueRef

INLINE_LIMIT = 32 * 1024


def make_ref(serializer: str, data: bytes, value: Any, type_name: str = "") -> ValueRef:
    """The reference to bytes made by ``serializer`` from ``value`` (whose type may be given by name)."""
    if not type_name:
        kind = type(value)
        type_name = f"{kind.__module__}.{kind.__qualname__}"
    return ValueRef(hashlib.sha256(data).hexdigest(), serializer, len(data), type_name)


def save(stores: Stores, values: Sequence[tuple[str, bytes]]) -> None:
    """Store ``(digest, bytes)`` pairs: large ones in the artifact store, every one recorded."""
    rows = []
    for digest, data in values:
        if len(data) > INLINE_LIMIT:
            stores.artifacts.put_bytes(data)
            rows.append(StoredValue(digest, len(data), None))
        else:
            rows.append(StoredValue(digest, len(data), data))
    stores.flows.save_values(rows)


def load(stores: Stores, ref: ValueRef, serializers: Sequence[Serializer] = DEFAULT_SERIALIZERS) -> Any:
    """Read a stored value back, checking its bytes against the digest."""
    inline = stores.flows.load_inline_values([ref.digest])
    if ref.digest in inline:
        data = inline[ref.digest]
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.digest:
            raise IntegrityError(f"stored value {ref.digest} is corrupted: its bytes hash to {actual}")
    else:
        try:
            data = stores.artifacts.get_bytes(ref.digest)
        except NotFoundError as exc:
            raise NotFoundError(
                f"value {ref.digest} ({ref.type_name}) is neither in the metadata store nor in the artifact store",
                field="digest",
            ) from exc
    return deserialize(ref.serializer, data, serializers)
