"""Garbage collection for the SQL metadata store: purge soft-deleted rows, list live blobs."""

from __future__ import annotations

from sqlalchemy import Connection, Select, delete, select, union

from shipyard.store import schema as s
from shipyard.store.sql._engine import Database


def _purgeable_runs() -> Select[tuple[str]]:
    """Soft-deleted runs, less those a live model version still comes from: a run deleted with
    ``force`` keeps its rows, hidden, while its versions live, since their files are its artifacts.
    """
    versions = s.model_versions.c
    kept = select(versions.run_id).where(versions.deleted_at.is_(None), versions.run_id.is_not(None))
    return select(s.runs.c.id).where(s.runs.c.deleted_at.is_not(None), s.runs.c.id.not_in(kept))


class _DryRun(Exception):
    """Raised inside the purge transaction to roll it back after counting."""


class SqlGarbageCollector:
    """What ``shipyard gc`` needs from the metadata store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def purge_deleted(self, *, dry_run: bool = False) -> dict[str, int]:
        """Permanently delete soft-deleted runs, model versions and experiments (their rows cascade).

        With ``dry_run`` the same statements run and are rolled back, so the counts are
        exactly what a real purge would delete at this moment.
        """
        counts: dict[str, int] = {}
        try:
            with self.db.write() as conn:
                self._purge(conn, counts)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        return counts

    def _purge(self, conn: Connection, counts: dict[str, int]) -> None:
        dead_runs = _purgeable_runs()
        for child in (s.params, s.tags, s.metrics, s.latest_metrics, s.artifacts, s.run_datasets):
            conn.execute(delete(child).where(child.c.run_id.in_(dead_runs)))
        counts["runs"] = conn.execute(delete(s.runs).where(s.runs.c.id.in_(dead_runs))).rowcount
        counts["model_versions"] = conn.execute(
            delete(s.model_versions).where(s.model_versions.c.deleted_at.is_not(None))
        ).rowcount
        live = select(s.runs.c.experiment_id)
        counts["experiments"] = conn.execute(
            delete(s.experiments).where(s.experiments.c.deleted_at.is_not(None), s.experiments.c.id.not_in(live))
        ).rowcount

    def referenced_digests(self) -> set[str]:
        """Every blob digest some live row still points at.

        Rows that a purge deletes (those of soft-deleted runs and model versions) do not
        count, so the answer is the same before and after ``purge_deleted``: what
        ``gc --dry-run`` reports is what ``gc`` then deletes.
        """
        query = union(
            select(s.artifacts.c.digest).where(s.artifacts.c.run_id.not_in(_purgeable_runs())),
            select(s.dataset_versions.c.artifact_digest),
            select(s.model_versions.c.manifest_digest).where(s.model_versions.c.deleted_at.is_(None)),
            # Task values over the inline limit live in the artifact store, not in the row.
            select(s.flow_values.c.digest).where(s.flow_values.c.data.is_(None)),
        )
        with self.db.read() as conn:
            return set(conn.execute(query).scalars())
