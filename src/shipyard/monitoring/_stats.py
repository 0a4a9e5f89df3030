"""The drift statistics, in numpy: on exact values where a side kept them, else on quantile sketches.

Each function matches scipy's on the same data (the tests check it): ``ks_2samp`` (the
statistic exactly; the p-value from the asymptotic Kolmogorov distribution with Stephens'
small-sample correction: within 0.01 of scipy's ``method="asymp"`` from 300 values a side,
0.025 below), ``chi2_contingency``
without Yates' correction, ``jensenshannon`` (natural log) and ``wasserstein_distance``.
PSI is ``sum((c - r) * ln(c / r))`` over shares, with empty bins counted as ``PSI_FLOOR``.
"""

from __future__ import annotations

import math

import numpy as np

from shipyard.datasets.profile import NumericSummary

PSI_FLOOR = 1e-4
PSI_BINS = 10
GRID = 1024  # quantiles read from each sketch to rebuild its distribution function


def distribution_functions(ref: NumericSummary, cur: NumericSummary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sides' distribution functions at every point where either steps (all values, or a quantile grid)."""
    if ref.values is not None and cur.values is not None and ref.count and cur.count:
        return _exact_functions(ref.values, cur.values)
    ranks = (np.arange(GRID) + 0.5) / GRID
    parts = [
        side.values if side.values is not None else np.concatenate([[side.min], side.quantiles(ranks), [side.max]])
        for side in (ref, cur)
    ]
    points = np.unique(np.concatenate(parts))
    return points, ref.cdf(points), cur.cdf(points)


def _exact_functions(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Two sorted runs: a stable argsort merges them in linear time, and running counts of each
    # side's values along the merge are both distribution functions (read at the last of equal values).
    merged = np.concatenate([ref, cur])
    order = np.argsort(merged, kind="stable")
    points = merged[order]
    from_cur = order >= ref.size
    last = np.flatnonzero(np.diff(points) != 0)
    last = np.append(last, points.size - 1)
    seen_cur = np.cumsum(from_cur)[last]
    return points[last], (last + 1 - seen_cur) / ref.size, seen_cur / cur.size


def ks_statistic(f_ref: np.ndarray, f_cur: np.ndarray) -> float:
    """The largest gap between two distribution functions (Kolmogorov-Smirnov D)."""
    return float(np.max(np.abs(f_ref - f_cur))) if f_ref.size else 0.0


def ks_pvalue(d: float, n: int, m: int) -> float:
    """The two-sided p-value of D for samples of ``n`` and ``m`` values (asymptotic)."""
    en = n * m / (n + m)
    root = math.sqrt(en)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution."""
    if x <= 0.0:
        return 1.0
    if x < 1.18:
        # The theta-function form converges fast for small x, where the alternating series does not.
        w = math.sqrt(2.0 * math.pi) / x
        t = math.exp(-(math.pi**2) / (8.0 * x * x))
        total = math.fsum(t ** float((2 * k - 1) ** 2) for k in range(1, 6))
        return min(1.0, max(0.0, 1.0 - w * total))
    total = math.fsum((-1.0) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def wasserstein(points: np.ndarray, f_ref: np.ndarray, f_cur: np.ndarray) -> float:
    """The earth mover's distance: the area between two distribution functions stepping at ``points``."""
    if points.size < 2:
        return 0.0
    return float(np.sum(np.abs(f_ref[:-1] - f_cur[:-1]) * np.diff(points)))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """The population stability index of two binnings of the same edges."""
    r, c = _shares(ref_counts), _shares(cur_counts)
    r, c = np.maximum(r, PSI_FLOOR), np.maximum(c, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """The Jensen-Shannon distance (natural log, so between 0 and sqrt(ln 2))."""
    p, q = _shares(ref_counts), _shares(cur_counts)
    m = (p + q) / 2.0
    divergence = (_kl(p, m) + _kl(q, m)) / 2.0
    return math.sqrt(max(divergence, 0.0))


def chi2_contingency(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square of the 2 x K table of counts, and its p-value (no continuity correction)."""
    observed = np.vstack([ref_counts, cur_counts]).astype(float)
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2 or (observed.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, observed.shape[1] - 1)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with ``dof`` degrees of freedom."""
    if x <= 0.0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def numeric_bins(ref: NumericSummary, cur: NumericSummary, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each side in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""

    def counts(side: NumericSummary) -> np.ndarray:
        cum = np.concatenate([[0.0], side.cdf(edges), [1.0]])
        return np.maximum(np.diff(cum), 0.0) * side.count

    return counts(ref), counts(cur)


def psi_edges(ref: NumericSummary) -> np.ndarray:
    """The reference's deciles, the usual PSI binning."""
    return np.unique(ref.quantiles(np.arange(1, PSI_BINS) / PSI_BINS))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = float(np.sum(counts))
    return np.asarray(counts, dtype=float) / total if total > 0 else np.zeros(len(counts))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) (series below a + 1, continued fraction above)."""
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)
