"""Drift: shifted distributions flagged, unshifted ones not; every statistic equal to scipy's; bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from shipyard.datasets.profile import RANK_ERROR
from shipyard.errors import InvalidInputError
from shipyard.monitoring import DriftReport, drift, profile, render_html
from shipyard.monitoring._stats import psi_edges

# A p-value test at 0.05 flags about 1 unshifted column in 20 (seed 1 draws one such false alarm
# at n=500); test_false_alarm_rate_is_the_test_level checks that rate over many seeds.
SEEDS = [0, 2, 3]


def tables(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current table: ``mean``, ``spread`` and ``mix`` shifted; ``same_*`` not."""
    rng = np.random.default_rng(seed)
    cats, base, moved = ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], [0.15, 0.25, 0.3, 0.3]

    def table(shifted: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "mean": rng.normal(0.8 if shifted else 0.0, 1.0, n),
                "spread": rng.normal(0.0, 2.5 if shifted else 1.0, n),
                "mix": rng.choice(cats, n, p=moved if shifted else base),
                "same_num": rng.exponential(2.0, n),
                "same_cat": rng.choice(cats, n, p=base),
            }
        )

    return table(False), table(True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("n", "numeric", "categorical"), [(500, "ks", "chi2"), (20_000, "wasserstein", "js")], ids=["small", "large"]
)
def test_shifted_columns_are_flagged_and_unshifted_are_not(seed: int, n: int, numeric: str, categorical: str) -> None:
    reference, current = tables(n, seed)
    report = drift(reference, current)
    assert report.drifted == ["mean", "spread", "mix"]
    assert report.share_drifted == pytest.approx(3 / 5)
    assert {c.method for c in report.columns.values() if c.kind == "numeric"} == {numeric}
    assert {c.method for c in report.columns.values() if c.kind == "categorical"} == {categorical}
    assert drift(reference, reference).drifted == []


@pytest.mark.parametrize("seed", SEEDS)
def test_profile_based_comparison_streams_the_current_and_agrees(seed: int, tmp_path: Path) -> None:
    reference, current = tables(30_000, seed)
    path = tmp_path / "current.parquet"
    pq.write_table(pa.Table.from_pandas(current, preserve_index=False), path, row_group_size=4096)
    stored = profile(reference).to_json()
    from shipyard.monitoring import Profile

    report = drift(Profile.from_json(stored), path)
    assert report.drifted == ["mean", "spread", "mix"]
    assert report.current_rows == 30_000


def exact_pair(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, 3_000), rng.normal(0.1, 1.2, 2_000)


def test_numeric_statistics_equal_scipy_on_exact_values() -> None:
    a, b = exact_pair()
    column = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b})).columns["x"]
    s = column.statistics
    ks = ks_2samp(a, b, method="asymp")
    assert s["ks"] == pytest.approx(ks.statistic, abs=1e-12)
    assert s["ks_pvalue"] == pytest.approx(ks.pvalue, abs=0.01)
    assert s["wasserstein"] == pytest.approx(wasserstein_distance(a, b), rel=1e-9)
    assert s["wasserstein_norm"] == pytest.approx(wasserstein_distance(a, b) / np.std(a, ddof=1), rel=1e-9)
    edges = np.quantile(a, np.arange(1, 10) / 10, method="inverted_cdf")
    assert psi_edges(profile(pd.DataFrame({"x": a})).columns["x"]).tolist() == pytest.approx(edges.tolist())  # type: ignore[arg-type]
    r = np.diff(np.concatenate([[0], np.searchsorted(np.sort(a), edges, side="right"), [a.size]])) / a.size
    c = np.diff(np.concatenate([[0], np.searchsorted(np.sort(b), edges, side="right"), [b.size]])) / b.size
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    assert s["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-9)
    ref_hist, cur_hist = column.distribution.reference, column.distribution.current  # type: ignore[union-attr]
    assert s["js"] == pytest.approx(jensenshannon(ref_hist, cur_hist), abs=1e-4)  # shares rounded to 5 digits


def test_tables_in_memory_give_exact_statistics_past_the_profile_limit() -> None:
    rng = np.random.default_rng(12)
    a, b = rng.normal(0.0, 1.0, 40_000), rng.normal(0.05, 1.0, 30_000)
    s = drift(pa.table({"x": a}), pd.DataFrame({"x": b})).columns["x"].statistics
    assert s["ks"] == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert s["wasserstein"] == pytest.approx(wasserstein_distance(a, b), rel=1e-9)


@pytest.mark.parametrize(("n", "tolerance"), [(40, 0.025), (120, 0.025), (400, 0.01), (1000, 0.01)])
def test_ks_pvalue_matches_scipy_asymptotic_across_sizes(n: int, tolerance: float) -> None:
    rng = np.random.default_rng(n)
    for shift in (0.0, 0.1, 0.2, 0.3):
        a, b = rng.normal(0, 1, n), rng.normal(shift, 1, n + 13)
        s = drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b})).columns["x"].statistics
        assert s["ks_pvalue"] == pytest.approx(ks_2samp(a, b, method="asymp").pvalue, abs=tolerance)


