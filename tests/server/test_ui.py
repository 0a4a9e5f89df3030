"""The web UI in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real uvicorn.

One store is populated for the module (runs with metric histories, a model with lineage, a flow
run, a monitoring report); each test opens pages and asserts on the rendered DOM, then saves a
screenshot under ``tests/_screenshots/`` (CI prints that folder's listing).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.flows import flow, task
from shipyard.server._thread import serving
from shipyard.store import Stores, close_stores, open_stores
from shipyard.store.entities import MetricPoint
from shipyard.testing import free_port, in_ci, port_open, sqlite_settings

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
SHOTS = Path(__file__).resolve().parent.parent / "_screenshots"
SHIPYARD = Path(sys.executable).with_name("shipyard")


def _need_browser() -> None:
    reason = ""
    if not Path(CHROMIUM).exists():
        reason = "chromium is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install 'playwright>=1.40')"
    if reason:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the UI tests must run)")
        pytest.skip(reason)


@task
def extract() -> list[int]:
    print("extracted 3 rows")
    return [1, 2, 3]


@task
def square(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@task
def summarize(xs: list[int], ys: list[int]) -> int:
    return sum(xs) + sum(ys)


@flow
def etl() -> int:
    xs = extract()
    return summarize(xs, square(xs)).result()


def _populate(settings: Settings, workdir: Path) -> dict[str, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    ids = {}
    for name, lr, auc in (("alpha", 0.1, 0.71), ("beta", 0.01, 0.93), ("gamma", 0.5, 0.82)):
        with sy.start_run(experiment="churn", name=name) as run:
            sy.log_params({"lr": lr, "model": "lgbm" if name != "gamma" else "xgb"})
            for step in range(5):
                sy.log_metrics({"loss": 1.0 / (step + 1) + lr, "auc": auc * (step + 1) / 5}, step=step)
            ids[name] = run.id
    train = pd.DataFrame({"f0": [0.1, 0.4, 0.5, 0.9, 0.2, 0.7], "y": [0, 0, 1, 1, 0, 1]})
    (workdir / "notes.txt").write_text("<b>not bold</b> training notes")
    (workdir / "sample.csv").write_text("f0,y\n0.1,0\n0.9,1\n")
    (workdir / "dot.png").write_bytes(base64.b64decode(PNG))
    with sy.start_run(experiment="churn", name="model-run") as run:
        sy.log_dataset(train, name="churn-train")
        sy.log_metric("auc", 0.88, step=0)
        sy.log_artifact(workdir / "notes.txt")
        sy.log_artifact(workdir / "sample.csv")
        sy.log_artifact(workdir / "dot.png")
        model = LogisticRegression().fit(train[["f0"]], train["y"])
        version = sy.log_model(model, name="churn", input_example=train[["f0"]].head(2))
        ids["model-run"] = run.id
    sy.set_alias("churn", "champion", version.version)
    from shipyard.serving.prediction_log import open_deployment_run

    # What `shipyard serve churn@champion` records when it starts (a run per arm in experiment serving).
    open_deployment_run(open_stores(settings), ref="churn@champion", model="churn", arm="primary", version=1)
    ids["flow_run"] = etl.run().id
    _features(workdir, train)
    for step, psi in enumerate((0.02, 0.05, 0.31)):
        tags = {
            "shipyard.monitoring.ref": "churn@champion",
            "shipyard.monitoring.step": str(step),
            "shipyard.monitoring.firing": "drift_f0" if psi > 0.2 else "",
        }
        with sy.start_run(experiment="monitoring", name="churn@champion", tags=tags) as run:
            # As ``monitor`` stores a window: values ``psi(f0)`` as metric ``psi.f0``, report.json beside.
            values = {
                "drift_score.f0": psi,
                "psi.f0": psi,
                "share_drifted": float(psi > 0.2),
                "accuracy": 0.9 - psi / 2,
            }
            sy.log_metrics({**values, "rows": 100.0}, step=step)
            column = {"name": "f0", "kind": "numeric", "method": "psi", "score": psi, "drifted": psi > 0.2}
            report = {"drift": {"drifted": ["f0"] if psi > 0.2 else [], "columns": {"f0": column}}}
            run.log_text(json.dumps(report), "report.json")
    return ids


def _features(workdir: Path, train: Any) -> None:
    """A feature view, materialized, read by a model version through a feature service."""
    import datetime as dt

    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource

    day = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    events = pd.DataFrame({"user_id": [1, 2], "ts": [day, day], "clicks": [3.0, 4.0], "sessions": [1, 2]})
    events.to_parquet(workdir / "events.parquet")
    user = Entity("user", join_keys=["user_id"])
    view = FeatureView(
        "activity",
        entities=[user],
        schema=[Field("clicks", "float"), Field("sessions", "int")],
        source=FileSource(workdir / "events.parquet", timestamp_field="ts"),
        ttl="2d",
        owner="growth",
    )
    service = FeatureService("ctr", features=["activity:clicks"], owner="growth")
    store = FeatureStore(online_store=f"sqlite:///{workdir / 'online.db'}")
    try:
        store.apply([user, view, service])
        store.materialize(end=day + dt.timedelta(days=1))
        frame = pd.DataFrame({"clicks": [1.0, 2.0]})
        with sy.start_run(experiment="features", name="ctr-run"):
            sy.log_model(DummyClassifier().fit(frame, [0, 1]), "ctr", input_example=frame, features=service)
    finally:
        store.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A populated SQLite store, served by ``build_app`` on a real uvicorn on loopback."""
    from shipyard.cli.ui import build_app

    workdir = tmp_path_factory.mktemp("ui")
    settings = sqlite_settings(workdir, flush_interval=0.2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIPYARD_STORE", settings.store_uri)
        mp.setenv("SHIPYARD_ARTIFACTS", settings.artifact_uri)
        mp.chdir(workdir)
        ids = _populate(settings, workdir)
        stores = open_stores(settings)
        try:
            with serving(build_app(stores)) as base:
                yield {"base": base, "ids": ids, "settings": settings, "stores": stores}
        finally:
            close_stores(settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, with no network beyond loopback needed."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, ui: dict[str, Any]) -> Iterator[Any]:
    """A fresh page that fails the test on a request outside the UI's host or a script/CSP error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    outside: list[str] = []
    errors: list[str] = []  # script errors and CSP violations (auth's policy: no inline script or style)
    tab.on("request", lambda r: None if r.url.startswith(ui["base"]) else outside.append(r.url))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 40" not in m.text else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    assert outside == [], "the UI fetched something from outside the server"
    assert errors == [], "the page logged errors"
    context.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert (SHOTS / f"{name}.png").stat().st_size > 0


def test_runs_page_filters_and_sorts_through_htmx(page: Any, ui: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.goto(f"{ui['base']}/ui/")
    page.click("#experiments a:has-text('churn')")
    page.wait_for_selector("#runs tbody tr[data-run]")
    assert page.locator("#runs tbody tr[data-run]").count() == 4

    page.fill("#run-filter input[name=filter]", "params.model = 'lgbm'")
    page.click("#run-filter button")
    expect(page.locator("#runs tbody tr[data-run]")).to_have_count(2)
    names = page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts()
    assert sorted(names) == ["alpha", "beta"]
    assert "filter=" in page.url  # htmx pushed the filtered URL

    page.click("#runs thead a.sort:has-text('auc')")
    page.wait_for_selector("#runs thead a.sort:has-text('auc ▼')")
    assert page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts() == ["beta", "alpha"]
    page.click("#runs thead a.sort:has-text('auc')")
    page.wait_for_selector("#runs thead a.sort:has-text('auc ▲')")
    assert page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts() == ["alpha", "beta"]
    page.fill("#run-filter input[name=filter]", "params.model = 'lgbm' and metrics.auc > 0.1")
    page.click("#run-filter button")
    page.wait_for_selector("#run-filter input[value*='0.1']")
    # a new filter keeps the sort the table had
    assert page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts() == ["alpha", "beta"]
    _shot(page, "runs")


def test_runs_page_pages_server_side_through_htmx(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/experiments/churn?order=name%20asc&size=3")
    first = page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts()
    assert first == ["alpha", "beta", "gamma"]
    page.click("#next-page")
    page.wait_for_selector("#runs tbody tr[data-run] >> text=model-run")
    assert page.locator("#runs tbody tr[data-run] td:nth-child(2)").all_inner_texts() == ["model-run"]
    assert page.locator("#next-page").count() == 0
    assert "page_token=" in page.url


def test_a_writer_triggers_a_flow_run_with_the_csrf_token(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/flows")
    row = page.locator("#flows tr:has-text('etl')")
    assert row.locator("input[name=csrf_token]").get_attribute("value")
    row.locator("button.trigger").click()
    page.wait_for_selector("svg#dag")
    assert "/ui/flows/runs/" in page.url
    assert page.locator(".meta .state").inner_text() == "pending"
    assert "ui" in page.locator(".meta").inner_text().split(" · ")  # the trigger recorded


def test_a_post_without_the_csrf_token_is_refused(ui: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{ui['base']}/ui/flows/etl/trigger", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _status(url: str, token: str | None = None, *, post: bool = False) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=b"" if post else None, headers=headers, method="POST" if post else "GET")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_with_token_auth_readers_read_and_only_writers_trigger(ui: dict[str, Any]) -> None:
    from shipyard.server.app import create_app
    from shipyard.server.auth import issue_token

    stores = ui["stores"]
    _, reader = issue_token(stores.auth, "ui-reader", "reader")
    _, writer = issue_token(stores.auth, "ui-writer", "writer")
    with serving(create_app(stores)) as base:
        assert _status(f"{base}/ui/experiments/churn") == 303  # to the login page
        assert _status(f"{base}/ui/experiments/churn", reader) == 200
        assert _status(f"{base}/ui/flows/etl/trigger", reader, post=True) == 403
        assert _status(f"{base}/ui/flows/etl/trigger", writer, post=True) == 303  # to the new flow run


def test_shipyard_ui_serves_the_pages_on_loopback(ui: dict[str, Any]) -> None:
    port = free_port()
    env = {**os.environ, "SHIPYARD_STORE": ui["settings"].store_uri, "SHIPYARD_ARTIFACTS": ui["settings"].artifact_uri}
    process = subprocess.Popen([str(SHIPYARD), "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            body = response.read().decode()
        assert response.url.endswith("/ui/")
        assert 'href="/ui/experiments/churn"' in body
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_bad_page_size_names_the_field(ui: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{ui['base']}/ui/experiments/churn?size=0", timeout=10)
    assert caught.value.code == 400
    assert "size: expected 1-500 runs a page, got 0" in caught.value.read().decode()


def test_features_page_shows_the_catalog_freshness_and_users(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/features")
    row = page.locator("#features tbody tr:has(td:text-is('activity'))")
    cells = row.locator("td").all_inner_texts()
    assert cells[3:5] == ["growth", "clicks, sessions"]
    assert cells[5] == "2026-11-02 00:00:00"  # materialized up to the last event
    assert cells[7].strip() == "ctr/1"
    service = page.locator("#features tbody tr:has(td:text-is('ctr'))").locator("td").all_inner_texts()
    assert service[0] == "feature_service"
    assert service[5] == "—"  # a service is not materialized itself
    assert service[7].strip() == "ctr/1"
    _shot(page, "features")


def test_datasets_page_shows_versions_schema_and_statistics(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/datasets")
    page.click("#datasets a:has-text('churn-train')")
    page.wait_for_selector("#schema")
    schema = dict(
        zip(page.locator("#schema th").all_inner_texts(), page.locator("#schema td").all_inner_texts(), strict=True)
    )
    assert set(schema) == {"f0", "y"}
    assert page.locator("#stats th").all_inner_texts() == ["f0", "y"]
    assert page.locator("#dataset-versions li").count() == 1
    _shot(page, "dataset")


def test_a_bad_filter_is_one_message_naming_what_is_wrong(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/experiments/churn")
    page.fill("#run-filter input[name=filter]", "metrics.auc >>> 1")
    page.click("#run-filter button")
    alert = page.wait_for_selector("#runs-table .error")
    assert "auc" in alert.inner_text() or "filter" in alert.inner_text().lower()
    assert "Traceback" not in page.content()


def test_compare_two_runs_side_by_side_with_overlaid_charts(page: Any, ui: dict[str, Any]) -> None:
    alpha, beta = ui["ids"]["alpha"], ui["ids"]["beta"]
    page.goto(f"{ui['base']}/ui/experiments/churn")
    page.check(f"tr[data-run='{alpha}'] input[type=checkbox]")
    page.check(f"tr[data-run='{beta}'] input[type=checkbox]")
    page.click("#compare-button")
    page.wait_for_selector("#compare")
    headers = page.locator("#compare thead th a").all_inner_texts()
    assert sorted(headers) == ["alpha", "beta"]
    assert page.locator("#compare tr.param.differs th").all_inner_texts() == ["lr"]
    page.wait_for_selector("figure.chart .uplot canvas")
    loss = page.locator("figure.chart[data-title='loss']")
    legend = loss.locator(".u-legend").inner_text()
    assert f"alpha ({alpha[:8]})" in legend
    assert f"beta ({beta[:8]})" in legend
    _shot(page, "compare")


def test_run_page_lists_artifacts_with_previews_escaped(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/runs/{ui['ids']['model-run']}")
    assert (
        page.locator("#artifacts li:has-text('notes.txt') pre.preview").inner_text() == "<b>not bold</b> training notes"
    )
    assert page.locator("#artifacts b").count() == 0  # escaped, not rendered
    assert page.locator("#artifacts table.csv tbody tr").count() == 2
    assert page.locator("#lineage .node.dataset").count() == 1
    image = page.locator("#artifacts img.preview")
    assert image.get_attribute("alt") == "dot.png"
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1  # the browser decoded it
    _shot(page, "run")


def test_model_page_draws_the_lineage_graph(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/models")
    page.click("#models a:has-text('churn')")
    page.wait_for_selector("svg#lineage")
    assert page.locator("#model-card h2").inner_text() == "Model card: churn/1"
    for kind, label in (("dataset", "churn-train@1"), ("run", "churn/model-run"), ("model_version", "churn/1")):
        assert page.locator(f"svg#lineage g.node.{kind} text.label").first.text_content() == label
    assert page.locator("svg#lineage g.node.deployment text.label").text_content() == "churn@champion (primary)"
    assert page.locator("svg#lineage path.edge").count() >= 3
    _shot(page, "model-lineage")


def test_flow_run_page_draws_the_dag_with_task_states_and_logs(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/flows")
    page.click(f"#flow-runs a[href='/ui/flows/runs/{ui['ids']['flow_run']}']")
    page.wait_for_selector("svg#dag")
    nodes = page.locator("svg#dag g.node")
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.id)")) == ["extract-0", "square-0", "summarize-0"]
    assert page.locator("svg#dag g.node.succeeded").count() == 3
    assert page.locator("svg#dag path.edge").count() == 3
    assert "extracted 3 rows" in page.locator("#task-logs").inner_text()
    _shot(page, "flow-dag")


def test_monitoring_page_draws_the_drift_chart_and_the_firing_alert(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/monitoring")
    page.wait_for_selector("#drift-chart .uplot canvas")
    drift_legend = page.locator("#drift-chart .u-legend").inner_text()
    assert "drift_score.f0" in drift_legend
    assert "share_drifted" in drift_legend
    assert "accuracy" not in drift_legend
    assert "psi.f0" not in drift_legend  # raw statistics stay on the run page
    performance_legend = page.locator("#performance-chart .u-legend").inner_text()
    assert "accuracy" in performance_legend
    assert "rows" not in performance_legend
    assert page.locator("#alerts li.firing").inner_text() == "drift_f0 firing"
    assert page.locator("#drift-columns tr.drifted td").all_inner_texts() == ["f0", "psi", "0.31", "yes"]
    _shot(page, "monitoring-drift")


def test_serving_page_lists_where_each_version_is_served(page: Any, ui: dict[str, Any]) -> None:
    page.goto(f"{ui['base']}/ui/serving")
    cells = page.locator("#deployments tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == ["churn@champion", "primary", "1", "1"]
    assert cells[5] == "1"  # one start
    page.click("#deployments a:has-text('churn@champion')")
    page.wait_for_selector("svg#lineage")
    assert page.locator("svg#lineage g.node.deployment text.label").text_content() == "churn@champion (primary)"
    _shot(page, "serving")


def test_no_page_references_an_asset_outside_the_server(ui: dict[str, Any]) -> None:
    ids = ui["ids"]
    paths = [
        "/ui/",
        "/ui/experiments/churn",
        f"/ui/runs/{ids['model-run']}",
        f"/ui/compare?id={ids['alpha']}&id={ids['beta']}",
        "/ui/models/churn/1",
        "/ui/datasets",
        "/ui/datasets/churn-train",
        "/ui/features",
        "/ui/flows",
        f"/ui/flows/runs/{ids['flow_run']}",
        "/ui/serving",
        "/ui/monitoring",
    ]
    for path in paths:
        with urllib.request.urlopen(ui["base"] + path, timeout=10) as response:
            html = response.read().decode()
            policy = response.headers["Content-Security-Policy"]
        assert response.status == 200, path
        assert "script-src 'self';" in policy, path  # auth's security headers on every UI page
        for marker in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import"):
            assert marker not in html, f"{path} references an outside asset ({marker})"
        assert "/ui/static/vendor/htmx-2.0.11.min.js" in html


def test_a_missing_run_is_a_404_page_not_a_traceback(ui: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{ui['base']}/ui/runs/nope", timeout=10)
    assert caught.value.code == 404
    body = caught.value.read().decode()
    assert "nope" in body
    assert "Traceback" not in body


def test_cli_ui_refuses_a_non_loopback_host_with_exit_2() -> None:
    result = subprocess.run(
        [str(SHIPYARD), "ui", "--host", "0.0.0.0", "--port", "5999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--host" in result.stderr
    assert "loopback" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_pages_render_and_sort_on_both_engines(stores: Stores) -> None:
    from shipyard.cli.ui import build_app

    experiment = stores.runs.create_experiment("engines")
    now = time.time()
    for i, auc in enumerate((0.7, 0.9, 0.8)):
        run = stores.runs.create_run(
            experiment.id, name=f"r{i}", user="t", parent_run_id=None, lineage={}, tags={}, start_time=now + i
        )
        stores.runs.log_params(run.id, {"model": "lgbm" if i else "xgb"})
        stores.runs.end_run(run.id, "FINISHED", now + i + 1, [MetricPoint("auc", auc, 0, now)])
    with serving(build_app(stores)) as base:
        query = "filter=params.model%20%3D%20%27lgbm%27&order=metrics.auc%20desc"
        with urllib.request.urlopen(f"{base}/ui/experiments/engines?{query}", timeout=10) as response:
            body = response.read().decode()
        assert re.findall(r'<a href="/ui/runs/[^"]+">(r\d)</a>', body) == ["r1", "r2"]  # lgbm only, auc 0.9 then 0.8
        for path in ("/ui/", "/ui/models", "/ui/datasets", "/ui/features", "/ui/flows", "/ui/monitoring"):
            with urllib.request.urlopen(base + path, timeout=10) as response:
                assert response.status == 200, path


def test_graph_layout_puts_nodes_in_columns_by_longest_path_and_skips_under_the_boxes() -> None:
    from shipyard.server._ui_svg import NODE_H, GraphNode, layout

    nodes = [GraphNode(n, n, "task") for n in ("c", "a", "b")]
    drawn = layout(nodes, [("a", "b", ""), ("b", "c", ""), ("a", "c", "")])
    x = {box.id: box.x for box in drawn.boxes}
    assert x["a"] < x["b"] < x["c"]  # c follows b though a also feeds it
    skip = next(arrow for arrow in drawn.arrows if (arrow.source, arrow.target) == ("a", "c"))
    control_y = int(skip.path.split(" ")[1].split(",")[1])
    assert control_y > max(box.y for box in drawn.boxes) + NODE_H  # below every box, not through b
    assert drawn.height > control_y * 3 // 4


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_report_stored_by_monitor_draws_on_the_monitoring_page(stores: Stores, browser: Any) -> None:
    import numpy as np

    from shipyard.cli.ui import build_app
    from shipyard.monitoring import monitor
    from tests.monitoring.conftest import churn_traffic, train_churn, write_log

    model, frame, _ = train_churn()
    with sy.start_run(experiment="churn"):
        version = sy.log_model(model, "churn", input_example=frame.head(5), training_data=frame)
    sy.set_alias("churn", "champion", version.version)
    traffic, labels = churn_traffic(1, 300, shift=12.0)
    outputs = np.asarray(sy.load_model("churn@champion").predict(traffic), dtype=np.float64)
    _, ids = write_log(stores, model="churn", inputs={c: traffic[c].to_numpy() for c in traffic.columns},
                       outputs=outputs, at=time.time() - 600)  # fmt: skip
    sy.log_labels(ids, labels, model="churn")
    report = monitor("churn@champion", window="1h", rules=["churn-drift: psi(tenure) > 0.2"])
    assert "tenure" in report.drift.drifted  # type: ignore[union-attr]

    context = browser.new_context()
    with serving(build_app(stores)) as base:
        page = context.new_page()
        page.goto(f"{base}/ui/monitoring?ref=churn%40champion")
        page.wait_for_selector("#drift-chart .uplot canvas")
        assert "drift_score.tenure" in page.locator("#drift-chart .u-legend").inner_text()
        assert "roc_auc" in page.locator("#performance-chart .u-legend").inner_text()
        assert page.locator("#alerts li.firing").all_inner_texts() == [f"{name} firing" for name in report.firing]
        drifted = page.locator("#drift-columns tr.drifted td:first-child").all_inner_texts()
        assert sorted(drifted) == sorted(report.drift.drifted)  # type: ignore[union-attr]
        _shot(page, "monitoring-real-report")
    context.close()
