"""Monitoring: profiles, drift, delayed-label performance, alerts and the retraining loop.

Example:
    >>> from shipyard.monitoring import profile, drift, render_html
    >>> report = drift(reference_df, current_df)  # doctest: +SKIP
    >>> report.drifted  # doctest: +SKIP
    ['f0', 'f3']
    >>> html = render_html(report, title="churn: this week")  # doctest: +SKIP
"""

from shipyard.datasets.profile import CategoricalSummary, NumericSummary, Profile, profile
from shipyard.monitoring.alerts import AlertState, Transition, webhook
from shipyard.monitoring.drift import DEFAULT_THRESHOLDS, ColumnDrift, Distribution, DriftReport, drift
from shipyard.monitoring.experiments import ArmComparison, ArmResult, compare_arms
from shipyard.monitoring.gate import GateDecision, promote_if_better, promote_if_recommended
from shipyard.monitoring.html import render_html
from shipyard.monitoring.labels import LabelsLogged, log_labels, read_labelled
from shipyard.monitoring.monitor import MonitorReport, history, monitor, report_html
from shipyard.monitoring.performance import PerformanceReport, WindowPerformance, windowed_performance
from shipyard.monitoring.profiles import profile_dataset, training_profile
from shipyard.monitoring.quality import QUALITY_THRESHOLDS, QualityIssue, check_quality
from shipyard.monitoring.rules import Rule, parse_rule, read_rules

__all__ = [
    "DEFAULT_THRESHOLDS",
    "QUALITY_THRESHOLDS",
    "AlertState",
    "ArmComparison",
    "ArmResult",
    "CategoricalSummary",
    "ColumnDrift",
    "Distribution",
    "DriftReport",
    "GateDecision",
    "LabelsLogged",
    "MonitorReport",
    "NumericSummary",
    "PerformanceReport",
    "Profile",
    "QualityIssue",
    "Rule",
    "Transition",
    "WindowPerformance",
    "check_quality",
    "compare_arms",
    "drift",
    "history",
    "log_labels",
    "monitor",
    "parse_rule",
    "profile",
    "profile_dataset",
    "promote_if_better",
    "promote_if_recommended",
    "read_labelled",
    "read_rules",
    "render_html",
    "report_html",
    "training_profile",
    "webhook",
    "windowed_performance",
]
