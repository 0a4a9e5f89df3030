"""Profiles: compact, mergeable summaries of a table, computed in one pass over Arrow batches.

Per numeric column: count, missing (null, NaN or infinite), min, max, mean, std, a KLL quantile
sketch (ranks within ``RANK_ERROR``, see ``_sketch``) and a histogram on ``BINS`` equal-width
bins between min and max, its counts read from the sketch (or counted, when the values are
kept). Per categorical column (strings, booleans, dictionaries, or any column named in
``categorical=``): the ``TOP_K`` most frequent values with their counts and the count of all
other values. Up to ``EXACT_LIMIT`` values of a numeric column are kept in memory instead of
sketched (never serialized: the sketch is built from them when the profile is written or
merged past the limit), so statistics on small data are exact. Profiles merge, so windows
combine and data larger than memory streams through. The summaries are in ``_summaries``.

Example:
    >>> p = profile(df, prediction="score")  # doctest: +SKIP
    >>> p.merge(profile(more_df)).columns["age"].quantiles([0.5])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.datasets._batches import in_memory, iter_batches
from shipyard.datasets._sketch import RANK_ERROR, QuantileSketch
from shipyard.datasets._summaries import (
    BINS,
    EXACT_LIMIT,
    TOP_K,
    CategoricalSummary,
    ColumnSummary,
    NumericSummary,
    finish_numeric,
    top_counts,
)
from shipyard.errors import InvalidInputError

__all__ = [
    "BINS",
    "EXACT_LIMIT",
    "RANK_ERROR",
    "TOP_K",
    "CategoricalSummary",
    "NumericSummary",
    "Profile",
    "in_memory",
    "iter_batches",
    "profile",
]

KIND = "shipyard.profile"
FORMAT_VERSION = 1
_TRACKED = 20 * TOP_K  # distinct values counted exactly while profiling, before the rarest fold into "other"


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """Summaries of a table's columns (``columns``), its row count and which columns are predictions.

    Example:
        >>> whole = profile(first_half).merge(profile(second_half))  # doctest: +SKIP
        >>> Profile.from_json(whole.to_json()).num_rows  # doctest: +SKIP
    """

    num_rows: int
    columns: dict[str, ColumnSummary]
    prediction: tuple[str, ...] = ()

    @property
    def categorical(self) -> list[str]:
        """The names of the categorical columns."""
        return [name for name, s in self.columns.items() if s.kind == "categorical"]

    def merge(self, other: Profile) -> Profile:
        """One profile of both tables' rows; a column only one side has keeps that side's summary.

        Raises:
            InvalidInputError: a column is numeric in one profile and categorical in the other.
        """
        if not isinstance(other, Profile):
            raise InvalidInputError(f"can only merge a Profile, got {type(other).__name__}", field="other")
        columns: dict[str, ColumnSummary] = {}
        for name in [*self.columns, *(n for n in other.columns if n not in self.columns)]:
            mine, theirs = self.columns.get(name), other.columns.get(name)
            if mine is None or theirs is None:
                columns[name] = _pad(mine or theirs, missing=other.num_rows if theirs is None else self.num_rows)
            else:
                columns[name] = _merge_summaries(name, mine, theirs)
        prediction = tuple(dict.fromkeys([*self.prediction, *other.prediction]))
        return Profile(self.num_rows + other.num_rows, columns, prediction)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: summaries, never rows."""
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "num_rows": self.num_rows,
            "prediction": list(self.prediction),
            "columns": {name: s.to_dict() for name, s in self.columns.items()},
        }

    def to_json(self) -> str:
        """The profile as compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        """The profile :meth:`to_json` wrote.

        Raises:
            InvalidInputError: the text is not a shipyard profile.
        """
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or d.get("kind") != KIND:
                raise ValueError(f"its kind is {d.get('kind') if isinstance(d, dict) else None!r}, not {KIND!r}")
            if int(d.get("format_version", 0)) > FORMAT_VERSION:
                raise ValueError(f"format {d['format_version']} is newer than this shipyard's; upgrade shipyard")
            columns: dict[str, ColumnSummary] = {
                name: NumericSummary.from_dict(c) if c["kind"] == "numeric" else CategoricalSummary.from_dict(c)
                for name, c in d["columns"].items()
            }
            return cls(int(d["num_rows"]), columns, tuple(d.get("prediction", ())))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInputError(f"not a shipyard profile: {exc}", field="profile") from exc


def profile(
    data: object,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    prediction: str | Sequence[str] | None = None,
    exact_limit: int = EXACT_LIMIT,
) -> Profile:
    """Profile ``data`` in one pass over its Arrow batches.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, RecordBatch, RecordBatchReader or
            Dataset, a path to a Parquet/CSV file or folder, or an iterable of RecordBatches.
        columns: the columns to profile; every numeric and categorical column when ``None``.
        categorical: columns to summarize as categories even when they hold numbers.
        prediction: the column or columns holding the model's predictions (profiled too).
        exact_limit: keep up to this many values of each numeric column in memory, sorted, for
            exact statistics (``drift`` raises it when both tables are in memory anyway).

    Raises:
        InvalidInputError: the data is of an unknown kind, or a named column is missing or of
            a type that cannot be profiled.

    Example:
        >>> p = profile(pd.DataFrame({"x": [1.0, 2.0, None], "c": ["a", "b", "a"]}))  # doctest: +SKIP
        >>> p.columns["x"].missing, p.columns["c"].frequencies  # doctest: +SKIP
        (1, {'a': 2, 'b': 1})
    """
    predictions = _names(prediction, "prediction")
    wanted = _names(columns, "columns")
    if wanted is not None and predictions:
        wanted = list(dict.fromkeys([*wanted, *predictions]))
    as_category = set(_names(categorical, "categorical") or ())
    schema, batches = iter_batches(data, wanted)
    if schema is None:
        return Profile(0, {}, tuple(predictions or ()))
    kinds = _kinds(schema, wanted, as_category, predictions or [])
    accumulators = {
        name: _NumericAcc(exact_limit) if kind == "numeric" else _CategoricalAcc() for name, kind in kinds.items()
    }
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for name, acc in accumulators.items():
            acc.add(batch.column(batch.schema.get_field_index(name)), name)
    summaries = {name: acc.finish() for name, acc in accumulators.items()}
    return Profile(rows, summaries, tuple(predictions or ()))


class _NumericAcc:
    """One numeric column's running summary."""

    def __init__(self, limit: int) -> None:
        self.count = self.missing = 0
        self.low, self.high = math.inf, -math.inf
        self.mean = self.m2 = 0.0
        self.sketch = QuantileSketch()
        self.kept: list[np.ndarray] | None = []
        self.limit = limit

    def add(self, column: pa.Array, name: str) -> None:
        try:
            numbers = column.cast(pa.float64()) if column.type != pa.float64() else column
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"column {name!r} holds {column.type}, not numbers as expected; name it in categorical=",
                field=name,
            ) from exc
        values = numbers.to_numpy(zero_copy_only=False)
        finite = np.isfinite(values)  # nulls arrive as NaN; NaN and infinities count as missing
        if not finite.all():
            values = values[finite]
        self.missing += len(column) - values.size
        if not values.size:
            return
        n = values.size
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta * delta * self.count * n / total
        self.count = total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        if self.kept is None:
            self.sketch.update(values)
            return
        self.kept.append(values)
        if self.count > self.limit:
            # Past the limit the kept values go into the sketch once, and later batches straight in.
            self.sketch.update(np.concatenate(self.kept))
            self.kept = None

    def finish(self) -> NumericSummary:
        values = None
        if self.kept is not None:
            values = np.concatenate(self.kept) if self.kept else np.empty(0)
            values.sort()  # in place: concatenate already copied
        return finish_numeric(
            count=self.count,
            missing=self.missing,
            low=self.low if self.count else math.nan,
            high=self.high if self.count else math.nan,
            mean=self.mean if self.count else math.nan,
            m2=self.m2,
            sketch=self.sketch,
            values=values,
        )


