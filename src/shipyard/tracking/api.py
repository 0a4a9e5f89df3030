"""Runs and what they log: the functions users call (``sy.start_run``, ``sy.log_metric``, ...).

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn", name="lgbm") as run:  # doctest: +SKIP
    ...     sy.log_params({"lr": 0.1})
    ...     sy.log_metric("auc", 0.91, step=3)
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.store import Stores
from shipyard.store.entities import ArtifactRef, MetricPoint, Run, is_number
from shipyard.tracking import _exit, _lineage
from shipyard.tracking._buffer import MetricBuffer, flush_all, register_buffer, unregister_buffer
from shipyard.tracking._heartbeat import heartbeat
from shipyard.tracking._stores import HasStores as HasStores
from shipyard.tracking._stores import resolve_stores as resolve_stores

DEFAULT_EXPERIMENT = "default"
PARENT_RUN_ENV = "SHIPYARD_PARENT_RUN_ID"
_MAX_KEY = 250


_current: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar("shipyard_runs", default=())


def _check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInputError(
            f"{kind} name must be a non-empty string of at most {_MAX_KEY} characters, got {key!r}", field=kind
        )
    return key


def _metric_point(key: str, value: object, step: int, timestamp: float | None) -> MetricPoint:
    _check_key("metric", key)
    if not is_number(value):
        raise InvalidInputError(
            f"metric {key!r} must be a number, got {value!r} ({type(value).__name__})", field=f"metrics.{key}"
        )
    if not isinstance(step, int) or isinstance(step, bool):
        raise InvalidInputError(f"step of metric {key!r} must be an integer, got {step!r}", field="step")
    return MetricPoint(key, float(value), step, time.time() if timestamp is None else timestamp)  # type: ignore[arg-type]


def _stringify(kind: str, values: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{kind}s must be a mapping of name to value, got {type(values).__name__}", field=kind)
    return {_check_key(kind, k): str(v) for k, v in values.items()}


class ActiveRun:
    """A run in progress; a context manager that ends it as finished, or failed on an exception."""

    def __init__(self, stores: Stores, run: Run, *, depth: int, log_system_metrics: bool) -> None:
        self.stores = stores
        self.id = run.id
        self.name = run.name
        self.experiment = run.experiment
        self.parent_run_id = run.parent_run_id
        self.depth = depth
        self.log_system_metrics = log_system_metrics
        self.ended = False
        self.buffer = MetricBuffer(run.id, stores.runs)
        self._token: contextvars.Token[tuple[ActiveRun, ...]] | None = None
        self._environment: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r})"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            status = "finished"
        elif issubclass(kind, KeyboardInterrupt):
            status = "killed"
        else:
            status = "failed"
        self.end(status)

    # logging -----------------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int = 0, *, timestamp: float | None = None, synchronous: bool = False
    ) -> None:
        """Log one metric value (buffered unless ``synchronous=True``)."""
        point = _metric_point(key, value, step, timestamp)
        self._require_live()
        if synchronous:
            self.stores.runs.log_metrics(self.id, [point])
        else:
            self.buffer.add(point)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, *, timestamp: float | None = None, synchronous: bool = False
    ) -> None:
        """Log several metrics at the same step."""
        if not isinstance(metrics, Mapping):
            raise InvalidInputError(f"metrics must be a mapping of name to number, got {type(metrics).__name__}")
        now = time.time() if timestamp is None else timestamp
        points = [_metric_point(k, v, step, now) for k, v in metrics.items()]
        self._require_live()
        if synchronous:
            self.stores.runs.log_metrics(self.id, points)
        else:
            self.buffer.extend(points)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters; a parameter once set cannot change."""
        self._require_live()
        self.stores.runs.log_params(self.id, _stringify("param", params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; setting a tag again overwrites it."""
        self.stores.runs.set_tags(self.id, _stringify("tag", tags))

    def log_artifact(self, local_path: str | os.PathLike[str], artifact_path: str | None = None) -> ArtifactRef:
        """Store a file under the run at ``artifact_path/<file name>``."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInputError(f"artifact {str(path)!r} is not a file", field="local_path")
        digest, size = self.stores.artifacts.put_file(str(path))
        ref = ArtifactRef(_join(artifact_path, path.name), digest, size)
        self.stores.runs.record_artifacts(self.id, [ref])
        return ref

    def log_artifacts(self, local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[ArtifactRef]:
        """Store every file of a folder, keeping its layout, in one metadata write."""
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInputError(f"artifact folder {str(folder)!r} is not a directory", field="local_dir")
        refs = []
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest, size = self.stores.artifacts.put_file(str(file))
            refs.append(ArtifactRef(_join(artifact_path, file.relative_to(folder).as_posix()), digest, size))
        self.stores.runs.record_artifacts(self.id, refs)
        return refs

    def log_text(self, text: str, artifact_file: str) -> ArtifactRef:
        """Store a string as an artifact file."""
        digest, size = self.stores.artifacts.put_bytes(text.encode("utf-8"))
        ref = ArtifactRef(artifact_file, digest, size)
        self.stores.runs.record_artifacts(self.id, [ref])
        return ref

    def flush(self) -> None:
        """Write buffered metrics now."""
        self.buffer.flush()

    # lifecycle ---------------------------------------------------------------
    def end(self, status: str = "finished") -> None:
        """Flush, then record the final status. Ending twice does nothing."""
        if self.ended:
            return
        if status not in {"finished", "failed", "killed"}:
            raise InvalidInputError(f"status must be finished, failed or killed, got {status!r}", field="status")
        self.ended = True
        unregister_buffer(self.buffer)
        heartbeat.remove(self)
        _exit.untrack(self)
        if self._environment is not None:
            self._environment.join(timeout=60)
        # The last points and the final status go in one transaction.
        points = self.buffer.drain()
        try:
            self.stores.runs.end_run(self.id, status, time.time(), points)
        except BaseException:
            # Still live, so nothing is lost: the points go back to a buffer the flusher writes,
            # and end() can be called again (at the latest at exit).
            self.buffer.extend(points, block=False)
            self.ended = False
            self._watch()
            raise
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # ended from another context (a signal handler, atexit)
                _current.set(tuple(r for r in _current.get() if r is not self))
            self._token = None

    def _watch(self) -> None:
        """Have the process-wide threads and exit hooks look after this run."""
        settings = self.stores.settings
        register_buffer(self.buffer, settings.flush_interval)
        heartbeat.add(self, settings.heartbeat_interval)
        _exit.track(self)

    def _require_live(self) -> None:
        if self.ended:
            raise ConflictError(f"run {self.id} has ended; start a new run to log more", field="run_id")


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix else name


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    log_system_metrics: bool = False,
    client: HasStores | None = None,
    source: str | None = None,
) -> ActiveRun:
    """Start a run and make it current; use it as a context manager.

    A run started while another is active becomes its child (a nested run). Its git
    commit is looked up from ``source`` (the file of the code it runs, such as a flow's
    module) when given, else from the calling code's files, then the working directory.

    Example:
        >>> with start_run(experiment="churn", name="lgbm") as run:  # doctest: +SKIP
        ...     run.log_metric("auc", 0.91)
    """
    stores = resolve_stores(client)
    stack = _current.get()
    parent = parent_run_id or (stack[-1].id if stack else None) or os.environ.get(PARENT_RUN_ENV) or None
    experiment_name = (
        experiment
        or (stack[-1].experiment if stack else None)
        or os.environ.get("SHIPYARD_EXPERIMENT", DEFAULT_EXPERIMENT)
    )
    lineage = _lineage.capture(source)
    if parent:
        lineage["parent_run_id"] = parent
    fields: dict[str, Any] = {
        "name": name or "",
        "user": lineage["user"],
        "parent_run_id": parent,
        "lineage": lineage,
        "tags": _stringify("tag", tags or {}),
        "artifacts": [env] if (env := _env_refs.get(stores.artifacts.root)) else [],
    }
    try:
        run = stores.runs.create_run(_experiment_id(stores, experiment_name), start_time=time.time(), **fields)
    except NotFoundError:  # the cached experiment was deleted and purged meanwhile
        _experiment_ids.pop((id(stores.runs), experiment_name), None)
        run = stores.runs.create_run(_experiment_id(stores, experiment_name), start_time=time.time(), **fields)
    active = ActiveRun(stores, run, depth=len(stack), log_system_metrics=log_system_metrics)
    if env is None:
        # Listing installed packages takes ~0.2 s once per process: do it off the run's start.
        active._environment = threading.Thread(
            target=_record_environment, args=(active,), name="shipyard-environment", daemon=True
        )
        active._environment.start()
    active._watch()
    active._token = _current.set((*stack, active))
    return active


_env_refs: dict[str, ArtifactRef] = {}
_experiment_ids: dict[tuple[int, str], str] = {}


def _environment_artifact(stores: Stores) -> ArtifactRef:
    """The installed packages as a blob, stored once per process and artifact root."""
    root = stores.artifacts.root
    if root not in _env_refs:
        digest, size = stores.artifacts.put_bytes(_lineage.requirements_text().encode())
        _env_refs[root] = ArtifactRef("environment/requirements.txt", digest, size)
    return _env_refs[root]


def _record_environment(run: ActiveRun) -> None:
    try:
        run.stores.runs.record_artifacts(run.id, [_environment_artifact(run.stores)])
    except Exception as exc:  # the run goes on without it; say why
        print(f"shipyard: could not record the environment of run {run.id}: {exc}", file=sys.stderr)


def _experiment_id(stores: Stores, name: str) -> str:
    """The experiment's id, created on first use; cached, since experiment ids never change."""
    key = (id(stores.runs), name)
    if key not in _experiment_ids:
        exp = stores.runs.find_experiment(name) or stores.runs.create_experiment(name)
        _experiment_ids[key] = exp.id
    return _experiment_ids[key]


def active_run() -> ActiveRun | None:
    """The innermost run started in this context and not yet ended, if any."""
    stack = _current.get()
    return stack[-1] if stack else None


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise ConflictError("no active run: call shipyard.start_run() first (or use it as a context manager)")
    return run


def end_run(status: str = "finished") -> None:
    """End the current run."""
    _require_run().end(status)


def log_metric(
    key: str, value: float, step: int = 0, *, timestamp: float | None = None, synchronous: bool = False
) -> None:
    """Log one metric value to the current run; buffered and written in batches."""
    _require_run().log_metric(key, value, step, timestamp=timestamp, synchronous=synchronous)


def log_metrics(
    metrics: Mapping[str, float], step: int = 0, *, timestamp: float | None = None, synchronous: bool = False
) -> None:
    """Log several metrics to the current run."""
    _require_run().log_metrics(metrics, step, timestamp=timestamp, synchronous=synchronous)


def log_param(key: str, value: Any) -> None:
    """Log one parameter to the current run."""
    _require_run().log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters to the current run."""
    _require_run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set one tag on the current run."""
    _require_run().set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the current run."""
    _require_run().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> ArtifactRef:
    """Store a file under the current run."""
    return _require_run().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[ArtifactRef]:
    """Store a folder under the current run."""
    return _require_run().log_artifacts(local_dir, artifact_path)


def flush() -> None:
    """Write every buffered metric point of every active run now."""
    flush_all()


def get_run(run_id: str, *, client: HasStores | None = None) -> Run:
    """A run with its latest metrics; a running run whose heartbeat lapsed is reported failed."""
    stores = resolve_stores(client)
    fail_stale_runs(stores)
    return stores.runs.get_run(run_id)


def fail_stale_runs(stores: Stores) -> list[str]:
    """Mark failed the runs whose process stopped beating (died without ending them)."""
    return stores.runs.fail_stale_runs(time.time() - stores.settings.heartbeat_timeout)


def delete_run(run_id: str, *, force: bool = False, client: HasStores | None = None) -> None:
    """Soft-delete a run, unless it produced registered model versions and ``force`` is not set."""
    stores = resolve_stores(client)
    run = stores.runs.get_run(run_id)
    versions = stores.models.versions_for_runs([run.id])
    if versions and not force:
        names = ", ".join(f"{v.name}/{v.version}" for v in versions)
        raise ConflictError(
            f"run {run.id} produced registered model versions {names}, whose lineage leads to it; "
            f"to delete it anyway: shipyard runs delete --force {run.id} (Client.delete_run(..., force=True))",
            field="run_id",
        )
    stores.runs.delete_run(run.id)


def download_artifact(run_id: str, path: str, dest: str | os.PathLike[str], *, client: HasStores | None = None) -> Path:
    """Copy one artifact of a run to ``dest`` (a file path), verifying its hash."""
    stores = resolve_stores(client)
    refs = {r.path: r for r in stores.runs.list_artifacts(run_id, path)}
    if path not in refs:
        listed = ", ".join(sorted(refs)) or "none"
        raise NotFoundError(f"run {run_id} has no artifact {path!r}; under that path: {listed}", field="path")
    stores.artifacts.download(refs[path].digest, str(dest))
    return Path(dest)
