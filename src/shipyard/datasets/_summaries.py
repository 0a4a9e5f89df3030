"""The summary a profile keeps of each column: numeric (moments, sketch, histogram) or categorical (counts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from shipyard.datasets._sketch import QuantileSketch

BINS = 20
TOP_K = 100
EXACT_LIMIT = 10_000


@dataclass(frozen=True, slots=True, eq=False)
class NumericSummary:
    """A numeric column: moments, extremes, a quantile sketch and a histogram."""

    count: int
    missing: int
    min: float
    max: float
    mean: float
    std: float
    sketch: QuantileSketch = field(repr=False)  # empty while ``values`` holds every value: see full_sketch()
    edges: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    values: np.ndarray | None = field(default=None, repr=False)  # every value, sorted, when kept
    _built: list[QuantileSketch] = field(default_factory=list, repr=False)  # full_sketch(), made once

    kind = "numeric"

    @property
    def missing_rate(self) -> float:
        """Missing values over all rows; 0 for an empty column."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def cdf(self, points: Sequence[float] | np.ndarray) -> np.ndarray:
        """Share of values ``<= p`` for increasing ``points``: exact with ``values``, else from the sketch."""
        if self.values is not None:
            found: np.ndarray = np.searchsorted(self.values, np.asarray(points, dtype=float), side="right")
            return found / max(self.count, 1)
        return self.sketch.cdf(points)

    def quantiles(self, ranks: Sequence[float] | np.ndarray) -> np.ndarray:
        """The values at normalized ``ranks``: exact with ``values``, else from the sketch."""
        if self.values is not None:
            if not self.count:
                return np.full(len(ranks), np.nan)
            found: np.ndarray = np.quantile(self.values, np.asarray(ranks, dtype=float), method="inverted_cdf")
            return found
        return self.sketch.quantiles(ranks)

    def full_sketch(self) -> QuantileSketch:
        """The sketch of every value (built from ``values`` when they were kept instead)."""
        if self.values is None:
            return self.sketch
        if not self._built:  # KLL compacts at random: one build, so the profile writes the same JSON twice
            built = QuantileSketch()
            built.update(self.values)
            self._built.append(built)
        return self._built[0]

    def merge(self, other: NumericSummary) -> NumericSummary:
        """Both columns' values as one summary."""
        count = self.count + other.count
        if not count:
            return replace(self, missing=self.missing + other.missing)
        delta = other.mean - self.mean if self.count and other.count else 0.0
        mean = (self.mean * self.count + other.mean * other.count) / count
        m2 = _m2(self) + _m2(other) + delta * delta * self.count * other.count / count
        values = None
        sketch = QuantileSketch()
        if self.values is not None and other.values is not None and count <= EXACT_LIMIT:
            values = np.sort(np.concatenate([self.values, other.values]))
        else:
            sketch = self.full_sketch().merged(other.full_sketch())
        return finish_numeric(
            count=count,
            missing=self.missing + other.missing,
            low=min(self.min, other.min) if self.count and other.count else (self.min if self.count else other.min),
            high=max(self.max, other.max) if self.count and other.count else (self.max if self.count else other.max),
            mean=mean,
            m2=m2,
            sketch=sketch,
            values=values,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the sketch as base64, no raw values)."""
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "min": _num(self.min),
            "max": _num(self.max),
            "mean": _num(self.mean),
            "std": _num(self.std),
            "sketch": self.full_sketch().to_text(),
            "edges": list(self.edges),
            "counts": [round(c, 3) for c in self.counts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSummary:
        """The summary :meth:`to_dict` wrote."""
        return cls(
            count=int(d["count"]),
            missing=int(d["missing"]),
            min=_float(d["min"]),
            max=_float(d["max"]),
            mean=_float(d["mean"]),
            std=_float(d["std"]),
            sketch=QuantileSketch.from_text(d["sketch"]),
            edges=tuple(float(e) for e in d["edges"]),
            counts=tuple(float(c) for c in d["counts"]),
        )


@dataclass(frozen=True, slots=True)
class CategoricalSummary:
    """A categorical column: the most frequent values (as text) with counts, and the rest as ``other``."""

    count: int
    missing: int
    frequencies: dict[str, int]
    other: int = 0

    kind = "categorical"

    @property
    def missing_rate(self) -> float:
        """Missing values over all rows; 0 for an empty column."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @property
    def complete(self) -> bool:
        """True when every value seen is in ``frequencies`` (none folded into ``other``)."""
        return self.other == 0

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        """Both columns' values as one summary (the top ``TOP_K`` kept, the rest counted in ``other``)."""
        counts = dict(self.frequencies)
        for value, n in other.frequencies.items():
            counts[value] = counts.get(value, 0) + n
        top, folded = top_counts(counts, TOP_K)
        return CategoricalSummary(
            count=self.count + other.count,
            missing=self.missing + other.missing,
            frequencies=top,
            other=self.other + other.other + folded,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "frequencies": self.frequencies,
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSummary:
        """The summary :meth:`to_dict` wrote."""
        freqs = {str(k): int(v) for k, v in d["frequencies"].items()}
        return cls(count=int(d["count"]), missing=int(d["missing"]), frequencies=freqs, other=int(d["other"]))


ColumnSummary = NumericSummary | CategoricalSummary


def finish_numeric(
    *,
    count: int,
    missing: int,
    low: float,
    high: float,
    mean: float,
    m2: float,
    sketch: QuantileSketch,
    values: np.ndarray | None,
) -> NumericSummary:
    """The summary of accumulated moments and values: std from ``m2``, the histogram from values or sketch."""
    std = math.sqrt(m2 / (count - 1)) if count > 1 else (0.0 if count else math.nan)
    edges: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    if count:
        grid = np.linspace(low, high, BINS + 1) if high > low else np.array([low, high])
        inner = grid[1:-1]
        cum = np.searchsorted(values, inner, side="right") if values is not None else sketch.cdf(inner) * count
        cum = np.concatenate([[0.0], cum, [float(count)]])
        edges, counts = tuple(float(e) for e in grid), tuple(float(c) for c in np.diff(cum))
    return NumericSummary(count, missing, low, high, mean, std, sketch, edges, counts, values)


def _m2(s: NumericSummary) -> float:
    return s.std * s.std * (s.count - 1) if s.count > 1 else 0.0


def top_counts(counts: dict[str, int], k: int) -> tuple[dict[str, int], int]:
    """The ``k`` largest counts (ties by value), and the sum of the rest."""
    if len(counts) <= k:
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), 0
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ordered[:k]), sum(n for _, n in ordered[k:])


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)
