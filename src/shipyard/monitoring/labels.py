"""Delayed labels: the ground truth that arrives after a prediction, joined to it by request id.

Labels are stored beside the predictions they answer: one Parquet artifact per call
and arm run, at ``labels/date=YYYY-MM-DD/hour=HH/part-<ms>-<pid>-<n>.parquet`` (columns
``_request_id``, ``_row``, ``label``, ``_label_timestamp``; ``<n>`` is random, so two calls
never share a path). A request of several rows
takes one label per row, in the order its rows were sent; a row labelled twice keeps
the later label.

Example:
    >>> import shipyard as sy
    >>> sy.log_labels(["req-1", "req-2"], [1, 0], model="churn")  # doctest: +SKIP
    LabelsLogged(logged=2, unknown=())
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError
from shipyard.monitoring._logs import LABELS, arm_runs, labelled_predictions, parse_window, read_predictions
from shipyard.store import Stores
from shipyard.store.entities import ArtifactRef
from shipyard.tracking.api import HasStores, resolve_stores

if TYPE_CHECKING:
    import pandas as pd

_SHOWN = 5


@dataclass(frozen=True, slots=True)
class LabelsLogged:
    """What :func:`log_labels` stored: how many labels joined a logged prediction, and the ids that did not."""

    logged: int
    unknown: tuple[str, ...] = ()


def log_labels(
    request_ids: Sequence[str],
    labels: Sequence[Any],
    *,
    model: str | None = None,
    timestamp: float | None = None,
    strict: bool = True,
    client: HasStores | None = None,
) -> LabelsLogged:
    """Store ground truth for logged predictions, joined by request id (and row, for multi-row requests).

    Args:
        request_ids: The ids serving answered with (``X-Request-ID`` / the v2 ``id``), one per label.
        labels: The true values: numbers or booleans, one per request id.
        model: Look only at this model's prediction logs; every served model's when ``None``.
        timestamp: When the truth was known (epoch seconds); now when ``None``.
        strict: Refuse the whole call when an id has no logged prediction; with ``False``,
            store the others and report the unknown ids in the result.
        client: A ``Client``; the settings in force when ``None``.

    Returns:
        How many labels were stored, and the request ids that matched no prediction.

    Raises:
        InvalidInputError: lengths differ, a label is not a number, or (``strict``) ids are unknown.
    """
    import pandas as pd

    ids, values = _check(request_ids, labels)
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int | float)):
        raise InvalidInputError(f"timestamp must be epoch seconds (a number), got {timestamp!r}", field="timestamp")
    stores = resolve_stores(client)
    runs = arm_runs(stores, model)
    incoming = pd.DataFrame({"_request_id": ids, "label": values})
    incoming["_row"] = incoming.groupby("_request_id", sort=False).cumcount()
    logged = read_predictions(stores, runs, columns=["_request_id"])[["_run", "_request_id", "_row"]]
    matched = incoming.merge(logged, on=["_request_id", "_row"], how="inner")
    known = incoming.merge(
        logged[["_request_id", "_row"]].drop_duplicates(), on=["_request_id", "_row"], how="left", indicator=True
    )
    unknown = tuple(dict.fromkeys(known.loc[known["_merge"] == "left_only", "_request_id"].astype(str)))
    if unknown and strict:
        scope = f"model {model!r}" if model is not None else "any served model"
        shown = ", ".join(repr(u) for u in unknown[:_SHOWN]) + (", ..." if len(unknown) > _SHOWN else "")
        raise InvalidInputError(
            f"{len(unknown)} of {len(set(ids))} request ids have no logged prediction of {scope} "
            f"(or more labels than the request had rows): {shown}; "
            "check the ids, or pass strict=False to store the others",
            field="request_ids",
        )
    at = time.time() if timestamp is None else float(timestamp)
    for run_id, rows in matched.groupby("_run", sort=False):
        _write(stores, str(run_id), rows, at)
    stored = int(len(incoming) - known["_merge"].eq("left_only").sum())
    return LabelsLogged(stored, unknown)


def _check(request_ids: Sequence[str], labels: Sequence[Any]) -> tuple[list[str], Any]:
    import numpy as np

    if isinstance(request_ids, str) or not isinstance(request_ids, Sequence | np.ndarray):
        raise InvalidInputError(
            f"request_ids must be a list of request ids, got {type(request_ids).__name__}", field="request_ids"
        )
    ids = [str(i) for i in request_ids]
    try:
        values = np.asarray(labels)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"labels must be a list of numbers: {exc}", field="labels") from exc
    if values.ndim != 1 or len(values) != len(ids):
        raise InvalidInputError(
            f"labels must hold one value per request id: {len(ids)} request ids, "
            f"{values.shape[0] if values.ndim else 'a scalar'} labels",
            field="labels",
        )
    if not ids:
        raise InvalidInputError("request_ids is empty; pass at least one request id and its label", field="request_ids")
    if values.dtype == bool:
        values = values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"labels must be numbers or booleans (class 0/1, or a value for regression), got {values.dtype} "
            f"such as {values[0]!r}",
            field="labels",
        )
    return ids, values


def _write(stores: Stores, run_id: str, rows: Any, at: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "_request_id": pa.array(rows["_request_id"].astype(str).to_numpy(), pa.string()),
            "_row": pa.array(rows["_row"].to_numpy(), pa.int64()),
            "label": rows["label"].to_numpy(),
            "_label_timestamp": pa.array([int(at * 1e6)] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    digest, size = stores.artifacts.put_bytes(sink.getvalue())
    stamp = datetime.fromtimestamp(at, UTC)
    name = f"part-{int(at * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
    path = f"{LABELS}/date={stamp:%Y-%m-%d}/hour={stamp:%H}/{name}"
    stores.runs.record_artifacts(run_id, [ArtifactRef(path, digest, size)])


def read_labelled(
    model: str,
    *,
    window: str | float = "1d",
    end: float | None = None,
    arm: str | None = None,
    client: HasStores | None = None,
) -> pd.DataFrame:
    """The labelled predictions of ``model`` in the last ``window`` before ``end`` (now): inputs, outputs, ``label``.

    Retraining on what the model saw in production starts here. Shadow rows are left
    out unless ``arm="shadow"`` asks for them (they repeat other arms' requests).

    Example:
        >>> recent = read_labelled("churn", window="7d")  # doctest: +SKIP
        >>> model.fit(recent[["tenure", "plan"]], recent["label"])  # doctest: +SKIP
    """
    stores = resolve_stores(client)
    stop = time.time() if end is None else float(end)
    runs = [r for r in arm_runs(stores, model, arm=arm) if arm is not None or r.arm != "shadow"]
    return labelled_predictions(stores, runs, start=stop - parse_window(window), end=stop)
