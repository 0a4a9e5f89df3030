"""Rows of the flow tables to entities and back (JSON columns encoded once where they repeat)."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row

from shipyard.store.entities import FlowInfo, FlowRun, FlowRunRequest, TaskRun, ValueRef


@functools.lru_cache(maxsize=1024)
def _dumps_items(items: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(dict(items), default=repr)


def _dumps_mapping(value: Mapping[str, Any]) -> str:
    """JSON of a small mapping that repeats across rows (resources, options), encoded once."""
    try:
        return _dumps_items(tuple(value.items()))
    except TypeError:  # an unhashable value: encode it directly
        return json.dumps(dict(value), default=repr)


@functools.lru_cache(maxsize=1024)
def _loads_cached(text: str) -> Any:
    return json.loads(text)


def _loads_small(text: str) -> Any:
    """JSON of a repeated small value, decoded once; callers must not mutate the result."""
    return _loads_cached(text) if len(text) < 200 else json.loads(text)


def _ref_dict(ref: ValueRef) -> dict[str, Any]:
    return {"digest": ref.digest, "serializer": ref.serializer, "size": ref.size, "type_name": ref.type_name}


def ref_json(ref: ValueRef | None) -> str | None:
    return None if ref is None else json.dumps(_ref_dict(ref))


def _ref(raw: str | None) -> ValueRef | None:
    return None if raw is None else ValueRef(**json.loads(raw))


def flow_info(row: Row[Any]) -> FlowInfo:
    return FlowInfo(
        name=row.name,
        description=row.description,
        entrypoint=row.entrypoint,
        schedule=row.schedule,
        timezone=row.timezone,
        triggers=tuple(json.loads(row.triggers)),
        owners=tuple(json.loads(row.owners)),
        max_active_runs=row.max_active_runs,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def queued_run(request: FlowRunRequest) -> FlowRun:
    return FlowRun(
        id=uuid.uuid4().hex,
        flow_name=request.flow_name,
        state="pending",
        params=dict(request.params),
        created_at=time.time(),
        start_time=None,
        end_time=None,
        heartbeat_at=None,
        tracking_run_id=None,
        executor="local",
        trigger=request.trigger,
        scheduled_time=request.scheduled_time,
        priority=request.priority,
        run_count=0,
        error=None,
        result_ref=None,
        params_ref=None,
        entrypoint=request.entrypoint,
    )


def flow_run_row(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow_name": run.flow_name,
        "state": run.state,
        "params": json.dumps(dict(run.params), default=repr),
        "params_ref": ref_json(run.params_ref),
        "created_at": run.created_at,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "heartbeat_at": run.heartbeat_at,
        "tracking_run_id": run.tracking_run_id,
        "executor": run.executor,
        "trigger": run.trigger,
        "scheduled_time": run.scheduled_time,
        "priority": run.priority,
        "run_count": run.run_count,
        "error": run.error,
        "result_ref": ref_json(run.result_ref),
        "entrypoint": run.entrypoint,
        "cancel_requested": run.cancel_requested,
    }


def flow_run(row: Row[Any], tasks: tuple[TaskRun, ...]) -> FlowRun:
    return FlowRun(
        id=row.id,
        flow_name=row.flow_name,
        state=row.state,
        params=json.loads(row.params),
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        heartbeat_at=row.heartbeat_at,
        tracking_run_id=row.tracking_run_id,
        executor=row.executor,
        trigger=row.trigger,
        scheduled_time=row.scheduled_time,
        priority=row.priority,
        run_count=row.run_count,
        error=row.error,
        result_ref=_ref(row.result_ref),
        params_ref=_ref(row.params_ref),
        entrypoint=row.entrypoint,
        cancel_requested=bool(row.cancel_requested),
        tasks=tasks,
    )


def task_row(t: TaskRun) -> dict[str, Any]:
    return {
        "id": t.id,
        "flow_run_id": t.flow_run_id,
        "task_key": t.task_key,
        "name": t.name,
        "state": t.state,
        "attempts": t.attempts,
        "created_at": t.created_at,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "resources": _dumps_mapping(t.resources),
        "tags": json.dumps(list(t.tags)) if t.tags else "[]",
        "upstream": json.dumps(list(t.upstream)) if t.upstream else "[]",
        "inputs": json.dumps({k: None if v is None else _ref_dict(v) for k, v in t.inputs.items()}),
        "input_hash": t.input_hash,
        "cache_key": t.cache_key,
        "output": ref_json(t.output),
        "error": t.error,
        "kind": t.kind,
        "reused_from": t.reused_from,
        "tracking_run_id": t.tracking_run_id,
        "options": _dumps_mapping(t.options),
    }


def task_run(row: Row[Any]) -> TaskRun:
    inputs = {k: None if v is None else ValueRef(**v) for k, v in json.loads(row.inputs).items()}
    return TaskRun(
        id=row.id,
        flow_run_id=row.flow_run_id,
        task_key=row.task_key,
        name=row.name,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        start_time=row.start_time,
        end_time=row.end_time,
        resources=dict(_loads_small(row.resources)),
        tags=tuple(_loads_small(row.tags)),
        upstream=tuple(json.loads(row.upstream)),
        inputs=inputs,
        input_hash=row.input_hash,
        cache_key=row.cache_key,
        output=_ref(row.output),
        error=row.error,
        kind=row.kind,
        reused_from=row.reused_from,
        tracking_run_id=row.tracking_run_id,
        options=dict(_loads_small(row.options)),
    )
