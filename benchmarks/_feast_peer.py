"""The Feast side of benchmarks/features.py, run by Feast's own virtualenv (benchmarks/.venv-feast).

One invocation does one job on the data folder features.py wrote and prints one JSON line:

* ``historical``: ``get_historical_features(entity_df, features).to_arrow()`` with the file
  (dask) or the DuckDB offline store, ``repeat`` times; each answer goes to Parquet for
  features.py to check;
* ``serve``: ``materialize(start, end)`` into the SQLite online store, timed, with this
  process's peak RSS (``VmHWM``); then ``get_online_features`` of the given entities,
  ``calls`` times after 10 untimed ones, the last answer to Parquet.

A Feast repo is built in a temporary folder and applied through Feast's Python API
(``FeatureStore.apply``), the equivalent of ``feast apply``. Only the standard library is
imported at the top: the imports of Feast are outside every clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("DO_NOT_TRACK", "true")

FEATURES = ["clicks", "sessions", "spend"]
WARMUP = 10  # untimed online calls first, as features.py does for shipyard


def build_store(data: Path, repo: Path, offline: str, ttl_days: int) -> Any:
    """A Feast repo over ``data/features.parquet``, applied; its FeatureStore."""
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.types import Float64, Int64
    from feast.value_type import ValueType

    repo.mkdir(parents=True, exist_ok=True)
    offline_config: Any = DuckDBOfflineStoreConfig() if offline == "duckdb" else DaskOfflineStoreConfig()
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=offline_config,
        online_store=SqliteOnlineStoreConfig(path=str(repo / "online.db")),
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config, repo_path=str(repo))
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(
        path=str(data / "features.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    view = FeatureView(
        name="activity",
        entities=[user],
        ttl=timedelta(days=ttl_days),
        schema=[
            Field(name="clicks", dtype=Float64),
            Field(name="sessions", dtype=Int64),
            Field(name="spend", dtype=Float64),
        ],
        source=source,
        online=True,
    )
    store.apply([user, view])
    return store


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes: ``VmHWM``.

    Not ``ru_maxrss``: Linux carries that across ``exec`` from the parent's, so a child would
    report its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def historical(store: Any, data: Path, out: Path, repeat: int) -> dict[str, Any]:
    """Time ``repeat`` retrievals; answer ``i`` goes to ``out`` with suffix ``.i``."""
    import pandas as pd
    import pyarrow.parquet as pq

    entity = pd.read_parquet(data / "entity.parquet")
    refs = [f"activity:{f}" for f in FEATURES]
    seconds = []
    for i in range(repeat):
        start = time.perf_counter()
        table = store.get_historical_features(entity_df=entity, features=refs).to_arrow()
        seconds.append(time.perf_counter() - start)
        pq.write_table(table, f"{out}.{i}")
    return {"seconds": seconds}


def materialize(store: Any, start_us: int, end_us: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(start_us / 1e6, tz=UTC)
    end = datetime.fromtimestamp(end_us / 1e6, tz=UTC)
    before = peak_rss()
    began = time.perf_counter()
    store.materialize(start_date=start, end_date=end)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "peak_rss": peak_rss(), "rss_before": before}


def online(store: Any, users: list[int], calls: int, out: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    refs = [f"activity:{f}" for f in FEATURES]
    rows = [{"user_id": u} for u in users]
    latencies = []
    answer: dict[str, Any] = {}
    for _ in range(WARMUP):
        store.get_online_features(features=refs, entity_rows=rows).to_dict()
    for _ in range(calls):
        began = time.perf_counter()
        answer = store.get_online_features(features=refs, entity_rows=rows).to_dict()
        latencies.append(time.perf_counter() - began)
    pq.write_table(pa.table({k: answer[k] for k in ["user_id", *FEATURES]}), out)
    return {"latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=["historical", "serve"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--offline", choices=["file", "duckdb"], default="duckdb")
    parser.add_argument("--ttl-days", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start-us", type=int, default=0)
    parser.add_argument("--end-us", type=int, default=0)
    parser.add_argument("--users", default="")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    store = build_store(args.data, args.repo, args.offline, args.ttl_days)
    if args.job == "historical":
        report = historical(store, args.data, args.out, args.repeat)
    else:
        report = materialize(store, args.start_us, args.end_us)
        users = [int(u) for u in args.users.split(",")]
        report.update(online(store, users, args.calls, args.out))
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
