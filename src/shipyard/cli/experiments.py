"""``shipyard experiments``: list experiments."""

from __future__ import annotations

import typer
from rich.table import Table

from shipyard.cli._common import JsonOption, client, console, emit_json, when

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments(as_json: JsonOption = False) -> None:
    """List experiments with their run counts."""
    c = client()
    if as_json:
        emit_json(
            {"id": e.id, "name": e.name, "runs": c.stores.runs.count_runs(e.id), "created_at": e.created_at}
            for e in c.list_experiments()
        )
        return
    table = Table("name", "runs", "created")
    for exp in c.list_experiments():
        table.add_row(exp.name, str(c.stores.runs.count_runs(exp.id)), when(exp.created_at))
    console.print(table)
