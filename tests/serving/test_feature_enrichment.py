"""Serving by entity id against a real uvicorn: features read from the SQLite and the Redis online stores."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import shipyard.registry as reg
from shipyard.config import Settings
from shipyard.errors import InvalidInputError
from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, on_demand
from shipyard.serving import BatchingConfig, ModelSpec, ServingConfig, create_app
from shipyard.serving.validation import Columns
from shipyard.store import open_stores
from shipyard.testing import free_port, port_open
from tests.conftest import _missing
from tests.serving.conftest import _store_in, log_constant_model, metric_samples, running

USERS = list(range(1, 31))
EXPIRED_USER, MISSING_USER = 40, 999
PLAIN_ROW = {"tenure": 3, "charges": 70.5, "age": 40}


def clicks_per_amount(df: pd.DataFrame) -> pd.DataFrame:
    """Clicks per unit of the amount sent with the request (an on-demand feature)."""
    return pd.DataFrame({"clicks_per_amount": df["clicks"] / df["amount"]})


@dataclass(frozen=True)
class Served:
    """The server and what the tests compare its answers with."""

    url: str
    features: FeatureStore
    app: Any
    settings: Settings

    def online(self, service: str, rows: dict[str, list[Any]]) -> pd.DataFrame:
        """The online features of ``rows``, read in-process."""
        return self.features.get_online_features(rows, self.features.get_feature_service(service)).to_pandas()

    def expected(self, model: str, service: str, rows: dict[str, list[Any]]) -> list[float]:
        """What the model predicts in-process on the online features of ``rows``."""
        loaded = reg.load_model(f"{model}/1")
        assert loaded.signature is not None
        frame = self.online(service, rows)[loaded.signature.input_names]
        return [float(v) for v in loaded.predict(frame)]


def _history(folder: Path) -> Path:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rng = np.random.default_rng(3)
    users = [*USERS, EXPIRED_USER]
    events = pd.DataFrame(
        {
            "user_id": users,
            "ts": [now - dt.timedelta(hours=1)] * len(USERS) + [now - dt.timedelta(days=10)],  # ttl: 7 days
            "clicks": rng.uniform(1, 50, len(users)).round(2),
            "sessions": rng.integers(1, 20, len(users)),
        }
    )
    events.to_parquet(folder / "events.parquet")
    return folder / "events.parquet"


def _definitions(path: Path) -> list[Any]:
    user = Entity("user", join_keys=["user_id"])
    activity = FeatureView(
        "activity",
        entities=[user],
        ttl="7d",
        source=FileSource(path, timestamp_field="ts"),
        schema=[Field("clicks", "float"), Field("sessions", "int")],
    )
    per_amount = on_demand(
        sources=[activity], request=[Field("amount", "float")], schema=[Field("clicks_per_amount", "float")]
    )(clicks_per_amount)
    return [
        FeatureService("churn_features", [activity]),  # on_missing="reject", the default
        FeatureService("spend_features", ["activity:clicks", per_amount], on_missing="null"),
    ]


def _log_models() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    n = 80
    frame = pd.DataFrame({"clicks": rng.uniform(1, 50, n), "sessions": rng.integers(1, 20, n)})
    target = frame["clicks"] * 0.3 + frame["sessions"] * 1.5
    churn = LinearRegression().fit(frame, target)
    reg.log_model(churn, "churn", input_example=frame.head(5), features="churn_features")
    spend = pd.DataFrame({"clicks": frame["clicks"], "clicks_per_amount": frame["clicks"] / rng.uniform(1, 9, n)})
    spend.loc[::4, "clicks"] = np.nan  # trained with nulls: a model that tolerates them
    nullable = HistGradientBoostingRegressor(max_iter=20, min_samples_leaf=5).fit(spend, target)
    reg.log_model(nullable, "spend", input_example=spend.head(5), features="spend_features")
    log_constant_model(0.25, name="plain")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty online store: a SQLite file, or a fresh key prefix in Redis on 127.0.0.1:6379 (see ``served``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('online') / 'online.db'}"
    if not port_open("127.0.0.1", 6379):
        _missing("Redis is not listening on 127.0.0.1:6379")
    return f"redis://127.0.0.1:6379/0?prefix=test-serving-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def served(online_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """churn (by user_id, reject), spend (user_id and amount, null) and plain (no features) behind one server."""
    folder = tmp_path_factory.mktemp("store")
    with _store_in(folder) as settings:
        features = FeatureStore(online_store=online_uri)
        features.apply(_definitions(_history(folder)))
        features.materialize(end="now")
        _log_models()
        slow_batches = BatchingConfig(max_batch_size=128, max_delay_ms=50)  # so concurrent requests meet
        config = ServingConfig(
            models=(ModelSpec("churn/1", batching=slow_batches), ModelSpec("spend/1"), ModelSpec("plain/1")),
            poll_interval=0,
            log_flush_seconds=0.2,
            online_store=online_uri,
        )
        app = create_app(config)
        with running(app) as url:
            yield Served(url, features, app, settings)
        features.online.delete_view("activity")  # the only view: nothing is left in Redis
        features.close()


def _predict(url: str, model: str, records: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{url}/models/{model}/predict", json={"records": records}, timeout=30)


def _read_sizes(url: str, model: str) -> tuple[float, float]:
    """The feature-read histogram of ``model``: (reads, entity rows)."""
    text = httpx.get(f"{url}/metrics").text
    count = sum(
        v for labels, v in metric_samples(text, "shipyard_feature_read_batch_size_count") if labels["model"] == model
    )
    total = sum(
        v for labels, v in metric_samples(text, "shipyard_feature_read_batch_size_sum") if labels["model"] == model
    )
    return count, total


def test_a_request_with_only_user_ids_predicts_as_in_process(served: Served) -> None:
    users = [3, 1, 17, 3]
    answer = _predict(served.url, "churn", [{"user_id": u} for u in users])
    assert answer.status_code == 200, answer.text
    expected = served.expected("churn", "churn_features", {"user_id": users})
    assert answer.json()["predictions"] == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) == 3  # distinct users, distinct features: the read is not a constant
    # ids sent as text name the same entities (online keys are text)
    as_text = _predict(served.url, "churn", [{"user_id": str(u)} for u in users])
    assert as_text.json()["predictions"] == pytest.approx(expected, rel=1e-12)


def test_request_values_feed_on_demand_features(served: Served) -> None:
    rows = {"user_id": [2, 5], "amount": [4.0, 0.5]}
    answer = httpx.post(
        f"{served.url}/models/spend/predict", json={"columns": ["user_id", "amount"], "data": [[2, 4.0], [5, 0.5]]}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(served.expected("spend", "spend_features", rows), rel=1e-12)


def test_the_v2_route_takes_entity_ids(served: Served) -> None:
    users = [4, 9, 30]
    body = {"inputs": [{"name": "user_id", "shape": [3], "datatype": "INT64", "data": users}]}
    answer = httpx.post(f"{served.url}/v2/models/churn/infer", json=body)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["data"] == pytest.approx(served.expected("churn", "churn_features", {"user_id": users}), rel=1e-12)

    metadata = httpx.get(f"{served.url}/v2/models/churn").json()
    assert metadata["inputs"] == [{"name": "user_id", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["parameters"]["feature_service"] == "churn_features"
    spend = httpx.get(f"{served.url}/v2/models/spend").json()
    assert [i["name"] for i in spend["inputs"]] == ["user_id", "amount"]


def test_tritonclient_sends_entity_ids_as_binary_bytes(served: Served) -> None:
    import tritonclient.http as triton

    ids = triton.InferInput("user_id", [3], "BYTES")
    ids.set_data_from_numpy(np.array([b"4", b"9", b"30"], dtype=object), binary_data=True)
    client = triton.InferenceServerClient(served.url.removeprefix("http://"))
    try:
        result = client.infer("churn", [ids])
    finally:
        client.close()
    (output,) = result.get_response()["outputs"]
    expected = served.expected("churn", "churn_features", {"user_id": [4, 9, 30]})
    assert result.as_numpy(output["name"]).tolist() == pytest.approx(expected, rel=1e-12)


def test_a_missing_entity_is_refused_naming_it_and_the_view(served: Served) -> None:
    answer = _predict(served.url, "churn", [{"user_id": 1}, {"user_id": MISSING_USER}])
    assert answer.status_code == 422
    assert "user_id=999 is missing from feature view 'activity'" in answer.json()["error"]
    assert answer.json()["problems"] == ["entity user_id=999 is missing from feature view 'activity'"]
    body = {"inputs": [{"name": "user_id", "shape": [1], "datatype": "INT64", "data": [MISSING_USER]}]}
    v2 = httpx.post(f"{served.url}/v2/models/churn/infer", json=body)
    assert v2.status_code == 422
    assert "user_id=999" in v2.json()["error"]


def test_a_refused_request_does_not_fail_those_batched_with_it(served: Served) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
            users = [1, MISSING_USER, 2, EXPIRED_USER, 3]
            return await asyncio.gather(
                *(client.post("/models/churn/predict", json={"records": [{"user_id": u}]}) for u in users)
            )

    before = _read_sizes(served.url, "churn")
    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200, 422, 200, 422, 200]
    assert answers[2].json()["predictions"] == pytest.approx(
        served.expected("churn", "churn_features", {"user_id": [2]}), rel=1e-12
    )
    after = _read_sizes(served.url, "churn")
    assert after[1] - before[1] == 5  # every entity read once, with no read again for the refused ones


def test_one_read_refuses_only_the_requests_whose_entity_is_missing(served: Served) -> None:
    binding = served.app.state.serving.deployments["churn"].primary.features
    requests = [[1, 2], [MISSING_USER], [3], [4, EXPIRED_USER]]
    reads: list[float] = []
    prepared = binding.prepare(
        [Columns({"user_id": np.array(users)}, len(users)) for users in requests], reads.append, lambda _: None
    )
    assert reads == [6]  # one read for the entities of every request of the model call
    assert sorted(prepared.failed) == [1, 3]
    assert "user_id=999 is missing from feature view 'activity'" in str(prepared.failed[1])
    assert "user_id=40 has no value in feature view 'activity' newer than its ttl" in str(prepared.failed[3])
    assert prepared.context["user_id"].tolist() == [1, 2, 3]
    online = served.online("churn_features", {"user_id": [1, 2, 3]})
    assert prepared.inputs.data["clicks"].tolist() == online["clicks"].tolist()
    assert prepared.inputs.data["sessions"].tolist() == online["sessions"].tolist()


def test_an_expired_entity_follows_the_policy(served: Served) -> None:
    refused = _predict(served.url, "churn", [{"user_id": EXPIRED_USER}])
    assert refused.status_code == 422
    assert "user_id=40 has no value in feature view 'activity' newer than its ttl (7 days" in refused.json()["error"]

    rows = {"user_id": [EXPIRED_USER], "amount": [2.0]}
    assert served.online("spend_features", rows)["clicks"].isna().all()  # expired: null, as get_online_features says
    answer = _predict(served.url, "spend", [{"user_id": EXPIRED_USER, "amount": 2.0}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(served.expected("spend", "spend_features", rows), rel=1e-12)


def test_a_missing_entity_gets_nulls_under_the_null_policy(served: Served) -> None:
    rows = {"user_id": [MISSING_USER, 6], "amount": [3.0, 3.0]}
    answer = _predict(served.url, "spend", [{"user_id": MISSING_USER, "amount": 3.0}, {"user_id": 6, "amount": 3.0}])
    assert answer.status_code == 200, answer.text
    expected = served.expected("spend", "spend_features", rows)
    assert answer.json()["predictions"] == pytest.approx(expected, rel=1e-12)
    assert expected[0] != expected[1]


def test_concurrent_requests_share_feature_reads(served: Served) -> None:
    users = [USERS[i % len(USERS)] for i in range(64)]

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=70)
        async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/models/churn/predict", json={"records": [{"user_id": u}]}) for u in users)
            )

    before = _read_sizes(served.url, "churn")
    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 64
    expected = served.expected("churn", "churn_features", {"user_id": users})
    assert [a.json()["predictions"][0] for a in answers] == pytest.approx(expected, rel=1e-12)
    reads, rows = (a - b for a, b in zip(_read_sizes(served.url, "churn"), before, strict=True))
    assert rows == 64
    assert reads < 64  # batched: one read per model call, not per request
    assert _read_sizes(served.url, "plain") == (0, 0)


def test_the_prediction_log_has_entity_ids_and_feature_values(served: Served) -> None:
    marker = [7, 8]
    answer = _predict(served.url, "churn", [{"user_id": u} for u in marker])
    assert answer.status_code == 200
    arm = served.app.state.serving.deployments["churn"].primary
    stores = open_stores(served.settings)
    deadline = time.monotonic() + 20
    frame = pd.DataFrame()
    while time.monotonic() < deadline:
        refs = stores.runs.list_artifacts(arm.run_id, "predictions")
        frames = [pq.read_table(io.BytesIO(stores.artifacts.get_bytes(r.digest))).to_pandas() for r in refs]
        frame = pd.concat(frames) if frames else frame
        if set(marker) <= set(frame.get("user_id", [])):
            break
        time.sleep(0.2)
    assert {"user_id", "clicks", "sessions", "prediction"} <= set(frame.columns)
    online = served.online("churn_features", {"user_id": marker})
    logged = frame[frame["user_id"].isin(marker)].drop_duplicates("user_id").set_index("user_id").loc[marker]
    assert logged["clicks"].tolist() == online["clicks"].tolist()
    assert logged["sessions"].tolist() == online["sessions"].tolist()
    assert logged["prediction"].tolist() == pytest.approx(answer.json()["predictions"], rel=1e-12)


def test_a_model_without_features_is_served_as_before(served: Served) -> None:
    answer = _predict(served.url, "plain", [PLAIN_ROW, PLAIN_ROW])
    assert answer.json() == {"model": "plain", "version": 1, "predictions": [0.25, 0.25]}
    metadata = httpx.get(f"{served.url}/v2/models/plain").json()
    assert [i["name"] for i in metadata["inputs"]] == ["tenure", "charges", "age"]
    assert "feature_service" not in metadata["parameters"]
    wrong = _predict(served.url, "plain", [{"user_id": 1}])
    assert wrong.status_code == 422
    assert "unexpected column 'user_id'" in wrong.json()["error"]


def test_bad_entity_ids_are_refused_naming_the_column(served: Served) -> None:
    fractional = _predict(served.url, "churn", [{"user_id": 1.5}])
    assert fractional.status_code == 422
    assert "column 'user_id' expected an entity id (integers or strings), got float" in fractional.json()["error"]
    absent = _predict(served.url, "spend", [{"user_id": 1}])
    assert absent.status_code == 422
    assert "missing column 'amount' (float)" in absent.json()["error"]


def test_openapi_shows_the_entity_id_request_body(served: Served) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    rows = document["components"]["schemas"]["EntityRows_churn"]
    assert set(rows["properties"]["records"]["items"]["properties"]) == {"user_id"}
    body = document["paths"]["/models/{name}/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert {"$ref": "#/components/schemas/EntityRows_spend"} in body["schema"]["oneOf"]
    assert body["examples"]["churn"]["value"] == {"records": [{"user_id": 42}]}
    assert "plain" not in body["examples"]


def test_on_missing_is_stored_with_the_service(served: Served) -> None:
    fresh = FeatureStore(online_store=served.features.online_uri)  # reads the definitions back from the store
    assert fresh.get_feature_service("spend_features").on_missing == "null"
    assert fresh.get_feature_service("churn_features").on_missing == "reject"
    with pytest.raises(InvalidInputError, match="on_missing must be 'reject' or 'null', got 'drop'"):
        FeatureService("bad", ["activity:clicks"], on_missing="drop")


@pytest.mark.parametrize("online_uri", ["sqlite"], indirect=True)  # the flag, not the backend: one server
def test_shipyard_serve_takes_the_online_store(served: Served, tmp_path: Path) -> None:
    from shipyard.cli.serve import serve
    from shipyard.errors import ConfigError

    with pytest.raises(ConfigError, match="online store URI 'nosuch://x' has scheme 'nosuch'; known schemes"):
        serve(["churn/1"], online_store="nosuch://x", access_log=False, port=free_port())
    script = Path(sys.executable).parent / "shipyard"  # the installed console script, as a user runs it
    port = free_port()
    log = tmp_path / "server.log"
    args = ["serve", "churn/1", "--poll-interval", "0", "--online-store", served.features.online_uri]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(script), *args, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        answer = httpx.post(f"http://127.0.0.1:{port}/models/churn/predict", json={"records": [{"user_id": 12}]})
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    assert answer.json()["predictions"] == pytest.approx(
        served.expected("churn", "churn_features", {"user_id": [12]}), rel=1e-12
    )


def test_a_version_is_fed_the_service_definition_it_was_logged_with(served: Served) -> None:
    from sklearn.linear_model import LinearRegression

    from shipyard.serving._features import bind_features

    activity = served.features.get_feature_view("activity")
    served.features.apply([FeatureService("pinned_features", [activity])])
    frame = pd.DataFrame({"clicks": [1.0, 2.0, 3.0], "sessions": [1, 3, 2]})
    model = LinearRegression().fit(frame, [1.0, 2.0, 3.0])
    reg.log_model(model, "pinned", input_example=frame, features="pinned_features")
    served.features.apply([FeatureService("pinned_features", ["activity:clicks"])], force=True)  # a later version

    stores = open_stores(served.settings)
    binding = bind_features(reg.load_model("pinned/1"), stores=stores, online_store=served.features.online_uri)
    assert binding is not None
    assert binding.service.refs == ("activity:clicks", "activity:sessions")
    assert binding.prepare([Columns({"user_id": np.array([5])}, 1)]).inputs.data["sessions"].tolist() == (
        served.online("churn_features", {"user_id": [5]})["sessions"].tolist()
    )
    binding.close()


def _constant_by_id(value: float) -> int:
    """A model version fed by ``churn_features`` that always predicts ``value``."""
    from sklearn.dummy import DummyRegressor

    frame = pd.DataFrame({"clicks": [1.0, 2.0], "sessions": [1, 2]})
    model = DummyRegressor(constant=value, strategy="constant").fit(frame, [0, 0])
    return reg.log_model(model, "swapped", input_example=frame, features="churn_features").version


def test_a_swap_rebinds_the_features_of_the_new_version(served: Served) -> None:
    reg.set_alias("swapped", "live", _constant_by_id(1.0))
    app = create_app(
        ServingConfig(models=(ModelSpec("swapped@live"),), poll_interval=0, online_store=served.features.online_uri)
    )
    with running(app) as url:
        assert _predict(url, "swapped", [{"user_id": 1}]).json()["predictions"] == [1.0]
        reg.set_alias("swapped", "live", _constant_by_id(7.0))
        assert httpx.post(f"{url}/admin/reload").json()["swapped"] == ["swapped@live"]
        assert _predict(url, "swapped", [{"user_id": 1}]).json()["predictions"] == [7.0]
        assert _predict(url, "swapped", [{"user_id": MISSING_USER}]).status_code == 422
        plain = log_constant_model(3.0, name="swapped")  # a version without features: served on its columns again
        reg.set_alias("swapped", "live", plain)
        assert httpx.post(f"{url}/admin/reload").json()["swapped"] == ["swapped@live"]
        assert _predict(url, "swapped", [PLAIN_ROW]).json()["predictions"] == [3.0]
        assert "unexpected column 'user_id'" in _predict(url, "swapped", [{"user_id": 1}]).json()["error"]


def test_the_online_store_comes_from_the_settings_by_default(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_ONLINE_STORE", served.features.online_uri)
    with running(create_app(ServingConfig(models=(ModelSpec("churn/1"),), poll_interval=0))) as url:
        answer = _predict(url, "churn", [{"user_id": 21}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(
        served.expected("churn", "churn_features", {"user_id": [21]}), rel=1e-12
    )
