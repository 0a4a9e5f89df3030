"""Rows of plain numbers take one numpy call per request and one per batch; answers and errors stay the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.registry.models import ColumnSpec, Signature
from shipyard.serving import ModelSpec, ServingConfig, create_app
from shipyard.serving.validation import check_columns, numeric_records, numeric_rows
from tests.serving.conftest import running

NAMES = ["x0", "x1", "x2"]
FLOATS = Signature(inputs=tuple(ColumnSpec(n, "float") for n in NAMES))


@pytest.fixture(scope="module")
def served(module_store: Settings) -> Iterator[tuple[str, Any]]:
    """A linear regression on three float columns, served as lin@champion; yields the URL and the model."""
    from sklearn.linear_model import LinearRegression

    import shipyard.registry as reg

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=NAMES)
    model = LinearRegression().fit(frame, frame @ np.array([1.0, -2.0, 0.5]) + 3)
    version = reg.log_model(model, "lin", input_example=frame.head(3)).version
    reg.set_alias("lin", "champion", version)
    with running(create_app(ServingConfig(models=(ModelSpec("lin@champion"),), poll_interval=0))) as url:
        yield url, model


def test_numeric_rows_are_the_checked_columns() -> None:
    rows = [[1, 2.5, -3], [0.0, 7, 1e300]]
    fast = numeric_rows(None, rows, FLOATS)
    assert fast is not None
    assert fast.matrix is not None
    general = check_columns({n: [r[i] for r in rows] for i, n in enumerate(NAMES)}, FLOATS)
    assert fast.rows == general.rows == 2
    for name in NAMES:
        assert fast.data[name].dtype == general.data[name].dtype == np.float64
        np.testing.assert_array_equal(fast.data[name], general.data[name])
    records = numeric_records([dict(zip(NAMES, r, strict=True)) for r in rows], FLOATS)
    assert records is not None
    np.testing.assert_array_equal(records.matrix, fast.matrix)


@pytest.mark.parametrize(
    ("names", "rows"),
    [
        (None, [[True, 1.0, 2.0]]),  # a boolean is not a float
        (None, [[None, 1.0, 2.0]]),  # missing: the general path decides
        (None, [["1.5", 1.0, 2.0]]),  # a string is not a number
        (None, [[1.0, 2.0]]),  # too short
        (["x1", "x0", "x2"], [[1.0, 2.0, 3.0]]),  # another order: named by the general path
    ],
)
def test_anything_else_goes_the_general_way(names: Any, rows: Any) -> None:
    assert numeric_rows(names, rows, FLOATS) is None


def test_integers_beyond_int64_go_the_general_way() -> None:
    integers = Signature(inputs=tuple(ColumnSpec(n, "integer") for n in NAMES))
    assert numeric_rows(None, [[2**70, 1, 2]], integers) is None
    fast = numeric_rows(None, [[2**40, 1, 2]], integers)
    assert fast is not None
    assert fast.data["x0"].dtype == np.int64


def test_served_numbers_match_in_process_predict(served: tuple[str, Any]) -> None:
    url, model = served
    rows = [[1, 2.5, -3], [0.25, 7, 4], [-1.5, 0, 2]]
    expected = model.predict(pd.DataFrame(rows, columns=NAMES, dtype=float)).tolist()
    with httpx.Client(base_url=url) as http:
        split = http.post("/models/lin/predict", json={"columns": NAMES, "data": rows})
        unnamed = http.post("/models/lin/predict", json={"data": rows})
        records = http.post("/models/lin/predict", json={"records": [dict(zip(NAMES, r, strict=True)) for r in rows]})
        boolean = http.post("/models/lin/predict", json={"data": [[True, 1.0, 2.0]]})
    for answer in (split, unnamed, records):
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], expected)
    assert boolean.status_code == 422
    assert boolean.json()["problems"] == ["column 'x0' expected float, got boolean"]


def test_batched_numeric_requests_each_get_their_own_rows(served: tuple[str, Any]) -> None:
    url, model = served
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(40, 3)).tolist()
    expected = model.predict(pd.DataFrame(rows, columns=NAMES))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=50)) as client:
            return list(
                await asyncio.gather(*(client.post("/models/lin/predict", json={"data": [row]}) for row in rows))
            )

    answers = asyncio.run(burst())
    got = [a.json()["predictions"][0] for a in answers]
    np.testing.assert_allclose(got, expected)