class _CategoricalAcc:
    """One categorical column's running value counts."""

    def __init__(self) -> None:
        self.count = self.missing = self.other = 0
        self.counts: dict[str, int] = {}

    def add(self, column: pa.Array, name: str) -> None:
        self.missing += column.null_count
        self.count += len(column) - column.null_count
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.large_string()) if not pa.types.is_boolean(column.type) else _bool_text(column)
        counted = pc.value_counts(column.drop_null())
        for value, n in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True):
            self.counts[value] = self.counts.get(value, 0) + n
        if len(self.counts) > _TRACKED:
            self.counts, folded = top_counts(self.counts, _TRACKED // 2)
            self.other += folded

    def finish(self) -> CategoricalSummary:
        top, folded = top_counts(self.counts, TOP_K)
        return CategoricalSummary(self.count, self.missing, top, self.other + folded)


def _merge_summaries(name: str, mine: ColumnSummary, theirs: ColumnSummary) -> ColumnSummary:
    if isinstance(mine, NumericSummary) and isinstance(theirs, NumericSummary):
        return mine.merge(theirs)
    if isinstance(mine, CategoricalSummary) and isinstance(theirs, CategoricalSummary):
        return mine.merge(theirs)
    raise InvalidInputError(
        f"column {name!r} is {mine.kind} in one profile and {theirs.kind} in the other; "
        "profile both with the same categorical= columns",
        field=name,
    )


def _pad(summary: ColumnSummary | None, *, missing: int) -> ColumnSummary:
    assert summary is not None
    return replace(summary, missing=summary.missing + missing)


def _bool_text(column: pa.Array) -> pa.Array:
    return pc.if_else(column, pa.scalar("true", pa.large_string()), pa.scalar("false", pa.large_string()))


def _kinds(
    schema: pa.Schema, wanted: Sequence[str] | None, as_category: set[str], predictions: list[str]
) -> dict[str, str]:
    for name in [*as_category, *predictions]:
        if schema.get_field_index(name) < 0:
            raise InvalidInputError(
                f"column {name!r} is not in the data; its columns are: {', '.join(schema.names)}", field=name
            )
    kinds = {}
    for f in schema:
        if wanted is not None and f.name not in wanted:
            continue
        kind = "categorical" if f.name in as_category else _kind(f.type)
        if kind is None:
            if wanted is not None:
                raise InvalidInputError(
                    f"column {f.name!r} holds {f.type}, which cannot be profiled; expected numbers, strings, "
                    "booleans or categories",
                    field=f.name,
                )
            continue
        kinds[f.name] = kind
    return kinds


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_dictionary(t) or pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return "categorical"
    return None


def _names(value: str | Sequence[str] | None, field_name: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise InvalidInputError(
            f"{field_name} must be a column name or a list of names, got {value!r}", field=field_name
        )
    return names
