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


def upgrade_to_head(conn: Connection, *, replay: bool = False) -> bool:
    """Bring the schema to the newest revision inside the caller's transaction; True if it changed.

    An empty database gets the current schema in one ``create_all`` and is stamped at head
    (Alembic's recipe for building a database from scratch): replaying every migration
    costs a quarter of a second, on the path of a user's first run. ``replay=True`` forces
    the migrations, which the test that keeps them equal to ``schema.py`` uses.
    """
    current = current_revision(conn)
    if current == head_revision():
        return False
    from alembic import command
    from sqlalchemy import inspect

    if current is None and not replay and not inspect(conn).get_table_names():
        from shipyard.store.schema import metadata

        metadata.create_all(conn)
        command.stamp(_config(conn), "head")  # type: ignore[arg-type]
        return True
    command.upgrade(_config(conn), "head")  # type: ignore[arg-type]
    return True
