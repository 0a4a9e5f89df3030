"""The monitor: one window of a served model's prediction logs against its training profile, and its labels.

``monitor("churn@champion", window="1h")`` reads the last hour of the model's prediction
logs (every arm but the shadow, whose inputs copy the others'), compares the inputs with
the version's training profile (:func:`~shipyard.monitoring.drift`), scores the labelled
predictions of that version (:mod:`.performance`), evaluates the alert rules, notifies,
and stores the report: a run in experiment ``monitoring`` named after the reference,
with each drift score and metric logged at step = the window's index (0, 1, 2, ... per
reference) and the whole report as ``report.json``. The next run reads the alert states
back from there. A window without predictions is a report too: ``empty``, with a
message, and it leaves the alert states as they were.

Example:
    >>> report = monitor("churn@champion", window="1h", rules=["psi(plan) > 0.2 for 2 windows"])  # doctest: +SKIP
    >>> report.drift.drifted, report.values["roc_auc"], report.alerts["psi(plan) > 0.2"].state  # doctest: +SKIP
    (['plan'], 0.74, 'firing')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import NotFoundError
from shipyard.monitoring._logs import arm_runs, join_labels, parse_window, read_predictions
from shipyard.monitoring.alerts import AlertState, Notifier, Transition, evaluate, notify
from shipyard.monitoring.drift import ColumnDrift, Distribution, DriftReport, drift
from shipyard.monitoring.html import render_html
from shipyard.monitoring.performance import performance_of
from shipyard.monitoring.profiles import profile_dataset, training_profile
from shipyard.monitoring.quality import QualityIssue
from shipyard.monitoring.rules import FEATURE_STATISTICS, Rule, check_rules, parse_rules
from shipyard.registry import get_model_version
from shipyard.store import Stores
from shipyard.tracking.api import HasStores, resolve_stores, start_run

EXPERIMENT = "monitoring"
REPORT_FILE = "report.json"
_DRIFT_STATISTICS = tuple(s for s in FEATURE_STATISTICS if s not in ("drift_score", "missing_rate"))


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """One monitored window: drift, performance, the values rules read, and the alert states after it."""

    ref: str
    model: str
    version: int
    step: int
    start: float
    end: float
    rows: int
    labelled: int
    drift: DriftReport | None
    values: Mapping[str, float]
    alerts: Mapping[str, AlertState] = field(default_factory=dict)
    transitions: tuple[Transition, ...] = ()
    notes: tuple[str, ...] = ()
    run_id: str | None = None

    @property
    def empty(self) -> bool:
        """True when the window held no predictions."""
        return self.rows == 0

    @property
    def firing(self) -> list[str]:
        """The rules firing after this window."""
        return [name for name, state in self.alerts.items() if state.state == "firing"]

    def summary(self) -> str:
        """One line: the window, its rows, what drifted, the metrics, the alerts firing."""
        span = f"{_when(self.start)} .. {_when(self.end)}"
        if self.empty:
            return f"{self.ref}: no predictions between {span}; nothing to compare (alert states unchanged)"
        drifted = ", ".join(self.drift.drifted) if self.drift is not None and self.drift.drifted else "none"
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in self.values.items() if k in _PERFORMANCE and not math.isnan(v))
        return (
            f"{self.ref} (version {self.version}), window {self.step} {span}: {self.rows} predictions, "
            f"{self.labelled} labelled; drifted: {drifted}"
            + (f"; {metrics}" if metrics else "")
            + f"; firing: {', '.join(self.firing) or 'none'}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``report.json`` holds)."""
        return {
            "ref": self.ref,
            "model": self.model,
            "version": self.version,
            "step": self.step,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "labelled": self.labelled,
            "empty": self.empty,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "values": {k: (None if math.isnan(v) else v) for k, v in self.values.items()},
            "alerts": {name: state.to_dict() for name, state in self.alerts.items()},
            "transitions": [t.payload() for t in self.transitions],
            "notes": list(self.notes),
            "run_id": self.run_id,
        }