def test_false_alarm_rate_is_the_test_level() -> None:
    alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        same = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b", "c"], 400)})
        again = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b", "c"], 400)})
        alarms += len(drift(same, again).drifted)
    assert alarms / 80 <= 0.125  # 0.05 expected; 0.125 is beyond 3 standard errors of 80 draws


def test_categorical_statistics_equal_scipy() -> None:
    rng = np.random.default_rng(8)
    a = rng.choice(["a", "b", "c", "d"], 3_000, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(["a", "b", "c", "d", "e"], 2_500, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    s = drift(pd.DataFrame({"c": a}), pd.DataFrame({"c": b})).columns["c"].statistics
    keys = ["a", "b", "c", "d", "e"]
    ref = np.array([(a == k).sum() for k in keys], dtype=float)
    cur = np.array([(b == k).sum() for k in keys], dtype=float)
    chi2, p, _, _ = chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert s["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert s["chi2_pvalue"] == pytest.approx(p, rel=1e-6, abs=1e-12)
    assert s["js"] == pytest.approx(jensenshannon(ref, cur), rel=1e-9)
    r, c = np.maximum(ref / ref.sum(), 1e-4), np.maximum(cur / cur.sum(), 1e-4)
    assert s["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-9)


def test_chi2_pvalue_matches_scipy_when_it_is_not_tiny() -> None:
    rng = np.random.default_rng(9)
    a = rng.choice(["x", "y", "z"], 400, p=[0.5, 0.3, 0.2])
    b = rng.choice(["x", "y", "z"], 300, p=[0.45, 0.33, 0.22])
    s = drift(pd.DataFrame({"c": a}), pd.DataFrame({"c": b})).columns["c"].statistics
    counts = np.array([[(a == k).sum() for k in "xyz"], [(b == k).sum() for k in "xyz"]])
    _, p, _, _ = chi2_contingency(counts, correction=False)
    assert 0.01 < p < 0.99
    assert s["chi2_pvalue"] == pytest.approx(p, rel=1e-9)


def test_sketch_statistics_are_within_the_sketch_error() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0.0, 1.0, 60_000), rng.normal(0.2, 1.1, 50_000)
    s = drift(profile(pd.DataFrame({"x": a})), pd.DataFrame({"x": b})).columns["x"].statistics
    # Each side's distribution function is within RANK_ERROR everywhere, so D within twice
    # that, and the area between them within twice that times the range.
    assert s["ks"] == pytest.approx(ks_2samp(a, b).statistic, abs=2 * RANK_ERROR)
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    assert s["wasserstein"] == pytest.approx(wasserstein_distance(a, b), abs=2 * RANK_ERROR * span)
    assert s["wasserstein"] == pytest.approx(wasserstein_distance(a, b), rel=0.15)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_sketch_psi_is_close_to_numpy_on_the_same_bins(shift: float) -> None:
    rng = np.random.default_rng(13)
    a, b = rng.normal(0.0, 1.0, 60_000), rng.normal(shift, 1.0, 50_000)
    stored = profile(pd.DataFrame({"x": a}))
    s = drift(stored, pd.DataFrame({"x": b})).columns["x"].statistics
    edges = psi_edges(stored.columns["x"])  # type: ignore[arg-type]
    r = np.diff(np.concatenate([[0], np.searchsorted(np.sort(a), edges, side="right"), [a.size]])) / a.size
    c = np.diff(np.concatenate([[0], np.searchsorted(np.sort(b), edges, side="right"), [b.size]])) / b.size
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    # Each bin's share is within 2 x RANK_ERROR; on ten bins that moves PSI by well under 0.02.
    assert s["psi"] == pytest.approx(float(np.sum((c - r) * np.log(c / r))), abs=0.02)


def test_methods_and_thresholds_are_configurable() -> None:
    reference, current = tables(5_000, 0)
    report = drift(reference, current, methods={"numeric": "psi", "mix": "chi2"}, thresholds={"spread": 10.0})
    assert report.columns["mean"].method == "psi"
    assert report.columns["mean"].threshold == 0.2
    assert report.columns["mix"].method == "chi2"
    assert report.columns["spread"].threshold == 10.0
    assert report.drifted == ["mean", "mix"]
    assert drift(reference, current, thresholds={"wasserstein": 5.0}).drifted == ["mix"]
    only = drift(reference, current, columns=["same_num", "mix"])
    assert list(only.columns) == ["same_num", "mix"]
    assert only.drifted == ["mix"]


def test_an_empty_current_window_is_an_empty_report_not_an_error() -> None:
    reference, current = tables(500, 0)
    for empty in (current.iloc[:0], iter([]), profile(current.iloc[:0])):
        report = drift(reference, empty)
        assert report.empty
        assert report.columns == {}
        assert report.drifted == []
        assert report.share_drifted == 0.0
        assert report.to_dict()["empty"] is True
    assert "no rows" in render_html(drift(reference, current.iloc[:0]), title="empty")


def test_bad_input_is_named() -> None:
    reference, current = tables(300, 0)
    cases = [
        ({"methods": {"nope": "ks"}}, "methods", "'nope', which is neither a kind"),
        ({"methods": {"mix": "ks"}}, "methods", "method 'ks' for 'mix' is not one for categorical"),
        ({"thresholds": {"nope": 1.0}}, "thresholds", "thresholds names 'nope'"),
        ({"thresholds": {"psi": "high"}}, "thresholds", "must be a finite number"),
        ({"columns": ["nope"]}, "nope", "column 'nope' is not in the data"),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(InvalidInputError, match=re.escape(message)) as info:
            drift(reference, current, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(InvalidInputError, match="'nope' is not in the reference") as info:
        drift(profile(reference), current, columns=["nope"])
    assert info.value.field == "columns"
    with pytest.raises(InvalidInputError, match="the reference has no rows"):
        drift(reference.iloc[:0], current)
    with pytest.raises(InvalidInputError, match="'mean' is numeric in the reference but categorical") as info:
        drift(reference, current.assign(mean="high"))
    assert info.value.field == "mean"


def test_a_column_unknown_to_the_reference_is_a_quality_issue_not_a_crash() -> None:
    reference, current = tables(300, 0)
    report = drift(reference, current.assign(extra=1.0).drop(columns=["same_cat"]))
    columns = [(i.column, i.check) for i in report.quality if i.check.endswith("_column")]
    assert columns == [("same_cat", "missing_column"), ("extra", "unknown_column")]
    assert "extra" not in report.columns
    assert "same_cat" not in report.columns


def test_report_to_dict_is_plain_json() -> None:
    reference, current = tables(300, 0)
    data = drift(reference, current.assign(same_num=np.nan)).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["columns"]["same_num"]["score"] is None  # no values: no score, not NaN
    assert data["drifted"] == ["mean", "spread", "mix"]


def test_html_report_is_small_self_contained_and_plots_every_column() -> None:
    reference, current = tables(20_000, 1)
    reference["<b>odd</b>"] = 1.0
    current["<b>odd</b>"] = 2.0
    report = drift(reference, current)
    history = [(f"day {i}", drift(reference, tables(2_000, i)[1])) for i in range(3)]
    page = render_html(report, title="churn & co", history=history)
    assert page.startswith("<!doctype html>")
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert "churn &amp; co" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page
    assert "<b>odd</b>" not in page
    assert page.count("<svg width='360'") == len(report.columns) + len(report.columns) - 1  # history lacks odd
    assert "Drift over time" in page
    assert "day 2" in page
    assert len(page.encode()) < 100_000
    both = render_html([report, report], title="two arms")
    assert both.count("<h2>Report") == 2
    with pytest.raises(InvalidInputError):
        render_html("not a report", title="x")  # type: ignore[arg-type]


def test_report_properties() -> None:
    reference, current = tables(500, 2)
    report = drift(reference, current)
    assert isinstance(report, DriftReport)
    assert report.reference_rows == report.current_rows == 500
    for column in report.columns.values():
        assert column.drifted == (
            column.score < column.threshold if column.method in ("ks", "chi2") else column.score >= column.threshold
        )
        assert math.isfinite(column.score)
