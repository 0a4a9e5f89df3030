"""Versioned datasets through the public API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import stdev

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from shipyard.config import Settings
from shipyard.datasets import (
    get_dataset,
    list_dataset_versions,
    list_datasets,
    load_dataset,
    log_dataset,
    parse_dataset_ref,
    set_golden,
)
from shipyard.datasets.api import referenced_digests
from shipyard.errors import IntegrityError, InvalidInputError, NotFoundError
from shipyard.store import Stores
from shipyard.store.entities import RunDataset
from shipyard.tracking.api import start_run

COLUMNS = {
    "age": [31, 45, 27, 58],
    "income": [52.5, None, 38.0, 71.25],
    "city": ["paris", "lyon", None, "paris"],
    "churned": [True, False, False, True],
    "tags": [["a", "b"], None, [], ["c"]],
}


def frame() -> pd.DataFrame:
    return pd.DataFrame(COLUMNS)


def blob_path(settings: Settings, digest: str) -> Path:
    return Path(settings.artifact_uri.removeprefix("file://")) / "blobs" / digest[:2] / digest


# versions -----------------------------------------------------------------------------


def test_same_data_twice_is_one_version(settings: Settings) -> None:
    first = log_dataset(frame(), "churn")
    again = log_dataset(frame(), "churn")
    assert (first.version, again.version) == (1, 1)
    assert again.digest == first.digest
    assert [v.version for v in list_dataset_versions("churn")] == [1]


def test_changed_data_is_the_next_version(settings: Settings) -> None:
    first = log_dataset(frame(), "churn")
    changed = frame()
    changed.loc[0, "age"] = 32
    second = log_dataset(changed, "churn")
    assert (first.version, second.version) == (1, 2)
    assert second.digest != first.digest
    assert get_dataset("churn").version == 2
    assert get_dataset("churn@latest").version == 2
    assert get_dataset("churn@1").digest == first.digest


def test_pandas_polars_and_arrow_of_the_same_data_share_a_digest(settings: Settings) -> None:
    from_pandas = log_dataset(frame(), "same")
    from_polars = log_dataset(pl.DataFrame(COLUMNS), "same")
    from_arrow = log_dataset(pa.table(COLUMNS), "same")
    assert from_pandas.digest == from_polars.digest == from_arrow.digest
    assert [v.version for v in list_dataset_versions("same")] == [1]


def test_chunking_string_width_and_dictionaries_do_not_change_the_digest(settings: Settings) -> None:
    table = pa.table({"k": ["x", "y", "x"], "n": [1, 2, 3]})
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert chunked.column("k").num_chunks == 2
    encoded = table.set_column(0, "k", table.column("k").dictionary_encode())
    digests = {log_dataset(t, "shapes").digest for t in (table, chunked, encoded)}
    assert len(digests) == 1


def test_default_index_is_ignored_and_other_indexes_are_data(settings: Settings) -> None:
    plain = log_dataset(frame(), "idx")
    shuffled = frame().set_axis([10, 20, 30, 40])
    indexed = log_dataset(shuffled, "idx")
    assert indexed.version == 2
    assert "__index_level_0__" in indexed.schema
    assert "__index_level_0__" not in plain.schema
    restored = load_dataset("idx@2").to_pandas()
    assert list(restored.index) == [10, 20, 30, 40]


def test_schema_and_statistics(settings: Settings) -> None:
    v = log_dataset(frame(), "stats")
    assert v.num_rows == 4
    assert v.format == "parquet"
    assert v.schema == {
        "age": "int64",
        "income": "double",
        "city": "large_string",
        "churned": "bool",
        "tags": "large_list<item: large_string>",
    }
    columns = v.stats["columns"]
    assert v.stats["num_rows"] == 4
    assert columns["age"] == {
        "count": 4,
        "nulls": 0,
        "min": 27,
        "max": 58,
        "mean": 40.25,
        "std": pytest.approx(stdev(COLUMNS["age"])),
    }
    assert columns["income"]["nulls"] == 1
    assert columns["income"]["min"] == 38.0
    assert columns["income"]["max"] == 71.25
    assert columns["income"]["mean"] == pytest.approx(53.916666, rel=1e-5)
    assert columns["city"] == {"count": 3, "nulls": 1, "distinct": 2, "top": [["paris", 2], ["lyon", 1]]}
    assert columns["churned"] == {"count": 4, "nulls": 0, "true": 2}
    assert columns["tags"] == {"count": 3, "nulls": 1}


# files and folders ---------------------------------------------------------------------


def test_parquet_file_is_the_same_version_as_its_dataframe(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    frame().to_parquet(path)
    from_file = log_dataset(str(path), "file")
    from_frame = log_dataset(frame(), "file")
    assert from_file.version == from_frame.version == 1
    assert from_file.source == str(path.resolve())
    pd.testing.assert_frame_equal(load_dataset("file").to_pandas(), frame())


def test_csv_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("id,score,label\n1,0.5,a\n2,0.25,b\n3,,a\n")
    v = log_dataset(path, "csv", source="s3://raw/train.csv")
    assert v.schema == {"id": "int64", "score": "double", "label": "large_string"}
    assert v.num_rows == 3
    assert v.source == "s3://raw/train.csv"
    loaded = load_dataset("csv@1").to_pandas()
    pd.testing.assert_frame_equal(loaded, pd.read_csv(path), check_dtype=False)


def test_folder_of_parquet_files_stores_each_file_and_a_manifest(
    settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    folder = tmp_path / "events"
    (folder / "day=2").mkdir(parents=True)
    (folder / "day=1").mkdir()
    pd.DataFrame({"user": [1, 2], "clicks": [3, 4]}).to_parquet(folder / "day=1" / "part-0.parquet")
    pd.DataFrame({"user": [3], "clicks": [5]}).to_parquet(folder / "day=2" / "part-0.parquet")
    (folder / "_SUCCESS").write_text("")
    v = log_dataset(folder, "events")
    assert v.format == "parquet-folder"
    assert v.num_rows == 3
    assert v.schema == {"user": "int64", "clicks": "int64", "day": "large_string"}
    manifest = json.loads(stores.artifacts.get_bytes(v.artifact_digest))
    assert [f["path"] for f in manifest["files"]] == ["day=1/part-0.parquet", "day=2/part-0.parquet"]
    assert all(stores.artifacts.exists(f["digest"]) for f in manifest["files"])
    kept = referenced_digests()
    assert {v.artifact_digest, *(f["digest"] for f in manifest["files"])} <= kept
    loaded = load_dataset("events").to_pandas()
    assert loaded.to_dict("list") == {"user": [1, 2, 3], "clicks": [3, 4, 5], "day": ["1", "1", "2"]}
    assert log_dataset(folder, "events").version == 1


def test_folder_of_csv_files_widens_guessed_types(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "scores"
    folder.mkdir()
    (folder / "a.csv").write_text("id,score\n1,2\n")
    (folder / "b.csv").write_text("id,score\n2,2.5\n")
    v = log_dataset(folder, "scores")
    assert v.format == "csv-folder"
    assert v.schema == {"id": "int64", "score": "double"}
    assert load_dataset("scores").to_pandas().to_dict("list") == {"id": [1, 2], "score": [2.0, 2.5]}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "holds no Parquet or CSV files"),
        ({"a.csv": "x\n1\n", "b.txt": "notes"}, r"holds 'b\.txt', which is neither Parquet nor CSV"),
        ({"a.csv": "x\n1\n", "b.parquet": None}, "mixes Parquet"),
        ({"a.parquet": None, "b.parquet": "text"}, r"cannot read 'b\.parquet' as parquet"),
    ],
)
def test_bad_folders_are_refused(
    settings: Settings, tmp_path: Path, files: dict[str, str | None], message: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name, text in files.items():
        if text is None:
            pd.DataFrame({"x": [1]}).to_parquet(folder / name)
        else:
            (folder / name).write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        log_dataset(folder, "bad")


def test_parquet_files_with_conflicting_types_are_refused(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"x": ["one"]}).to_parquet(folder / "b.parquet")
    with pytest.raises(InvalidInputError, match=r"'b\.parquet' does not match the columns of 'a\.parquet'"):
        log_dataset(folder, "bad")


def test_missing_path_and_unknown_suffix(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        log_dataset(tmp_path / "nope.parquet", "x")
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(InvalidInputError, match=r"neither Parquet nor CSV; expected a name ending in \.parquet"):
        log_dataset(other, "x")


# runs ---------------------------------------------------------------------------------


def test_logging_and_loading_inside_runs_records_lineage(settings: Settings, stores: Stores) -> None:
    with start_run(experiment="churn", name="prep") as prep:
        out = log_dataset(frame(), "features", role="output")
    assert out.created_by_run == prep.id
    with start_run(experiment="churn", name="train") as train:
        loaded = load_dataset("features")
        again = log_dataset(frame(), "features")  # same data: same version, still made by prep
    assert loaded.version.version == again.version == 1
    assert again.created_by_run == prep.id
    assert stores.datasets.run_datasets([prep.id]) == [RunDataset(prep.id, "features", 1, "output")]
    assert stores.datasets.run_datasets([train.id]) == [RunDataset(train.id, "features", 1, "input")]
    assert {r.run_id for r in stores.datasets.dataset_runs("features", 1)} == {prep.id, train.id}


def test_outside_a_run_nothing_is_linked(settings: Settings, stores: Stores) -> None:
    v = log_dataset(frame(), "alone")
    assert v.created_by_run is None
    assert stores.datasets.dataset_runs("alone", 1) == []


# loading ------------------------------------------------------------------------------


def test_load_round_trips_every_library(settings: Settings) -> None:
    log_dataset(frame(), "rt")
    loaded = load_dataset("rt@1")
    assert loaded.ref == "rt@1"
    pd.testing.assert_frame_equal(loaded.to_pandas(), frame())
    assert loaded.to_polars().equals(pl.DataFrame(COLUMNS))
    assert loaded.to_arrow().to_pylist() == pa.table(COLUMNS).to_pylist()


def test_tampered_blob_fails_to_load(settings: Settings) -> None:
    v = log_dataset(frame(), "secure")
    path = blob_path(settings, v.artifact_digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupted"):
        load_dataset("secure")


def test_unknown_dataset_or_version(settings: Settings) -> None:
    log_dataset(frame(), "known")
    with pytest.raises(NotFoundError, match="dataset 'ghost' does not exist"):
        load_dataset("ghost")
    with pytest.raises(NotFoundError, match="has no version 7; its versions are: 1"):
        load_dataset("known@7")
    with pytest.raises(NotFoundError, match="datasets: known"):
        list_dataset_versions("ghost")


# golden -------------------------------------------------------------------------------


def test_golden_datasets(settings: Settings) -> None:
    log_dataset(frame(), "eval")
    log_dataset(frame().head(2), "eval")
    log_dataset(frame(), "train", tags={"owner": "growth"})
    assert list_datasets(golden=True) == []
    marked = set_golden("eval@1")
    assert marked.tags["golden"] == "true"
    assert [v.name for v in list_datasets(golden=True)] == ["eval"]
    assert [(v.name, v.version) for v in list_datasets()] == [("eval", 2), ("train", 1)]
    assert get_dataset("train").tags == {"owner": "growth"}
    set_golden("eval", golden=False)  # no version: unmark every version
    assert list_datasets(golden=True) == []
    set_golden("train")
    assert [v.name for v in list_datasets(golden=True)] == ["train"]


# bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("churn", ("churn", None)), ("churn@3", ("churn", 3)), ("churn@latest", ("churn", None))],
)
def test_parse_dataset_ref(ref: str, expected: tuple[str, int | None]) -> None:
    assert parse_dataset_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("churn@x", "has version 'x'; expected a positive integer"),
        ("churn@0", "has version '0'"),
        ("churn@", "has version ''"),
        ("@3", "has no name before '@'"),
        ("", "must be 'name' or 'name@version'"),
    ],
)
def test_malformed_refs(settings: Settings, ref: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        parse_dataset_ref(ref)
    assert info.value.field == "ref"
    with pytest.raises(InvalidInputError, match=message):
        load_dataset(ref)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"data": [1, 2], "name": "x"}, "data", "type list; expected a pandas.DataFrame, polars.DataFrame"),
        ({"data": pa.table({}), "name": "x"}, "data", "has no columns"),
        ({"data": pa.table({"a": [1]}), "name": ""}, "name", "non-empty string"),
        ({"data": pa.table({"a": [1]}), "name": "a@2"}, "name", "without '@'"),
        ({"data": pa.table({"a": [1]}), "name": "x", "role": "train"}, "role", "'input' or 'output', got 'train'"),
        ({"data": pa.table({"a": [1]}), "name": "x", "tags": {"": "v"}}, "tags", "tag name must be"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    settings: Settings, stores: Stores, kwargs: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        log_dataset(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert list_datasets() == []
    assert stores.artifacts.list_digests() == []
