"""Monitoring: profiles, drift, delayed-label performance, alerts and the retraining loop.

Example:
    >>> from shipyard.monitoring import profile, drift, render_html
    >>> report = drift(reference_df, current_df)  # doctest: +SKIP
    >>> report.drifted  # doctest: +SKIP
    ['f0', 'f3']
    >>> html = render_html(report, title="churn: this week")  # doctest: +SKIP
"""

from shipyard.datasets.profile import CategoricalSummary, NumericSummary, Profile, profile
from shipyard.monitoring.drift import DEFAULT_THRESHOLDS, ColumnDrift, Distribution, DriftReport, drift
from shipyard.monitoring.html import render_html
from shipyard.monitoring.profiles import profile_dataset, training_profile
from shipyard.monitoring.quality import QUALITY_THRESHOLDS, QualityIssue, check_quality

__all__ = [
    "DEFAULT_THRESHOLDS",
    "QUALITY_THRESHOLDS",
    "CategoricalSummary",
    "ColumnDrift",
    "Distribution",
    "DriftReport",
    "NumericSummary",
    "Profile",
    "QualityIssue",
    "check_quality",
    "drift",
    "profile",
    "profile_dataset",
    "render_html",
    "training_profile",
]
