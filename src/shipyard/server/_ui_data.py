"""What the UI's pages show, read from the stores and the capabilities' public functions.

Each function returns plain values for one template; the routes in :mod:`shipyard.server.ui`
stay thin. Charts get their series as ``{"x": [...], "series": {label: [...]}}``, aligned on x
with ``None`` where a series has no point, which is what uPlot draws.
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.errors import NotFoundError
from shipyard.lineage import LineageGraph, build_lineage, feature_uses
from shipyard.server._ui_svg import GraphNode, Layout, layout
from shipyard.store import Stores
from shipyard.store.entities import ArtifactRef, FlowRun, MetricPoint, Run

MONITORING = "monitoring"
# What the monitoring charts draw of the values ``monitor`` stores (``drift_score(plan)`` is stored as
# metric ``drift_score.plan``): each column's drift score (its flagging statistic) and the share of
# columns drifted; the model's quality metrics. Raw statistics and row counts stay on the run page.
DRIFT_VALUES = frozenset(("drift_score", "share_drifted"))
PERFORMANCE_VALUES = frozenset(("accuracy", "roc_auc", "f1", "rmse", "mae"))
PREVIEW_BYTES = 64 * 1024
MAX_COLUMNS = 8


def aligned(histories: Mapping[str, Sequence[MetricPoint]]) -> dict[str, Any]:
    """The chart data of several metric histories over steps: one x axis, one series per label."""
    steps = sorted({p.step for points in histories.values() for p in points})
    series = {}
    for label, points in histories.items():
        by_step = {p.step: p.value for p in points}
        series[label] = [by_step.get(s) for s in steps]
    return {"x": steps, "series": series}


def run_columns(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """The param and metric keys the runs table shows: the most common ones on this page."""

    def common(maps: Iterable[Mapping[str, Any]]) -> list[str]:
        counts: dict[str, int] = {}
        for mapping in maps:
            for key in mapping:
                counts[key] = counts.get(key, 0) + 1
        return sorted(sorted(counts), key=lambda k: -counts[k])[:MAX_COLUMNS]

    return common(r.params for r in runs), common(r.metrics for r in runs)


def run_charts(stores: Stores, run: Run) -> dict[str, dict[str, Any]]:
    """One chart per metric of the run, over steps."""
    return {key: aligned({key: stores.runs.get_metric_history(run.id, key)}) for key in sorted(run.metrics)}


def compare_charts(stores: Stores, runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """One chart per metric any of the runs logged, each run a series."""
    keys = sorted({k for r in runs for k in r.metrics})
    charts = {}
    for key in keys:
        histories = {
            f"{r.name} ({r.id[:8]})": stores.runs.get_metric_history(r.id, key) for r in runs if key in r.metrics
        }
        charts[key] = aligned(histories)
    return charts


def preview(stores: Stores, ref: ArtifactRef) -> dict[str, Any]:
    """How the run page shows an artifact: an image, a text excerpt, a CSV table, or only a link."""
    kind = mimetypes.guess_type(ref.path)[0] or ""
    if kind.startswith("image/") and kind != "image/svg+xml":
        return {"kind": "image"}
    if ref.size > PREVIEW_BYTES * 16:
        return {"kind": "none"}
    if not (
        kind.startswith("text/") or kind in ("application/json", "") or ref.path.endswith((".log", ".md", ".yaml"))
    ):
        return {"kind": "none"}
    head = stores.artifacts.get_bytes(ref.digest)[:PREVIEW_BYTES]
    text = head.decode("utf-8", errors="replace")
    if ref.path.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))[:21]
        return {"kind": "csv", "header": rows[0] if rows else [], "rows": rows[1:]}
    if "\x00" in text:
        return {"kind": "none"}
    return {"kind": "text", "text": text}


def graph_svg(graph: LineageGraph) -> Layout:
    """A lineage graph to draw: where a version was served, and each alias not served yet as the deployment it names."""
    nodes = [GraphNode(n.id, n.label, n.kind, _lineage_href(n.id), n.kind) for n in graph.nodes]
    edges = [(e.source, e.target, e.relation) for e in graph.edges]
    served = {str(n.attrs.get("ref")) for n in graph.of_kind("deployment")}
    for node in graph.of_kind("model_version"):
        name = node.label.rpartition("/")[0]
        for alias in node.attrs.get("aliases", []):
            if f"{name}@{alias}" in served:
                continue
            target = f"deployment:{name}@{alias}"
            nodes.append(GraphNode(target, f"{name}@{alias}", "deployment", None, "alias (served as)"))
            edges.append((node.id, target, "deployed_as"))
    return layout(nodes, edges)


def _lineage_href(node_id: str) -> str | None:
    kind, _, rest = node_id.partition(":")
    if kind == "run":
        return f"/ui/runs/{rest}"
    if kind == "model":
        name, _, version = rest.rpartition("/")
        return f"/ui/models/{name}/{version}"
    if kind == "dataset":
        return f"/ui/datasets/{rest.partition('@')[0]}"
    if kind in ("feature_view", "feature_service", "on_demand_feature_view"):
        return "/ui/features"
    return None


def lineage_or_none(stores: Stores, ref: str) -> Layout | None:
    """The drawn lineage of ``ref``, or ``None`` when there is nothing to draw."""
    try:
        return graph_svg(build_lineage(stores, ref))
    except NotFoundError:
        return None


def dag_svg(flow_run: FlowRun) -> Layout:
    """A flow run's DAG: one box per task run, coloured by its state, arrows from upstream tasks."""
    keys = {t.task_key for t in flow_run.tasks}
    nodes = [
        GraphNode(t.task_key, t.name if t.name == t.task_key else f"{t.task_key}", t.state.lower(), None, t.state)
        for t in flow_run.tasks
    ]
    edges = [(up, t.task_key, "") for t in flow_run.tasks for up in t.upstream if up in keys]
    return layout(nodes, edges)


