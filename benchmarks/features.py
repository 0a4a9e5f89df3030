"""shipyard's feature store against Feast 0.67: training frames, materialization, online reads.

One command generates the data and runs every side on it:

* data: 100,000 users over 30 days, 2,000,000 feature rows (three features, a created
  timestamp, and 5% of rows repeating another row's user and event time with a different
  created time and values: ties the created time must break); 10% of the users have no
  history. 200,000 entity rows over the users, from two days before the first value to a day
  after the last; ttl 7 days. ``--scale 0.1`` divides every count by ten;
* historical retrieval of the entity rows (``--repeat`` times each in one process, the
  median shown; the first call of a process pays its imports and cold caches; shipyard and
  the floor take turns, so both see the same load): shipyard
  (``to="arrow"``), Feast with its file (dask) offline store and with its DuckDB offline
  store, and a bare DuckDB ASOF JOIN of the same Parquet file as the floor (one query, the
  (event, created) pair as its ASOF key);
* a full materialization into each side's SQLite online store: time and the peak RSS of the
  process doing it (``VmHWM`` of a fresh child process); shipyard also at twice the
  rows (same users, twice as dense), to show its memory is flat;
* online lookups of 100 entities (some without history), 300 calls each side after 10
  untimed ones: median, p99.

Every answer is checked against an independent reference: pandas ``merge_asof`` (``by=``,
``tolerance=`` the ttl) over the rows deduplicated on (user, event time) keeping the latest
created, and for online reads the latest row per user (null when older than the ttl at read
time: shipyard's status ``expired``). Agreement is printed per side, and Feast's
disagreements by kind. A side that fails or crashes fails the run: nothing is printed from it.

Usage::

    bash benchmarks/setup_feast.sh                         # once: benchmarks/.venv-feast
    .venv/bin/python benchmarks/features.py                # the full size
    .venv/bin/python benchmarks/features.py --scale 0.05   # a quick run

Feast runs from its own virtualenv as a subprocess (``benchmarks/_feast_peer.py``), which
prints its timings as JSON and writes its answers to Parquet; its imports and ``apply`` are
outside every clock, as are shipyard's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
FEAST_PYTHON = HERE / ".venv-feast" / "bin" / "python"
FEATURES = ["clicks", "sessions", "spend"]
TTL = pd.Timedelta(days=7)
DAY_US = 86_400_000_000
US = 1_000_000
WARMUP = 10  # untimed online calls first, on both sides: the first ones prepare statements and fill caches


# data ------------------------------------------------------------------------------------
def generate_features(rows: int, users: int, end_us: int, seed: int) -> pd.DataFrame:
    """Feature rows over 30 days before ``end_us``; 5% tie another row's (user, event time)."""
    rng = np.random.default_rng(seed)
    ties = rows // 20
    base = rows - ties
    # The top tenth of user ids never has a value.
    user = rng.integers(0, int(users * 0.9), base)
    event = end_us - 30 * DAY_US + rng.integers(0, 30 * 86_400, base) * US
    created = event + rng.integers(0, 3600 * US, base)
    tied = rng.choice(base, ties, replace=False)
    shift = rng.integers(1, 1800, ties) * US * rng.choice([-1, 1], ties)
    frame = pd.DataFrame(
        {
            "user_id": np.concatenate([user, user[tied]]),
            "event_timestamp": np.concatenate([event, event[tied]]),
            "created": np.concatenate([created, created[tied] + shift]),
            "clicks": rng.random(rows) * 100,
            "sessions": rng.integers(0, 1_000_000, rows),
            "spend": rng.random(rows) * 1000,
        }
    )
    frame = frame.iloc[rng.permutation(rows)].reset_index(drop=True)
    for column in ("event_timestamp", "created"):
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    return frame


def generate_entity(rows: int, users: int, end_us: int, seed: int) -> pd.DataFrame:
    """Entity rows over every user, from two days before the first value to a day after the last."""
    rng = np.random.default_rng(seed + 1)
    start = end_us - 32 * DAY_US
    stamps = start + rng.integers(0, 33 * DAY_US, rows)
    return pd.DataFrame(
        {
            "row_id": np.arange(rows),
            "user_id": rng.integers(0, users, rows),
            "event_timestamp": pd.to_datetime(stamps, unit="us", utc=True),
        }
    )


