"""A mergeable quantile sketch: Apache DataSketches' KLL, behind the few calls profiles need.

KLL with ``k=400`` keeps about 10 KB per column whatever the row count, merges without
loss of its guarantee, and answers ranks within ``RANK_ERROR`` (0.68 %, with 99 %
confidence) of the exact normalized rank. Below about ``k`` values it holds every value
and answers exactly. (``k=200`` halves the size and doubles the error; at 100,000 rows a
side, Wasserstein distances read from ``k=200`` sketches were off by up to 0.036 standard
deviations, from ``k=400`` by 0.018: small against the 0.1 drift threshold.)
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
from datasketches import kll_doubles_sketch

K = 400
RANK_ERROR: float = kll_doubles_sketch.get_normalized_rank_error(K, False)


class QuantileSketch:
    """A KLL sketch of float values: update with arrays, merge, ask ranks and quantiles.

    Example:
        >>> s = QuantileSketch()
        >>> s.update(np.arange(100.0))
        >>> s.n, s.quantiles([0.5])[0]
        (100, 50.0)
    """

    __slots__ = ("_kll",)

    def __init__(self, kll: kll_doubles_sketch | None = None) -> None:
        self._kll = kll if kll is not None else kll_doubles_sketch(K)

    @property
    def n(self) -> int:
        """How many values went in."""
        return int(self._kll.n)

    def update(self, values: np.ndarray) -> None:
        """Add finite float64 values (the caller drops nulls and NaN)."""
        if values.size:
            self._kll.update(np.require(values, np.float64, ["C", "W"]))  # the binding refuses read-only views

    def merged(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of both inputs; neither is changed."""
        out = kll_doubles_sketch(K)
        out.merge(self._kll)
        out.merge(other._kll)
        return QuantileSketch(out)

    def cdf(self, points: Sequence[float] | np.ndarray) -> np.ndarray:
        """The share of values ``<= p`` for each ``p`` in ``points``."""
        if self._kll.is_empty() or len(points) == 0:
            return np.zeros(len(points))
        unique, where = np.unique(np.asarray(points, dtype=float), return_inverse=True)
        found = np.asarray(self._kll.get_cdf(unique.tolist(), True)[:-1])
        result: np.ndarray = found[where]
        return result

    def quantiles(self, ranks: Sequence[float] | np.ndarray) -> np.ndarray:
        """The values at the normalized ``ranks`` (each in [0, 1])."""
        if self._kll.is_empty():
            return np.full(len(ranks), np.nan)
        return np.asarray(self._kll.get_quantiles(list(map(float, ranks)), True))

    def to_text(self) -> str:
        """The sketch as base64 text, for JSON."""
        return base64.b64encode(self._kll.serialize()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> QuantileSketch:
        """The sketch :meth:`to_text` wrote."""
        return cls(kll_doubles_sketch.deserialize(base64.b64decode(text)))
