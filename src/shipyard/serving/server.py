"""Run the server: uvicorn on one socket, one process or several forked after the models are loaded.

With ``workers > 1`` the models are loaded once, in this process, then the workers are
forked from it and share the model's memory pages copy-on-write (``gc.freeze``, done
with one worker too, keeps the collector from walking, and so copying, them). All workers accept on the same
listening socket; this process supervises them, restarts one that dies, and forwards
SIGINT/SIGTERM so in-flight requests finish. Metrics are summed across workers
through prometheus_client's multiprocess mode. Each worker watches the registry and
swaps on its own; a version loaded after the fork is held by each worker separately.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from shipyard.serving._models import StoresClient
from shipyard.serving.metrics import MULTIPROC_ENV, ServerMetrics
from shipyard.serving.models import ServingConfig
from shipyard.serving.routing import Deployment, end_runs, load_deployments
from shipyard.store import Stores
from shipyard.tracking.api import HasStores, resolve_stores

logger = logging.getLogger("shipyard.serving")
_RESTART_WINDOW = 5.0  # a worker dying this soon after its start, _MAX_QUICK_DEATHS times, stops the server
_MAX_QUICK_DEATHS = 5
_GC_YOUNG = 10_000  # allocations between young collections (CPython's default: 700, ~3 requests here)


def serve(
    config: ServingConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    client: HasStores | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``config`` until SIGINT/SIGTERM; loads every model before listening (and before forking).

    Raises:
        NotFoundError: a reference points at nothing.
        InvalidInputError: bad settings (a model served twice, workers < 1).

    Example:
        >>> serve(ServingConfig(models=(ModelSpec("churn@champion"),)), port=8000, workers=2)  # doctest: +SKIP
    """
    from shipyard.errors import InvalidInputError

    if workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}", field="workers")
    stores = resolve_stores(client)
    multiproc_dir = _multiprocess_metrics() if workers > 1 else None
    metrics = ServerMetrics()
    deployments = load_deployments(config, stores=stores, metrics=metrics)
    sock = _listen(host, port)
    logger.info("serving %s on http://%s:%s with %d worker(s)", ", ".join(deployments), host, port, workers)
    try:
        if workers == 1:
            _settle_memory()
            _run_worker(config, stores, deployments, metrics, sock, on_ready)
        else:
            stores.close()  # no database connection may cross the fork
            _settle_memory()
            run = functools.partial(_run_worker, config, stores, deployments, metrics, sock, None)
            _supervise(workers, run, on_ready)
    finally:
        sock.close()
        end_runs(deployments, stores)
        if multiproc_dir is not None:
            multiproc_dir.cleanup()


def _settle_memory() -> None:
    """Freeze what loading made, so the collector never walks it again; collect young objects less often.

    The loaded models, pandas, scikit-learn and the web stack are hundreds of thousands of
    objects that live as long as the server: left in the collector's oldest generation,
    each full collection walked them all while requests waited (a tail of tens of ms).
    Frozen, they are also never written to, so forked workers keep sharing their pages.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG, older, oldest)


def _multiprocess_metrics() -> tempfile.TemporaryDirectory[str]:
    from prometheus_client import values

    folder = tempfile.TemporaryDirectory(prefix="shipyard-metrics-")
    os.environ[MULTIPROC_ENV] = folder.name
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # chosen at import; metrics are built after this
    return folder


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _run_worker(
    config: ServingConfig,
    stores: Stores,
    deployments: dict[str, Deployment],
    metrics: ServerMetrics,
    sock: socket.socket,
    on_ready: Callable[[], None] | None,
) -> None:
    import uvicorn

    from shipyard.serving.app import create_app

    app = create_app(config, client=StoresClient(stores), deployments=deployments, metrics=metrics)
    options: dict[str, Any] = {"loop": "auto", "http": "auto"}
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    with contextlib.suppress(ImportError):
        from shipyard.serving._http import OneWriteHttpTools  # needs httptools

        options["http"] = OneWriteHttpTools
    server_config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # shipyard's JSON access log replaces uvicorn's
        timeout_graceful_shutdown=30,
        backlog=2048,
        **options,
    )
    server = uvicorn.Server(server_config)
    if on_ready is not None:
        _notify_when_started(server, on_ready)
    with _graceful_signals(server):
        server.run(sockets=[sock])


@contextlib.contextmanager
def _graceful_signals(server: Any) -> Iterator[None]:
    """Let SIGINT/SIGTERM stop ``server`` gracefully and then return, so the caller can end the runs.

    uvicorn re-raises the signal it caught once it has shut down, which, under the default
    handlers, kills the process before ``serve`` marks its prediction-log runs finished
    (they were then found ``failed`` when their heartbeat lapsed). Under this handler the
    re-raised signal asks for the exit that has already happened.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _notify_when_started(server: object, on_ready: Callable[[], None]) -> None:
    def wait() -> None:
        while not getattr(server, "started", False) and not getattr(server, "should_exit", False):
            time.sleep(0.05)
        if getattr(server, "started", False):
            on_ready()

    threading.Thread(target=wait, daemon=True).start()


def _supervise(workers: int, run: Callable[[], None], on_ready: Callable[[], None] | None) -> None:
    supervisor = _Supervisor(run)
    previous = {s: signal.signal(s, supervisor.stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(workers):
            supervisor.spawn()
        if on_ready is not None:
            on_ready()
        supervisor.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Supervisor:
    """Forks workers, restarts the ones that die, stops them all on a signal."""

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run
        self.children: dict[int, float] = {}
        self.stopping = False
        self.quick_deaths = 0

    def spawn(self) -> None:
        _flush_logs()  # nothing buffered may be copied into the child and written twice
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                self.run()
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                _flush_logs()  # os._exit skips logging's own flush at exit
                os._exit(code)
        self.children[pid] = time.monotonic()

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def wait(self) -> None:
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            born = self.children.pop(pid, None)
            _mark_dead(pid)
            if self.stopping or born is None:
                continue
            logger.warning("worker %d exited (status %d); starting another", pid, status)
            self.quick_deaths = self.quick_deaths + 1 if time.monotonic() - born < _RESTART_WINDOW else 0
            if self.quick_deaths >= _MAX_QUICK_DEATHS:
                logger.error("workers keep dying at start; stopping the server")
                self.stop()
                continue
            self.spawn()


def _flush_logs() -> None:
    for name in ("shipyard.serving.access", "shipyard.serving", ""):
        for handler in logging.getLogger(name).handlers:
            with contextlib.suppress(Exception):
                handler.flush()


def _mark_dead(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
