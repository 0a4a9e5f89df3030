"""The ASGI app: Open Inference Protocol v2 routes, a plain JSON route, metrics, admin, docs.

Routes:

    GET  /v2                                   server metadata
    GET  /v2/health/live | /v2/health/ready    liveness, readiness
    GET  /v2/models/{name}[/versions/{v}]      model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer   JSON or binary tensors (Triton's extension)
    POST /models/{name}/predict                {"records": [...]} or {"columns": [...], "data": [[...]]}
                                               (a model fed by its feature service: entity ids, e.g.
                                               {"records": [{"user_id": 42}]}; see _features.py)
    GET  /metrics                              Prometheus
    POST /admin/reload[?model=name]            check aliases now, swap what moved
    GET  /admin/models                         what each arm serves, its last load error
    GET  /docs                                 Swagger UI (from the package's files: works offline)
    GET  /openapi.json                         the OpenAPI document, request bodies included

Example:
    >>> from shipyard.serving import ModelSpec, ServingConfig, create_app
    >>> app = create_app(ServingConfig(models=(ModelSpec("churn@champion"),)))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shipyard.serving import _handlers as h
from shipyard.serving import _schemas as schemas
from shipyard.serving._access import AccessLog
from shipyard.serving._fast import DataRoutes
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.models import ServingConfig
from shipyard.serving.routing import Deployment, end_runs, load_deployments
from shipyard.tracking.api import HasStores, resolve_stores

logger = logging.getLogger("shipyard.serving")
DOCS_ASSETS = "/docs/assets"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Malformed request or input not matching the signature"},
    404: {"model": schemas.ErrorBody, "description": "No such model or version"},
    413: {"model": schemas.ErrorBody, "description": "Body over the size limit"},
    503: {"model": schemas.ErrorBody, "description": "Queue full: retry after Retry-After seconds"},
}


def create_app(
    config: ServingConfig,
    *,
    client: HasStores | None = None,
    deployments: dict[str, Deployment] | None = None,
    metrics: ServerMetrics | None = None,
) -> FastAPI:
    """Build the server's ASGI app; models are loaded now unless ``deployments`` were preloaded.

    Batchers, prediction-log writers and the registry watcher start with the app's
    lifespan and stop with it (queued requests finish, buffered predictions are written).

    Raises:
        NotFoundError: a reference points at nothing.
        InvalidInputError: the config serves a model twice or mixes models in one deployment.
    """
    stores = resolve_stores(client)
    metrics = metrics or ServerMetrics()
    owns_runs = deployments is None
    if deployments is None:
        deployments = load_deployments(config, stores=stores, metrics=metrics)
    state = h.ServingState(config, deployments, metrics)
    if owns_runs:
        state.extras["stores"] = stores  # the app made the prediction-log runs, so it ends them

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _start(state)
        try:
            yield
        finally:
            await _stop(state)

    app = _ServingApp(
        title="shipyard model server",
        description="Open Inference Protocol v2 and a plain JSON route for the models served here.",
        lifespan=lifespan,
        docs_url=None,  # served by _docs from the package's own Swagger UI files, not a CDN
        redoc_url=None,
    )
    app.state.serving = state
    app.front = _front(app, state)
    _errors(app)
    _v2_routes(app, state)
    _other_routes(app, state)
    _docs(app)
    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    return app


class _ServingApp(FastAPI):
    """FastAPI behind a front door: every request is logged, the data routes answered before FastAPI's stack.

    FastAPI's own ``__call__`` and middleware (telemetry, body limit, error and exception
    middleware, router) cost more event-loop time per request than the handlers of the
    data routes; :class:`DataRoutes` answers those directly and hands everything else,
    and the lifespan, to FastAPI.
    """

    front: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def behind(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling of ``scope``."""
        await super().__call__(scope, receive, send)


def _front(app: _ServingApp, state: h.ServingState) -> AccessLog:
    """Every request logged; the data routes answered at once, the rest handed to FastAPI."""
    return AccessLog(
        DataRoutes(
            app.behind,
            predict=lambda request, name, _: h.predict(state, request, name),
            infer=lambda request, name, version: h.infer(state, request, name, version),
            fallback=_internal_error,
        )
    )


async def _start(state: h.ServingState) -> None:
    for deployment in state.deployments.values():
        for arm in deployment.arms:
            arm.start(state.metrics)
    if state.config.poll_interval > 0:
        state.extras["watcher"] = asyncio.get_running_loop().create_task(_watch(state), name="shipyard-watcher")
    state.ready = True


async def _stop(state: h.ServingState) -> None:
    state.ready = False
    watcher = state.extras.pop("watcher", None)
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    for deployment in state.deployments.values():
        for arm in deployment.arms:
            await arm.stop()
    stores = state.extras.get("stores")
    if stores is not None:
        await asyncio.to_thread(end_runs, state.deployments, stores)


async def _watch(state: h.ServingState) -> None:
    """Poll the registry; an alias that moved is loaded, warmed and swapped in the background."""
    while True:
        await asyncio.sleep(state.config.poll_interval)
        for deployment in state.deployments.values():
            for arm in deployment.arms:
                await arm.refresh()