_PERFORMANCE = ("accuracy", "roc_auc", "f1", "rmse", "mae")


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def monitor(
    ref: str,
    *,
    window: str | float = "1h",
    end: float | None = None,
    rules: Iterable[str | Rule] = (),
    notifiers: Sequence[Notifier] = (),
    thresholds: Mapping[str, float] | None = None,
    record: bool = True,
    client: HasStores | None = None,
) -> MonitorReport:
    """Monitor the window ``[end - window, end)`` of ``ref``'s prediction logs; store and return the report.

    Args:
        ref: The served model, ``"churn@champion"`` (or ``"churn/3"``).
        window: The window's length (``"1h"``, ``"10m"``, seconds).
        end: The window's end (epoch seconds); now when ``None``.
        rules: Alert rules (text or :class:`Rule`); a rule on a feature the model lacks is refused.
        notifiers: Called with each alert transition (e.g. :func:`~shipyard.monitoring.alerts.webhook`).
        thresholds: Drift thresholds, as :func:`~shipyard.monitoring.drift` takes them.
        record: Store the report as a run of experiment ``monitoring`` (and keep the alert states).
        client: A ``Client``; the settings in force when ``None``.

    Raises:
        NotFoundError: no such model, version or alias.
        InvalidInputError: the window or a rule is invalid, or a rule names an unknown feature.
    """
    stores = resolve_stores(client)
    version = get_model_version(ref, client=client)
    parsed = parse_rules(rules)
    notes: list[str] = []
    try:
        reference = training_profile(ref, client=client)
    except NotFoundError as exc:
        if exc.field != "model":
            raise
        reference, note = _dataset_reference(stores, version.run_id, client)
        notes.append(note or exc.message)
    features = _features(version.signature, reference)
    check_rules(parsed, features)
    size = parse_window(window)
    stop = time.time() if end is None else float(end)
    start = stop - size
    runs = [r for r in arm_runs(stores, version.name) if r.arm != "shadow"]
    current = read_predictions(stores, runs, start=start, end=stop)
    previous = last_report(ref, client=client) if record else None
    step = 0 if previous is None else int(previous["step"]) + 1
    states = {name: AlertState.from_dict(s) for name, s in (previous or {}).get("alerts", {}).items()}
    if current.empty:
        report = MonitorReport(
            ref, version.name, version.version, step, start, stop, 0, 0, None, {}, states, (), tuple(notes)
        )
        return _store(stores, report, client) if record else report
    present = [f for f in features if f in current.columns]
    drift_report = None
    if reference is not None and present:
        drift_report = drift(reference, current[present], columns=present, thresholds=thresholds)
    labelled = join_labels(stores, runs, current)  # the window's partitions, read once
    labelled = labelled[labelled["_version"] == version.version]
    performance = performance_of(labelled, _edges(start, stop)).windows[0] if len(labelled) else None
    values = _values(current, present, drift_report, performance.metrics if performance else {})
    context = {"ref": ref, "model": version.name, "version": version.version, "step": step, "start": start, "end": stop}
    states, changes = evaluate(parsed, values, states, at=stop, context=context)
    report = MonitorReport(
        ref,
        version.name,
        version.version,
        step,
        start,
        stop,
        len(current),
        len(labelled),
        drift_report,
        values,
        states,
        tuple(changes),
        tuple(notes),
    )
    if record:
        report = _store(stores, report, client)
    notify(changes, notifiers, client=client)
    return report


def _dataset_reference(stores: Stores, run_id: str | None, client: HasStores | None) -> tuple[Any, str | None]:
    """For a version logged without ``training_data=``: the profile of its run's training dataset, if it logged one.

    The run's input datasets are tried in this order: a name with ``train`` in it, then the others.
    """
    links = [link for link in stores.datasets.run_datasets([run_id]) if link.role == "input"] if run_id else []
    if not links:
        return None, None
    link = sorted(links, key=lambda li: ("train" not in li.name, li.name))[0]
    note = f"reference: dataset {link.name}@{link.version}, the training run's input (no stored training profile)"
    return profile_dataset(link.name, link.version, client=client), note


def _features(signature: Mapping[str, Any] | None, reference: Any) -> list[str]:
    if signature and signature.get("inputs"):
        return [str(column["name"]) for column in signature["inputs"]]
    return list(reference.columns) if reference is not None else []


def _edges(start: float, end: float) -> Any:
    import numpy as np

    return np.array([start, end])


def _values(
    current: Any, features: Sequence[str], report: DriftReport | None, metrics: Mapping[str, float]
) -> dict[str, float]:
    values: dict[str, float] = {"rows": float(len(current))}
    for name in features:
        values[f"missing_rate({name})"] = float(current[name].isna().mean())
    if report is not None:
        values["share_drifted"] = report.share_drifted
        values["drifted_count"] = float(len(report.drifted))
        for name, column in report.columns.items():
            values[f"drift_score({name})"] = column.score
            for statistic in _DRIFT_STATISTICS:
                if statistic in column.statistics:
                    values[f"{statistic}({name})"] = column.statistics[statistic]
    values.update(metrics)
    return values


