"""Streaming prediction over the real Redis: answers, dead letters, a consumer killed mid-stream and restarted."""

from __future__ import annotations

import collections
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

import numpy as np
import orjson
import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.serving.stream import serve_stream
from shipyard.testing import free_port, port_open
from tests.conftest import _missing
from tests.serving.conftest import churn_frame

pytestmark = pytest.mark.redis
SHIPYARD = Path(sys.executable).parent / "shipyard"  # the installed console script, as a user runs it


@dataclass(frozen=True)
class Streams:
    """A source and a sink stream with fresh names (deleted afterwards), as names and URIs."""

    source: str
    sink: str
    client: Any

    @property
    def source_uri(self) -> str:
        return f"redis://127.0.0.1:6379/{self.source}"

    @property
    def sink_uri(self) -> str:
        return f"redis://127.0.0.1:6379/0/{self.sink}"

    def produce(self, records: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i, record in enumerate(records):
            pipe.xadd(self.source, {"request_id": f"r{i}", "data": orjson.dumps(record)})
        pipe.execute()

    def predictions(self) -> list[dict[str, str]]:
        return [fields for _, fields in self.client.xrange(self.sink)]


@pytest.fixture
def streams() -> Iterator[Streams]:
    if not port_open("127.0.0.1", 6379):
        _missing("Redis is not listening on 127.0.0.1:6379")
    import redis

    tag = uuid.uuid4().hex[:12]
    client = redis.Redis(decode_responses=True)
    made = Streams(f"test-events-{tag}", f"test-scores-{tag}", client)
    yield made
    client.delete(made.source, made.sink, f"{made.source}:dead")
    client.close()


def _records(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 60, n),
            "charges": rng.normal(70.0, 20.0, n).round(2),
            "age": rng.integers(18, 80, n),
        }
    )


def _log_forest(trees: int = 20) -> None:
    """A random forest on the churn frame as ``forest@champion``: predictions vary by row (and cost a little)."""
    from sklearn.ensemble import RandomForestRegressor

    import shipyard.registry as reg

    frame, label = churn_frame()
    model = RandomForestRegressor(n_estimators=trees, random_state=0).fit(frame, label)
    version = reg.log_model(model, "forest", input_example=frame.head(5)).version
    reg.set_alias("forest", "champion", version)


def _expected(frame: pd.DataFrame) -> list[float]:
    import shipyard.registry as reg

    return [float(v) for v in reg.load_model("forest@champion").predict(frame)]


def test_predictions_equal_in_process_predict(store: Settings, streams: Streams) -> None:
    _log_forest()
    frame = _records(300)
    streams.produce(frame.to_dict("records"))
    stats = serve_stream("forest@champion", streams.source_uri, streams.sink_uri, batch_size=64, max_messages=300)
    assert (stats.predicted, stats.dead) == (300, 0)
    got = streams.predictions()
    assert [p["request_id"] for p in got] == [f"r{i}" for i in range(300)]
    assert [orjson.loads(p["prediction"]) for p in got] == pytest.approx(_expected(frame), rel=1e-12)
    assert {(p["model"], p["version"]) for p in got} == {("forest", "1")}
    assert [p["source_id"] for p in got] == [entry_id for entry_id, _ in streams.client.xrange(streams.source)]
    assert streams.client.xpending(streams.source, "shipyard-stream")["pending"] == 0


