"""Profiles: one pass over any table kind, exact summaries, sketches within their error, merge, JSON, storage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.config import Settings
from shipyard.datasets import get_dataset
from shipyard.datasets.profile import EXACT_LIMIT, RANK_ERROR
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.monitoring import (
    CategoricalSummary,
    NumericSummary,
    Profile,
    drift,
    profile,
    profile_dataset,
    training_profile,
)


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27, 58, None],
            "income": [52.5, float("nan"), 38.0, 71.25, 10.0],
            "city": ["paris", "lyon", None, "paris", "paris"],
            "churned": [True, False, False, True, True],
            "plan": [1, 2, 1, 1, 3],
        }
    )


def big(n: int = 60_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.gamma(2.0, 3.0, n), "c": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])})


def test_numeric_summary_is_exact_on_small_data() -> None:
    p = profile(small())
    age, income = p.columns["age"], p.columns["income"]
    assert isinstance(age, NumericSummary)
    assert isinstance(income, NumericSummary)
    assert (age.count, age.missing, age.min, age.max) == (4, 1, 27.0, 58.0)
    assert age.mean == pytest.approx(np.mean([31, 45, 27, 58]))
    assert age.std == pytest.approx(np.std([31, 45, 27, 58], ddof=1))
    assert (income.count, income.missing) == (4, 1)  # NaN counts as missing
    assert sum(income.counts) == pytest.approx(4.0)
    assert income.edges[0] == 10.0
    assert income.edges[-1] == 71.25
    assert p.num_rows == 5
    assert list(p.columns) == ["age", "income", "city", "churned", "plan"]


def test_strings_and_booleans_are_categorical_and_numbers_can_be_named_so() -> None:
    p = profile(small(), categorical=["plan"])
    city, churned, plan = p.columns["city"], p.columns["churned"], p.columns["plan"]
    assert isinstance(city, CategoricalSummary)
    assert (city.frequencies, city.missing, city.other) == ({"paris": 3, "lyon": 1}, 1, 0)
    assert isinstance(churned, CategoricalSummary)
    assert churned.frequencies == {"true": 3, "false": 2}
    assert isinstance(plan, CategoricalSummary)
    assert plan.frequencies == {"1": 3, "2": 1, "3": 1}
    assert p.categorical == ["city", "churned", "plan"]


def test_every_input_kind_gives_the_same_profile(tmp_path: Path) -> None:
    frame = big(20_000)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=3000)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 7000), folder / "a.parquet")
    pq.write_table(table.slice(7000), folder / "b.parquet")
    frame.to_csv(tmp_path / "data.csv", index=False)
    expected = profile(frame).to_dict()
    kinds = [
        str(tmp_path / "data.csv"),
        table,
        pl.from_pandas(frame),
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1000)),
        pads.dataset(str(tmp_path / "data.parquet")),
        str(tmp_path / "data.parquet"),
        folder,
        iter(table.to_batches(max_chunksize=777)),
    ]
    for data in kinds:
        got = profile(data).to_dict()
        assert got["num_rows"] == 20_000
        a, b = got["columns"]["x"], expected["columns"]["x"]
        assert [a[k] for k in ("count", "missing", "min", "max")] == [b[k] for k in ("count", "missing", "min", "max")]
        assert got["columns"]["c"]["frequencies"] == expected["columns"]["c"]["frequencies"]
        assert got["columns"]["x"]["mean"] == pytest.approx(expected["columns"]["x"]["mean"], rel=1e-12)


def test_sketch_quantiles_are_within_the_stated_rank_error() -> None:
    values = big(100_000)["x"].to_numpy()
    summary = profile(pd.DataFrame({"x": values})).columns["x"]
    assert isinstance(summary, NumericSummary)
    assert summary.values is None  # above EXACT_LIMIT the sketch answers
    ranks = np.linspace(0.01, 0.99, 99)
    found = summary.quantiles(ranks)
    true_ranks = np.searchsorted(np.sort(values), found, side="right") / values.size
    assert np.max(np.abs(true_ranks - ranks)) <= RANK_ERROR


def test_merge_of_two_halves_equals_the_whole() -> None:
    frame = big(80_000)
    whole = profile(frame)
    merged = profile(frame.iloc[:30_000]).merge(profile(frame.iloc[30_000:]))
    w, m = whole.columns["x"], merged.columns["x"]
    assert isinstance(w, NumericSummary)
    assert isinstance(m, NumericSummary)
    assert (m.count, m.missing, m.min, m.max) == (w.count, w.missing, w.min, w.max)
    assert m.mean == pytest.approx(w.mean, rel=1e-12)
    assert m.std == pytest.approx(w.std, rel=1e-9)
    ranks = np.linspace(0.05, 0.95, 19)
    true_ranks = np.searchsorted(np.sort(frame["x"].to_numpy()), m.quantiles(ranks), side="right") / len(frame)
    assert np.max(np.abs(true_ranks - ranks)) <= RANK_ERROR
    assert merged.columns["c"].to_dict() == whole.columns["c"].to_dict()
    assert merged.num_rows == 80_000


def test_merge_of_small_profiles_stays_exact_and_pads_missing_columns() -> None:
    a = profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    b = profile(pd.DataFrame({"x": [10.0], "y": ["u"]}))
    merged = a.merge(b)
    x, y = merged.columns["x"], merged.columns["y"]
    assert isinstance(x, NumericSummary)
    assert x.values is not None
    assert x.values.tolist() == [1.0, 2.0, 3.0, 10.0]
    assert isinstance(y, CategoricalSummary)
    assert (y.count, y.missing) == (1, 3)
    with pytest.raises(InvalidInputError, match="'x' is numeric in one profile and categorical"):
        a.merge(profile(pd.DataFrame({"x": ["a"]})))


def test_json_round_trip_is_compact_and_keeps_the_summaries() -> None:
    frame = big(100_000)
    p = profile(frame, prediction="x")
    text = p.to_json()
    assert len(text) < 30_000  # summaries, not 100,000 rows
    back = Profile.from_json(text)
    assert back.prediction == ("x",)
    assert back.to_dict() == json.loads(text)
    ranks = [0.1, 0.5, 0.9]
    assert back.columns["x"].quantiles(ranks).tolist() == p.columns["x"].quantiles(ranks).tolist()  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="not a shipyard profile"):
        Profile.from_json('{"kind": "something else"}')
    with pytest.raises(InvalidInputError, match="newer than this shipyard's"):
        Profile.from_json(json.dumps({**json.loads(text), "format_version": 99}))


def test_exact_values_are_kept_up_to_the_limit_only() -> None:
    under = profile(pd.DataFrame({"x": np.arange(EXACT_LIMIT, dtype=float)})).columns["x"]
    over = profile(pd.DataFrame({"x": np.arange(EXACT_LIMIT + 1, dtype=float)})).columns["x"]
    assert isinstance(under, NumericSummary)
    assert isinstance(over, NumericSummary)
    assert under.values is not None
    assert over.values is None


def test_prediction_columns_are_recorded_and_profiled() -> None:
    p = profile(small(), columns=["age"], prediction="churned")
    assert p.prediction == ("churned",)
    assert list(p.columns) == ["age", "churned"]


def test_empty_inputs_give_empty_profiles() -> None:
    assert profile(iter([])).num_rows == 0
    empty = profile(small().iloc[:0])
    assert empty.num_rows == 0
    age = empty.columns["age"]
    assert isinstance(age, NumericSummary)
    assert age.count == 0


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"cannot profile data of type builtins\.int"):
        profile(42)
    with pytest.raises(InvalidInputError, match="column 'nope' is not in the data"):
        profile(small(), columns=["nope"])
    with pytest.raises(InvalidInputError, match="column 'nope' is not in the data"):
        profile(small(), categorical=["nope"])
    with pytest.raises(InvalidInputError, match="does not exist"):
        profile(tmp_path / "missing.parquet")
    with pytest.raises(InvalidInputError, match="must yield pyarrow RecordBatches"):
        profile([{"x": 1}])
    nested = pa.table({"t": pa.array([[1], [2]])})
    with pytest.raises(InvalidInputError, match="cannot be profiled") as info:
        profile(nested, columns=["t"])
    assert info.value.field == "t"
    assert profile(nested).columns == {}  # unprofilable columns are skipped unless asked for


def test_log_model_stores_the_training_profile(settings: Settings) -> None:
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"tenure": rng.integers(0, 60, 300), "charges": rng.normal(70, 20, 300)})
    train["label"] = (train["charges"] > 70).astype(int)
    model = LogisticRegression().fit(train[["tenure", "charges"]], train["label"])
    sy.log_model(model, "churn", input_example=train[["tenure", "charges"]].head(3), training_data=train)
    sy.log_model(model, "churn")
    stored = training_profile("churn/1")
    assert stored.num_rows == 300
    assert stored.prediction == ("prediction",)
    assert list(stored.columns) == ["tenure", "charges", "label", "prediction"]
    prediction = stored.columns["prediction"]
    assert isinstance(prediction, NumericSummary)
    assert prediction.count == 300
    assert prediction.mean == pytest.approx(model.predict(train[["tenure", "charges"]]).mean())
    assert stored.columns["charges"].to_dict() == profile(train).columns["charges"].to_dict()
    assert drift(stored, train).drifted == []
    with pytest.raises(NotFoundError, match="churn/2 has no training profile"):
        training_profile("churn/2")
    with pytest.raises(InvalidInputError, match="failed to predict on training_data"):
        sy.log_model(model, "other", training_data=pd.DataFrame({"unrelated": ["a", "b"]}))


def test_training_data_as_an_array_is_named_like_the_model_input(settings: Settings) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    sy.log_model(model, "arrays", input_example=x[:2], training_data=x)
    stored = training_profile("arrays/1")
    assert list(stored.columns) == ["f0", "f1", "f2", "prediction"]
    assert stored.columns["f1"].count == 200
    shifted = x + np.array([0.0, 0.0, 3.0])
    assert drift(stored, pd.DataFrame(shifted, columns=["f0", "f1", "f2"])).drifted == ["f2"]


def test_profile_dataset_is_computed_once_and_stored(settings: Settings) -> None:
    frame = big(5_000)
    sy.log_dataset(frame, name="events")
    first = profile_dataset("events", 1)
    assert first.num_rows == 5_000
    assert get_dataset("events@1").tags["shipyard.profile"]
    again = profile_dataset("events@1")
    assert again.to_dict() == first.to_dict()
    with pytest.raises(NotFoundError):
        profile_dataset("events", 2)