def _errors(app: FastAPI) -> None:
    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return h.json_response({"error": str(exc.detail)}, exc.status_code, dict(exc.headers or {}))

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return h.json_response({"error": "; ".join(problems), "problems": problems}, 400)

    async def unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unexpected error", exc_info=exc)
        return _internal_error(exc)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def _internal_error(exc: Exception) -> Response:
    return h.json_response({"error": f"internal error ({type(exc).__name__})"}, 500)


def _body(model: type[Any]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _v2_routes(app: FastAPI, state: h.ServingState) -> None:
    @app.get("/v2", tags=["v2"], response_model=schemas.ServerMetadata)
    async def server_metadata() -> Response:
        from importlib import metadata

        try:
            version = metadata.version("shipyard")
        except metadata.PackageNotFoundError:
            version = "0"
        return h.json_response({"name": "shipyard", "version": version, "extensions": ["binary_tensor_data"]})

    @app.get("/v2/health/live", tags=["v2"])
    async def live() -> Response:
        return h.json_response({"live": True})

    @app.get("/v2/health/ready", tags=["v2"])
    async def ready() -> Response:
        return h.json_response({"ready": state.ready}, 200 if state.ready else 503)

    meta: dict[str, Any] = {"tags": ["v2"], "response_model": schemas.ModelMetadata, "responses": _ERRORS}

    @app.get("/v2/models/{name}", **meta)
    async def model_metadata(name: str) -> Response:
        return h.metadata(state, name, None)

    @app.get("/v2/models/{name}/versions/{version}", **meta)
    async def version_metadata(name: str, version: str) -> Response:
        return h.metadata(state, name, version)

    @app.get("/v2/models/{name}/ready", tags=["v2"], responses=_ERRORS)
    async def model_ready(name: str) -> Response:
        return h.model_ready(state, name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], responses=_ERRORS)
    async def version_ready(name: str, version: str) -> Response:
        return h.model_ready(state, name, version)

    infer: dict[str, Any] = {
        "tags": ["v2"],
        "response_model": schemas.InferenceResponse,
        "responses": _ERRORS,
        "openapi_extra": _body(schemas.InferenceRequest),
    }

    @app.post("/v2/models/{name}/infer", **infer)
    async def model_infer(name: str, request: Request) -> Response:
        return await h.infer(state, request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", **infer)
    async def version_infer(name: str, version: str, request: Request) -> Response:
        return await h.infer(state, request, name, version)


def _other_routes(app: FastAPI, state: h.ServingState) -> None:
    errors = {**_ERRORS, 422: {"model": schemas.ErrorBody, "description": "Input does not match the signature"}}

    @app.post(
        "/models/{name}/predict",
        tags=["json"],
        response_model=schemas.PredictResponse,
        responses=errors,
        openapi_extra=_body(schemas.PredictRequest),
    )
    async def predict(name: str, request: Request) -> Response:
        """Predict on rows given as JSON: one prediction per row, in order.

        The body is either ``{"records": [{"tenure": 3, "charges": 70.5}, ...]}`` (one object
        per row) or ``{"columns": ["tenure", "charges"], "data": [[3, 70.5], ...]}`` (one list
        per row; ``columns`` may be left out to mean the signature's order). Columns must match
        the model's signature (see ``GET /v2/models/{name}``); a mismatch is answered 422 with
        one entry in ``problems`` per offending column.
        """
        return await h.predict(state, request, name)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/admin/reload", tags=["ops"])
    async def reload(model: str | None = None) -> Response:
        return await h.reload(state, model)

    @app.get("/admin/models", tags=["ops"])
    async def models() -> Response:
        return h.json_response({name: [a.status() for a in d.arms] for name, d in state.deployments.items()})


def _docs(app: FastAPI) -> None:
    """``/docs`` from the Swagger UI files the ``swagger-ui-bundle`` package ships: it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # else the page asks validator.swagger.io
        )


def _openapi(app: FastAPI, state: h.ServingState) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version="2", description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in schemas.REQUEST_BODIES:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        _entity_bodies(schema, state)
        app.openapi_schema = schema
    return app.openapi_schema


def _entity_bodies(schema: dict[str, Any], state: h.ServingState) -> None:
    """For each model fed by its feature service, the request body it takes: entity ids and request values."""
    rows = {
        name: deployment.primary.features.request_signature
        for name, deployment in state.deployments.items()
        if deployment.primary.features is not None
    }
    if not rows:
        return
    components = schema["components"]["schemas"]
    paths = schema["paths"]
    predict = paths["/models/{name}/predict"]["post"]["requestBody"]["content"]["application/json"]
    alternatives = [predict["schema"]]
    for name, signature in rows.items():
        component = schemas.entity_rows(name, signature, components)
        alternatives.append({"$ref": f"#/components/schemas/{component}"})
        predict.setdefault("examples", {})[name] = {
            "summary": f"model {name}, by entity id",
            "value": {"records": [schemas.example_row(signature)]},
        }
        for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
            content = paths[path]["post"]["requestBody"]["content"]["application/json"]
            content.setdefault("examples", {})[name] = {
                "summary": f"model {name}, by entity id",
                "value": schemas.example_tensors(signature),
            }
    predict["schema"] = {"oneOf": alternatives}