def test_bad_messages_are_dead_lettered_with_the_reason_and_the_rest_scored(store: Settings, streams: Streams) -> None:
    _log_forest()
    good = _records(3).to_dict("records")
    bad_fields: list[dict[str, Any]] = [
        {"request_id": "json", "data": '{"tenure": 3,'},
        {"request_id": "nodata", "payload": "{}"},
        {"request_id": "columns", "data": orjson.dumps({"tenure": 3, "charges": 1.0, "height": 2})},
        {"request_id": "type", "data": orjson.dumps({"tenure": "long", "charges": 1.0, "age": 30})},
        {"request_id": "list", "data": "[1, 2, 3]"},
    ]
    for fields in [{"request_id": "g0", "data": orjson.dumps(good[0])}, *bad_fields]:
        streams.client.xadd(streams.source, fields)
    streams.client.xadd(streams.source, {"data": orjson.dumps(good[1])})  # no request_id: its entry id stands in
    stats = serve_stream("forest@champion", streams.source_uri, streams.sink_uri, batch_size=100, max_messages=7)
    assert (stats.predicted, stats.dead) == (2, 5)

    dead = [fields for _, fields in streams.client.xrange(f"{streams.source}:dead")]
    reasons = {fields["request_id"]: fields["_error"] for fields in dead}
    assert reasons["json"].startswith("field 'data' is not valid JSON")
    assert reasons["nodata"] == "message has no field 'data' (one JSON record)"
    assert "missing column 'age' (integer)" in reasons["columns"]
    assert "unexpected column 'height'" in reasons["columns"]
    assert "column 'tenure' expected integer, got string" in reasons["type"]
    assert reasons["list"] == "field 'data' must be one JSON object (a record), got list"
    assert dead[1]["payload"] == "{}"  # the original fields travel with the reason
    entry_ids = [entry_id for entry_id, _ in streams.client.xrange(streams.source)]
    assert [fields["_id"] for fields in dead] == entry_ids[1:6]

    # the good messages of the same batch were scored, and the consumer keeps going after it
    streams.client.xadd(streams.source, {"request_id": "g2", "data": orjson.dumps(good[2])})
    serve_stream("forest@champion", streams.source_uri, streams.sink_uri, max_messages=1)
    got = streams.predictions()
    assert [p["request_id"] for p in got] == ["g0", entry_ids[6], "g2"]
    expected = _expected(pd.DataFrame(good))
    assert [orjson.loads(p["prediction"]) for p in got] == pytest.approx(expected, rel=1e-12)
    assert streams.client.xpending(streams.source, "shipyard-stream")["pending"] == 0


def test_messages_left_pending_by_a_dead_consumer_are_reclaimed(store: Settings, streams: Streams) -> None:
    _log_forest()
    frame = _records(40)
    streams.produce(frame.to_dict("records"))
    serve_stream("forest@champion", streams.source_uri, streams.sink_uri, max_messages=0)  # creates the group
    # another consumer reads 25 messages, then dies without acknowledging them
    taken = streams.client.xreadgroup("shipyard-stream", "ghost", {streams.source: ">"}, count=25)
    assert len(taken[0][1]) == 25

    stats = serve_stream(
        "forest@champion", streams.source_uri, streams.sink_uri, consumer="c2", reclaim_idle_ms=0, max_messages=40
    )
    assert stats.predicted == 40
    got = streams.predictions()
    assert sorted(p["request_id"] for p in got) == sorted(f"r{i}" for i in range(40))
    by_id = {p["request_id"]: orjson.loads(p["prediction"]) for p in got}
    assert [by_id[f"r{i}"] for i in range(40)] == pytest.approx(_expected(frame), rel=1e-12)
    assert streams.client.xpending(streams.source, "shipyard-stream")["pending"] == 0


def test_predict_proba_writes_each_row_of_probabilities(store: Settings, streams: Streams) -> None:
    from sklearn.linear_model import LogisticRegression

    import shipyard.registry as reg

    frame, label = churn_frame()
    reg.set_alias("clf", "champion", reg.log_model(LogisticRegression().fit(frame, label), "clf").version)
    streams.produce(frame.head(5).to_dict("records"))
    serve_stream("clf@champion", streams.source_uri, streams.sink_uri, method="predict_proba", max_messages=5)
    expected = reg.load_model("clf@champion").predict_proba(frame.head(5))
    got = [orjson.loads(p["prediction"]) for p in streams.predictions()]
    assert np.allclose(np.asarray(got), expected)