# the reference ---------------------------------------------------------------------------
def latest_versions(features: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, event time): the latest created; ``tied`` where there were several."""
    ordered = features.sort_values(["user_id", "event_timestamp", "created"], kind="stable")
    counts = ordered.groupby(["user_id", "event_timestamp"], sort=False)["created"].transform("size")
    ordered = ordered.assign(tied=counts > 1)
    return ordered.drop_duplicates(["user_id", "event_timestamp"], keep="last")


def reference_join(features: pd.DataFrame, entity: pd.DataFrame) -> pd.DataFrame:
    """The point-in-time join by pandas, indexed by ``row_id``: value, ``tied``, ``older`` per row."""
    versions = latest_versions(features).rename(columns={"event_timestamp": "feature_ts"})
    versions = versions.sort_values("feature_ts", kind="stable")
    left = entity.sort_values("event_timestamp", kind="stable")
    joined = pd.merge_asof(
        left,
        versions[["user_id", "feature_ts", "tied", *FEATURES]],
        left_on="event_timestamp",
        right_on="feature_ts",
        by="user_id",
        direction="backward",
        allow_exact_matches=True,
        tolerance=TTL,
    )
    return joined.set_index("row_id").sort_index()


def tie_losers(features: pd.DataFrame) -> set[tuple[int, float]]:
    """(user, clicks) of every row that lost a tie on event time: a Feast answer that picked it is a tie error."""
    ordered = features.sort_values(["user_id", "event_timestamp", "created"], kind="stable")
    losers = ordered[ordered.duplicated(["user_id", "event_timestamp"], keep="last")]
    return set(zip(losers["user_id"].tolist(), losers["clicks"].tolist(), strict=True))


def compare(answer: pa.Table, reference: pd.DataFrame, losers: set[tuple[int, float]]) -> dict[str, int]:
    """Disagreements with the reference by kind; ``agree`` counts the entity rows answered right."""
    got = answer.select(["row_id", "user_id", *FEATURES]).to_pandas()
    kinds = {"agree": 0}

    def count(kind: str, n: int) -> None:
        if n:
            kinds[kind] = kinds.get(kind, 0) + n

    count("duplicated rows", int(got["row_id"].duplicated().sum()))
    got = got.drop_duplicates("row_id").set_index("row_id")
    count("dropped rows", len(reference.index.difference(got.index)))
    got = got.reindex(reference.index)
    present = got["user_id"].notna()
    want_null = reference["clicks"].isna()
    same = present.copy()
    for f in FEATURES:
        both_null = got[f].isna() & reference[f].isna()
        same &= both_null | (got[f] == reference[f])
    kinds["agree"] = int(same.sum())
    wrong = present & ~same
    got_null = got["clicks"].isna()
    count("null where a value is due", int((wrong & got_null & ~want_null).sum()))
    count("a value where null is due (past ttl)", int((wrong & ~got_null & want_null).sum()))
    rest = wrong & ~got_null & ~want_null
    pairs = zip(got.loc[rest, "user_id"].astype("int64").tolist(), got.loc[rest, "clicks"].tolist(), strict=True)
    tie = np.array([p in losers for p in pairs], dtype=bool)
    count("older created version of a tie", int(tie.sum()))
    count("another value", int((~tie).sum()))
    return kinds


def online_reference(features: pd.DataFrame, users: list[int], read_us: int) -> pd.DataFrame:
    """Each user's latest value, null where it has none or it is older than the ttl at ``read_us``."""
    latest = latest_versions(features).drop_duplicates("user_id", keep="last").set_index("user_id")
    rows = latest.reindex(users)
    oldest = pd.Timestamp(read_us, unit="us", tz="UTC") - TTL
    expired = rows["event_timestamp"].notna() & (rows["event_timestamp"] < oldest)
    rows.loc[expired, FEATURES] = np.nan
    return rows.assign(expired=expired)


