"""Batch prediction: score a Parquet/CSV file, glob or folder, or a SQL query, into a Parquet or CSV output.

The input is streamed in Arrow record batches of at most ``batch_size`` rows, so memory
stays flat whatever its size; the id columns are kept beside the prediction columns
(named from the signature's outputs); the output appears atomically (written under a
hidden temporary name, renamed when complete). Columns are held to the model's
signature before any row is read: a mismatch writes nothing. With ``executor="ray"``
the input's partitions (files, runs of row groups) are scored by Ray tasks, each
writing one part of a folder output.

Each job is a run in experiment ``batch`` with the input and the output as dataset
versions (roles ``input`` and ``output``) and the model version in its params and tags,
so lineage leads from the output back to the model version and the data it scored.

Other jobs that score Arrow batches (streaming) reuse the per-batch step:
:func:`arrow_columns` turns a record batch into the checked columns the serving model
functions take (``serving._models.model_function``), validating them on the way.

Example:
    >>> from shipyard.serving.batch import predict_batch
    >>> result = predict_batch("churn@champion", "customers.parquet", "scores.parquet")  # doctest: +SKIP
    >>> result.rows, result.output_dataset  # doctest: +SKIP
    (120000, 'scores@1')

    From the shell: ``shipyard predict churn@champion customers.parquet scores.parquet --id customer_id``
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import InvalidInputError
from shipyard.registry import LoadedModel, Signature, get_model_version, load_model
from shipyard.serving._batch_io import (
    BatchWriter,
    Source,
    SqlQuery,
    TempOutput,
    check_output,
    open_source,
    output_format,
)
from shipyard.serving._batch_lineage import dataset_name, parquet_copy, register
from shipyard.serving._batch_score import BatchScorer, Plan, arrow_columns, plan_columns
from shipyard.serving._models import StoresClient, model_function
from shipyard.store import Stores
from shipyard.store.entities import DatasetVersion
from shipyard.tracking.api import HasStores, resolve_stores, start_run

__all__ = ["BatchResult", "SqlQuery", "arrow_columns", "predict_batch"]

Progress = Callable[[int, int | None], None]
DEFAULT_BATCH_SIZE = 65_536
EXECUTORS = ("local", "ray")


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch job did: rows scored, where the output is, and the records that trace it."""

    output: str
    rows: int
    model_version: str
    seconds: float
    run_id: str | None = None
    input_dataset: str | None = None
    output_dataset: str | None = None


def predict_batch(
    model_ref: str,
    source: str | os.PathLike[str] | SqlQuery,
    output: str | os.PathLike[str],
    *,
    id_columns: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    executor: str = "local",
    method: str = "predict",
    overwrite: bool = False,
    lineage: bool = True,
    experiment: str = "batch",
    input_name: str | None = None,
    output_name: str | None = None,
    ray_address: str | None = None,
    progress: Progress | None = None,
    client: HasStores | None = None,
) -> BatchResult:
    """Score ``source`` with the model ``model_ref`` points at and write ids and predictions to ``output``.

    Args:
        model_ref: ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (the latest version).
        source: A Parquet or CSV file, a glob (``data/*.parquet``), a folder of such files,
            or a :class:`SqlQuery` (PostgreSQL or SQLite, read with a server-side cursor).
        output: A ``.parquet`` or ``.csv`` file, or a path without a suffix for a folder of
            Parquet parts (what ``executor="ray"`` writes).
        id_columns: Input columns copied beside the predictions; every column that is not
            a model input when ``None``.
        batch_size: The most rows decoded and scored at once.
        executor: ``"local"`` (this process) or ``"ray"`` (a Ray task per partition).
        method: ``"predict"`` or ``"predict_proba"``.
        overwrite: Replace an existing output (atomically) instead of refusing.
        lineage: Record a run with the input and output as dataset versions.
        experiment: The experiment of that run.
        input_name: The input's dataset name; the file or folder name (``query`` for SQL) when ``None``.
        output_name: The output's dataset name; the output's file or folder name when ``None``.
        ray_address: A Ray address (``ray://head:10001``) for ``executor="ray"``.
        progress: Called with (rows done, total rows or ``None``) after each batch.
        client: The client whose stores hold the model; the settings in force when ``None``.

    Raises:
        NotFoundError: the model, version or alias does not exist.
        SchemaMismatchError: the input's columns do not match the signature (nothing is written).
        InvalidInputError: a bad argument, input or output path.
        ModelFailedError: the model raised on checked input (nothing is written).
    """
    started = time.perf_counter()
    options = _check_options(batch_size, executor, method)
    stores = resolve_stores(client)
    version = get_model_version(model_ref, client=StoresClient(stores))
    out = Path(output)
    check_output(out, overwrite=overwrite)
    output_format(out)  # a bad suffix is refused before the model loads or a run starts
    if isinstance(source, SqlQuery) and executor == "ray":
        raise InvalidInputError("executor 'ray' partitions files; score a SQL query with 'local'", field="executor")
    src = open_source(source, batch_size=batch_size)
    try:
        plan = plan_columns(
            src.schema,
            None if version.signature is None else Signature.from_dict(version.signature),
            id_columns,
            model=f"model {version.ref}",
            input_label=repr(src.label),
            method=options,
        )
        model = load_model(version.ref, client=StoresClient(stores))
        job = _Job(stores, src, plan, model, out, batch_size=batch_size, progress=progress)
        if not lineage:
            rows = job.run(executor, ray_address, tee=None)
            return BatchResult(str(out), rows, version.ref, time.perf_counter() - started)
        names = (
            dataset_name(src.label, input_name, field="input_name"),
            dataset_name(str(out), output_name, field="output_name"),
        )
        return _with_lineage(job, executor, ray_address, experiment, names, started)
    finally:
        src.close()


