"""Data quality checks: missing-rate jumps, out-of-range values, unseen categories, appearing columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import QualityIssue, check_quality, drift, profile


def reference(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.uniform(0.0, 10.0, n), "c": rng.choice(["a", "b"], n)})


def issues(ref: pd.DataFrame, cur: pd.DataFrame, **thresholds: float) -> list[tuple[str, str]]:
    return [(i.column, i.check) for i in drift(ref, cur, thresholds=thresholds or None).quality]


def test_a_sample_of_the_same_data_has_no_issues() -> None:
    assert issues(reference(seed=0), reference(seed=1)) == []


def test_missing_rate_jump_is_flagged_with_its_value() -> None:
    ref, cur = reference(), reference(seed=1)
    cur.loc[: len(cur) // 4 - 1, "x"] = np.nan
    cur.loc[: len(cur) // 20 - 1, "c"] = None  # 5 %: under the 10-point allowance
    found = drift(ref, cur).quality
    assert found == [QualityIssue("x", "missing_rate", 0.25, 0.1)]
    assert issues(ref, cur, missing_rate=0.3) == []
    assert issues(ref, cur, missing_rate=0.01) == [("x", "missing_rate"), ("c", "missing_rate")]


def test_missing_rate_jump_is_relative_to_the_reference_rate() -> None:
    ref, cur = reference(), reference(seed=1)
    ref.loc[: len(ref) // 2 - 1, "x"] = np.nan
    cur.loc[: len(cur) // 2 - 1, "x"] = np.nan
    assert issues(ref, cur) == []


def test_values_out_of_the_reference_range_are_flagged_with_their_share() -> None:
    ref, cur = reference(), reference(seed=1)
    cur.loc[:99, "x"] = 25.0  # 5 % above the reference max
    cur.loc[100:119, "x"] = -3.0  # 1 % below its min
    found = drift(ref, cur).quality
    assert len(found) == 1
    assert (found[0].column, found[0].check) == ("x", "out_of_range")
    assert found[0].value == pytest.approx(0.06, abs=0.002)  # plus the few a fresh sample puts beyond the edges
    assert issues(ref, cur, out_of_range=0.1) == []


def test_out_of_range_share_from_sketches_is_close() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0.0, 1.0, 50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.0, 1.0, 50_000)})
    cur.loc[:4_999, "x"] = 100.0
    found = drift(profile(ref), cur).quality
    assert [(i.column, i.check) for i in found] == [("x", "out_of_range")]
    assert found[0].value == pytest.approx(0.1, abs=0.01)


def test_unseen_categories_are_flagged_with_their_share() -> None:
    ref, cur = reference(), reference(seed=1)
    cur.loc[:39, "c"] = "z"
    found = drift(ref, cur).quality
    assert found == [QualityIssue("c", "unseen_categories", 40 / len(cur), 0.0)]
    assert issues(ref, cur, unseen_categories=0.05) == []


def test_unseen_categories_are_not_judged_against_an_incomplete_reference() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"c": [f"v{i}" for i in rng.integers(0, 500, 5_000)]})  # more than TOP_K values
    cur = pd.DataFrame({"c": ["never-seen"] * 10 + ref["c"].tolist()[:990]})
    assert not profile(ref).columns["c"].complete  # type: ignore[union-attr]
    assert issues(ref, cur) == []


def test_check_quality_on_profiles_reports_columns_that_appear_or_vanish() -> None:
    ref = profile(reference())
    cur = profile(reference(seed=1).rename(columns={"c": "c2"}))
    assert check_quality(ref, cur) == [
        QualityIssue("c", "missing_column", 1.0, 0.0),
        QualityIssue("c2", "unknown_column", 1.0, 0.0),
    ]
    assert QualityIssue("c", "missing_column", 1.0, 0.0).to_dict() == {
        "column": "c",
        "check": "missing_column",
        "value": 1.0,
        "threshold": 0.0,
    }
