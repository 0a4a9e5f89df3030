"""The life of a flow run: record it, link a tracking run, run the function, record the end.

Parameters are checked before this is called, so a flow run that exists always had valid
parameters. The record is created (or a queued/failed one claimed) first, then the
tracking run starts; every task record is flushed before the final state is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.flows import _values
from shipyard.flows._attempt import source_file
from shipyard.flows._capture import streams
from shipyard.flows._context import current_runner
from shipyard.flows._graph import resolve
from shipyard.flows._protocols import Executor, FlowSpec
from shipyard.flows._recorder import Recorder
from shipyard.flows._runner import Runner
from shipyard.flows._serializers import serialize
from shipyard.flows.executors import make_executor
from shipyard.store import Stores
from shipyard.store.entities import FlowRun, TaskRun, ValueRef

RESUMABLE = ("failed", "crashed", "cancelled")


class LiveRun:
    """A run in progress as this process sees it: its record and its task states, live."""

    def __init__(self, run: FlowRun, runner: Runner) -> None:
        self.run = run
        self._runner = runner

    @property
    def id(self) -> str:
        """The flow run's id."""
        return self.run.id

    def tasks(self) -> tuple[TaskRun, ...]:
        """Every task call made so far with its current state and timings."""
        return self._runner.task_runs()


