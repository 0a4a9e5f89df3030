"""What each route does, as plain coroutines over :class:`ServingState`; ``app.py`` binds them to paths.

Errors become ``{"error": "...", "problems": [...]}`` here, with the status the route's
protocol uses: a signature mismatch is 400 on the v2 routes (the Open Inference
Protocol has one status for bad requests) and 422 on the plain JSON route.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import (
    InvalidInputError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    SchemaMismatchError,
    ShipyardError,
)
from shipyard.serving import protocol_v2 as v2
from shipyard.serving._binary import HEADER, split_body, take_binary
from shipyard.serving._features import MissingEntityError
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.models import ServingConfig
from shipyard.serving.routing import Answer, Deployment
from shipyard.serving.validation import (
    Columns,
    check_columns,
    columns_from_records,
    columns_from_split,
    numeric_records,
    numeric_rows,
)

JSON = "application/json"


@dataclass(slots=True, eq=False)
class ServingState:
    """What the routes share: the config, the deployments by model name, the metrics."""

    config: ServingConfig
    deployments: dict[str, Deployment]
    metrics: ServerMetrics
    ready: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    children: dict[tuple[str, ...], Any] = field(default_factory=dict)  # metric children by labels

    def deployment(self, name: str) -> Deployment:
        """The deployment serving ``name``.

        Raises:
            NotFoundError: no model of that name is served.
        """
        found = self.deployments.get(name)
        if found is None:
            served = ", ".join(sorted(self.deployments)) or "none"
            raise NotFoundError(f"model {name!r} is not served here; served models: {served}", field="model")
        return found


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialized with orjson (numpy arrays included)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, media_type=JSON)


def error_response(exc: ShipyardError, *, v2_route: bool) -> Response:
    """The protocol's error body for ``exc``: ``{"error": message}``, plus ``problems`` for mismatches."""
    status = exc.status
    body: dict[str, Any] = {"error": exc.message}
    if isinstance(exc, SchemaMismatchError):
        body["problems"] = exc.problems
        status = 400 if v2_route else 422
    elif isinstance(exc, MissingEntityError):
        body["problems"] = exc.problems  # 422 on both routes: the request is well formed, its entity unknown
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
    return json_response(body, status, headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes before it is all read.

    Raises:
        PayloadTooLargeError: the body (or its declared length) is over the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """The body as JSON.

    Raises:
        InvalidInputError: it is not valid JSON.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or int(text) < 1:
        raise NotFoundError(f"model version must be a positive integer, got {text!r}", field="version")
    return int(text)


async def _serve(
    state: ServingState, request: Request, name: str, version: int | None, route: str, columns_of: Any
) -> tuple[Answer, Any]:
    info = request.scope.setdefault("shipyard", {})
    info["model"] = name
    deployment = state.deployment(name)
    arm = deployment.choose(version)
    raw = await read_body(request, state.config.body_limit)
    body, columns = columns_of(raw, arm)
    answer = await deployment.predict(columns, arm=arm, request_id=info.get("request_id", ""), metrics=state.metrics)
    info["version"], info["arm"] = answer.version, answer.arm.role
    return answer, body


def _count(state: ServingState, request: Request, route: str, status: int) -> None:
    info = request.scope.get("shipyard", {})
    model, arm = info.get("model", "-"), info.get("arm", "primary")
    if model not in state.deployments:
        model = "-"  # unknown names are not labels: a client must not grow the metric set
    version = str(info.get("version", "-"))
    key = (model, version, arm, route, str(status))
    counter = state.children.get(key)
    if counter is None:  # label lookups once per combination, not per request (bounded: known models only)
        counter = state.children[key] = state.metrics.requests.labels(*key)
    counter.inc()
    started = info.get("started")
    if started is not None and model != "-":
        latency = state.children.get((model, arm))
        if latency is None:
            latency = state.children[(model, arm)] = state.metrics.latency.labels(model, arm)
        latency.observe(time.perf_counter() - started)


async def infer(state: ServingState, request: Request, name: str, version_text: str | None) -> Response:
    """``POST /v2/models/{name}[/versions/{v}]/infer``: JSON or binary tensors in, tensors out."""
    binary_all = False

    def columns_of(raw: bytes, arm: Any) -> tuple[Any, Columns]:
        nonlocal binary_all
        header, tail = split_body(raw, request.headers.get(HEADER))
        body = parse_json(header)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        chunks = take_binary(inputs, tail) if isinstance(inputs, list) and tail else [None] * len(inputs or [])
        parameters = body.get("parameters") if isinstance(body, dict) else None
        binary_all = isinstance(parameters, dict) and bool(parameters.get("binary_data_output"))
        signature = arm.input_signature
        raw_columns = v2.request_columns(body, chunks, signature)
        return body, check_columns(raw_columns, signature, model=f"model {arm.ref}")

    try:
        answer, body = await _serve(state, request, name, _version(version_text), "v2", columns_of)
        model = answer.arm.model
        names = [] if model.signature is None else [c.name for c in model.signature.outputs]
        response, chunks = v2.infer_response(
            model=name,
            version=answer.version,
            request_id=body.get("id") if isinstance(body.get("id"), str) else None,
            tensors=v2.output_tensors(answer.outputs, names),
            requested=body.get("outputs"),
            binary_all=binary_all,
        )
    except ShipyardError as exc:
        _count(state, request, "v2", exc.status)
        return error_response(exc, v2_route=True)
    _count(state, request, "v2", 200)
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return Response(header, 200, media_type=JSON)
    return Response(
        b"".join([header, *chunks]),
        200,
        {HEADER: str(len(header))},
        media_type="application/octet-stream",
    )


async def predict(state: ServingState, request: Request, name: str) -> Response:
    """``POST /models/{name}/predict``: ``{"records": [...]}`` or ``{"columns": [...], "data": [[...]]}``."""

    def columns_of(raw: bytes, arm: Any) -> tuple[Any, Columns]:
        body = parse_json(raw)
        if not isinstance(body, dict) or not ({"records", "data"} & body.keys()):
            raise InvalidInputError(
                'the body must be {"records": [{...}, ...]} or {"columns": [...], "data": [[...], ...]}', field="body"
            )
        unknown = sorted(body.keys() - {"records", "columns", "data"})
        if unknown:
            raise InvalidInputError(f"unknown field(s) in the body: {', '.join(unknown)}", field=unknown[0])
        signature = arm.input_signature
        if "records" in body:
            fast = numeric_records(body["records"], signature)
            if fast is not None:
                return body, fast
            raw_columns: Any = columns_from_records(body["records"])
        else:
            fast = numeric_rows(body.get("columns"), body["data"], signature)
            if fast is not None:
                return body, fast
            raw_columns = columns_from_split(body.get("columns"), body["data"], signature)
        return body, check_columns(raw_columns, signature, model=f"model {arm.ref}")

    try:
        answer, _ = await _serve(state, request, name, None, "json", columns_of)
    except ShipyardError as exc:
        _count(state, request, "json", exc.status)
        return error_response(exc, v2_route=False)
    _count(state, request, "json", 200)
    predictions = v2.json_values(answer.outputs) if answer.outputs.ndim == 1 else answer.outputs.tolist()
    return json_response({"model": name, "version": answer.version, "predictions": predictions})


def metadata(state: ServingState, name: str, version_text: str | None) -> Response:
    """``GET /v2/models/{name}[/versions/{v}]``."""
    try:
        deployment = state.deployment(name)
        version = _version(version_text)
        arm = deployment.choose(version) if version is not None else deployment.primary
        served = [a.version for a in (deployment.primary, deployment.canary) if a is not None and a.version]
        features = arm.features
        body = v2.model_metadata(
            name,
            served if version is None else [version],
            arm.model.flavor,
            arm.input_signature,
            outputs=arm.signature,
            feature_service=None if features is None else features.service.name,
        )
    except ShipyardError as exc:
        return error_response(exc, v2_route=True)
    return json_response(body)


def model_ready(state: ServingState, name: str, version_text: str | None) -> Response:
    """``GET /v2/models/{name}[/versions/{v}]/ready``: 200 when it answers, else the error."""
    try:
        deployment = state.deployment(name)
        version = _version(version_text)
        arm = deployment.choose(version) if version is not None else deployment.primary
    except ShipyardError as exc:
        return error_response(exc, v2_route=True)
    ready = state.ready and arm.slot is not None
    return json_response({"name": name, "ready": ready}, 200 if ready else 503)


async def reload(state: ServingState, name: str | None) -> Response:
    """``POST /admin/reload[?model=name]``: check every watched alias now, swap what moved."""
    try:
        deployments = [state.deployment(name)] if name else list(state.deployments.values())
    except ShipyardError as exc:
        return error_response(exc, v2_route=False)
    swapped, failed, arms = [], [], []
    for deployment in deployments:
        for arm in deployment.arms:
            if await arm.refresh():
                swapped.append(arm.ref)
            elif arm.last_error:
                failed.append(f"{arm.ref}: {arm.last_error}")
            arms.append(arm.status())
    body: dict[str, Any] = {"swapped": swapped, "failed": failed, "arms": arms}
    if failed:
        body["error"] = "reload failed, the previous versions keep serving: " + "; ".join(failed)
    return json_response(body, 500 if failed else 200)