def _metric_key(subject: str) -> str:
    """``psi(plan)`` -> ``psi.plan``: metric names that read well in ``runs show`` and filters."""
    return subject.replace("(", ".").rstrip(")")


def _store(stores: Stores, report: MonitorReport, client: HasStores | None) -> MonitorReport:
    tags = {
        "shipyard.monitoring.ref": report.ref,
        "shipyard.monitoring.model": report.model,
        "shipyard.monitoring.version": str(report.version),
        "shipyard.monitoring.step": str(report.step),
        "shipyard.monitoring.firing": ",".join(report.firing),
    }
    with start_run(experiment=EXPERIMENT, name=report.ref, tags=tags, client=client) as run:
        finite = {_metric_key(k): v for k, v in report.values.items() if not math.isnan(v)}
        if finite:
            run.log_metrics(finite, step=report.step)
        stored = dataclasses.replace(report, run_id=run.id)
        run.log_text(json.dumps(stored.to_dict(), default=str), REPORT_FILE)
    return stored


def history(ref: str, *, limit: int = 500, client: HasStores | None = None) -> list[dict[str, Any]]:
    """The stored reports of ``ref`` (``report.json`` of each monitoring run), oldest first, the last ``limit``."""
    stores = resolve_stores(client)
    experiment = stores.runs.find_experiment(EXPERIMENT)
    if experiment is None:
        return []
    quoted = ref.replace("\\", "\\\\").replace("'", "\\'")
    page = stores.runs.search_runs(
        [experiment.id],
        filter=f"tags.shipyard.monitoring.ref = '{quoted}'",
        order_by=["start_time desc"],
        max_results=max(1, min(limit, 10_000)),
        page_token=None,
    )
    reports = []
    for run in reversed(page):
        refs = [r for r in stores.runs.list_artifacts(run.id, REPORT_FILE) if r.path == REPORT_FILE]
        if refs:
            reports.append(json.loads(stores.artifacts.get_bytes(refs[0].digest)))
    return reports


def last_report(ref: str, *, client: HasStores | None = None) -> dict[str, Any] | None:
    """The newest stored report of ``ref``, or ``None``."""
    found = history(ref, limit=1, client=client)
    return found[-1] if found else None


def report_html(ref: str, *, limit: int = 100, client: HasStores | None = None) -> str:
    """The HTML report of ``ref``: its newest window's drift, and every stored window's scores over time.

    Raises:
        NotFoundError: ``ref`` was never monitored (or no window had data).
    """
    reports = [r for r in history(ref, limit=limit, client=client) if r.get("drift")]
    if not reports:
        raise NotFoundError(
            f"{ref} has no stored monitoring report with data; run: shipyard monitor {ref} --window 1h",
            field="ref",
        )
    points = [(_when(r["end"]), drift_from_dict(r["drift"])) for r in reports]
    latest = reports[-1]
    title = f"{ref}: window {latest['step']}, {_when(latest['start'])} .. {_when(latest['end'])} UTC"
    return render_html(points[-1][1], title=title, history=points)


def drift_from_dict(data: Mapping[str, Any]) -> DriftReport:
    """The :class:`DriftReport` whose ``to_dict`` gave ``data`` (as stored in ``report.json``)."""
    columns = {}
    for name, c in data.get("columns", {}).items():
        d = c.get("distribution")
        distribution = (
            None if d is None else Distribution(tuple(d["labels"]), tuple(d["reference"]), tuple(d["current"]))
        )
        columns[name] = ColumnDrift(
            name,
            c["kind"],
            c["method"],
            math.nan if c["score"] is None else float(c["score"]),
            float(c["threshold"]),
            bool(c["drifted"]),
            {k: math.nan if v is None else float(v) for k, v in c.get("statistics", {}).items()},
            distribution,
        )
    quality = [
        QualityIssue(q["column"], q["check"], float(q["value"]), float(q["threshold"])) for q in data.get("quality", [])
    ]
    return DriftReport(columns, quality, int(data.get("reference_rows", 0)), int(data.get("current_rows", 0)))
