"""Drift: compare a current table (a window of prediction logs, any dataset) with a reference, per column.

Every column gets every statistic that applies to its kind (``ColumnDrift.statistics``); one of
them, its ``method``, decides the flag. The defaults follow Evidently's, which users of drift
tools know: a numeric column is tested with Kolmogorov-Smirnov when both sides hold at most
``SMALL`` values (flagged when the p-value is below 0.05), else with the Wasserstein distance
divided by the reference's standard deviation (flagged at 0.1); a categorical column with
chi-square (p below 0.05) when both sides are small, else with the Jensen-Shannon distance
(flagged at 0.1). PSI is flagged at 0.2, the usual "significant shift" line.

Statistics are exact (equal to scipy's) when both tables are in memory (DataFrames, Arrow
tables), up to ``IN_MEMORY_LIMIT`` values a column; else they are read from the profiles'
quantile sketches, within their rank error. A reference or current that is a :class:`Profile`
(or a path, a reader, batches) is compared that way, so a stored reference profile and a
current table streamed in batches are never both in memory.

Example:
    >>> report = drift(reference_df, current_df)  # doctest: +SKIP
    >>> report.drifted, report.share_drifted  # doctest: +SKIP
    (['f0', 'f3'], 0.1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.datasets.profile import (
    EXACT_LIMIT,
    CategoricalSummary,
    NumericSummary,
    Profile,
    in_memory,
    iter_batches,
    profile,
)
from shipyard.errors import InvalidInputError
from shipyard.monitoring import _stats
from shipyard.monitoring.quality import QUALITY_THRESHOLDS, QualityIssue, check_quality

SMALL = 1000
DEFAULT_THRESHOLDS: dict[str, float] = {"ks": 0.05, "chi2": 0.05, "wasserstein": 0.1, "js": 0.1, "psi": 0.2}
PVALUE_METHODS = frozenset({"ks", "chi2"})  # flagged below the threshold; the others at or above it
SCORES = {"ks": "ks_pvalue", "chi2": "chi2_pvalue", "wasserstein": "wasserstein_norm", "js": "js", "psi": "psi"}
METHODS_BY_KIND = {"numeric": ("ks", "wasserstein", "psi", "js"), "categorical": ("chi2", "js", "psi")}
# Values kept per column for exact statistics when both tables are in memory anyway (8 MB a column at most).
IN_MEMORY_LIMIT = 1_000_000
_MAX_LABELS = 30  # categories drawn in a report; the statistics use all of them


@dataclass(frozen=True, slots=True)
class Distribution:
    """Both sides' shares over the same bins, for plots: ``labels`` name the bins (edges or categories)."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's verdict: ``method`` gave ``score``, compared with ``threshold``, so ``drifted``."""

    name: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    statistics: dict[str, float]
    distribution: Distribution | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (NaN as ``None``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "score": _json(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "statistics": {k: _json(v) for k, v in self.statistics.items()},
        }
        if self.distribution is not None:
            d = self.distribution
            out["distribution"] = {"labels": list(d.labels), "reference": list(d.reference), "current": list(d.current)}
        return out


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-column drift of a current table against a reference, and the current's quality issues.

    An empty current window gives a report with no columns (``empty`` is true), not an error.
    """

    columns: dict[str, ColumnDrift]
    quality: list[QualityIssue]
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> list[str]:
        """The names of the drifted columns, in column order."""
        return [name for name, c in self.columns.items() if c.drifted]

    @property
    def share_drifted(self) -> float:
        """Drifted columns over compared columns; 0 when none were compared."""
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    @property
    def empty(self) -> bool:
        """True when the current side had no rows, so nothing was compared."""
        return self.current_rows == 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "empty": self.empty,
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "quality": [issue.to_dict() for issue in self.quality],
        }