def feature_catalog(stores: Stores) -> list[dict[str, Any]]:
    """Every feature view and service: fields, owner, freshness (a view's materialized event time), used by."""
    fresh = {m.view: m for m in stores.features.list_materializations()}
    used: dict[str, list[str]] = {}
    for use in feature_uses(stores):
        for view in (use.service, *use.views, *use.on_demand):
            used.setdefault(view, []).append(use.ref)
    rows = []
    for definition in stores.features.latest_feature_definitions():
        if definition.kind == "entity":
            continue
        spec = definition.spec
        schema = spec.get("schema") or spec.get("features") or []
        fields = [f.get("name", "") if isinstance(f, Mapping) else str(f) for f in schema]
        materialized = fresh.get(definition.name)
        rows.append(
            {
                "kind": definition.kind,
                "name": definition.name,
                "version": definition.version,
                "owner": spec.get("owner") or "",
                "fields": fields,
                "materializable": definition.kind == "feature_view",
                "fresh_until": materialized.max_event_time if materialized else None,
                "updated_at": materialized.updated_at if materialized else None,
                "used_by": used.get(definition.name, []),
            }
        )
    return rows


def monitored_refs(stores: Stores) -> dict[str, list[Run]]:
    """The monitored models (``name@alias``) and their report runs, oldest first."""
    experiment = stores.runs.find_experiment(MONITORING)
    if experiment is None:
        return {}
    page = stores.runs.search_runs(
        [experiment.id], filter=None, order_by=["start_time asc"], max_results=10_000, page_token=None
    )
    refs: dict[str, list[Run]] = {}
    for run in page:
        refs.setdefault(run.tags.get("shipyard.monitoring.ref", run.name), []).append(run)
    return refs


def monitoring_view(stores: Stores, runs: Sequence[Run]) -> dict[str, Any]:
    """One monitored model: drift and performance series over windows, the last window's columns, the alerts."""
    steps = [int(r.tags.get("shipyard.monitoring.step", i)) for i, r in enumerate(runs)]
    keys = sorted({k for r in runs for k in r.metrics})
    drift_keys = [k for k in keys if k.split(".", 1)[0] in DRIFT_VALUES]
    other = [k for k in keys if k in PERFORMANCE_VALUES]

    def chart(selected: Sequence[str]) -> dict[str, Any]:
        return {"x": steps, "series": {k: [r.metrics.get(k) for r in runs] for k in selected}}

    last = runs[-1]
    report = _report(stores, last)
    firing = [a for a in last.tags.get("shipyard.monitoring.firing", "").split(",") if a]
    return {
        "drift": chart(drift_keys) if drift_keys else None,
        "performance": chart(other) if other else None,
        "last": last,
        "report": report,
        "firing": firing,
        "alerts": (report or {}).get("alerts", {}),
    }


def _report(stores: Stores, run: Run) -> dict[str, Any] | None:
    refs = [r for r in stores.runs.list_artifacts(run.id, "report.json") if r.path == "report.json"]
    if not refs:
        return None
    data = json.loads(stores.artifacts.get_bytes(refs[0].digest))
    return data if isinstance(data, dict) else None


SERVING = "serving"  # the experiment `shipyard serve` records each served arm under


def deployments(stores: Stores, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Every reference and arm `shipyard serve` served (newest ``limit`` serving runs): versions, hosts, starts."""
    experiment = stores.runs.find_experiment(SERVING)
    if experiment is None:
        return []
    page = stores.runs.search_runs(
        [experiment.id], filter=None, order_by=["start_time desc"], max_results=limit, page_token=None
    )
    grouped: dict[tuple[str, str], list[Run]] = {}
    for run in page:
        key = (run.tags.get("shipyard.serving.ref", run.name), run.tags.get("shipyard.serving.arm", "primary"))
        grouped.setdefault(key, []).append(run)
    rows = []
    for (ref, arm), runs in sorted(grouped.items()):
        last = runs[0]
        model = last.tags.get("shipyard.serving.model", ref.partition("@")[0])
        rows.append(
            {
                "ref": ref,
                "arm": arm,
                "model": model,
                "version": last.lineage.get("version"),
                "versions": sorted({v for r in runs if isinstance(v := r.lineage.get("version"), int)}),
                "hosts": sorted({str(r.lineage.get("host", "?")) for r in runs}),
                "starts": len(runs),
                "last": last,
                "log_files": len(stores.runs.list_artifacts(last.id, "predictions/")),
            }
        )
    return rows
