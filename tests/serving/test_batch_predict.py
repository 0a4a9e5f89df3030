"""Batch prediction: files, folders, globs and SQL in; ids beside predictions out; lineage; atomic output; Ray."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import RandomForestClassifier

import shipyard.registry as reg
from shipyard import Client, datasets
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from shipyard.lineage import build_lineage
from shipyard.serving.batch import SqlQuery, predict_batch
from shipyard.store import open_stores
from shipyard.testing import ServiceMissing, in_ci, postgres_schema
from tests.serving.conftest import SlowModel

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
ROWS = 600


def _frame(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows) + 1000,
            "tenure": rng.integers(0, 60, rows),
            "charges": rng.normal(70.0, 20.0, rows).round(2),
            "age": rng.integers(18, 80, rows),
        }
    )


FEATURES = ["tenure", "charges", "age"]


@pytest.fixture
def model(settings: Settings) -> RandomForestClassifier:
    """A random forest registered as ``churn@champion`` in the test's store (SQLite and PostgreSQL)."""
    return _register()


@pytest.fixture
def sqlite_model(store: Settings) -> RandomForestClassifier:
    """The same in an embedded store only (for tests whose subject is not the engine)."""
    return _register()


def _register() -> RandomForestClassifier:
    frame = _frame(300, seed=1)
    label = ((frame["charges"] - 70) / 20 - (frame["tenure"] - 30) / 30 > 0).astype(int)
    fitted = RandomForestClassifier(n_estimators=8, random_state=0).fit(frame[FEATURES], label)
    version = reg.log_model(fitted, "churn", input_example=frame[FEATURES].head(5)).version
    reg.set_alias("churn", "champion", version)
    return fitted


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder for the job's files, apart from the store's."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _expected(data: pd.DataFrame) -> np.ndarray[Any, Any]:
    return np.asarray(reg.load_model("churn@champion").predict(data[FEATURES]))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_predictions_equal_in_process_predict_and_the_id_column_is_kept(
    model: RandomForestClassifier, work: Path
) -> None:
    data = _frame()
    data.to_parquet(work / "customers.parquet", row_group_size=100)
    seen: list[tuple[int, int | None]] = []
    result = predict_batch(
        "churn@champion",
        work / "customers.parquet",
        work / "scores.parquet",
        batch_size=64,
        progress=lambda done, total: seen.append((done, total)),
    )
    out = pd.read_parquet(work / "scores.parquet")
    assert list(out.columns) == ["customer_id", "prediction"]  # ids by default: every non-input column
    assert out["customer_id"].tolist() == data["customer_id"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[FEATURES]))
    assert result.rows == ROWS
    assert result.model_version == "churn/1"
    assert seen[-1] == (ROWS, ROWS)
    assert len(seen) > 1


def test_the_model_never_sees_more_than_batch_size_rows(settings: Settings, work: Path) -> None:
    """SlowModel predicts, for each row, how many rows it was called with: the largest batch the reader made."""
    reg.log_model(SlowModel(0.0), "sizes", input_example=_frame(5)[FEATURES])
    _frame(1000).to_parquet(work / "in.parquet", row_group_size=1000)
    predict_batch("sizes", work / "in.parquet", work / "out.parquet", batch_size=128, lineage=False)
    sizes = pd.read_parquet(work / "out.parquet")["prediction"]
    assert sizes.max() == 128  # one row group of 1000 rows is still scored 128 rows at a time
    assert len(sizes) == 1000


