"""Alembic migrations for the metadata schema, applied on first use and by ``shipyard db upgrade``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

HERE = Path(__file__).parent


def _config(conn: Connection) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of shipyard."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(HERE)).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, ``None`` when it is empty."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(conn: Connection) -> bool:
    """Bring the schema to the newest revision inside the caller's transaction; True if it changed."""
    if current_revision(conn) == head_revision():
        return False
    from alembic import command

    command.upgrade(_config(conn), "head")  # type: ignore[arg-type]
    return True