class _Holder:
    """What ``start_run(client=...)`` needs: an object with ``stores``."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores


def new_run(flow: FlowSpec, params: Mapping[str, Any], *, executor_name: str, trigger: str) -> FlowRun:
    """The record of a run about to start now."""
    now = time.time()
    return FlowRun(
        id=uuid.uuid4().hex,
        flow_name=flow.name,
        state="running",
        params=dict(params),
        created_at=now,
        start_time=now,
        end_time=None,
        heartbeat_at=now,
        tracking_run_id=None,
        executor=executor_name,
        trigger=trigger,
        scheduled_time=None,
        priority=0,
        run_count=1,
        error=None,
        result_ref=None,
        params_ref=None,
        entrypoint=flow.entrypoint,
    )


def execute(
    flow: FlowSpec,
    params: dict[str, Any],
    stores: Stores,
    *,
    existing: FlowRun | None = None,
    from_states: tuple[str, ...] = (),
    previous: Mapping[str, TaskRun] | None = None,
    executor: str | Executor | None = None,
    trigger: str = "manual",
    watch: Callable[[LiveRun], None] | None = None,
) -> FlowRun:
    """Run ``flow`` with checked ``params`` as a new run, or as ``existing`` (queued or resumed).

    ``watch`` is called once the run has started with a :class:`LiveRun`, a view of its task
    states in memory (what the CLI's live display polls).
    """
    from shipyard.tracking.api import start_run

    chosen, owned = make_executor(executor if executor is not None else flow.executor)
    params_ref, params_data = _params_value(params)
    target = existing or new_run(flow, params, executor_name=chosen.name, trigger=trigger)
    tracking = start_run(
        flow.experiment or flow.name,
        flow.name,
        tags={"shipyard.flow": flow.name, "shipyard.flow_run_id": target.id},
        client=_Holder(stores),
        source=source_file(flow.fn),
    )
    try:
        if existing is None:
            run = dataclasses.replace(target, tracking_run_id=tracking.id, params_ref=params_ref)
            if params_data is not None and params_ref is not None:
                _values.save(stores, [(params_ref.digest, params_data)])
            stores.flows.create_flow_run(run, flow=flow.info())
        else:
            stores.flows.register_flows([flow.info()])
            run = stores.flows.start_flow_run(
                existing.id, from_states=from_states, tracking_run_id=tracking.id, executor=chosen.name, at=time.time()
            )
    except BaseException:
        tracking.end("failed")
        if owned:
            chosen.close()
        raise
    try:
        return _drive(flow, params, stores, run, tracking, chosen, owned, previous or {}, watch)
    except BaseException as exc:
        _abandon(stores, run.id, tracking, exc)
        raise


def _abandon(stores: Stores, run_id: str, tracking: Any, exc: BaseException) -> None:
    """Close the records of a flow run whose driving raised (a failing cleanup, say).

    Without this its tracking run would stay current in the caller's context, and the next
    ``log_model`` of the caller would land in it.
    """
    tracking.end("failed")  # ending twice does nothing
    with contextlib.suppress(Exception):
        if stores.flows.get_flow_run(run_id, with_tasks=False).state == "running":
            stores.flows.end_flow_run(
                run_id, "failed", end_time=time.time(), result=None, error=f"{type(exc).__name__}: {exc}"
            )


def _drive(
    flow: FlowSpec,
    params: dict[str, Any],
    stores: Stores,
    run: FlowRun,
    tracking: Any,
    executor: Executor,
    owned: bool,
    previous: Mapping[str, TaskRun],
    watch: Callable[[LiveRun], None] | None,
) -> FlowRun:
    runner: Runner | None = None
    recorder = Recorder(stores, run.id, on_cancel=lambda: runner.cancel() if runner is not None else None)
    context = contextvars.copy_context()
    runner = Runner(
        flow_run_id=run.id,
        stores=stores,
        executor=executor,
        recorder=recorder,
        previous=previous,
        tag_limits=flow.tag_limits,
        context=context,
        env=_child_env(stores, tracking.id, flow.experiment or flow.name),
        tracking_run_id=tracking.id,
        experiment=flow.experiment or flow.name,
    )
    recorder.start()
    if watch is not None:
        watch(LiveRun(run, runner))
    streams.acquire()
    token = current_runner.set(runner)
    error: BaseException | None = None
    result: Any = None
    try:
        try:
            result = flow.fn(**params)
        except BaseException as exc:
            error = exc
            if isinstance(exc, KeyboardInterrupt):
                runner.cancel()
        finally:
            current_runner.reset(token)
            runner.wait()
    finally:
        streams.release()
        runner.close()
        if owned:
            executor.close()
    return _finish(stores, run, runner, recorder, tracking, result, error)


def _finish(
    stores: Stores,
    run: FlowRun,
    runner: Runner,
    recorder: Recorder,
    tracking: Any,
    result: Any,
    error: BaseException | None,
) -> FlowRun:
    result_ref: ValueRef | None = None
    value: Any = None
    message: str | None = None
    if runner.cancelled:
        state, message = "cancelled", "cancelled on request"
    elif error is not None:
        state = "failed"
        message = runner.failures[0] if runner.failures else f"the flow function raised {type(error).__name__}: {error}"
    elif runner.failures:
        state, message = "failed", runner.failures[0]
    else:
        state = "succeeded"
        try:
            value = resolve(result)
            serializer, data = serialize(
                value, _default_serializers(), what=f"the value returned by flow {run.flow_name!r}"
            )
            result_ref = _values.make_ref(serializer, data, value)
            recorder.value(result_ref.digest, data)
        except Exception as exc:
            state, message, value = "failed", str(exc), None
    try:
        recorder.close()
    finally:
        stores.flows.end_flow_run(run.id, state, end_time=time.time(), result=result_ref, error=message)
        tracking.end({"succeeded": "finished", "cancelled": "killed"}.get(state, "failed"))
    record = stores.flows.get_flow_run(run.id, with_tasks=False)
    if isinstance(error, KeyboardInterrupt):
        raise error
    return dataclasses.replace(record, result=value, tasks=runner.task_runs())


def _default_serializers() -> Any:
    from shipyard.flows._serializers import DEFAULT_SERIALIZERS

    return DEFAULT_SERIALIZERS


def _params_value(params: Mapping[str, Any]) -> tuple[ValueRef | None, bytes | None]:
    try:
        serializer, data = serialize(dict(params), _default_serializers(), what="the flow's parameters")
    except Exception:  # unpicklable parameters: the JSON record is all resume will have
        return None, None
    return _values.make_ref(serializer, data, dict(params)), data


def _child_env(stores: Stores, tracking_run_id: str, experiment: str) -> dict[str, str]:
    """Environment for tasks in other processes: the same stores, and the flow's run as parent."""
    settings = stores.settings
    env = {
        "SHIPYARD_STORE": settings.store_uri,
        "SHIPYARD_ARTIFACTS": settings.artifact_uri,
        "SHIPYARD_PARENT_RUN_ID": tracking_run_id,
        "SHIPYARD_EXPERIMENT": experiment,
    }
    if settings.s3_endpoint_url:
        env["SHIPYARD_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.token:
        env["SHIPYARD_TOKEN"] = settings.token
    return {k: v for k, v in env.items() if v or k in os.environ}
