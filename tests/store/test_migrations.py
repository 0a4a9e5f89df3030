"""The migrations build exactly the schema ``schema.py`` declares, on both engines."""

from __future__ import annotations

from sqlalchemy import create_engine

from shipyard.config import Settings
from shipyard.store.migrations import current_revision, head_revision, upgrade_to_head
from shipyard.store.schema import metadata


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    return create_engine(settings.store_uri.replace("postgresql://", "postgresql+psycopg://"))


def test_replayed_migrations_match_the_declared_schema(settings: Settings) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = _engine(settings)
    with engine.begin() as conn:
        assert upgrade_to_head(conn, replay=True)
        assert current_revision(conn) == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == []


def test_a_fresh_database_is_created_and_stamped_at_head(settings: Settings) -> None:
    engine = _engine(settings)
    with engine.begin() as conn:
        assert upgrade_to_head(conn)
        assert current_revision(conn) == head_revision()
        assert not upgrade_to_head(conn)  # nothing left to do
    engine.dispose()
