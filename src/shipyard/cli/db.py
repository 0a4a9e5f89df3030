"""``shipyard db upgrade`` and ``shipyard gc``: schema migrations and garbage collection."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli._common import client, console
from shipyard.store import redact_uri

app = typer.Typer(help="The metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending schema migrations (they also run on first use)."""
    c = client()
    c.list_experiments()  # opening the store applies migrations under a lock
    console.print(f"schema of {redact_uri(c.settings.store_uri)} is up to date")


def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="only count what would go")] = False) -> None:
    """Permanently delete what was deleted, and artifacts no record references."""
    report = client().gc(dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb}: " + ", ".join(f"{k}={v}" for k, v in report.items()))
