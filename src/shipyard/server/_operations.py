"""One route per store Protocol method, generated from the operation table in ``store/rest/_spec``."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shipyard.server.auth import role_required
from shipyard.store.registry import Stores
from shipyard.store.rest._spec import Operation, operations


def add_operation_routes(app: FastAPI, stores: Stores) -> None:
    """Add ``GET|POST /api/v1/{group}/{method}`` for every store operation, each guarded by its role."""
    for op in operations().values():
        target = getattr(getattr(stores, op.group), op.name)
        app.add_api_route(
            op.path,
            _endpoint(op, target),
            methods=[op.verb],
            name=f"{op.group}.{op.name}",
            summary=f"{op.group}.{op.name}",
            description=op.doc,
            tags=[op.group],
            response_model=op.result,
            dependencies=[Depends(role_required(op.role))],
        )


def _endpoint(op: Operation, target: Any) -> Any:
    """A FastAPI endpoint whose signature is the operation's arguments (query for GET, a JSON body for POST)."""

    async def endpoint(**given: Any) -> Response:
        body = given.pop("body", None)
        args = _arguments(body) if isinstance(body, BaseModel) else given
        extra = args.pop(op.var_keyword) if op.var_keyword else {}
        value = await run_in_threadpool(target, **args, **extra)
        if op.paged:
            answer = op.result(result=list(value), next_page_token=value.next_page_token)
        else:
            answer = op.result(result=value)
        return Response(answer.model_dump_json(), media_type="application/json")

    if op.verb == "POST":
        params = [inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=op.args)]
    else:
        params = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=field.annotation,
                default=_query_default(field),
            )
            for name, field in op.args.model_fields.items()
        ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{op.group}_{op.name}"
    return endpoint


def _query_default(field: FieldInfo) -> Any:
    """A client leaves out a query parameter whose value is ``None``, so ``None`` is its default here."""
    if type(None) in typing.get_args(field.annotation):
        return Query(None)
    return Query() if field.is_required() else Query(field.get_default())


def _arguments(body: BaseModel) -> dict[str, Any]:
    """The validated arguments as Python values (entities stay dataclasses, unlike ``model_dump``)."""
    return {name: getattr(body, name) for name in type(body).model_fields}
