"""The walk-route model deployed three ways: batch, online and streaming.

- **Batch**: every user's top 10 for their morning context, precomputed with
  ``predict_batch`` into Parquet, then loaded into a SQLite table keyed by user for
  lookups that need no model at all (:func:`lookup`).
- **Online**: ``shipyard serve`` answers a context on request (:func:`online_top10`).
- **Streaming**: location updates arrive on a Redis Stream; ``serve_stream`` scores them
  and writes each user's top 10 to a sink stream with the update's ``request_id``.

Each returns ``{context_id: [route ids, best first]}`` so the three can be compared.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
from walk_model import CONTEXT, TOP

RANKS = [f"rank_{i + 1}" for i in range(TOP)]
Top10 = dict[str, list[int]]


def batch_top10(model_ref: str, contexts: pd.DataFrame, folder: Path) -> tuple[Top10, Path]:
    """Score every context in batch; returns the top 10s and the SQLite lookup table's file."""
    from shipyard.serving.batch import predict_batch

    source = folder / "contexts.parquet"
    contexts.to_parquet(source, index=False)
    scored = folder / "top10.parquet"
    predict_batch(model_ref, source, scored, id_columns=["context_id", "user_id"], overwrite=True)
    table = pd.read_parquet(scored)
    database = folder / "top10.db"
    with sqlite3.connect(database) as db:  # what an app reads at request time: no model, one indexed row
        table.to_sql("top10", db, if_exists="replace", index=False)
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS top10_context ON top10 (context_id)")
    db.close()
    return {row.context_id: [int(getattr(row, r)) for r in RANKS] for row in table.itertuples()}, database


def lookup(database: Path, context_id: str) -> list[int]:
    """The precomputed top 10 of one context, from the batch job's SQLite table."""
    with sqlite3.connect(database) as db:
        row = db.execute(f"SELECT {', '.join(RANKS)} FROM top10 WHERE context_id = ?", (context_id,)).fetchone()
    db.close()
    if row is None:
        raise KeyError(f"no precomputed routes for {context_id!r}")
    return [int(value) for value in row]


class Server:
    """``shipyard serve MODEL`` in a subprocess on a loopback port (a context manager)."""

    def __init__(self, model_ref: str, port: int, log: Path) -> None:
        self.model_ref, self.port, self.log = model_ref, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        script = Path(sys.executable).parent / "shipyard"
        args = [str(script), "serve", self.model_ref, "--port", str(self.port), "--poll-interval", "0"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"shipyard serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("shipyard serve did not become ready in 90 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def online_top10(server_url: str, model_name: str, contexts: pd.DataFrame) -> Top10:
    """Ask the running server for each context's top 10, one request per context (as an app would)."""
    answers = {}
    with httpx.Client(base_url=server_url, timeout=30) as http:
        for row in contexts.to_dict("records"):
            record = {name: row[name] for name in CONTEXT}
            reply = http.post(f"/models/{model_name}/predict", json={"records": [record]})
            reply.raise_for_status()
            answers[str(row["context_id"])] = [int(v) for v in reply.json()["predictions"][0]]
    return answers


def stream_top10(model_ref: str, contexts: pd.DataFrame, redis_url: str = "redis://127.0.0.1:6379/0") -> Top10:
    """Send each context as a location update on a Redis Stream and read the top 10s the stream scorer writes."""
    import redis

    from shipyard.serving.stream import serve_stream

    tag = uuid.uuid4().hex[:8]
    source, sink = f"walk-locations-{tag}", f"walk-top10-{tag}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        pipe = client.pipeline(transaction=False)
        for row in contexts.to_dict("records"):
            record = {name: row[name] for name in CONTEXT}
            pipe.xadd(source, {"data": json.dumps(record), "request_id": str(row["context_id"])})
        pipe.execute()
        serve_stream(
            model_ref,
            f"{redis_url}/{source}",
            f"{redis_url}/{sink}",
            batch_size=64,
            block_ms=200,
            max_messages=len(contexts),
        )
        answers = {}
        for _, fields in client.xrange(sink):
            answers[fields["request_id"]] = [int(json.loads(fields[name])) for name in RANKS]
        return answers
    finally:
        client.delete(source, sink, f"{source}:dead")
        client.close()


def morning_contexts(users: pd.DataFrame, *, temp_c: float, rain_mm: float, hour: int, label: str) -> pd.DataFrame:
    """One context per user: at home, the given weather and hour; ``context_id`` names user and label."""
    return pd.DataFrame(
        {
            "context_id": [f"u{u}-{label}" for u in users["user_id"]],
            "user_id": users["user_id"].astype("int64"),
            "lat": users["home_lat"],
            "lon": users["home_lon"],
            "temp_c": float(temp_c),
            "rain_mm": float(rain_mm),
            "hour": int(hour),
        }
    )
