"""Reading what serving wrote: each arm's prediction-log partitions and the labels joined to them.

Serving records one run per arm in experiment ``serving`` (see
:mod:`shipyard.serving.prediction_log`); labels land beside the predictions they
answer, as ``labels/...`` Parquet artifacts of the same run, so a model's whole
history stays with its deployment runs and no table is added to the store.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInputError
from shipyard.serving.prediction_log import EXPERIMENT, PREFIX
from shipyard.store import Stores
from shipyard.store.entities import ArtifactRef

if TYPE_CHECKING:
    import pandas as pd

LABELS = "labels"
_PART = re.compile(r"/part-(\d+)-")
_WINDOW = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A partition's name carries the time of its first row; a flush holds at most this much more.
_PARTITION_SPAN = 3600.0


def parse_window(value: str | float, *, field: str = "window") -> float:
    """Seconds in a window such as ``"1h"``, ``"10m"``, ``"30s"``, ``"1d"`` (or a positive number).

    Example:
        >>> parse_window("10m")
        600.0
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _WINDOW.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"{field} must be a positive duration such as '1h', '10m', '30s', '1d', got {value!r}", field=field
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True, slots=True)
class ArmRun:
    """One arm of one deployment: the run its prediction log is recorded under."""

    run_id: str
    model: str
    arm: str
    ref: str
    version: int


def arm_runs(stores: Stores, model: str | None, *, arm: str | None = None) -> list[ArmRun]:
    """Every prediction-log run of ``model`` (of every model when ``None``), oldest first; optionally one arm's."""
    experiment = stores.runs.find_experiment(EXPERIMENT)
    if experiment is None:
        return []
    conditions = [f"tags.shipyard.serving.model = '{_quoted(model)}'"] if model is not None else []
    if arm is not None:
        conditions.append(f"tags.shipyard.serving.arm = '{_quoted(arm)}'")
    query = " and ".join(conditions) or None
    found: list[ArmRun] = []
    token: str | None = None
    for _ in range(1000):  # pages of 10,000 runs: bounded
        page = stores.runs.search_runs(
            [experiment.id], filter=query, order_by=["start_time asc"], max_results=10_000, page_token=token
        )
        for run in page:
            tags = run.tags
            version = run.lineage.get("version")
            found.append(
                ArmRun(
                    run.id,
                    tags.get("shipyard.serving.model", ""),
                    tags.get("shipyard.serving.arm", "primary"),
                    tags.get("shipyard.serving.ref", ""),
                    int(version) if isinstance(version, int | float) else 0,
                )
            )
        token = page.next_page_token
        if not token:
            break
    return found


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _in_range(ref: ArtifactRef, start: float | None, end: float | None) -> bool:
    match = _PART.search(ref.path)
    if match is None:
        return True
    first = int(match.group(1)) / 1000
    return (end is None or first < end) and (start is None or first >= start - _PARTITION_SPAN)


def _read(stores: Stores, refs: Sequence[ArtifactRef], columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen: set[str] = set()
    tables = []
    for ref in refs:
        if ref.digest in seen:
            continue
        seen.add(ref.digest)
        tables.append(pq.read_table(io.BytesIO(stores.artifacts.get_bytes(ref.digest)), columns=columns))
    if not tables:
        return None
    frame: pd.DataFrame = pa.concat_tables(tables, promote_options="default").to_pandas()
    return frame


def read_predictions(
    stores: Stores,
    runs: Sequence[ArmRun],
    *,
    start: float | None = None,
    end: float | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The logged predictions of ``runs`` with ``start <= _timestamp < end``, each with ``_row`` and ``_run``.

    ``_row`` numbers the rows of one request (0, 1, ...), so a request of several rows
    takes one label per row, in order. ``columns`` reads only those (with ``_request_id``
    and ``_timestamp``, which the window and ``_row`` need).
    """
    import pandas as pd

    frames = []
    for run in runs:
        refs = [r for r in stores.runs.list_artifacts(run.run_id, PREFIX + "/") if _in_range(r, start, end)]
        wanted = None if columns is None else list(dict.fromkeys(["_request_id", "_timestamp", *columns]))
        frame = _read(stores, refs, wanted)
        if frame is None:
            continue
        frame["_row"] = frame.groupby("_request_id", sort=False).cumcount()
        frame["_run"] = run.run_id
        seconds = frame["_timestamp"].astype("int64") / 1e6 if len(frame) else frame["_timestamp"]
        keep = (seconds >= start if start is not None else True) & (seconds < end if end is not None else True)
        frames.append(frame[keep] if not isinstance(keep, bool) else frame)
    if not frames:
        return pd.DataFrame(columns=["_request_id", "_timestamp", "_version", "_arm", "_row", "_run"])
    return pd.concat(frames, ignore_index=True)


def read_labels(stores: Stores, runs: Sequence[ArmRun]) -> pd.DataFrame:
    """Every label recorded for ``runs``: ``_run``, ``_request_id``, ``_row``, ``label``; the latest per row wins."""
    import pandas as pd

    frames = []
    for run in runs:
        frame = _read(stores, stores.runs.list_artifacts(run.run_id, LABELS + "/"))
        if frame is not None:
            frame["_run"] = run.run_id
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["_run", "_request_id", "_row", "label", "_label_timestamp"])
    labels = pd.concat(frames, ignore_index=True).sort_values("_label_timestamp", kind="stable")
    return labels.drop_duplicates(["_run", "_request_id", "_row"], keep="last")


def labelled_predictions(
    stores: Stores, runs: Sequence[ArmRun], *, start: float | None = None, end: float | None = None
) -> pd.DataFrame:
    """The predictions of ``runs`` in the window that have a label, with the label in column ``label``."""
    return join_labels(stores, runs, read_predictions(stores, runs, start=start, end=end))


def join_labels(stores: Stores, runs: Sequence[ArmRun], predictions: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` (as :func:`read_predictions` gives them) that have a label, with it in column ``label``."""
    labels = read_labels(stores, runs)[["_run", "_request_id", "_row", "label"]]
    if "label" in predictions.columns:
        predictions = predictions.rename(columns={"label": "output.label"})
    return predictions.merge(labels, on=["_run", "_request_id", "_row"], how="inner")
