"""The team server's REST API: every store operation listed, errors as 4xx JSON, artifacts streamed and ranged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import InvalidFilterError, InvalidInputError, NotFoundError
from shipyard.server._thread import serving
from shipyard.server.app import create_app
from shipyard.store import close_stores, open_stores
from shipyard.store.entities import MetricPoint
from shipyard.store.rest._spec import protocol_methods
from shipyard.testing import free_port, sqlite_settings

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))


@pytest.fixture
def backing(tmp_path: Path) -> Iterator[Settings]:
    """A SQLite store and an artifact folder the server serves (flushes only when asked)."""
    settings = sqlite_settings(tmp_path, flush_interval=60.0)
    yield settings
    close_stores(settings)


def _count_requests(app: FastAPI) -> dict[str, int]:
    seen: dict[str, int] = {}

    @app.middleware("http")
    async def count(request: Any, call_next: Any) -> Any:
        seen[request.url.path] = seen.get(request.url.path, 0) + 1
        return await call_next(request)

    return seen


@pytest.fixture
def served(backing: Settings) -> Iterator[tuple[str, Settings, dict[str, int]]]:
    """A live server (auth none) over ``backing``, the settings that reach it, and its request counts."""
    app = create_app(backing, auth="none", body_limit=1024 * 1024, artifact_limit=256 * 1024 * 1024)
    counts = _count_requests(app)
    with serving(app) as url:
        remote = replace(backing, store_uri=url, artifact_uri=url)
        yield url, remote, counts
        close_stores(remote)


def test_openapi_lists_every_protocol_method(served: tuple[str, Settings, dict[str, int]]) -> None:
    url, _, _ = served
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    missing = [f"{g}.{n}" for g, n in sorted(protocol_methods()) if f"/api/v1/{g}/{n}" not in paths]
    assert not missing
    assert len(protocol_methods()) >= 70
    body = paths["/api/v1/runs/create_run"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("RunsCreateRunArgs")
    assert "/api/v1/artifacts/{digest}" in paths
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text


def test_bad_input_is_a_4xx_json_error(served: tuple[str, Settings, dict[str, int]]) -> None:
    url, _, _ = served
    missing = httpx.post(f"{url}/api/v1/runs/create_run", json={"name": "x"})
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_input"
    assert missing.json()["error"]["field"] == "experiment_id"
    wrong_type = httpx.post(f"{url}/api/v1/runs/log_params", json={"run_id": "r", "params": [1, 2]})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["field"] == "params"
    not_json = httpx.post(
        f"{url}/api/v1/runs/create_experiment", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    unknown = httpx.get(f"{url}/api/v1/runs/get_run", params={"run_id": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "not_found", "message": "run 'nope' does not exist", "field": "run_id"}
    no_route = httpx.get(f"{url}/api/v1/runs/drop_database")
    assert no_route.status_code == 404
    assert "error" in no_route.json()


def test_a_body_over_the_limit_is_413(served: tuple[str, Settings, dict[str, int]]) -> None:
    url, _, _ = served
    big = {"run_id": "r", "params": {f"k{i}": "v" * 1000 for i in range(2000)}}
    answer = httpx.post(f"{url}/api/v1/runs/log_params", json=big)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_errors_come_back_as_the_same_exception_types(served: tuple[str, Settings, dict[str, int]]) -> None:
    _, remote, _ = served
    stores = open_stores(remote)
    experiment = stores.runs.create_experiment("e")
    with pytest.raises(NotFoundError, match="does not exist") as not_found:
        stores.runs.get_run("nope")
    assert not_found.value.field == "run_id"
    with pytest.raises(InvalidFilterError, match="position"):
        stores.runs.search_runs([experiment.id], filter="metrics.m >", order_by=[], max_results=5, page_token=None)
    with pytest.raises(InvalidInputError, match="points"):
        stores.runs.log_metrics("r", points="not points")  # type: ignore[arg-type]


def test_metrics_round_trip_nan_and_infinities(served: tuple[str, Settings, dict[str, int]]) -> None:
    _, remote, _ = served
    stores = open_stores(remote)
    experiment = stores.runs.create_experiment("e")
    run = stores.runs.create_run(
        experiment.id, name="r", user="u", parent_run_id=None, lineage={}, tags={}, start_time=1.0
    )
    values = [float("nan"), float("inf"), float("-inf"), 0.5]
    stores.runs.log_metrics(run.id, [MetricPoint("m", v, i, 1.0) for i, v in enumerate(values)])
    got = [p.value for p in stores.runs.get_metric_history(run.id, "m")]
    assert got[0] != got[0]  # NaN
    assert got[1:] == [float("inf"), float("-inf"), 0.5]


def test_one_flush_is_one_http_request(served: tuple[str, Settings, dict[str, int]]) -> None:
    _, remote, counts = served
    client = sy.Client(settings=remote)
    with sy.start_run("flush", client=client) as run:
        for step in range(500):
            sy.log_metric("loss", 1.0 / (step + 1), step)
        before = counts.get("/api/v1/runs/log_metrics", 0)
        sy.flush()
        assert counts.get("/api/v1/runs/log_metrics", 0) == before + 1
        assert len(client.stores.runs.get_metric_history(run.id, "loss")) == 500


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/artifacts/%2E%2E%2Fshipyard.db",
        "/api/v1/artifacts/../../shipyard.db",
        "/api/v1/artifacts/" + "a" * 63 + "%2F",
    ],
)
def test_path_traversal_is_refused(served: tuple[str, Settings, dict[str, int]], path: str) -> None:
    url, _, _ = served
    with httpx.Client(base_url=url) as http:
        got = http.send(http.build_request("GET", httpx.URL(url, raw_path=path.encode())))
        put = http.send(http.build_request("PUT", httpx.URL(url, raw_path=path.encode()), content=b"x"))
    assert 400 <= got.status_code < 500
    assert 400 <= put.status_code < 500
    assert b"root:" not in got.content
    assert b"SQLite" not in got.content


def test_an_upload_whose_bytes_do_not_match_its_digest_is_refused(
    served: tuple[str, Settings, dict[str, int]], backing: Settings
) -> None:
    url, _, _ = served
    wrong = hashlib.sha256(b"other").hexdigest()
    answer = httpx.put(f"{url}/api/v1/artifacts/{wrong}", content=b"these bytes")
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "digest"
    assert not open_stores(backing).artifacts.exists(wrong)


def test_ranged_download(served: tuple[str, Settings, dict[str, int]]) -> None:
    url, remote, _ = served
    data = bytes(range(256)) * 40
    digest, _ = open_stores(remote).artifacts.put_bytes(data)
    part = httpx.get(f"{url}/api/v1/artifacts/{digest}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = httpx.get(f"{url}/api/v1/artifacts/{digest}", headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    whole = httpx.get(f"{url}/api/v1/artifacts/{digest}")
    assert whole.status_code == 200
    assert whole.content == data


def test_a_large_artifact_streams_both_ways(
    served: tuple[str, Settings, dict[str, int]], backing: Settings, tmp_path: Path
) -> None:
    _, remote, _ = served
    source = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with source.open("wb") as out:
        for i in range(48):
            out.write(chunk[i:] + chunk[:i])
    artifacts = open_stores(remote).artifacts
    digest, size = artifacts.put_file(str(source))
    assert size == 48 << 20
    assert open_stores(backing).artifacts.exists(digest)
    dest = tmp_path / "back" / "big.bin"
    artifacts.download(digest, str(dest))
    assert dest.read_bytes() == source.read_bytes()
    assert digest in artifacts.list_digests()


def test_eight_clients_log_concurrently_and_every_point_is_stored_once(
    served: tuple[str, Settings, dict[str, int]],
) -> None:
    _, remote, _ = served
    stores = open_stores(remote)
    experiment = stores.runs.create_experiment("load")
    sent: dict[str, int] = {}
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            own = open_stores(replace(remote, token=f"client-{index}"))  # its own pool, as another process would
            run = own.runs.create_run(
                experiment.id, name=f"c{index}", user="u", parent_run_id=None, lineage={}, tags={}, start_time=1.0
            )
            step, deadline = 0, time.monotonic() + 1.5
            while time.monotonic() < deadline and step < 2000:
                own.runs.log_metrics(run.id, [MetricPoint("x", float(step + i), step + i, 1.0) for i in range(20)])
                step += 20
            sent[run.id] = step
            close_stores(replace(remote, token=f"client-{index}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(sent) == 8
    for run_id, count in sent.items():
        steps = [p.step for p in stores.runs.get_metric_history(run_id, "x")]
        assert count > 0
        assert sorted(steps) == list(range(count))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auth", "basic"], "error: --auth must be token or none, got 'basic'"),
        (["--port", "70000"], "error: --port must be 1-65535, got 70000"),
        (["--store", "http://127.0.0.1:1"], "error: --store must be a database URI, not another shipyard server"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([SHIPYARD, "server", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [message]


def test_cli_refuses_auth_none_off_loopback() -> None:
    done = subprocess.run(
        [SHIPYARD, "server", "--auth", "none", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --auth none lets anyone act as admin; it is allowed only on a loopback host, not '0.0.0.0'"
    ]


def test_cli_serves_the_store(tmp_path: Path) -> None:
    port = free_port()
    store = f"sqlite:///{tmp_path / 'server.db'}"
    args = ["server", "--store", store, "--artifacts", f"file://{tmp_path / 'art'}", "--auth", "none"]
    proc = subprocess.Popen(
        [SHIPYARD, *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "SHIPYARD_STORE": "", "SHIPYARD_ARTIFACTS": ""},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(f"{url}/api/v1/runs/create_experiment", json={"name": "via-cli"})
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.status_code == 200
        local = open_stores(Settings(store_uri=store, artifact_uri=f"file://{tmp_path}"))
        assert [e.name for e in local.runs.list_experiments()] == ["via-cli"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_token_is_sent_as_a_bearer_and_roles_hold(backing: Settings) -> None:
    from shipyard.errors import ShipyardError
    from shipyard.server.auth import issue_token

    local = open_stores(backing)
    assert local.auth is not None
    _, writer = issue_token(local.auth, "ci", "writer")
    _, reader = issue_token(local.auth, "dash", "reader")
    with serving(create_app(backing, auth="token")) as url:
        as_writer = open_stores(replace(backing, store_uri=url, artifact_uri=url, token=writer))
        as_writer.runs.create_experiment("team")
        digest, _ = as_writer.artifacts.put_bytes(b"blob")
        as_reader = open_stores(replace(backing, store_uri=url, artifact_uri=url, token=reader))
        assert [e.name for e in as_reader.runs.list_experiments()] == ["team"]
        assert as_reader.artifacts.get_bytes(digest) == b"blob"
        with pytest.raises(ShipyardError, match="has role reader; this needs writer"):
            as_reader.runs.create_experiment("nope")
        anonymous = open_stores(replace(backing, store_uri=url, artifact_uri=url))
        with pytest.raises(ShipyardError, match="Bearer"):
            anonymous.runs.list_experiments()
        for token in (writer, reader, None):
            close_stores(replace(backing, store_uri=url, artifact_uri=url, token=token))


def test_a_flow_runs_through_the_server(
    served: tuple[str, Settings, dict[str, int]], backing: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, counts = served
    monkeypatch.setenv("SHIPYARD_STORE", url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", url)

    @sy.task
    def double(x: int) -> int:
        return 2 * x

    @sy.task
    def add(a: int, b: int) -> list[float]:
        return [a + b, float("nan")]

    @sy.flow
    def pipeline(n: int = 3) -> Any:
        return add(double(n), double(n + 1))

    total, nan = pipeline(4)
    assert total == 18
    assert nan != nan
    assert counts.get("/api/v1/flows/save_task_runs", 0) >= 1
    local = open_stores(backing).flows
    (stored,) = local.list_flow_runs("pipeline")
    assert stored.state == "succeeded"
    tasks = local.get_flow_run(stored.id).tasks
    assert sorted(t.state for t in tasks) == ["succeeded"] * 3


def test_a_read_with_a_none_argument_goes_as_a_query(served: tuple[str, Settings, dict[str, int]]) -> None:
    _, remote, counts = served
    flows = open_stores(remote).flows
    assert flows.find_cached_task_run("no-such-key", newer_than=None) is None
    assert flows.find_cached_task_run("no-such-key", newer_than=1.0) is None
    assert counts["/api/v1/flows/find_cached_task_run"] == 2


@pytest.mark.s3
def test_a_pre_signed_url_for_a_blob_on_s3(
    backing: Settings, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    on_s3 = replace(backing, artifact_uri=f"s3://{s3.bucket}/signed", s3_endpoint_url=s3.endpoint_url)
    with serving(create_app(on_s3, auth="none")) as url:
        remote = replace(backing, store_uri=url, artifact_uri=url)
        artifacts = open_stores(remote).artifacts
        digest, _ = artifacts.put_bytes(b"weights" * 100)
        signed = artifacts.signed_url(digest, expires_s=60)  # type: ignore[attr-defined]
        assert "Signature" in signed or "X-Amz-Signature" in signed
        assert httpx.get(signed).content == b"weights" * 100
        with pytest.raises(NotFoundError):
            artifacts.signed_url("0" * 64)  # type: ignore[attr-defined]
        close_stores(remote)
    close_stores(on_s3)


def test_no_signed_url_off_s3(served: tuple[str, Settings, dict[str, int]]) -> None:
    url, remote, _ = served
    digest, _ = open_stores(remote).artifacts.put_bytes(b"local")
    answer = httpx.get(f"{url}/api/v1/artifacts/{digest}/url")
    assert answer.status_code == 400
    assert "signs no URLs" in answer.json()["error"]["message"]
