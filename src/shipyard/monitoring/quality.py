"""Data quality checks of a current profile against its reference: missing-rate jumps, values out of the
reference's range, categories the reference never saw, and columns that appeared or disappeared.

Defaults (``QUALITY_THRESHOLDS``, each overridable through ``drift(..., thresholds=)``):

- ``missing_rate``: 0.1, an issue when the missing share grows by more than 10 points;
- ``out_of_range``: 0.01, when more than 1 % of values lie outside the reference's [min, max]
  (a fresh sample of the same distribution puts about 2 / reference rows there);
- ``unseen_categories``: 0.0, when any value's category never occurred in the reference (checked
  only when the reference profile counted every category, none folded into ``other``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shipyard.datasets.profile import CategoricalSummary, NumericSummary, Profile

QUALITY_THRESHOLDS: dict[str, float] = {"missing_rate": 0.1, "out_of_range": 0.01, "unseen_categories": 0.0}


@dataclass(frozen=True, slots=True)
class QualityIssue:
    """One failed check: on ``column``, ``check`` measured ``value``, above the allowed ``threshold``.

    ``value`` is a share of rows (0 to 1) except for ``unknown_column`` and ``missing_column``, where it is 1.
    """

    column: str
    check: str
    value: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return asdict(self)


def check_quality(
    reference: Profile, current: Profile, *, thresholds: Mapping[str, float] | None = None
) -> list[QualityIssue]:
    """Every quality issue of ``current`` against ``reference``, by column in reference order.

    Example:
        >>> [i.check for i in check_quality(profile(ref_df), profile(cur_df))]  # doctest: +SKIP
        ['missing_rate', 'out_of_range']
    """
    limits = {**QUALITY_THRESHOLDS, **(thresholds or {})}
    issues = [
        QualityIssue(name, "missing_column", 1.0, 0.0) for name in reference.columns if name not in current.columns
    ]
    issues += [
        QualityIssue(name, "unknown_column", 1.0, 0.0) for name in current.columns if name not in reference.columns
    ]
    if current.num_rows == 0:
        return issues
    for name, ref in reference.columns.items():
        cur = current.columns.get(name)
        if cur is None:
            continue
        allowed = ref.missing_rate + limits["missing_rate"]
        if cur.missing_rate > allowed:
            issues.append(QualityIssue(name, "missing_rate", cur.missing_rate, allowed))
        if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
            share = out_of_range_share(ref, cur)
            if share > limits["out_of_range"]:
                issues.append(QualityIssue(name, "out_of_range", share, limits["out_of_range"]))
        elif isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary) and ref.complete:
            share = unseen_share(ref, cur)
            if share > limits["unseen_categories"]:
                issues.append(QualityIssue(name, "unseen_categories", share, limits["unseen_categories"]))
    return issues


def out_of_range_share(ref: NumericSummary, cur: NumericSummary) -> float:
    """The share of current values below the reference's min or above its max."""
    if not cur.count or not ref.count or (cur.min >= ref.min and cur.max <= ref.max):
        return 0.0
    below_min, at_max = cur.cdf([float(np.nextafter(ref.min, -np.inf)), ref.max])
    return float(below_min + (1.0 - at_max))


def unseen_share(ref: CategoricalSummary, cur: CategoricalSummary) -> float:
    """The share of current values whose category the reference never saw."""
    if not cur.count:
        return 0.0
    unseen = sum(n for value, n in cur.frequencies.items() if value not in ref.frequencies)
    return unseen / cur.count
