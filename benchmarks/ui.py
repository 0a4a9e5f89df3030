"""The runs page with 10,000 runs: the full HTML response, and Chromium's load event, under a second.

Populates a fresh SQLite store with N runs (params ``lr``, ``model``, ``seed``; metrics ``auc``
and ``loss``), serves the UI (``shipyard ui``'s app) with a real uvicorn on loopback, and times

* the full HTML response of the first page of ``/ui/experiments/bench`` sorted by
  ``metrics.auc desc`` with the filter ``params.model = 'lgbm' and metrics.loss < 0.5``
  (server-side paging: 50 rows), and the htmx partial (the table alone) of the next page;
* in headless Chromium (Debian's), the page's load event (navigation start to loadEventEnd,
  htmx and uPlot loaded).

Every answer is checked against a reference computed from the generated values in Python
before any figure is printed: the run names on the page, in order, must be the reference's
top 50 (and the next page the following 50). A failed check prints no figure and exits 1.

Usage:
    .venv/bin/python benchmarks/ui.py              # 10,000 runs
    .venv/bin/python benchmarks/ui.py --runs 1000  # quick
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from shipyard.cli.ui import build_app
from shipyard.server._thread import serving
from shipyard.store import close_stores, open_stores
from shipyard.store.entities import MetricPoint
from shipyard.testing import sqlite_settings

FILTER = "params.model = 'lgbm' and metrics.loss < 0.5"
ORDER = "metrics.auc desc"
PAGE = 50
REPEATS = 15
ROW = re.compile(r'<tr data-run="([^"]+)">.*?<a href="/ui/runs/[^"]+">([^<]*)</a>', re.S)


def values(i: int) -> tuple[str, float, float]:
    """The model, auc and loss of run ``i``: deterministic, all aucs distinct."""
    model = ("lgbm", "xgb", "linear")[i % 3]
    auc = round(0.5 + ((i * 7919) % 10_007) / 20_014, 6)
    loss = round(((i * 104_729) % 9_973) / 9_973, 6)
    return model, auc, loss


def populate(stores: object, runs: int) -> None:
    s = stores  # the stores of a fresh settings
    experiment = s.runs.create_experiment("bench")  # type: ignore[attr-defined]
    now = time.time()
    for i in range(runs):
        model, auc, loss = values(i)
        run = s.runs.create_run(  # type: ignore[attr-defined]
            experiment.id, name=f"run-{i:05d}", user="bench", parent_run_id=None, lineage={}, tags={},
            start_time=now + i,
        )  # fmt: skip
        s.runs.log_params(run.id, {"lr": str(0.001 * (i % 100)), "model": model, "seed": str(i)})  # type: ignore[attr-defined]
        points = [MetricPoint("auc", auc, 0, now), MetricPoint("loss", loss, 0, now)]
        s.runs.end_run(run.id, "FINISHED", now + i + 1, points)  # type: ignore[attr-defined]


def reference(runs: int) -> list[str]:
    """Every matching run's name, sorted by auc descending: what the pages must show, in order."""
    rows = [(values(i), f"run-{i:05d}") for i in range(runs)]
    kept = [(auc, name) for (model, auc, loss), name in rows if model == "lgbm" and loss < 0.5]
    return [name for auc, name in sorted(kept, key=lambda r: -r[0])]


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started, body


def names(body: str) -> list[str]:
    return [html.unescape(name) for _id, name in ROW.findall(body)]


def next_token(body: str) -> str:
    found = re.search(r'id="next-page" href="[^"]*page_token=([^"&]+)', body)
    if found is None:
        raise RuntimeError("the first page has no next-page link")
    return urllib.parse.unquote(html.unescape(found.group(1)))


def browser_load(url: str) -> list[float]:
    """Chromium's navigation-start-to-load-event time of ``url``, REPEATS times (fresh context each)."""
    from playwright.sync_api import sync_playwright

    chromium_path = shutil.which("chromium") or "/usr/bin/chromium"
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(REPEATS):
            context = browser.new_context()
            page = context.new_page()
            page.goto(url, wait_until="load")
            rows = page.locator("#runs tbody tr[data-run]").count()
            if rows != PAGE:
                raise RuntimeError(f"Chromium shows {rows} rows, expected {PAGE}")
            timing = page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0];"
                " return t.loadEventEnd - t.startTime; }"
            )
            times.append(float(timing) / 1000)
            context.close()
        browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    if len(reference(args.runs)) < 2 * PAGE:
        parser.error(f"--runs {args.runs} gives fewer than two pages of matching runs; use 1000 or more")
    folder = Path(tempfile.mkdtemp(prefix="shipyard-ui-bench-"))
    settings = sqlite_settings(folder)
    stores = open_stores(settings)
    started = time.perf_counter()
    populate(stores, args.runs)
    print(f"populated {args.runs:,} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    query = urllib.parse.urlencode({"filter": FILTER, "order": ORDER})
    try:
        with serving(build_app(stores)) as base:
            url = f"{base}/ui/experiments/bench?{query}"
            expected = reference(args.runs)
            fetch(url)  # warm: templates compiled, connections opened
            first = [fetch(url) for _ in range(REPEATS)]
            if any(names(body) != expected[:PAGE] for _t, body in first):
                print("FAILED: the first page is not the reference's top 50 (no figures printed)")
                return 1
            partial_url = f"{url}&page_token={urllib.parse.quote(next_token(first[0][1]))}"
            partial = [fetch(partial_url, {"HX-Request": "true"}) for _ in range(REPEATS)]
            if any(names(body) != expected[PAGE : 2 * PAGE] or "<html" in body for _t, body in partial):
                print("FAILED: the htmx next page is not the reference's runs 51-100 (no figures printed)")
                return 1
            loads = browser_load(url)
    finally:
        close_stores(settings)
        shutil.rmtree(folder, ignore_errors=True)

    def row(what: str, times: list[float]) -> str:
        ms = sorted(t * 1000 for t in times)
        return f"| {what} | {statistics.median(ms):.1f} | {ms[int(len(ms) * 0.9) - 1]:.1f} | {ms[-1]:.1f} |"

    print(f"runs page, {args.runs:,} runs, filter {FILTER!r}, sort {ORDER!r}, {len(expected):,} match, 50 a page")
    print(f"every page checked against the reference order; {REPEATS} timed requests each")
    print("| what | median ms | p90 ms | max ms |")
    print("| --- | --- | --- | --- |")
    print(row("full HTML response, first page", [t for t, _ in first]))
    print(row("htmx partial, next page", [t for t, _ in partial]))
    print(row("Chromium load event, first page", loads))
    worst = max(statistics.median([t for t, _ in first]), statistics.median(loads))
    print(f"target < 1000 ms: {'met' if worst < 1 else 'NOT met'} (worst median {worst * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