def _start(streams: Streams, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = [str(SHIPYARD), "stream", "forest@champion", "--source", streams.source_uri, "--sink", streams.sink_uri]
    with log.open("ab") as out:
        return subprocess.Popen([*args, *extra], stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


def _wait(condition: Any, proc: subprocess.Popen[bytes], log: Path, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not happen (exit {proc.poll()}):\n{log.read_text()}")
        time.sleep(0.005)


def test_a_consumer_killed_mid_stream_loses_nothing_and_duplicates_only_its_batch_in_flight(
    store: Settings, streams: Streams, tmp_path: Path
) -> None:
    n, batch = 2000, 50
    _log_forest(trees=300)  # tens of milliseconds a batch: the kill lands while the stream is being scored
    frame = _records(n)
    streams.produce(frame.to_dict("records"))
    log = tmp_path / "stream.log"

    first = _start(streams, log, "--consumer", "c1", "--batch-size", str(batch))
    _wait(lambda: streams.client.xlen(streams.sink) >= 100, first, log, "100 predictions")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    written = streams.client.xlen(streams.sink)
    assert 100 <= written < n, "the kill must land mid-stream"
    pending = streams.client.xpending_range(streams.source, "shipyard-stream", min="-", max="+", count=n)
    in_flight = {p["message_id"] for p in pending}
    assert len(in_flight) <= batch
    request_of = {entry_id: fields["request_id"] for entry_id, fields in streams.client.xrange(streams.source)}

    # another consumer takes over what c1 left pending at once (--reclaim-idle-ms 0), then the rest
    second = _start(streams, log, "--consumer", "c2", "--batch-size", str(batch), "--reclaim-idle-ms", "0")

    def all_scored() -> bool:
        if (
            streams.client.xlen(streams.sink) < n
            or streams.client.xpending(streams.source, "shipyard-stream")["pending"]
        ):
            return False
        return len({p["request_id"] for p in streams.predictions()}) == n

    _wait(all_scored, second, log, "every message scored")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, log.read_text()  # SIGTERM: stops after its batch, exit 0
    assert "stopped: predicted" in log.read_text()

    got = streams.predictions()
    counts = collections.Counter(p["request_id"] for p in got)
    assert set(counts) == {f"r{i}" for i in range(n)}  # none lost
    duplicated = {rid for rid, count in counts.items() if count > 1}
    assert max(counts.values()) <= 2
    assert len(duplicated) <= batch
    assert duplicated <= {request_of[entry_id] for entry_id in in_flight}  # only the batch in flight at the kill
    expected = _expected(frame)
    for p in got:  # a duplicate carries the same prediction as its first copy, and every one is right
        assert orjson.loads(p["prediction"]) == pytest.approx(expected[int(p["request_id"][1:])], rel=1e-12)


def test_ctrl_c_stops_after_the_batch_with_status_130(store: Settings, streams: Streams, tmp_path: Path) -> None:
    _log_forest()
    streams.produce(_records(10).to_dict("records"))
    log = tmp_path / "stream.log"
    proc = _start(streams, log, "--block-ms", "100")
    _wait(lambda: streams.client.xlen(streams.sink) == 10, proc, log, "10 predictions")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, log.read_text()
    assert "stopped: predicted 10, dead-lettered 0" in log.read_text()
    assert streams.client.xpending(streams.source, "shipyard-stream")["pending"] == 0


def test_bad_input_exits_2_and_an_unreachable_redis_1_each_with_one_line(store: Settings, streams: Streams) -> None:
    _log_forest()
    nowhere = f"redis://127.0.0.1:{free_port()}/events"  # nothing listens: the work fails (1), the input is fine
    cases = [
        (
            ["nothing@champion", "--source", streams.source_uri, "--sink", streams.sink_uri],
            2,
            "model 'nothing' does not",
        ),
        (
            ["forest@champion", "--source", "kafka://h/x", "--sink", streams.sink_uri],
            2,
            "source must look like redis://",
        ),
        (["forest@champion", "--source", nowhere, "--sink", streams.sink_uri], 1, "Redis at redis://127.0.0.1:"),
    ]
    for args, status, message in cases:
        done = subprocess.run([str(SHIPYARD), "stream", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == status, done.stderr
        assert done.stderr.startswith("error: "), done.stderr
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stdout + done.stderr
    with pytest.raises(NotFoundError, match="no alias 'gone'"):
        serve_stream("forest@gone", streams.source_uri, streams.sink_uri)
    with pytest.raises(InvalidInputError, match="sink must not be the source") as caught:
        serve_stream("forest@champion", streams.source_uri, f"redis://127.0.0.1:6379/0/{streams.source}")
    assert caught.value.field == "sink"
    with pytest.raises(InvalidInputError, match="batch_size must be at least 1"):
        serve_stream("forest@champion", streams.source_uri, streams.sink_uri, batch_size=0)
    with pytest.raises(InvalidInputError, match="block_ms must be at least 0"):
        serve_stream("forest@champion", streams.source_uri, streams.sink_uri, block_ms=-1)
    assert streams.client.exists(streams.sink) == 0  # nothing written
