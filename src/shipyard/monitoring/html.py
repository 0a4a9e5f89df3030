"""A drift report as one small, self-contained HTML page: a summary table, per-column inline SVG plots
of the reference and current distributions, quality issues, and drift scores over time.

It draws the summaries a :class:`DriftReport` carries (at most 30 bins per column), never rows,
so its size depends on the number of columns, not on the data: a few KB per column. No
script, no external URL.

Example:
    >>> open("drift.html", "w").write(render_html(report, title="churn, last hour"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from shipyard.errors import InvalidInputError
from shipyard.monitoring.drift import ColumnDrift, DriftReport

REF_COLOR = "#4c78a8"
CUR_COLOR = "#f58518"
_W, _H = 360, 110
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
    "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}.drift{color:#c0392b;font-weight:600}"
    ".col{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}.k{color:#666;font-size:12px}"
    f".r{{fill:{REF_COLOR}}}.c{{fill:{CUR_COLOR}}}"
)

History = Sequence[DriftReport] | Sequence[tuple[str, DriftReport]]


def render_html(
    report_or_reports: DriftReport | Sequence[DriftReport],
    *,
    title: str,
    history: History | None = None,
) -> str:
    """The report (or several, one section each) as an HTML page; ``history`` adds drift score over time.

    Args:
        report_or_reports: a :class:`DriftReport`, or a list of them (e.g. one per model arm).
        title: the page's title.
        history: earlier reports in time order, bare or as ``(label, report)`` pairs (a label
            such as the window's end time); each column's score is plotted across them.

    Raises:
        InvalidInputError: an argument is not a report.
    """
    reports = [report_or_reports] if isinstance(report_or_reports, DriftReport) else list(report_or_reports)
    if not all(isinstance(r, DriftReport) for r in reports):
        raise InvalidInputError("render_html takes a DriftReport or a list of them", field="report_or_reports")
    points = _history(history)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>",
        "<p class='k'><svg width='10' height='10'><rect class='r' width='10' height='10'/></svg> reference "
        "<svg width='10' height='10'><rect class='c' width='10' height='10'/></svg> current</p>",
    ]
    for index, report in enumerate(reports):
        if len(reports) > 1:
            parts.append(f"<h2>Report {index + 1}</h2>")
        parts.append(_section(report))
    if points:
        parts.append(_history_section(points))
    parts.append("</body></html>")
    return "".join(parts)


def _section(report: DriftReport) -> str:
    head = (
        f"<p>reference {report.reference_rows:,} rows, current {report.current_rows:,} rows; "
        f"<b>{len(report.drifted)} of {len(report.columns)}</b> columns drifted ({report.share_drifted:.0%})</p>"
    )
    if report.empty:
        return head + "<p><b>The current window has no rows: nothing was compared.</b></p>" + _quality(report)
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{c.kind}</td><td>{c.method}</td><td>{_fmt(c.score)}</td>"
        f"<td>{_fmt(c.threshold)}</td>{'<td class=drift>drift' if c.drifted else '<td>ok'}</td></tr>"
        for c in report.columns.values()
    )
    table = (
        "<table><tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th><th></th></tr>"
        f"{rows}</table>"
    )
    plots = "".join(_column_plot(c) for c in report.columns.values())
    return head + table + _quality(report) + f"<div>{plots}</div>"


def _quality(report: DriftReport) -> str:
    if not report.quality:
        return "<p>No data quality issues.</p>"
    rows = "".join(
        f"<tr><td>{escape(i.column)}</td><td>{i.check}</td><td>{_fmt(i.value)}</td><td>{_fmt(i.threshold)}</td></tr>"
        for i in report.quality
    )
    return (
        f"<h3>Data quality</h3><table><tr><th>column</th><th>check</th><th>value</th><th>limit</th></tr>{rows}</table>"
    )


def _column_plot(column: ColumnDrift) -> str:
    d = column.distribution
    caption = f"<div><b>{escape(column.name)}</b> <span class='k'>{column.method} {_fmt(column.score)}</span></div>"
    if d is None or not d.labels:
        return f"<div class='col'>{caption}<p class='k'>no values to plot</p></div>"
    peak = max([*d.reference, *d.current, 1e-12])
    slot = _W / len(d.labels)
    bar = max(slot / 2 - 0.5, 0.5)
    rects = []
    for i, (label, r, c) in enumerate(zip(d.labels, d.reference, d.current, strict=True)):
        x = i * slot
        for value, css, dx in ((r, "r", 0.0), (c, "c", bar)):
            h = value / peak * (_H - 14)
            rects.append(
                f"<rect class='{css}' x='{x + dx:.1f}' y='{_H - 14 - h:.1f}' width='{bar:.1f}' height='{h:.1f}'>"
                f"<title>{escape(label)}: {value:.3f}</title></rect>"
            )
    ends = f"<text x='0' y='{_H - 2}' font-size='10'>{escape(d.labels[0].split('..')[0])}</text>"
    ends += (
        f"<text x='{_W}' y='{_H - 2}' font-size='10' text-anchor='end'>{escape(d.labels[-1].split('..')[-1])}</text>"
    )
    svg = f"<svg width='{_W}' height='{_H}' viewBox='0 0 {_W} {_H}'>{''.join(rects)}{ends}</svg>"
    return f"<div class='col'>{caption}{svg}</div>"


def _history(history: History | None) -> list[tuple[str, DriftReport]]:
    if history is None:
        return []
    points = []
    for i, item in enumerate(history):
        label, report = item if isinstance(item, tuple) else (str(i + 1), item)
        if not isinstance(report, DriftReport):
            raise InvalidInputError("history must be DriftReports or (label, DriftReport) pairs", field="history")
        points.append((str(label), report))
    return points


def _history_section(points: list[tuple[str, DriftReport]]) -> str:
    names = list(dict.fromkeys(name for _, r in points for name in r.columns))
    charts = []
    for name in names:
        series = [(label, r.columns.get(name)) for label, r in points]
        scores = [c.score if c is not None and math.isfinite(c.score) else None for _, c in series]
        known = [s for s in scores if s is not None]
        if not known:
            continue
        threshold = next(c.threshold for _, c in series if c is not None)
        top = max([*known, threshold, 1e-12]) * 1.1
        step = _W / max(len(series) - 1, 1)
        coords = [
            (i * step, _H - 14 - s / top * (_H - 20), series[i][0]) for i, s in enumerate(scores) if s is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
        dots = "".join(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{CUR_COLOR}'><title>{escape(label)}</title></circle>"
            for x, y, label in coords
        )
        y_line = _H - 14 - threshold / top * (_H - 20)
        svg = (
            f"<svg width='{_W}' height='{_H}'><line x1='0' x2='{_W}' y1='{y_line:.1f}' y2='{y_line:.1f}' "
            f"stroke='#c0392b' stroke-dasharray='4 3'/><polyline fill='none' stroke='{REF_COLOR}' points='{path}'/>"
            f"{dots}<text x='0' y='{_H - 2}' font-size='10'>{escape(points[0][0])}</text>"
            f"<text x='{_W}' y='{_H - 2}' font-size='10' text-anchor='end'>{escape(points[-1][0])}</text></svg>"
        )
        method = next(c.method for _, c in series if c is not None)
        charts.append(f"<div class='col'><div><b>{escape(name)}</b> <span class='k'>{method}</span></div>{svg}</div>")
    return "<h2>Drift over time</h2><div>" + "".join(charts) + "</div>"


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
