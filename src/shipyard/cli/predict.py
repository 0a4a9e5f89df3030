"""``shipyard predict NAME@ALIAS INPUT OUTPUT``: batch prediction of files, folders or a SQL query."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli._common import console
from shipyard.errors import InvalidInputError, ModelFailedError

SQL_PREFIX = "sql:"


def predict(
    model: Annotated[str, typer.Argument(help="The model: NAME@ALIAS, NAME/VERSION or NAME (latest).")],
    input: Annotated[
        str,
        typer.Argument(
            help="A Parquet or CSV file, a glob ('data/*.parquet'), a folder of them, "
            "or 'sql:SELECT ...' with --db for a query."
        ),
    ],
    output: Annotated[str, typer.Argument(help="OUT.parquet, OUT.csv, or a folder (no suffix) of Parquet parts.")],
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--id",
            help="An input column to keep beside the predictions (repeatable); "
            "default: every column that is not a model input.",
        ),
    ] = None,
    executor: Annotated[str, typer.Option(help="local, or ray: one Ray task per partition.")] = "local",
    batch_size: Annotated[int, typer.Option(help="The most rows read and scored at once.")] = 65_536,
    db: Annotated[
        str | None, typer.Option(help="The database of a 'sql:' input: postgresql://... or sqlite:///...")
    ] = None,
    method: Annotated[str, typer.Option(help="predict or predict_proba.")] = "predict",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output (atomically).")] = False,
    lineage: Annotated[bool, typer.Option(help="Record a run with the input and output as dataset versions.")] = True,
    input_name: Annotated[str | None, typer.Option(help="The input's dataset name (default: its file name).")] = None,
    output_name: Annotated[str | None, typer.Option(help="The output's dataset name (default: its file name).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="A Ray cluster, e.g. ray://head:10001.")] = None,
) -> None:
    """Score a table in batches and write ids and predictions; memory stays flat, the output appears whole.

    Example: shipyard predict churn@champion customers.parquet scores.parquet --id customer_id
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from shipyard.serving.batch import SqlQuery, predict_batch

    source: str | SqlQuery = input
    if input.startswith(SQL_PREFIX):
        if db is None:
            raise InvalidInputError("a 'sql:' input needs --db postgresql://... or sqlite:///...", field="db")
        source = SqlQuery(input.removeprefix(SQL_PREFIX), uri=db)
    elif db is not None:
        raise InvalidInputError("--db is for a 'sql:SELECT ...' input; this input is a path", field="db")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task: list[TaskID] = []

        def progress(done: int, total: int | None) -> None:
            if not task:
                task.append(bar.add_task("rows", total=total))
            bar.update(task[0], completed=done, total=total)

        try:
            result = predict_batch(
                model,
                source,
                output,
                id_columns=ids,
                batch_size=batch_size,
                executor=executor,
                method=method,
                overwrite=overwrite,
                lineage=lineage,
                input_name=input_name,
                output_name=output_name,
                ray_address=ray_address,
                progress=progress,
            )
        except ModelFailedError as exc:  # the input was valid: the work failed (1), not the user's input (2)
            typer.echo(f"error: {exc.message.splitlines()[0]}", err=True)
            raise typer.Exit(1) from exc
    traced = f"; run {result.run_id}: {result.input_dataset} -> {result.model_version} -> {result.output_dataset}"
    typer.echo(
        f"{result.rows} rows scored by {result.model_version} into {result.output} "
        f"in {result.seconds:.1f}s{traced if result.run_id else ''}"
    )
