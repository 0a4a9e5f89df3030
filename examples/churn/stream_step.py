"""The demo's streaming step: a short stream of customers scored through Redis by ``serve_stream``.

Runs against the local Redis (127.0.0.1:6379) when it answers; without one it prints a
line and returns, so the demo works on a laptop without Redis.
"""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pandas as pd
from rich.console import Console

import shipyard as sy
from shipyard.serving.stream import serve_stream
from shipyard.testing import port_open

REDIS = "redis://127.0.0.1:6379"


def stream_predictions(frame: pd.DataFrame, console: Console, model_ref: str = "churn@champion") -> None:
    """Push ``frame``'s rows (and one malformed message) through a Redis Stream; check every prediction."""
    if not port_open("127.0.0.1", 6379):
        console.print("streaming step skipped: no Redis on 127.0.0.1:6379 (start one to see it)")
        return
    import redis

    client = redis.Redis.from_url(REDIS, decode_responses=True)
    tag = uuid.uuid4().hex[:8]
    source, sink = f"churn-events-{tag}", f"churn-scores-{tag}"
    try:
        pipe = client.pipeline(transaction=False)
        for i, record in enumerate(frame.to_dict("records")):
            pipe.xadd(
                source, {"request_id": f"customer-{i}", "data": orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)}
            )
        pipe.xadd(source, {"request_id": "broken", "data": "{not json"})
        pipe.execute()
        stats = serve_stream(
            model_ref, f"{REDIS}/{source}", f"{REDIS}/{sink}", batch_size=64, max_messages=len(frame) + 1
        )
        got = {fields["request_id"]: orjson.loads(fields["prediction"]) for _, fields in client.xrange(sink)}
        expected = np.asarray(sy.load_model(model_ref).predict(frame)).tolist()
        assert [got[f"customer-{i}"] for i in range(len(frame))] == expected, "a streamed prediction differs"
        reason = client.xrange(f"{source}:dead")[0][1]["_error"]
    finally:
        client.delete(source, sink, f"{source}:dead")
        client.close()
    console.print(
        f"streamed {len(frame) + 1} messages through Redis with {model_ref}: {stats.predicted} predicted "
        f"({stats.rate:,.0f} messages/s), each equal to in-process predict; {stats.dead} dead-lettered: {reason}",
        markup=False,
    )