def check_online(answer: pd.DataFrame, reference: pd.DataFrame) -> dict[str, int]:
    """Disagreements of an online answer (one row per user, in order) with the reference, by kind."""
    kinds = {"agree": 0}
    for i, user in enumerate(reference.index):
        want = reference.iloc[i]
        got = answer.iloc[i]
        if int(got["user_id"]) != user:
            kinds["wrong user"] = kinds.get("wrong user", 0) + 1
            continue
        ok = all((pd.isna(got[f]) and pd.isna(want[f])) or got[f] == want[f] for f in FEATURES)
        if ok:
            kinds["agree"] += 1
        elif want["expired"] and not pd.isna(got["clicks"]):
            kinds["a value past ttl"] = kinds.get("a value past ttl", 0) + 1
        else:
            kinds["another value"] = kinds.get("another value", 0) + 1
    return kinds


# shipyard --------------------------------------------------------------------------------
def shipyard_store(folder: Path, features_path: Path) -> Any:
    """A fresh shipyard store in ``folder`` with the view over ``features_path`` applied."""
    os.environ["SHIPYARD_STORE"] = f"sqlite:///{folder}/shipyard.db"
    os.environ["SHIPYARD_ARTIFACTS"] = f"file://{folder}/artifacts"
    from shipyard.features import Entity, FeatureStore, FeatureView, Field, FileSource

    user = Entity("user", join_keys=["user_id"])
    view = FeatureView(
        "activity",
        entities=[user],
        schema=[Field("clicks", "float"), Field("sessions", "int"), Field("spend", "float")],
        source=FileSource(features_path, timestamp_field="event_timestamp"),
        created_timestamp_field="created",
        ttl="7d",
    )
    store = FeatureStore(online_store=f"sqlite:///{folder}/online.db")
    store.apply([user, view])
    return store


def shipyard_historical(folder: Path, data: Path, entity: pd.DataFrame) -> Callable[[], tuple[float, pa.Table]]:
    """One timed retrieval per call, on a store applied once."""
    store = shipyard_store(folder, data / "features.parquet")
    refs = [f"activity:{f}" for f in FEATURES]

    def once() -> tuple[float, pa.Table]:
        start = time.perf_counter()
        table = store.get_historical_features(entity, refs, to="arrow")
        return time.perf_counter() - start, table

    return once


def peak_rss() -> int:
    """This process's peak RSS so far, in bytes (``VmHWM``; ``ru_maxrss`` survives ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def shipyard_serve_child(args: argparse.Namespace) -> None:
    """In a fresh process: materialize (timed, peak RSS), then the online lookups; JSON on stdout."""
    store = shipyard_store(args.repo, args.features)
    before = peak_rss()
    began = time.perf_counter()
    start, end = (dt.datetime.fromtimestamp(us / US, tz=dt.UTC) for us in (args.start_us, args.end_us))
    store.materialize(start=start, end=end)
    seconds = time.perf_counter() - began
    peak = peak_rss()
    refs = [f"activity:{f}" for f in FEATURES]
    users = [int(u) for u in args.users.split(",")]
    latencies = []
    answer: dict[str, list[Any]] = {}
    for _ in range(WARMUP):
        store.get_online_features({"user_id": users}, refs).to_dict()
    for _ in range(args.calls):
        start = time.perf_counter()
        answer = store.get_online_features({"user_id": users}, refs).to_dict()
        latencies.append(time.perf_counter() - start)
    pq.write_table(pa.table(answer), args.out)
    json.dump({"seconds": seconds, "peak_rss": peak, "rss_before": before, "latencies": latencies}, sys.stdout)
    print()


# the floor -------------------------------------------------------------------------------
FLOOR_SQL = """
SELECT e.row_id, e.user_id, e.event_timestamp,
       CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 7 DAY THEN f.clicks END AS clicks,
       CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 7 DAY THEN f.sessions END AS sessions,
       CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 7 DAY THEN f.spend END AS spend
