"""Streaming benchmark: messages/s through Redis with ``serve_stream`` beside the in-process floor, answers checked.

Needs Redis on 127.0.0.1:6379 (``--redis`` for another). Run::

    .venv/bin/python benchmarks/streaming.py [--messages 100000] [--batch-size 500]

The model is a scikit-learn HistGradientBoostingClassifier on 20 numeric features
(``f0``..``f19``), registered in a temporary store. A producer fills a fresh stream with
``--messages`` messages (one JSON record in ``data`` and a ``request_id`` each, pipelined
XADDs), then ``serve_stream`` consumes the whole backlog as one consumer of a group:
XREADGROUP of ``--batch-size`` messages, one model call, the predictions XADDed to the
sink in one pipeline, then XACK. Its figure is messages over the seconds from its first
read to its last acknowledgement (model loading excluded). There is no peer: the floor is
the same work without Redis, in the same process, on the same JSON messages in batches of
the same size: decode each record and call ``shipyard.load_model(...).predict`` on the
batch. A model-only line (the estimator on one prebuilt matrix of every row) shows what
the model itself costs. The sink is read back and every prediction compared, by
``request_id``, with that model-only reference, as are the floor's; nothing is printed
from a run where one answer is missing, duplicated, dead-lettered or different.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/sklearn load: one thread, as a stream consumer runs

import argparse
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

COLUMNS = [f"f{i}" for i in range(20)]
GROUP = "bench"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def register_model(rows: int) -> Any:
    """Fit the classifier and register it as ``stream-bench@champion``; the fitted estimator."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    import shipyard as sy

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)
    label = (frame["f0"] + frame["f1"] * frame["f2"] - frame["f3"] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(frame, label)
    version = sy.log_model(model, name="stream-bench", input_example=frame.head(5)).version
    sy.set_alias("stream-bench", "champion", version)
    return model


def make_messages(n: int) -> tuple[pd.DataFrame, list[bytes]]:
    """``n`` random rows and each as the JSON record a message carries."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))).round(6), columns=COLUMNS)
    return frame, [orjson.dumps(record) for record in frame.to_dict("records")]


def produce(client: Any, stream: str, payloads: list[bytes]) -> float:
    """XADD every message in pipelines of 1,000; the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(payloads), 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 1000, len(payloads))):
            pipe.xadd(stream, {"request_id": f"r{i}", "data": payloads[i]})
        pipe.execute()
    return time.perf_counter() - started


def read_sink(client: Any, stream: str) -> dict[str, list[int]]:
    """Every prediction in the sink, by request id (a list, so duplicates show)."""
    found: dict[str, list[int]] = {}
    cursor = "-"
    while True:
        page = client.xrange(stream, min=cursor, max="+", count=10_000)
        for _, fields in page:
            found.setdefault(fields[b"request_id"].decode(), []).append(int(orjson.loads(fields[b"prediction"])))
        if len(page) < 10_000:
            return found
        cursor = "(" + page[-1][0].decode()


def floor(payloads: list[bytes], batch: int) -> tuple[float, list[int]]:
    """The same messages scored in-process, batch by batch, with the public API; seconds and answers."""
    import shipyard as sy

    model = sy.load_model("stream-bench@champion")
    model.predict([orjson.loads(payloads[0])])  # first-call costs outside the clock, as serve_stream's warm-up
    answers: list[int] = []
    started = time.perf_counter()
    for start in range(0, len(payloads), batch):
        records = [orjson.loads(raw) for raw in payloads[start : start + batch]]
        answers.extend(int(v) for v in model.predict(records))
    return time.perf_counter() - started, answers


def check(name: str, answers: dict[str, list[int]], expected: np.ndarray[Any, Any]) -> None:
    """Exit without a figure unless every request id has exactly one answer, equal to the reference."""
    wanted = {f"r{i}" for i in range(len(expected))}
    missing, extra = wanted - answers.keys(), answers.keys() - wanted
    duplicated = [rid for rid, got in answers.items() if len(got) != 1]
    wrong = [rid for rid, got in answers.items() if rid in wanted and got[0] != expected[int(rid[1:])]]
    if missing or extra or duplicated or wrong:
        sys.exit(
            f"{name}: {len(missing)} missing, {len(extra)} unknown, {len(duplicated)} duplicated, "
            f"{len(wrong)} wrong answers: no figures printed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages through the stream")
    parser.add_argument("--batch-size", type=int, default=500, help="messages per XREADGROUP and model call")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis to use (a fresh stream in it)")
    args = parser.parse_args()
    import redis

    from shipyard.serving.stream import serve_stream

    with tempfile.TemporaryDirectory(prefix="shipyard-stream-bench-") as tmp:
        os.environ["SHIPYARD_STORE"] = f"sqlite:///{tmp}/shipyard.db"
        os.environ["SHIPYARD_ARTIFACTS"] = f"file://{tmp}/artifacts"
        os.chdir(tmp)
        client = redis.Redis.from_url(args.redis)
        source, sink = f"bench-events-{uuid.uuid4().hex[:8]}", f"bench-scores-{uuid.uuid4().hex[:8]}"
        try:
            before = load_average()
            estimator = register_model(5000)
            frame, payloads = make_messages(args.messages)
            started = time.perf_counter()
            expected = estimator.predict(frame)  # the reference: one call on every row
            model_seconds = time.perf_counter() - started
            produce_seconds = produce(client, source, payloads)

            base = args.redis.rstrip("/")
            stats = serve_stream(
                "stream-bench@champion",
                f"{base}/{source}",
                f"{base}/{sink}",
                group=GROUP,
                consumer="bench",
                batch_size=args.batch_size,
                max_messages=args.messages,
            )
            dead = client.xlen(f"{source}:dead")
            if stats.dead or dead or client.xpending(source, GROUP)["pending"]:
                sys.exit(f"shipyard: {stats.dead} dead-lettered, messages left pending: no figures printed")
            check("shipyard", read_sink(client, sink), expected)
            floor_seconds, floor_answers = floor(payloads, args.batch_size)
            check("floor", {f"r{i}": [v] for i, v in enumerate(floor_answers)}, expected)
        finally:
            client.delete(source, sink, f"{source}:dead")
            client.close()
    after = load_average()

    n = args.messages
    streamed, floored = n / stats.seconds, n / floor_seconds
    print(f"streaming: {n:,} messages, batch size {args.batch_size}, every answer checked against the reference")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average before: {before}, after: {after}")
    print(f"{'line':<46} {'messages/s':>12} {'seconds':>9}")
    print(
        f"{'producer: pipelined XADD (not in the figures)':<46} {n / produce_seconds:>12,.0f} {produce_seconds:>9.2f}"
    )
    print(f"{'shipyard serve_stream, through Redis':<46} {streamed:>12,.0f} {stats.seconds:>9.2f}")
    print(f"{'floor: in-process load_model().predict':<46} {floored:>12,.0f} {floor_seconds:>9.2f}")
    print(f"{'model only: one predict on a prebuilt matrix':<46} {n / model_seconds:>12,.0f} {model_seconds:>9.2f}")
    print(f"shipyard through Redis reaches {streamed / floored:.0%} of the in-process floor")


if __name__ == "__main__":
    main()
