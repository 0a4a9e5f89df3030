"""Ids that can be pasted back: a unique prefix of a run or flow run id names it.

Tables show ids users copy; like git's short hashes, any prefix of at least
``MIN_PREFIX`` hex characters resolves when exactly one id starts with it. The store
does it (not the CLI) so ``Client.get_run("3f9a1c")`` and ``shipyard runs show 3f9a1c``
agree on every backend.
"""

from __future__ import annotations

import re

from sqlalchemy import Column, ColumnElement, Connection, select

from shipyard.errors import InvalidInputError, NotFoundError

MIN_PREFIX = 6
_HEX = re.compile(r"^[0-9a-f]+$")
_SHOWN = 10


def resolve_prefix(
    conn: Connection,
    column: Column[str],
    given: str,
    *,
    kind: str,
    where: ColumnElement[bool] | None = None,
) -> str:
    """The one id in ``column`` that starts with ``given`` (call it after an exact lookup failed).

    Raises:
        NotFoundError: no id starts with ``given`` (or it is not hex at all).
        NotFoundError: also when ``given`` is shorter than ``MIN_PREFIX`` (the message says so).
        InvalidInputError: several ids start with ``given``; the message lists them.
    """
    field = kind.replace(" ", "_") + "_id"  # "run_id", "flow_run_id": the argument the user gave
    prefix = given.strip().lower()
    if not _HEX.match(prefix):
        raise NotFoundError(f"{kind} {given!r} does not exist", field=field)
    if len(prefix) < MIN_PREFIX:
        # NotFoundError, not InvalidInputError: find_run/find_* must still answer None.
        raise NotFoundError(
            f"{kind} {given!r} does not exist; an id prefix needs at least {MIN_PREFIX} hex characters",
            field=field,
        )
    # Only hex reaches here, so the prefix holds no LIKE wildcards to escape.
    query = select(column).where(column.like(f"{prefix}%")).order_by(column).limit(_SHOWN + 1)
    if where is not None:
        query = query.where(where)
    matches = [row[0] for row in conn.execute(query)]
    if not matches:
        raise NotFoundError(f"{kind} {given!r} does not exist", field=field)
    if len(matches) > 1:
        shown = ", ".join(matches[:_SHOWN]) + (", ..." if len(matches) > _SHOWN else "")
        raise InvalidInputError(
            f"{kind} id prefix {given!r} is ambiguous: it matches {shown}; give more characters",
            field=field,
        )
    return matches[0]
