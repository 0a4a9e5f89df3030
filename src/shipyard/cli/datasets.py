"""``shipyard datasets``: list datasets, show a version's schema and statistics, mark golden ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.cli._common import JsonOption, dataset_ref, emit_json, record, when
from shipyard.datasets import api
from shipyard.store.entities import DatasetVersion

app = typer.Typer(help="Datasets: versions named by content hash, with schema and statistics.", no_args_is_help=True)

DatasetRef = Annotated[str, typer.Argument(help="NAME@3 or NAME/3 for a version, NAME for the latest")]
STAT_KEYS = ("count", "nulls", "min", "max", "mean", "std", "distinct")


def _console() -> Console:
    # Built per command so the width follows the terminal (and COLUMNS) of this invocation.
    return Console()


@app.command("list")
def list_command(
    golden: Annotated[bool, typer.Option("--golden", help="only golden datasets")] = False,
    as_json: JsonOption = False,
) -> None:
    """List datasets with their latest version."""
    # client=None: the API resolves the stores from the settings in force (env, shipyard.toml).
    versions = api.list_datasets(golden=golden)
    golden_names = {v.name for v in (versions if golden else api.list_datasets(golden=True))}
    if as_json:
        emit_json({**record(v, exclude=("stats",)), "golden": v.name in golden_names} for v in versions)
        return
    table = Table("name", "latest", "rows", "digest", "golden", "created")
    for v in versions:
        rows = "-" if v.num_rows is None else str(v.num_rows)
        is_golden = "yes" if v.name in golden_names else ""
        table.add_row(escape(v.name), str(v.version), rows, v.digest[:12], is_golden, when(v.created_at))
    _console().print(table)


@app.command("show")
def show_command(
    ref: DatasetRef,
) -> None:
    """Show one version: where it came from, its schema and per-column statistics."""
    version = api.get_dataset(dataset_ref(ref))
    console = _console()
    console.print(_header(version))
    columns: Mapping[str, Mapping[str, Any]] = version.stats.get("columns", {})
    table = Table(title=f"{escape(version.ref)} schema and statistics")
    for heading in ("column", "type", *STAT_KEYS, "top"):
        # Fold rather than cut: a long column name or type must stay readable on a narrow terminal.
        table.add_column(heading, overflow="fold")
    for name, type_name in version.schema.items():
        stats = columns.get(name, {})
        cells = [_cell(stats.get(key)) for key in STAT_KEYS]
        top = ", ".join(f"{value} ({count})" for value, count in stats.get("top", []))
        table.add_row(escape(name), escape(type_name), *[escape(c) for c in cells], escape(top))
    console.print(table)


@app.command("golden")
def golden_command(
    ref: DatasetRef,
    unset: Annotated[bool, typer.Option("--unset", help="remove the golden mark instead")] = False,
) -> None:
    """Mark a dataset version golden (a trusted reference), or unmark it with --unset."""
    version = api.set_golden(dataset_ref(ref), not unset)
    state = "no longer golden" if unset else "golden"
    _console().print(f"{escape(version.ref)} is {state}")


def _header(v: DatasetVersion) -> str:
    tags = ", ".join(f"{k}={val}" for k, val in sorted(v.tags.items())) or "-"
    return (
        f"[bold]{escape(v.ref)}[/bold]  rows={v.num_rows}  format={v.format}  digest={v.digest}\n"
        f"created={when(v.created_at)}  by run={v.created_by_run or '-'}  "
        f"source={escape(v.source or '-')}  tags={escape(tags)}"
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