FROM entity e ASOF LEFT JOIN (
    SELECT *, {'t': event_timestamp, 'c': created} AS k FROM read_parquet(?)
) f ON e.user_id = f.user_id AND {'t': e.event_timestamp, 'c': TIMESTAMPTZ 'infinity'} >= f.k
"""


def floor(data: Path, entity: pd.DataFrame) -> tuple[float, pa.Table]:
    """A bare DuckDB ASOF JOIN of the entity frame and the Parquet file, to Arrow (the connection outside the clock)."""
    import duckdb

    sql = FLOOR_SQL.replace("read_parquet(?)", f"read_parquet('{data / 'features.parquet'}')")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    start = time.perf_counter()
    con.register("entity", entity)
    relation = con.sql(sql)
    table = (getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table)()
    seconds = time.perf_counter() - start
    con.close()
    return seconds, table


# driving the children --------------------------------------------------------------------
def run_child(command: list[str], what: str) -> dict[str, Any]:
    env = {**os.environ, "FEAST_USAGE": "False", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}); nothing printed from this run:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (0.05 for a quick run)")
    parser.add_argument("--skip-feast", action="store_true", help="shipyard, the floor and the reference only")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="historical retrievals per side (the median is shown)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--features", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start-us", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--end-us", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--users", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        shipyard_serve_child(args)
        return
    if not args.skip_feast and not FEAST_PYTHON.exists():
        sys.exit(f"{FEAST_PYTHON} is missing: run bash benchmarks/setup_feast.sh first (or pass --skip-feast)")
    run(args)


def run(args: argparse.Namespace) -> None:
    users, rows, entity_rows = (int(n * args.scale) for n in (100_000, 2_000_000, 200_000))
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-features-"))
    data = work / "data"
    (data / "x2").mkdir(parents=True)
    end_us = (time.time_ns() // 1000 // US - 3600) * US
    print(f"data: {users:,} users, {rows:,} feature rows, {entity_rows:,} entity rows, ttl 7d, in {work}")
    features = generate_features(rows, users, end_us, args.seed)
    entity = generate_entity(entity_rows, users, end_us, args.seed)
    pq.write_table(pa.Table.from_pandas(features, preserve_index=False), data / "features.parquet")
    pq.write_table(pa.Table.from_pandas(entity, preserve_index=False), data / "entity.parquet")
    double = generate_features(2 * rows, users, end_us, args.seed + 2)
    pq.write_table(pa.Table.from_pandas(double, preserve_index=False), data / "x2" / "features.parquet")
    del double
    reference = reference_join(features, entity)
    losers = tie_losers(features)

    times: dict[str, float] = {}
    agreement: dict[str, dict[str, int]] = {}

    def check(name: str, runs: list[tuple[float, pa.Table]]) -> None:
        """The median time; every run's answer checked, the worst agreement kept."""
        times[name] = statistics.median(seconds for seconds, _ in runs)
        checked = [compare(table, reference, losers) for _, table in runs]
        agreement[name] = min(checked, key=lambda kinds: kinds["agree"])

    # Round robin, so that both see the same load on a shared machine.
    shipyard_once = shipyard_historical(work / "shipyard", data, entity)
    rounds = [(shipyard_once(), floor(data, entity)) for _ in range(args.repeat)]
    check("shipyard", [ours for ours, _ in rounds])
    check("DuckDB ASOF floor", [bare for _, bare in rounds])
    if not args.skip_feast:
        for mode in ("file", "duckdb"):
            name = f"Feast ({mode} offline store)"
            out = work / f"feast-{mode}.parquet"
            command = [str(FEAST_PYTHON), str(HERE / "_feast_peer.py"), "historical", "--data", str(data)]
            command += ["--repo", str(work / f"feast-{mode}"), "--offline", mode, "--out", str(out)]
            command += ["--repeat", str(args.repeat)]
            seconds = run_child(command, name)["seconds"]
            check(name, [(s, pq.read_table(f"{out}.{i}")) for i, s in enumerate(seconds)])

    rng = np.random.default_rng(args.seed + 3)
    lookup = rng.integers(0, users, 100).tolist()
    start_us, mat_end_us = end_us - 31 * DAY_US, end_us + 1800 * US
    serve: dict[str, dict[str, Any]] = {}
    online_agreement: dict[str, dict[str, int]] = {}
    child = [
        sys.executable,
        __file__,
        "--serve-child",
        "--calls",
        str(args.calls),
        "--users",
        ",".join(map(str, lookup)),
    ]
    child += ["--start-us", str(start_us), "--end-us", str(mat_end_us)]
    for name, path in (("shipyard", data / "features.parquet"), ("shipyard 2x rows", data / "x2" / "features.parquet")):
        out = work / f"{name.replace(' ', '-')}-online.parquet"
        repo = work / name.replace(" ", "-")
        repo.mkdir(exist_ok=True)
        serve[name] = run_child([*child, "--repo", str(repo), "--features", str(path), "--out", str(out)], name)
        if name == "shipyard":
            want = online_reference(features, lookup, time.time_ns() // 1000)
            online_agreement[name] = check_online(pd.read_parquet(out), want)
    if not args.skip_feast:
        name = "Feast"
        out = work / "feast-online.parquet"
        command = [str(FEAST_PYTHON), str(HERE / "_feast_peer.py"), "serve", "--data", str(data)]
        command += ["--repo", str(work / "feast-serve"), "--offline", "duckdb", "--out", str(out)]
        command += ["--start-us", str(start_us), "--end-us", str(mat_end_us), "--calls", str(args.calls)]
        command += ["--users", ",".join(map(str, lookup))]
        serve[name] = run_child(command, name)
        want = online_reference(features, lookup, time.time_ns() // 1000)
        online_agreement[name] = check_online(pd.read_parquet(out), want)
    report(times, agreement, serve, online_agreement, entity_rows, args.calls)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(
    times: dict[str, float],
    agreement: dict[str, dict[str, int]],
    serve: dict[str, dict[str, Any]],
    online_agreement: dict[str, dict[str, int]],
    entity_rows: int,
    calls: int,
) -> None:
    print(f"\nhistorical retrieval of {entity_rows:,} entity rows (agreement with the reference join):")
    for name, seconds in times.items():
        kinds = agreement[name]
        share = 100 * kinds["agree"] / entity_rows
        wrong = ", ".join(f"{k}: {n:,}" for k, n in kinds.items() if k != "agree")
        print(f"  {name:32} {seconds:8.3f} s   {share:7.3f}% agree" + (f"   ({wrong})" if wrong else ""))
    print("\nmaterialization into the SQLite online store, and online reads of 100 entities:")
    for name, r in serve.items():
        lat = sorted(r["latencies"])
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        kinds = online_agreement.get(name)
        check = ""
        if kinds is not None:
            check = f"   {kinds['agree']}/100 agree" + "".join(f", {k}: {n}" for k, n in kinds.items() if k != "agree")
        print(
            f"  {name:18} materialize {r['seconds']:7.3f} s   peak RSS {r['peak_rss'] / 2**20:5.0f} MiB "
            f"({r['rss_before'] / 2**20:4.0f} before)   "
            f"online p50 {_ms(statistics.median(lat))}  p99 {_ms(p99)} over {calls} calls{check}"
        )
    targets(times, agreement, serve, online_agreement, entity_rows)


def targets(
    times: dict[str, float],
    agreement: dict[str, dict[str, int]],
    serve: dict[str, dict[str, Any]],
    online_agreement: dict[str, dict[str, int]],
    entity_rows: int,
) -> None:
    def p99(name: str) -> float:
        lat = sorted(serve[name]["latencies"])
        return float(lat[min(len(lat) - 1, int(0.99 * len(lat)))])

    rows = [
        ("historical: ASOF floor / shipyard (>= 1/1.3)", times["DuckDB ASOF floor"] / times["shipyard"], 1 / 1.3),
        (
            "memory: peak RSS 2x rows / 1x rows (flat)",
            serve["shipyard 2x rows"]["peak_rss"] / serve["shipyard"]["peak_rss"],
            None,
        ),
        ("agreement: shipyard historical (100%)", agreement["shipyard"]["agree"] / entity_rows, 1.0),
        ("agreement: shipyard online (100%)", online_agreement["shipyard"]["agree"] / 100, 1.0),
    ]
    if "Feast" in serve:
        rows += [
            (
                "historical: Feast DuckDB / shipyard (>= 2x)",
                times["Feast (duckdb offline store)"] / times["shipyard"],
                2,
            ),
            (
                "materialization: Feast / shipyard (>= 10x)",
                serve["Feast"]["seconds"] / serve["shipyard"]["seconds"],
                10,
            ),
            ("online p99: Feast / shipyard (>= 5x)", p99("Feast") / p99("shipyard"), 5),
        ]
    print("\ntargets:")
    for label, value, goal in rows:
        verdict = "" if goal is None else ("  met" if value >= goal - 1e-12 else "  NOT met")
        print(f"  {label:48} {value:8.3f}{verdict}")


if __name__ == "__main__":
    main()
