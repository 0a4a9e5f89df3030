"""The web UI: server-rendered pages (Jinja2 + htmx) mounted into the server app.

Every page is rendered on the server from the stores; htmx swaps the runs table when the
filter, the sort or the page changes, and the vendored uPlot draws metric charts from JSON
the page carries. Nothing is fetched from outside the server: htmx and uPlot live in
``shipyard/ui/static/vendor`` beside their licenses. Autoescaping is on for every template.

Example:
    >>> app = FastAPI()                          # doctest: +SKIP
    >>> mount_ui(app, open_stores(settings))     # doctest: +SKIP   # pages under /ui/
"""

from __future__ import annotations

import mimetypes
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from shipyard.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.server import _ui_data as data
from shipyard.server import auth
from shipyard.store import Stores
from shipyard.store.entities import FlowRunRequest

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _when(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) if value else "-"


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(UI_DIR / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["when"] = _when
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    env.filters["num"] = lambda v: f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v))
    return env


def _csrf(request: Any) -> str:
    """The session's CSRF token for forms (auth's middleware checks it on every POST)."""
    return auth.csrf_token(request)


def _route_class(env: Any) -> Any:
    """Routes whose missing objects and bad input are an HTML page with the message (404/400), no traceback."""

    class UIRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def handle(request: Any) -> Any:
                try:
                    return await handler(request)
                except (NotFoundError, InvalidInputError) as exc:
                    status = 404 if isinstance(exc, NotFoundError) else 400
                    html = env.get_template("error.html").render(title="Not found" if status == 404 else "Bad input",
                                                                 message=str(exc))  # fmt: skip
                    return HTMLResponse(html, status_code=status)

            return handle

    return UIRoute


