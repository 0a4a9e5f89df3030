"""The monitor as a service: one window every ``every`` seconds until stopped, and Prometheus gauges.

Gauges (on ``127.0.0.1:<port>/metrics`` when a port is given), labelled by the monitored
reference: ``shipyard_monitor_drift_score{ref, feature}``,
``shipyard_monitor_share_drifted{ref}``, ``shipyard_monitor_performance{ref, metric}``,
``shipyard_monitor_rows{ref}``, ``shipyard_monitor_alert_firing{ref, alert}`` (1 or 0) and
``shipyard_monitor_last_run_timestamp_seconds{ref}``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.monitoring.monitor import MonitorReport, monitor
from shipyard.monitoring.performance import METRICS

MAX_RUNS = 1_000_000  # about 19 years of 10-minute windows: the loop is bounded, never endless


class MonitorGauges:
    """The Prometheus gauges of monitored models, in a registry of their own."""

    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Gauge
        except ImportError as exc:
            raise InvalidInputError(
                "Prometheus gauges need prometheus_client: pip install 'shipyard[ui]'", field="metrics_port"
            ) from exc
        self.registry = CollectorRegistry()
        prefix = "shipyard_monitor_"
        self.drift = Gauge(prefix + "drift_score", "drift score by feature", ["ref", "feature"], registry=self.registry)
        self.share = Gauge(prefix + "share_drifted", "share of drifted features", ["ref"], registry=self.registry)
        self.performance = Gauge(
            prefix + "performance", "metric on labelled predictions", ["ref", "metric"], registry=self.registry
        )
        self.rows = Gauge(prefix + "rows", "predictions in the last window", ["ref"], registry=self.registry)
        self.firing = Gauge(prefix + "alert_firing", "1 while an alert fires", ["ref", "alert"], registry=self.registry)
        self.last = Gauge(
            prefix + "last_run_timestamp_seconds", "end of the last monitored window", ["ref"], registry=self.registry
        )
        self._server: Any = None

    def update(self, report: MonitorReport) -> None:
        """Set every gauge from one report (an empty window sets only the row count and the time)."""
        ref = report.ref
        self.rows.labels(ref).set(report.rows)
        self.last.labels(ref).set(report.end)
        for name, state in report.alerts.items():
            self.firing.labels(ref, name).set(1.0 if state.state == "firing" else 0.0)
        if report.drift is not None:
            self.share.labels(ref).set(report.drift.share_drifted)
            for name, column in report.drift.columns.items():
                if not math.isnan(column.score):
                    self.drift.labels(ref, name).set(column.score)
        for metric in METRICS:
            value = report.values.get(metric)
            if value is not None and not math.isnan(value):
                self.performance.labels(ref, metric).set(value)

    def serve(self, port: int) -> int:
        """Expose the gauges on ``127.0.0.1:port`` (0 picks a free port); returns the port."""
        from prometheus_client import start_http_server

        try:
            self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot listen on port {port} for --metrics-port: {exc.strerror}", field="metrics_port"
            ) from exc
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving the gauges."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def run_every(
    ref: str,
    *,
    every: float,
    stop: threading.Event,
    max_runs: int = MAX_RUNS,
    on_report: Callable[[MonitorReport], None] = lambda report: None,
    **options: Any,
) -> int:
    """Monitor ``ref`` now and every ``every`` seconds until ``stop`` is set or ``max_runs`` windows ran.

    Windows start on a fixed beat (a slow window does not shift the next ones); an error
    ends the loop and reaches the caller. Returns how many windows ran.
    """
    done = 0
    next_at = time.monotonic()
    while not stop.is_set() and done < max_runs:
        on_report(monitor(ref, **options))
        done += 1
        next_at += every
        stop.wait(max(0.0, next_at - time.monotonic()))
    return done