def test_folder_glob_and_csv_inputs_give_the_same_predictions(model: RandomForestClassifier, work: Path) -> None:
    data = _frame()
    (work / "parts").mkdir()
    for i, start in enumerate(range(0, ROWS, 200)):
        data.iloc[start : start + 200].to_parquet(work / "parts" / f"p{i}.parquet")
    (work / "parts" / "_SUCCESS").write_text("")  # skipped, as Spark's marker files are
    data.to_csv(work / "customers.csv", index=False)
    expected = _expected(data)
    for source, output in [
        (work / "parts", work / "a.parquet"),
        (str(work / "parts" / "*.parquet"), work / "b.csv"),
        (work / "customers.csv", work / "c"),
    ]:
        predict_batch("churn@champion", source, output, id_columns=["customer_id"], batch_size=100)
        out = pd.read_csv(output) if str(output).endswith(".csv") else pd.read_parquet(output)
        assert out["customer_id"].tolist() == data["customer_id"].tolist()
        np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)


def test_lineage_leads_from_the_output_to_the_model_version_and_the_input(
    model: RandomForestClassifier, settings: Settings, work: Path
) -> None:
    """On SQLite and PostgreSQL: the run links input and output dataset versions and names the model version."""
    data = _frame()
    data.to_parquet(work / "customers.parquet")
    result = predict_batch("churn@champion", work / "customers.parquet", work / "scores.parquet")
    assert (result.input_dataset, result.output_dataset) == ("customers@1", "scores@1")
    stores = open_stores(settings)
    graph = build_lineage(stores, "dataset:scores@1")
    run_node = f"run:{result.run_id}"
    relations = {(e.source, e.target, e.relation) for e in graph.edges}
    assert (run_node, "dataset:scores@1", "produced") in relations
    assert ("dataset:customers@1", run_node, "input_to") in relations
    assert ("model:churn/1", run_node, "used_by") in relations  # dataset in -> model version -> dataset out
    run = stores.runs.get_run(str(result.run_id))
    assert run.status == "finished"
    assert run.experiment == "batch"
    assert run.params["model"] == "churn/1"
    assert run.tags["shipyard.model_version"] == "churn/1"
    pd.testing.assert_frame_equal(datasets.load_dataset("scores@1").to_pandas(), pd.read_parquet(result.output))
    again = predict_batch("churn@champion", work / "customers.parquet", work / "scores.parquet", overwrite=True)
    assert (again.input_dataset, again.output_dataset) == ("customers@1", "scores@1")  # same data, same versions


def test_sql_query_input(model: RandomForestClassifier, work: Path) -> None:
    data = _frame()
    with sqlite3.connect(work / "shop.db") as con:
        data.to_sql("customers", con, index=False)
    query = SqlQuery("SELECT * FROM customers ORDER BY customer_id", uri=f"sqlite:///{work / 'shop.db'}")
    result = predict_batch("churn@champion", query, work / "scores.parquet", batch_size=50)
    out = pd.read_parquet(work / "scores.parquet")
    assert out["customer_id"].tolist() == data["customer_id"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))
    assert result.input_dataset == "query@1"
    stored = datasets.load_dataset("query@1").to_pandas()
    assert stored["customer_id"].tolist() == data["customer_id"].tolist()  # the rows scored, kept for lineage
    with pytest.raises(InvalidInputError, match=r"the query on sqlite:///.* failed: no such table: nothere"):
        predict_batch("churn@champion", SqlQuery("SELECT * FROM nothere", uri=query.uri), work / "x.parquet")
    assert not (work / "x.parquet").exists()


@pytest.mark.postgres
def test_postgresql_query_input(sqlite_model: RandomForestClassifier, work: Path) -> None:
    """The same query on PostgreSQL, read with a server-side cursor in batches of 50."""
    from sqlalchemy import create_engine

    try:
        schema = postgres_schema()
        uri = schema.__enter__()
    except ServiceMissing as exc:
        if in_ci():
            pytest.fail(f"{exc} (CI=true: integration services must be present)")
        pytest.skip(str(exc))
    try:
        engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
        data = _frame()
        data.to_sql("customers", engine, index=False)
        engine.dispose()
        query = SqlQuery("SELECT * FROM customers ORDER BY customer_id", uri=uri)
        predict_batch("churn@champion", query, work / "scores.parquet", batch_size=50)
    finally:
        schema.__exit__(None, None, None)
    out = pd.read_parquet(work / "scores.parquet")
    assert out["customer_id"].tolist() == data["customer_id"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))


