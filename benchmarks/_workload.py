"""The tracking workload both halves run: sizes, the data each run logs, and the filters.

Standard library only: the MLflow half imports this module from the peers' virtualenv,
where shipyard is not installed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

T = TypeVar("T")

MODELS = ("lgbm", "xgb", "rf", "linear")
# MLflow's filter language is AND-only, so this is the filter both tools are timed on.
COMMON_FILTER = "metrics.auc > 0.5 and params.model = 'lgbm'"
# shipyard's richer form; MLflow answers it only as several queries united client-side.
RICH_FILTER = "(metrics.auc > 0.9 or metrics.f1 > 0.8) and params.model in ('lgbm', 'xgb')"
RICH_AS_AND_QUERIES = (
    "metrics.auc > 0.9 and params.model = 'lgbm'",
    "metrics.auc > 0.9 and params.model = 'xgb'",
    "metrics.f1 > 0.8 and params.model = 'lgbm'",
    "metrics.f1 > 0.8 and params.model = 'xgb'",
)


@dataclass(frozen=True, slots=True)
class Workload:
    """How many of each operation to run; ``--quick`` divides every count by ten."""

    buffered_calls: int = 10_000
    sync_calls: int = 1_000
    batch_points: int = 10_000
    batch_size: int = 1_000
    runs: int = 1_000
    repeats: int = 3

    @classmethod
    def sized(cls, *, quick: bool) -> Workload:
        """The full workload, or one ten times smaller for a smoke run."""
        full = cls()
        if not quick:
            return full
        return cls(
            buffered_calls=full.buffered_calls // 10,
            sync_calls=full.sync_calls // 10,
            batch_points=full.batch_points // 10,
            batch_size=full.batch_size // 10,
            runs=full.runs // 10,
            repeats=full.repeats,
        )

    def to_json(self) -> str:
        """The workload as a JSON object, for the peer's command line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        """The workload that :meth:`to_json` wrote."""
        return cls(**json.loads(text))


def run_params(index: int) -> dict[str, str]:
    """The two params run ``index`` logs."""
    return {"model": MODELS[index % len(MODELS)], "lr": f"{0.01 * (1 + index % 10):.2f}"}


def run_metrics(index: int) -> dict[str, float]:
    """The two metrics run ``index`` logs: spread over [0, 1) so filters match a fraction."""
    return {"auc": (index * 37 % 100) / 100, "f1": (index * 53 % 100) / 100}


def expected_matches(runs: int) -> tuple[int, int]:
    """How many of ``runs`` runs the common and the rich filter should return."""
    common = rich = 0
    for index in range(runs):
        model, metrics = run_params(index)["model"], run_metrics(index)
        common += metrics["auc"] > 0.5 and model == "lgbm"
        rich += (metrics["auc"] > 0.9 or metrics["f1"] > 0.8) and model in ("lgbm", "xgb")
    return common, rich


def loss(step: int) -> float:
    """The value logged at ``step`` of the long metric histories."""
    return 1.0 / (1 + step)


def best_of(repeats: int, action: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``repeats`` (at least one) timed calls of ``action``, with what the last call returned."""
    timings = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = action()
        timings.append(time.perf_counter() - start)
    return min(timings), result
