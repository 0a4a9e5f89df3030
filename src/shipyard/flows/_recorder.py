"""Writes a flow run's records in batches from one thread, and beats its heartbeat.

Task state changes, values and log lines are queued in memory and written every
``flush_interval`` in a few transactions (values first, so a recorded output always
exists), and once more when the run ends. A run killed between flushes loses at most one
interval of task states; resume re-runs those tasks.

What a failed flush could not write is kept for the next one. Task records (one per task
run, the latest state wins) and values (one per distinct output) are bounded by the run
itself; log lines are not, so at most ``MAX_PENDING_LOGS`` are kept while the store is
unreachable and the oldest beyond that are dropped, counted and reported on stderr.
A failed background flush is reported at once; the final flush at the end of the run
raises.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from shipyard.flows import _values
from shipyard.store import Stores
from shipyard.store.entities import TaskLogLine, TaskRun

MAX_PENDING_LOGS = 100_000


class Recorder:
    """The write-behind buffer of one flow run."""

    def __init__(self, stores: Stores, flow_run_id: str, *, on_cancel: Callable[[], None]) -> None:
        self.stores = stores
        self.flow_run_id = flow_run_id
        self.on_cancel = on_cancel
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._tasks: dict[str, Callable[[], TaskRun]] = {}
        self._values: dict[str, bytes] = {}
        self._saved: set[str] = set()
        self._logs: list[TaskLogLine] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"shipyard-recorder-{flow_run_id[:8]}", daemon=True)
        self._warned = False
        self.dropped_logs = 0

    def start(self) -> None:
        """Start the flushing and heartbeat thread."""
        self._thread.start()

    def task(self, task_run_id: str, snapshot: Callable[[], TaskRun]) -> None:
        """Note that a task run changed; ``snapshot`` makes its record when the next flush writes it.

        Records are built at flush time, once per task run however often it changed since
        the last flush (a fan-out's task goes pending, running, succeeded within one).
        """
        with self._lock:
            self._tasks[task_run_id] = snapshot

    def value(self, digest: str, data: bytes) -> None:
        """Queue serialized bytes for storage (once per digest per run)."""
        with self._lock:
            if digest not in self._saved:
                self._values[digest] = data

    def log(self, line: TaskLogLine) -> None:
        """Queue a log line (the oldest pending ones are dropped beyond ``MAX_PENDING_LOGS``)."""
        with self._lock:
            self._logs.append(line)
            if len(self._logs) > MAX_PENDING_LOGS:
                self._drop_oldest_logs()

    def _drop_oldest_logs(self) -> None:
        excess = len(self._logs) - MAX_PENDING_LOGS
        del self._logs[:excess]
        if not self.dropped_logs:
            _report(
                f"shipyard: flow run {self.flow_run_id} has {MAX_PENDING_LOGS} log lines it cannot write yet; "
                "dropping the oldest"
            )
        self.dropped_logs += excess

    def flush(self) -> None:
        """Write everything queued now."""
        with self._flush_lock:
            with self._lock:
                tasks, self._tasks = self._tasks, {}
                values, self._values = self._values, {}
                logs, self._logs = self._logs, []
            try:
                if values:
                    _values.save(self.stores, list(values.items()))
                self.stores.flows.save_task_runs([snapshot() for snapshot in tasks.values()])
                self.stores.flows.append_task_logs(logs)
            except Exception:
                with self._lock:  # keep them for the next flush; newer task states win
                    self._values = {**values, **self._values}
                    self._tasks = {**tasks, **self._tasks}
                    self._logs = logs + self._logs
                    if len(self._logs) > MAX_PENDING_LOGS:
                        self._drop_oldest_logs()
                raise
            with self._lock:
                self._saved.update(values)
            self._warned = False  # a later outage is reported again

    def close(self) -> None:
        """Stop the thread and write what is left (raises if the store still cannot take it)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        if self.dropped_logs:
            _report(
                f"shipyard: flow run {self.flow_run_id} lost {self.dropped_logs} log lines while its store was down"
            )

    def _loop(self) -> None:
        settings = self.stores.settings
        next_beat = time.monotonic() + settings.heartbeat_interval
        while not self._stop.wait(settings.flush_interval):
            try:
                self.flush()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + settings.heartbeat_interval
                    if self.flow_run_id in self.stores.flows.heartbeat_flow_runs([self.flow_run_id], time.time()):
                        self.on_cancel()
            except Exception as exc:  # the store is briefly unreachable: the next round retries
                if not self._warned:
                    self._warned = True
                    _report(f"shipyard: cannot record flow run {self.flow_run_id} yet (will retry): {exc}")


def _report(message: str) -> None:
    # The real stderr: a task's captured sys.stderr would route this back into the recorder.
    print(message, file=sys.__stderr__, flush=True)