def mount_ui(app: Any, stores: Any) -> None:  # noqa: C901 - one small closure per page
    """Add the UI's pages (under ``/ui/``) and static files (``/ui/static``) to ``app``."""

    env = _environment()
    s: Stores = stores
    reader = [Depends(auth.role_required("reader"))]
    router = APIRouter(prefix="/ui", dependencies=reader, include_in_schema=False, route_class=_route_class(env))

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(request=request, csrf=_csrf(request), **context)
        return HTMLResponse(html, status_code=status)

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        experiments = [(e, s.runs.count_runs(e.id)) for e in s.runs.list_experiments()]
        return page(request, "experiments.html", title="Experiments", experiments=experiments)

    @router.get("/experiments/{name}", response_class=HTMLResponse)
    def runs_page(
        request: Request, name: str, filter: str = "", order: str = "", page_token: str = "", size: int = PAGE_SIZE
    ) -> HTMLResponse:
        experiment = s.runs.get_experiment(name)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidInputError(f"size: expected 1-{MAX_PAGE_SIZE} runs a page, got {size}", field="size")
        context: dict[str, Any] = {
            "experiment": experiment,
            "filter": filter,
            "order": order,
            "error": None,
            "size": size,
        }
        try:
            found = s.runs.search_runs(
                [experiment.id],
                filter=filter or None,
                order_by=[order] if order else ["start_time desc"],
                max_results=size,
                page_token=page_token or None,
            )
        except (InvalidInputError, ShipyardError) as exc:
            found, context["error"] = [], str(exc)  # type: ignore[assignment]
        params, metrics = data.run_columns(found)
        context.update(runs=found, params=params, metrics=metrics, next_token=getattr(found, "next_page_token", None))
        context["sort_link"] = lambda key: _sort_link(name, filter, order, key) + f"&size={size}"
        status = 400 if context["error"] else 200
        template = "_runs_table.html" if request.headers.get("HX-Request") else "runs.html"
        return page(request, template, status, title=f"Runs of {name}", **context)

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        run = s.runs.get_run(run_id)
        artifacts = [(a, data.preview(s, a)) for a in s.runs.list_artifacts(run_id)]
        return page(
            request,
            "run.html",
            title=f"Run {run.name}",
            run=run,
            charts=data.run_charts(s, run),
            artifacts=artifacts,
            datasets=s.datasets.run_datasets([run_id]),
            versions=s.models.versions_for_runs([run_id]),
            lineage=data.lineage_or_none(s, f"run:{run_id}"),
        )

    @router.get("/runs/{run_id}/artifacts/{path:path}")
    def artifact(run_id: str, path: str) -> Response:
        refs = [a for a in s.runs.list_artifacts(run_id, path) if a.path == path]
        if not refs:
            raise NotFoundError(f"run {run_id!r} has no artifact {path!r}", field="path")
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if kind in ("text/html", "image/svg+xml", "application/xhtml+xml"):
            kind = "text/plain"  # an artifact is data, never a page of this origin
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path)}",
        }
        return Response(s.artifacts.get_bytes(refs[0].digest), media_type=kind, headers=headers)

    @router.get("/compare", response_class=HTMLResponse)
    def compare(request: Request) -> HTMLResponse:
        ids = [i for v in request.query_params.getlist("id") for i in v.split(",") if i]
        if len(ids) < 2:
            return page(request, "error.html", 400, title="Compare", message="id: pick at least two runs to compare")
        runs = [s.runs.get_run(i) for i in ids[:10]]
        param_rows = [(k, [r.params.get(k) for r in runs]) for k in sorted({k for r in runs for k in r.params})]
        metric_keys = sorted({k for r in runs for k in r.metrics})
        charts = data.compare_charts(s, runs)
        return page(request, "compare.html", title="Compare runs", runs=runs, param_rows=param_rows,
                    metric_keys=metric_keys, charts=charts)  # fmt: skip

    @router.get("/models", response_class=HTMLResponse)
    def models(request: Request) -> HTMLResponse:
        return page(request, "models.html", title="Models", models=s.models.list_registered_models())

    @router.get("/models/{name}", response_class=HTMLResponse)
    def model(request: Request, name: str) -> Response:
        registered = s.models.get_registered_model(name)
        if registered.latest_version is None:
            return page(request, "error.html", 404, title=name, message=f"model {name!r} has no versions")
        return RedirectResponse(f"/ui/models/{quote(name)}/{registered.latest_version}", 303)

    @router.get("/models/{name}/{version}", response_class=HTMLResponse)
    def model_version(request: Request, name: str, version: int) -> HTMLResponse:
        registered = s.models.get_registered_model(name)
        chosen = s.models.get_model_version(name, version)
        return page(
            request,
            "model.html",
            title=f"{name}/{version}",
            model=registered,
            version=chosen,
            versions=s.models.list_model_versions(name),
            lineage=data.lineage_or_none(s, f"{name}/{version}"),
        )

    @router.get("/datasets", response_class=HTMLResponse)
    def datasets(request: Request) -> HTMLResponse:
        return page(request, "datasets.html", title="Datasets", datasets=s.datasets.list_datasets())

    @router.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset(request: Request, name: str, version: int | None = None) -> HTMLResponse:
        chosen = s.datasets.get_dataset_version(name, version)
        return page(request, "dataset.html", title=f"Dataset {name}", dataset=chosen,
                    versions=s.datasets.list_dataset_versions(name),
                    runs=s.datasets.dataset_runs(name, chosen.version))  # fmt: skip

    @router.get("/features", response_class=HTMLResponse)
    def features(request: Request) -> HTMLResponse:
        return page(request, "features.html", title="Features", views=data.feature_catalog(s), now=time.time())

    @router.get("/flows", response_class=HTMLResponse)
    def flows(request: Request) -> HTMLResponse:
        return page(
            request, "flows.html", title="Flows", flows=s.flows.list_flows(), runs=s.flows.list_flow_runs(limit=100)
        )

    @router.get("/flows/runs/{run_id}", response_class=HTMLResponse)
    def flow_run(request: Request, run_id: str, task: str = "") -> HTMLResponse:
        found = s.flows.get_flow_run(run_id)
        logs = s.flows.read_task_logs(run_id, task_key=task or None, limit=2000)
        return page(request, "flow_run.html", title=f"Flow run {found.flow_name}", run=found,
                    dag=data.dag_svg(found), logs=logs, task=task)  # fmt: skip

    @router.post("/flows/{name}/trigger", dependencies=[Depends(auth.role_required("writer"))])
    def trigger(name: str) -> Response:
        flow = s.flows.find_flow(name)
        if flow is None:
            raise NotFoundError(f"flow {name!r} is not registered", field="name")
        request_ = FlowRunRequest(flow_name=name, params={}, trigger="ui", entrypoint=flow.entrypoint)
        queued = s.flows.enqueue_flow_runs([request_])
        target = f"/ui/flows/runs/{queued[0].id}" if queued else "/ui/flows"
        return RedirectResponse(target, 303)

    @router.get("/serving", response_class=HTMLResponse)
    def serving(request: Request) -> HTMLResponse:
        return page(request, "serving.html", title="Serving", rows=data.deployments(s))

    @router.get("/monitoring", response_class=HTMLResponse)
    def monitoring(request: Request, ref: str = "") -> HTMLResponse:
        refs = data.monitored_refs(s)
        chosen = ref or next(iter(refs), "")
        view = data.monitoring_view(s, refs[chosen]) if chosen in refs else None
        return page(request, "monitoring.html", title="Monitoring", refs=refs, chosen=chosen, view=view)

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=UI_DIR / "static"), name="ui-static")


def _sort_link(experiment: str, filter: str, order: str, key: str) -> str:
    """The runs page sorted by ``key``: descending first, flipped when it is already the sort."""
    direction = "asc" if order == f"{key} desc" else "desc"
    query = f"filter={quote(filter, safe='')}&order={quote(f'{key} {direction}', safe='')}"
    return f"/ui/experiments/{quote(experiment, safe='')}?{query}"


__all__ = ["mount_ui"]
