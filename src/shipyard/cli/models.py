"""``shipyard models``: list registered models, show a version, move aliases, print model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from shipyard.cli._common import JsonOption, console, emit_json, number, record, when
from shipyard.errors import InvalidInputError
from shipyard.registry import (
    delete_alias,
    get_model_version,
    list_models,
    model_card,
    set_alias,
)

app = typer.Typer(help="Models: registered models, their versions, aliases and cards.", no_args_is_help=True)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List registered models with their latest version, aliases, owner and team."""
    if as_json:
        emit_json(record(model) for model in list_models())
        return
    table = Table("name", "latest", "aliases", "owner", "team", title="registered models")
    for model in list_models():
        aliases = ", ".join(f"{alias}→{version}" for alias, version in sorted(model.aliases.items()))
        latest = "-" if model.latest_version is None else str(model.latest_version)
        table.add_row(model.name, latest, aliases or "-", model.owner or "-", model.team or "-")
    console.print(table)


@app.command("show")
def show_command(ref: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (latest)")]) -> None:
    """Show one version: where it came from, its passport metrics and its signature."""
    version = get_model_version(ref)
    details = Table("field", "value", title=f"model {version.ref}", show_header=False)
    for field, value in (
        ("flavor", version.flavor),
        ("aliases", ", ".join(version.aliases) or "-"),
        ("run", version.run_id or "-"),
        ("registered", when(version.created_at)),
        ("description", version.description or "-"),
        ("intended use", version.intended_use or "-"),
        ("limitations", version.limitations or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items())) or "-"),
        ("manifest", version.manifest_digest),
    ):
        details.add_row(field, value)
    console.print(details)
    metrics = Table("metric", "value", title="passport metrics")
    for key, metric in sorted(version.metrics.items()):
        metrics.add_row(key, number(metric))
    console.print(metrics)
    signature = Table("column", "type", "kind", title="signature")
    for kind in ("inputs", "outputs"):
        for column in (version.signature or {}).get(kind, []):
            signature.add_row(column["name"], column["type"], kind[:-1])
    console.print(signature if version.signature else "no signature: inputs are not checked")


@app.command("alias")
def alias_command(
    name: Annotated[str, typer.Argument(help="the registered model")],
    alias: Annotated[str, typer.Argument(help="a word such as champion or staging")],
    version: Annotated[int | None, typer.Argument(help="the version the alias points at")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="remove the alias instead")] = False,
) -> None:
    """Point NAME@ALIAS at VERSION (moving it if it exists), or remove it with --delete."""
    if delete:
        delete_alias(name, alias)
        console.print(f"deleted alias {name}@{alias}")
        return
    if version is None:
        raise InvalidInputError(
            f"give the version {name}@{alias} should point at (shipyard models alias {name} {alias} 3), "
            "or --delete to remove it",
            field="version",
        )
    set_alias(name, alias, version)
    console.print(f"{name}@{alias} → version {version}")


@app.command("card")
def card_command(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME (latest)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the Markdown to this file")] = None,
) -> None:
    """Print the model card of a version, or write its Markdown to a file."""
    card = model_card(ref)
    if output is None:
        console.print(Markdown(card))
        return
    output.write_text(card, encoding="utf-8")
    console.print(f"wrote the model card of {ref} to {output}")


@app.command("convert")
def convert_command(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or NAME (latest)")],
    to: Annotated[str, typer.Option("--to", help="target format (onnx)")] = "onnx",
    tolerance: Annotated[
        float, typer.Option(help="largest difference accepted: absolute up to 1, relative above")
    ] = 1e-5,
    example: Annotated[
        Path | None, typer.Option(help="Parquet or CSV rows to check on, instead of the stored input example")
    ] = None,
) -> None:
    """Convert a version to ONNX, check it matches on the input example, register it as NAME-onnx."""
    from shipyard.errors import ModelFailedError
    from shipyard.registry.convert import convert_model

    rows = None if example is None else _read_rows(example)
    try:
        with console.status(f"converting {ref} to {to} and checking it on the input example"):
            version = convert_model(ref, to=to, tolerance=tolerance, example=rows)
    except ModelFailedError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    console.print(
        f"registered {version.ref} (onnx, from {version.tags['source_model']}/{version.tags['source_version']}): "
        f"largest difference {version.tags['max_difference']} within tolerance {version.tags['tolerance']}",
        soft_wrap=True,
    )


def _read_rows(path: Path) -> object:
    import pandas as pd

    if not path.is_file():
        raise InvalidInputError(f"--example {str(path)!r} is not a file", field="example")
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pyarrow and the CSV parser raise many kinds
        raise InvalidInputError(
            f"--example {str(path)!r} is not a readable Parquet or CSV file: {exc}", field="example"
        ) from exc