def drift(
    reference: object,
    current: object,
    *,
    thresholds: Mapping[str, float] | None = None,
    methods: Mapping[str, str] | None = None,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column (see the module docstring for defaults).

    Args:
        reference: the reference data (any kind ``profile`` reads) or its :class:`Profile`.
        current: the current data or its :class:`Profile`; data is streamed into a profile
            with the reference's column kinds.
        thresholds: by method (``ks``, ``chi2``, ``wasserstein``, ``js``, ``psi``), by quality
            check (``missing_rate``, ``out_of_range``, ``unseen_categories``) or by column name
            (that column's method); column names win.
        methods: by column name, or by kind (``numeric``, ``categorical``): the statistic that flags.
        columns: the columns to compare; all the reference's when ``None``.
        categorical: columns to treat as categories when profiling ``reference`` from data.

    Raises:
        InvalidInputError: the reference is empty, a method or threshold is unknown or names a
            column the reference lacks, or a column's type differs between the sides.

    Example:
        >>> drift(ref_df, cur_df, thresholds={"wasserstein": 0.2}, methods={"age": "psi"}).drifted  # doctest: +SKIP
    """
    # Tables both in memory already: keep every value for exact statistics instead of sketching.
    limit = IN_MEMORY_LIMIT if in_memory(reference) and in_memory(current) else EXACT_LIMIT
    if isinstance(reference, Profile):
        ref = reference
    else:
        ref = profile(reference, columns=columns, categorical=categorical, exact_limit=limit)
    if ref.num_rows == 0:
        raise InvalidInputError("the reference has no rows; drift needs a reference to compare with", field="reference")
    names = list(columns) if columns is not None else list(ref.columns)
    for name in names:
        if name not in ref.columns:
            raise InvalidInputError(
                f"column {name!r} is not in the reference; its columns are: {', '.join(ref.columns)}", field="columns"
            )
    chosen = _methods(methods, ref, names)
    limits = _thresholds(thresholds, ref)
    cur = current if isinstance(current, Profile) else _profile_like(current, ref, names, limit)
    quality = check_quality(_select(ref, names), cur, thresholds={k: limits[k] for k in QUALITY_THRESHOLDS})
    if cur.num_rows == 0:
        return DriftReport({}, quality, ref.num_rows, 0)
    results = {}
    for name in names:
        side = cur.columns.get(name)
        if side is None:
            continue
        results[name] = compare_column(name, ref.columns[name], side, chosen[name], limits)
    return DriftReport(results, quality, ref.num_rows, cur.num_rows)


def compare_column(
    name: str,
    ref: NumericSummary | CategoricalSummary,
    cur: NumericSummary | CategoricalSummary,
    method: str | None,
    limits: Mapping[str, float] = DEFAULT_THRESHOLDS,
) -> ColumnDrift:
    """One column's statistics and verdict by ``method`` (the kind's default when ``None``).

    The threshold is ``limits[name]`` when given, else ``limits[method]``.
    """
    if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
        stats, distribution = _numeric(ref, cur)
        exact = ref.values is not None and cur.values is not None
        default = "ks" if exact and max(ref.count, cur.count) <= SMALL else "wasserstein"
    elif isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary):
        stats, distribution = _categorical(ref, cur)
        default = "chi2" if max(ref.count, cur.count) <= SMALL else "js"
    else:
        raise InvalidInputError(
            f"column {name!r} is {ref.kind} in the reference but {cur.kind} in the current data", field=name
        )
    method = method or default
    limit = limits.get(name, limits.get(method, DEFAULT_THRESHOLDS[method]))
    if not stats:
        return ColumnDrift(name, ref.kind, method, math.nan, limit, False, {}, None)
    score = stats[SCORES[method]]
    drifted = score < limit if method in PVALUE_METHODS else score >= limit
    return ColumnDrift(name, ref.kind, method, score, limit, bool(drifted), stats, distribution)


def _numeric(ref: NumericSummary, cur: NumericSummary) -> tuple[dict[str, float], Distribution | None]:
    if not ref.count or not cur.count:
        return {}, None
    points, f_ref, f_cur = _stats.distribution_functions(ref, cur)
    d = _stats.ks_statistic(f_ref, f_cur)
    distance = _stats.wasserstein(points, f_ref, f_cur)
    psi_ref, psi_cur = _stats.numeric_bins(ref, cur, _stats.psi_edges(ref))
    edges = np.asarray(ref.edges[1:-1])
    hist_ref, hist_cur = _stats.numeric_bins(ref, cur, edges)
    stats = {
        "ks": d,
        "ks_pvalue": _stats.ks_pvalue(d, ref.count, cur.count),
        "wasserstein": distance,
        "wasserstein_norm": distance / max(ref.std, 1e-3) if math.isfinite(ref.std) else distance,
        "psi": _stats.psi(psi_ref, psi_cur),
        "js": _stats.js_distance(hist_ref, hist_cur),
    }
    labels = tuple(f"{lo:.4g}..{hi:.4g}" for lo, hi in zip(ref.edges[:-1], ref.edges[1:], strict=True)) or ("all",)
    return stats, Distribution(labels, _shares(hist_ref), _shares(hist_cur))


def _categorical(ref: CategoricalSummary, cur: CategoricalSummary) -> tuple[dict[str, float], Distribution | None]:
    if not ref.count or not cur.count:
        return {}, None
    keys = list(dict.fromkeys([*ref.frequencies, *cur.frequencies]))
    ref_counts = np.array([ref.frequencies.get(k, 0) for k in keys] + [ref.other], dtype=float)
    cur_counts = np.array([cur.frequencies.get(k, 0) for k in keys] + [cur.other], dtype=float)
    chi2, pvalue = _stats.chi2_contingency(ref_counts, cur_counts)
    stats = {
        "chi2": chi2,
        "chi2_pvalue": pvalue,
        "js": _stats.js_distance(ref_counts, cur_counts),
        "psi": _stats.psi(ref_counts, cur_counts),
    }
    shown = keys[:_MAX_LABELS]
    rest_ref = float(ref_counts.sum() - ref_counts[: len(shown)].sum())
    rest_cur = float(cur_counts.sum() - cur_counts[: len(shown)].sum())
    labels = (*shown, "(other)") if rest_ref or rest_cur else tuple(shown)
    ref_shown = [*ref_counts[: len(shown)], rest_ref] if len(labels) > len(shown) else list(ref_counts[: len(shown)])
    cur_shown = [*cur_counts[: len(shown)], rest_cur] if len(labels) > len(shown) else list(cur_counts[: len(shown)])
    return stats, Distribution(labels, _shares(np.array(ref_shown)), _shares(np.array(cur_shown)))


def _profile_like(current: object, ref: Profile, names: list[str], limit: int) -> Profile:
    """Stream ``current`` into a profile of the reference's columns and kinds; its extra columns are kept empty."""
    schema, batches = iter_batches(current)
    if schema is None:
        return Profile(0, {})
    present = [n for n in names if schema.get_field_index(n) >= 0]
    categorical = [n for n in present if ref.columns[n].kind == "categorical"]
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    result = profile(reader, columns=present, categorical=categorical, exact_limit=limit)
    extra = {n: CategoricalSummary(0, 0, {}) for n in schema.names if n not in ref.columns}
    return Profile(result.num_rows, {**result.columns, **extra}, ref.prediction)


def _select(ref: Profile, names: list[str]) -> Profile:
    return Profile(ref.num_rows, {n: ref.columns[n] for n in names}, ref.prediction)


def _methods(methods: Mapping[str, str] | None, ref: Profile, names: list[str]) -> dict[str, str | None]:
    given = dict(methods or {})
    for key, method in given.items():
        if key not in METHODS_BY_KIND and key not in ref.columns:
            raise InvalidInputError(
                f"methods names {key!r}, which is neither a kind (numeric, categorical) nor a column of the "
                f"reference ({', '.join(ref.columns)})",
                field="methods",
            )
        kind = key if key in METHODS_BY_KIND else ref.columns[key].kind
        if method not in METHODS_BY_KIND[kind]:
            raise InvalidInputError(
                f"method {method!r} for {key!r} is not one for {kind} columns; expected one of: "
                f"{', '.join(METHODS_BY_KIND[kind])}",
                field="methods",
            )
    return {n: given.get(n, given.get(ref.columns[n].kind)) for n in names}


def _thresholds(thresholds: Mapping[str, float] | None, ref: Profile) -> dict[str, float]:
    limits: dict[str, float] = {**DEFAULT_THRESHOLDS, **QUALITY_THRESHOLDS}
    for key, value in (thresholds or {}).items():
        if key not in limits and key not in ref.columns:
            raise InvalidInputError(
                f"thresholds names {key!r}, which is neither a method ({', '.join(DEFAULT_THRESHOLDS)}), a quality "
                f"check ({', '.join(QUALITY_THRESHOLDS)}) nor a column of the reference",
                field="thresholds",
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(f"threshold {key!r} must be a finite number, got {value!r}", field="thresholds")
        limits[key] = float(value)
    return limits


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = float(np.sum(counts))
    return tuple(round(float(c) / total, 5) if total else 0.0 for c in counts)


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None