def test_cli_sql_input(model: RandomForestClassifier, work: Path) -> None:
    data = _frame()
    with sqlite3.connect(work / "shop.db") as con:
        data.to_sql("customers", con, index=False)
    query = "sql:SELECT customer_id, tenure, charges, age FROM customers WHERE age > 40 ORDER BY customer_id"
    done = _cli("churn@champion", query, "scores.csv", "--db", f"sqlite:///{work / 'shop.db'}", cwd=work)
    assert done.returncode == 0, done.stderr
    older = data[data["age"] > 40]
    out = pd.read_csv(work / "scores.csv")
    assert out["customer_id"].tolist() == older["customer_id"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(older))
    no_db = _cli("churn@champion", query, "other.csv", cwd=work)
    assert no_db.returncode == 2
    assert no_db.stderr.strip() == "error: a 'sql:' input needs --db postgresql://... or sqlite:///..."


def test_mismatched_columns_and_unknown_refs_write_nothing(model: RandomForestClassifier, work: Path) -> None:
    data = _frame().drop(columns=["age"]).assign(tenure=lambda f: f["tenure"].astype(str))
    data.to_parquet(work / "bad.parquet")
    with pytest.raises(SchemaMismatchError) as caught:
        predict_batch("churn@champion", work / "bad.parquet", work / "out.parquet")
    assert "missing column 'age' (integer)" in str(caught.value)
    assert "column 'tenure' expected integer, got string" in str(caught.value)
    with pytest.raises(NotFoundError, match="has no alias 'nope'"):
        predict_batch("churn@nope", work / "bad.parquet", work / "out.parquet")
    _frame().to_parquet(work / "good.parquet")
    with pytest.raises(InvalidInputError, match="id column 'nothere'"):
        predict_batch("churn@champion", work / "good.parquet", work / "out.parquet", id_columns=["nothere"])
    assert _files(work) == ["bad.parquet", "good.parquet"]


def test_a_bad_value_late_in_the_input_leaves_no_output(model: RandomForestClassifier, work: Path) -> None:
    """The schema fits (float where integer is expected), but one late row is not whole: nothing appears."""
    data = _frame().astype({"tenure": "float64"})
    data.loc[ROWS - 1, "tenure"] = 2.5
    data.to_parquet(work / "in.parquet")
    (work / "out.parquet").write_bytes(b"the previous output")
    with pytest.raises(SchemaMismatchError, match="'tenure' expected integer"):
        predict_batch("churn@champion", work / "in.parquet", work / "out.parquet", batch_size=100, overwrite=True)
    assert (work / "out.parquet").read_bytes() == b"the previous output"
    assert _files(work) == ["in.parquet", "out.parquet"]  # no temporary file left behind


def test_bad_outputs_are_refused_before_anything_runs(
    model: RandomForestClassifier, settings: Settings, work: Path
) -> None:
    _frame().to_parquet(work / "in.parquet")
    (work / "out.csv").write_text("keep")
    with pytest.raises(InvalidInputError, match="--overwrite"):
        predict_batch("churn@champion", work / "in.parquet", work / "out.csv")
    assert (work / "out.csv").read_text() == "keep"
    with pytest.raises(InvalidInputError, match=r"must end in \.parquet or \.csv"):
        predict_batch("churn@champion", work / "in.parquet", work / "out.json")
    assert open_stores(settings).runs.find_experiment("batch") is None  # refused before any run started


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The repository root on the path: a model class defined in this file is pickled by reference to it.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([SHIPYARD, "predict", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_scores_keeps_ids_and_refuses_bad_input_with_exit_2(model: RandomForestClassifier, work: Path) -> None:
    data = _frame()
    data.assign(region="north").to_parquet(work / "in.parquet")
    done = _cli("churn@champion", "in.parquet", "out.csv", "--id", "customer_id", "--batch-size", "128", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "600 rows scored by churn/1" in done.stdout
    assert "in@1 -> churn/1 -> out@1" in done.stdout
    out = pd.read_csv(work / "out.csv")
    assert list(out.columns) == ["customer_id", "prediction"]  # --id chose it; region is left out
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))

    data.drop(columns=["age"]).to_parquet(work / "bad.parquet")
    bad = _cli("churn@champion", "bad.parquet", "bad_out.parquet", cwd=work)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: input 'bad.parquet' does not match the signature of model churn/1: missing column 'age' (integer)"
    ]
    unknown = _cli("nomodel@champion", "in.parquet", "x.parquet", cwd=work)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: ")
    assert "nomodel" in unknown.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr
    assert not (work / "bad_out.parquet").exists()
    assert not (work / "x.parquet").exists()
    assert not [p for p in work.iterdir() if p.name.startswith(".")]  # no temporary files