def _check_options(batch_size: int, executor: str, method: str) -> str:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(f"batch size must be a positive integer, got {batch_size!r}", field="batch_size")
    if executor not in EXECUTORS:
        raise InvalidInputError(f"executor must be 'local' or 'ray', got {executor!r}", field="executor")
    if method not in ("predict", "predict_proba"):
        raise InvalidInputError(f"method must be 'predict' or 'predict_proba', got {method!r}", field="method")
    return method


def _with_lineage(
    job: _Job, executor: str, address: str | None, experiment: str, names: tuple[str, str], started: float
) -> BatchResult:
    stores, src, out = job.stores, job.source, job.out
    ref = job.model.version.ref
    with start_run(
        experiment, f"predict {ref}", tags={"shipyard.model_version": ref}, client=StoresClient(stores)
    ) as run:
        run.log_params(
            {"model": ref, "input": src.label, "output": str(out), "executor": executor, "batch_size": job.batch_size}
        )
        scratch = Path(os.path.dirname(os.path.abspath(out))) / f".{out.name}.lineage-{run.id[:12]}.parquet"
        needs_copy = src.single_parquet is None
        try:
            rows = job.run(executor, address, tee=scratch if needs_copy and executor == "local" else None)
            if needs_copy and executor != "local":
                parquet_copy(src.batches(list(src.schema.names), job.batch_size), scratch)
            input_file = scratch if needs_copy else Path(str(src.single_parquet))
            inp = register(
                stores,
                run.id,
                name=names[0],
                role="input",
                parquet=input_file,
                source=src.label,
                num_rows=rows,
                schema=src.schema,
            )
            produced = _register_output(stores, run.id, out, names[1], rows)
        finally:
            scratch.unlink(missing_ok=True)
        seconds = time.perf_counter() - started
        run.log_metrics({"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds if seconds else 0.0})
    return BatchResult(str(out), rows, ref, seconds, run.id, inp.ref, produced.ref)


def _register_output(stores: Stores, run_id: str, out: Path, name: str, rows: int) -> DatasetVersion:
    """The output as a dataset version: a Parquet file as it is, a CSV file or a folder of parts copied to one."""
    copy = out.parent / f".{out.name}.lineage-{run_id[:12]}.parquet"
    try:
        if out.suffix.lower() in (".parquet", ".pq"):
            parquet = out
        else:
            written = open_source(str(out), batch_size=DEFAULT_BATCH_SIZE)
            parquet_copy(written.batches(list(written.schema.names), DEFAULT_BATCH_SIZE), copy)
            parquet = copy
        import pyarrow.parquet as pq

        schema = pq.read_schema(parquet)
        source = str(out.resolve())
        return register(
            stores, run_id, name=name, role="output", parquet=parquet, source=source, num_rows=rows, schema=schema
        )
    finally:
        copy.unlink(missing_ok=True)


class _Job:
    """One scoring pass from an opened source into a temporary output, committed only when complete."""

    def __init__(
        self,
        stores: Stores,
        source: Source,
        plan: Plan,
        model: LoadedModel,
        out: Path,
        *,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self.stores = stores
        self.source = source
        self.plan = plan
        self.model = model
        self.out = out
        self.batch_size = batch_size
        self.progress = progress

    def run(self, executor: str, address: str | None, *, tee: Path | None) -> int:
        """Score everything into a temporary output and rename it into place; the rows written."""
        temp = TempOutput(self.out)
        try:
            if executor == "ray":
                from shipyard.serving._batch_ray import predict_on_ray

                rows = predict_on_ray(
                    self.source,
                    self.plan,
                    self.model,
                    temp,
                    batch_size=self.batch_size,
                    progress=self.progress,
                    address=address,
                )
            else:
                rows = self._local(temp, tee)
            if rows == 0:
                raise InvalidInputError(f"input {self.source.label!r} has no rows", field="input")
            temp.commit()
        except BaseException:
            temp.discard()
            if tee is not None:
                tee.unlink(missing_ok=True)
            raise
        return rows

    def _local(self, temp: TempOutput, tee: Path | None) -> int:
        scorer = BatchScorer(self.plan, model_function(self.model, self.plan.method))
        target = temp.part(0) if temp.kind == "folder" else temp.temp
        writer = BatchWriter(target, "parquet" if temp.kind == "folder" else temp.kind)
        copy = None if tee is None else BatchWriter(tee, "parquet")
        total = self.source.count_rows()
        columns = list(self.source.schema.names) if copy is not None else self.plan.read_columns
        try:
            for batch in self.source.batches(columns, self.batch_size):
                writer.write(scorer.score(batch))
                if copy is not None:
                    copy.write(batch)
                if self.progress is not None:
                    self.progress(writer.rows, total)
        finally:
            writer.close()
            if copy is not None:
                copy.close()
        return writer.rows
