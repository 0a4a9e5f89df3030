"""Signatures: inferred from an example, stored on the version, enforced on every prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import InvalidInputError, SchemaMismatchError
from shipyard.registry import ColumnSpec, Signature, infer_signature
from shipyard.registry.signature import check_input

Data = tuple[pd.DataFrame, np.ndarray[Any, Any]]


def test_types_are_normalized_to_five() -> None:
    frame = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype="int32"),
            "u": np.array([1, 2], dtype="uint8"),
            "nullable": pd.array([1, None], dtype="Int64"),
            "f": np.array([1.5, 2.0], dtype="float32"),
            "b": [True, False],
            "s": ["a", "b"],
            "cat": pd.Categorical(["x", "y"]),
            "obj_float": pd.Series([1.0, None], dtype=object),
            "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "tz": pd.to_datetime(["2026-01-01", "2026-01-02"]).tz_localize("UTC"),
        }
    )
    sig = infer_signature(frame)
    assert {c.name: c.type for c in sig.inputs} == {
        "i": "integer",
        "u": "integer",
        "nullable": "integer",
        "f": "float",
        "b": "boolean",
        "s": "string",
        "cat": "string",
        "obj_float": "float",
        "t": "datetime",
        "tz": "datetime",
    }
    assert sig.input_format == "dataframe"


def test_example_shapes() -> None:
    expected = [ColumnSpec("tenure", "integer"), ColumnSpec("plan", "string")]
    as_dict = infer_signature({"tenure": [3, 14], "plan": ["a", "b"]})
    as_records = infer_signature([{"tenure": 3, "plan": "a"}, {"tenure": 14, "plan": "b"}])
    as_polars = infer_signature(pl.DataFrame({"tenure": [3, 14], "plan": ["a", "b"]}))
    for sig in (as_dict, as_records, as_polars):
        assert list(sig.inputs) == expected
        assert sig.input_format == "dataframe"
    as_array = infer_signature(np.array([[1.0, 2.0, 3.0]]))
    assert list(as_array.inputs) == [ColumnSpec(f"f{i}", "float") for i in range(3)]
    assert as_array.input_format == "ndarray"


def test_bad_examples_say_why() -> None:
    with pytest.raises(InvalidInputError, match="array input must be 2-D"):
        infer_signature(np.array([1.0, 2.0]))
    with pytest.raises(InvalidInputError, match="column 'x' of input_example holds only missing values"):
        infer_signature(pd.DataFrame({"x": [None, None]}, dtype=object))
    with pytest.raises(InvalidInputError, match=r"model input must be .* got set"):
        infer_signature({1, 2})
    with pytest.raises(InvalidInputError, match="column 'd' of input_example has type timedelta"):
        infer_signature(pd.DataFrame({"d": pd.to_timedelta([1, 2], unit="s")}))


def test_signature_round_trips_through_its_dict_form() -> None:
    sig = Signature((ColumnSpec("a", "float"),), (ColumnSpec("prediction", "integer"),), "ndarray")
    assert Signature.from_dict(sig.to_dict()) == sig
    with pytest.raises(InvalidInputError, match="column 'a' has type 'complex'; known types: integer, float"):
        Signature.from_dict({"inputs": [{"name": "a", "type": "complex"}]})
    with pytest.raises(InvalidInputError, match="signature must be a mapping with 'inputs'"):
        Signature.from_dict({"outputs": []})


SIG = Signature(
    (ColumnSpec("tenure", "integer"), ColumnSpec("plan", "float"), ColumnSpec("active", "boolean")),
)


def test_check_names_every_missing_and_mistyped_column() -> None:
    with pytest.raises(SchemaMismatchError) as info:
        check_input({"plan": ["gold"], "active": [1.5]}, SIG, model="model churn/1")
    assert info.value.problems == [
        "missing column 'tenure'",
        "column 'plan' expected float, got string",
        "column 'active' expected boolean, got float",
    ]
    assert str(info.value) == (
        "input does not match the signature of model churn/1: missing column 'tenure'; "
        "column 'plan' expected float, got string; column 'active' expected boolean, got float"
    )
    assert info.value.status == 422
    assert info.value.field == "inputs"


def test_check_orders_drops_extras_and_widens_ints() -> None:
    given = pd.DataFrame({"extra": ["x"], "active": [True], "plan": [2], "tenure": [5]})
    checked = check_input(given, SIG)
    assert list(checked.columns) == ["tenure", "plan", "active"]
    assert checked["plan"].dtype == np.float64
    assert list(given.columns) == ["extra", "active", "plan", "tenure"]  # the caller's frame is untouched
    whole = check_input({"tenure": [3.0], "plan": [1.0], "active": [True]}, SIG)
    assert whole["tenure"].dtype == np.int64
    for fractional in (1.5, np.nan):
        with pytest.raises(SchemaMismatchError, match="column 'tenure' expected integer, got float"):
            check_input({"tenure": [3.0, fractional], "plan": [1.0, 2.0], "active": [True, False]}, SIG)


def test_arrays_are_positional() -> None:
    checked = check_input(np.array([[1, 2.5, True]], dtype=object), SIG)
    assert checked.to_dict("records") == [{"tenure": 1, "plan": 2.5, "active": True}]
    with pytest.raises(SchemaMismatchError, match=r"^.*missing column 'active'$"):
        check_input(np.array([[1, 2.5]]), SIG)


def test_load_model_enforces_the_stored_signature(settings: Settings, churn: Data) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = churn
    model = LogisticRegression(max_iter=2000).fit(x, y)
    mv = reg.log_model(model, "churn", input_example=x.head(3))
    assert mv.signature == {
        "inputs": [
            {"name": "tenure", "type": "integer"},
            {"name": "charges", "type": "float"},
            {"name": "age", "type": "integer"},
        ],
        "outputs": [{"name": "prediction", "type": "integer"}],
        "format": "dataframe",
    }
    loaded = reg.load_model("churn")
    shuffled = x[["age", "charges", "tenure"]].assign(note="ignored")
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(x))
    records = x.head(4).to_dict("records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(x.head(4)))
    np.testing.assert_array_equal(loaded.predict(x.to_numpy()), model.predict(x))
    with pytest.raises(SchemaMismatchError) as info:
        loaded.predict({"charges": ["high"], "age": [30]})
    assert str(info.value).endswith("missing column 'tenure'; column 'charges' expected float, got string")
    with pytest.raises(SchemaMismatchError, match="missing column 'age'"):
        loaded.predict_proba({"tenure": [3], "charges": [10.0]})


def test_explicit_signature_wins(settings: Settings, churn: Data) -> None:
    x, _ = churn
    mv = reg.log_model(
        lambda frame: frame["tenure"],
        "ident",
        input_example=x.head(2),
        signature={"inputs": [{"name": "tenure", "type": "float"}]},
    )
    assert mv.signature == {"inputs": [{"name": "tenure", "type": "float"}], "outputs": [], "format": "dataframe"}
    assert reg.load_model("ident").predict({"tenure": [1, 2]}).tolist() == [1.0, 2.0]
    with pytest.raises(InvalidInputError, match="signature must be a mapping with 'inputs'"):
        reg.log_model(lambda frame: frame, "ident", signature={"columns": []})


def test_without_a_signature_input_passes_through(settings: Settings) -> None:
    mv = reg.log_model(lambda frame: len(frame), "count")
    assert mv.signature is None
    loaded = reg.load_model("count")
    assert loaded.signature is None
    assert loaded.predict([{"a": 1}, {"a": 2}]) == 2
    assert loaded.predict(np.zeros((3, 1))) == 3