class Failing:
    """A model that raises on more than ten rows (so its five-row example passes): the job's failure, not the user's."""

    def predict(self, data: pd.DataFrame) -> np.ndarray[Any, Any]:
        if len(data) > 10:
            raise ZeroDivisionError("the model divided by zero")
        return np.zeros(len(data))


def test_cli_a_model_that_raises_exits_1_and_writes_nothing(settings: Settings, work: Path) -> None:
    reg.log_model(Failing(), "failing", input_example=_frame(5)[FEATURES])
    _frame().to_parquet(work / "in.parquet")
    failed = _cli("failing", "in.parquet", "out.parquet", cwd=work)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        "error: model failing/1 failed on a batch: ZeroDivisionError: the model divided by zero"
    ]
    assert _files(work) == ["in.parquet"]


def test_string_columns_and_a_pipeline_model(settings: Settings, work: Path) -> None:
    """String inputs go through the checked-columns path; a CSV's strings reach the pipeline as strings."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = _frame().assign(plan=lambda f: np.where(f["age"] > 50, "gold", "basic"))
    columns = [*FEATURES, "plan"]
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    pipeline = Pipeline([("encode", encode), ("fit", LogisticRegression(max_iter=500))])
    pipeline.fit(data[columns], data["tenure"] > 30)
    reg.log_model(pipeline, "plans", input_example=data[columns].head(5))
    data.to_csv(work / "in.csv", index=False)
    predict_batch("plans", work / "in.csv", work / "out.parquet", batch_size=100)
    out = pd.read_parquet(work / "out.parquet")
    assert list(out.columns) == ["customer_id", "prediction"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), pipeline.predict(data[columns]))


@pytest.mark.ray
def test_ray_executor_writes_one_part_per_partition_with_the_same_predictions(
    sqlite_model: RandomForestClassifier, work: Path
) -> None:
    """Through the CLI, in a process of its own: a fresh local Ray, whatever Ray state earlier tests left here."""
    if importlib.util.find_spec("ray") is None:
        if in_ci():
            pytest.fail("ray is not installed (CI=true: the ray extra must be installed)")
        pytest.skip("ray is not installed: pip install 'shipyard[ray]'")
    data = _frame(1200)
    data.iloc[:800].to_parquet(work / "a.parquet", row_group_size=100)
    data.iloc[800:].to_parquet(work / "b.parquet", row_group_size=100)
    done = _cli("churn@champion", "*.parquet", "scores", "--executor", "ray", "--batch-size", "64", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "1200 rows scored by churn/1" in done.stdout, done.stdout
    parts = sorted((work / "scores").iterdir())
    assert len(parts) >= 4  # 12 row groups over 2 CPUs: about 2 partitions per CPU, and files never shared
    out = pq.read_table(work / "scores").to_pandas()
    assert out["customer_id"].tolist() == data["customer_id"].tolist()  # parts in input order
    np.testing.assert_array_equal(out["prediction"].to_numpy(), _expected(data))
    run = Client().search_runs("batch")[0]  # the job's lineage run
    assert run.tags["shipyard.model_version"] == "churn/1"
