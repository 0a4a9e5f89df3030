"""``shipyard experiments``: list experiments."""

from __future__ import annotations

import typer
from rich.table import Table

from shipyard.cli._common import client, console, when

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments() -> None:
    """List experiments with their run counts."""
    c = client()
    table = Table("name", "runs", "created")
    for exp in c.list_experiments():
        table.add_row(exp.name, str(c.stores.runs.count_runs(exp.id)), when(exp.created_at))
    console.print(table)
