"""The walk-route recommender end to end: data, training, registry, then batch, online and streaming.

Run from any folder: ``python examples/walk_routes/walk_routes.py``. Everything lands in the
working directory (``.shipyard/`` for the store, ``walk-routes-out/`` for the files).
Streaming needs Redis on 127.0.0.1:6379; without it that part is skipped with a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # walk_model.py and walk_deploy.py beside this file, however it is started

import cloudpickle  # noqa: E402
import pandas as pd  # noqa: E402
import walk_model as routes  # noqa: E402
from walk_deploy import Server, batch_top10, lookup, morning_contexts, online_top10, stream_top10  # noqa: E402

import shipyard as sy  # noqa: E402

MODEL = "walk-routes"


def register(city: routes.City) -> str:
    """Train the ranker, register it as walk-routes@champion; returns that reference."""
    ranker, hit_rate = routes.train(city)
    example = city.history[routes.CONTEXT].head(5)
    # The ranker's class lives in walk_model.py, which a server started elsewhere cannot import:
    # pickle the module's code with the model.
    cloudpickle.register_pickle_by_value(routes)
    with sy.start_run(experiment="walk-routes", name="gbm-ranker"):
        sy.log_params({"routes": routes.ROUTES, "users": routes.USERS, "sessions": routes.SESSIONS})
        sy.log_metric("hit_at_10", hit_rate)
        version = sy.log_model(ranker, name=MODEL, input_example=example, flavor="pyfunc")
    sy.set_alias(MODEL, "champion", version.version)
    print(f"registered {version.ref} (hit@10 of the best route on held-out contexts: {hit_rate:.2f})")
    return f"{MODEL}@champion"


def contexts(city: routes.City) -> pd.DataFrame:
    """Every user at home twice: a warm dry morning and a rainy evening."""
    return pd.concat(
        [
            morning_contexts(city.users, temp_c=27.0, rain_mm=0.0, hour=8, label="sunny-8h"),
            morning_contexts(city.users, temp_c=11.0, rain_mm=6.0, hour=18, label="rain-18h"),
        ],
        ignore_index=True,
    )


def redis_answers() -> bool:
    """True when Redis answers on 127.0.0.1:6379."""
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except Exception:
        return False


def main() -> None:
    """Build, register and deploy three ways; check they agree."""
    from shipyard.testing import free_port

    out = Path.cwd() / "walk-routes-out"
    out.mkdir(exist_ok=True)
    city = routes.make_city()
    ref = register(city)
    wanted = contexts(city)

    batch, database = batch_top10(ref, wanted, out)
    print(f"batch: top 10 for {len(batch)} (user, context) pairs, stored in {database.name}")
    print(f"  lookup u0-sunny-8h -> {lookup(database, 'u0-sunny-8h')}")
    print(f"  lookup u0-rain-18h -> {lookup(database, 'u0-rain-18h')}")

    with Server(ref, free_port(), out / "serve.log") as server:
        online = online_top10(server.url, MODEL, wanted)
    print(f"online: {len(online)} requests answered; same as batch: {online == batch}")

    if redis_answers():
        streamed = stream_top10(ref, wanted)
        print(f"stream: {len(streamed)} location updates scored; same as batch: {streamed == batch}")
    else:
        streamed = batch
        print("stream: skipped (no Redis on 127.0.0.1:6379)")
    if not (online == batch == streamed):
        sys.exit("the three deployments disagree")


if __name__ == "__main__":
    main()
