"""Traffic between the arms of a deployment: primary, an optional canary share, an optional shadow copy.

A request to ``/v2/models/churn/infer`` goes to the canary with probability
``canary_percent / 100`` and to the primary otherwise; a request naming a version
(``/v2/models/churn/versions/4/infer``) goes to the arm serving that version. When a
shadow is set, every request answered by an arm is also queued on the shadow, whose
answer is measured and logged but never returned: the caller's latency does not wait
for it, and a full shadow queue drops the copy, not the request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.errors import InvalidInputError, NotFoundError, OverloadedError
from shipyard.registry import parse_model_ref
from shipyard.serving._models import Arm, Slot
from shipyard.serving.batcher import BatcherClosedError, BatchResult
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.models import ModelSpec, ServingConfig
from shipyard.serving.prediction_log import PredictionLog, open_deployment_run
from shipyard.serving.validation import Array, Columns
from shipyard.store import Stores

_SWAP_RETRIES = 3
logger = logging.getLogger("shipyard.serving")


@dataclass(frozen=True, slots=True, eq=False)
class Answer:
    """What an arm answered for one request."""

    arm: Arm
    version: int
    outputs: Array
    result: BatchResult


class Deployment:
    """The arms serving one model name."""

    def __init__(self, spec: ModelSpec, *, stores: Stores, online_store: str | None = None) -> None:
        self.spec = spec
        self.online_store = online_store
        self.primary = self._arm(spec.ref, "primary", stores)
        self.name = self.primary.name
        self.canary = self._other(spec.canary, "canary", stores)
        self.shadow = self._other(spec.shadow, "shadow", stores)
        self.canary_share = spec.canary_percent / 100 if self.canary is not None else 0.0

    def _other(self, ref: str | None, role: str, stores: Stores) -> Arm | None:
        if ref is None:
            return None
        if parse_model_ref(ref).name != self.name:
            raise InvalidInputError(
                f"the {role} {ref!r} must be another version of {self.name!r}, e.g. {self.name}@challenger",
                field=role,
            )
        return self._arm(ref, role, stores)

    def _arm(self, ref: str, role: str, stores: Stores) -> Arm:
        spec = self.spec
        return Arm(
            ref, role=role, stores=stores, batching=spec.batching, method=spec.method, online_store=self.online_store
        )

    @property
    def arms(self) -> list[Arm]:
        """Every arm, primary first."""
        return [a for a in (self.primary, self.canary, self.shadow) if a is not None]

    def choose(self, version: int | None = None) -> Arm:
        """The arm for a request: by version when given, else the canary split.

        Raises:
            NotFoundError: no arm serves that version.
        """
        if version is not None:
            for arm in (self.primary, self.canary):
                if arm is not None and arm.version == version:
                    return arm
            serving = ", ".join(str(a.version) for a in (self.primary, self.canary) if a is not None)
            raise NotFoundError(
                f"model {self.name!r} is not serving version {version}; it serves version {serving}", field="version"
            )
        if self.canary is not None and random.random() < self.canary_share:
            return self.canary
        return self.primary

    async def predict(self, columns: Columns, *, arm: Arm, request_id: str, metrics: ServerMetrics) -> Answer:
        """Answer one request on ``arm`` (from :meth:`choose`), mirrored to the shadow; batched with others.

        Raises:
            OverloadedError: the arm's queue is full.
        """
        slot, future = self._submit(arm, columns, request_id)
        if self.shadow is not None:
            self._mirror(columns, request_id=request_id, metrics=metrics)
        result = await future
        return Answer(arm, slot.version, result.outputs, result)

    def _submit(self, arm: Arm, columns: Columns, request_id: str) -> tuple[Slot, asyncio.Future[BatchResult]]:
        for _ in range(_SWAP_RETRIES):
            slot = arm.slot
            assert slot is not None, "the app has not started"
            try:
                return slot, slot.batcher.submit(columns, request_id)
            except BatcherClosedError:
                continue  # swapped between reading the slot and submitting: read it again
        raise OverloadedError(f"model {self.name!r} is being swapped; retry")

    def _mirror(self, columns: Columns, *, request_id: str, metrics: ServerMetrics) -> None:
        """Queue a copy on the shadow; its batch hook records its metrics and prediction log."""
        shadow = self.shadow
        assert shadow is not None
        assert shadow.slot is not None
        slot = shadow.slot
        version = str(slot.version)
        try:
            future = slot.batcher.submit(columns, request_id)
        except (OverloadedError, BatcherClosedError):
            metrics.requests.labels(self.name, version, "shadow", "shadow", "503").inc()
            return

        def done(finished: asyncio.Future[BatchResult]) -> None:
            failed = finished.cancelled() or finished.exception() is not None
            metrics.requests.labels(self.name, version, "shadow", "shadow", "error" if failed else "200").inc()

        future.add_done_callback(done)


def load_deployments(
    config: ServingConfig, *, stores: Stores, metrics: ServerMetrics, log_runs: bool = True
) -> dict[str, Deployment]:
    """Build and preload every deployment of ``config`` (synchronously: before the app starts, before fork).

    With ``log_runs``, each arm gets its prediction-log run (see :mod:`.prediction_log`).

    Raises:
        InvalidInputError: two served models share a name, or a canary/shadow names another model.
        NotFoundError: a reference points at nothing.
    """
    deployments: dict[str, Deployment] = {}
    for spec in config.models:
        deployment = Deployment(spec, stores=stores, online_store=config.online_store)
        if deployment.name in deployments:
            raise InvalidInputError(
                f"model {deployment.name!r} is served twice; serve another version with --canary or --shadow",
                field="models",
            )
        for arm in deployment.arms:
            loaded = arm.preload()
            if log_runs and config.log_sample_rate > 0:
                _attach_log(
                    arm,
                    config,
                    stores,
                    metrics,
                    tuple(c.name for c in loaded.signature.outputs) if loaded.signature else (),
                )
        deployments[deployment.name] = deployment
    return deployments


def _attach_log(
    arm: Arm, config: ServingConfig, stores: Stores, metrics: ServerMetrics, outputs: Sequence[str]
) -> None:
    assert arm.version is not None
    arm.run_id = open_deployment_run(stores, ref=arm.ref, model=arm.name, arm=arm.role, version=arm.version)
    dropped = metrics.log_dropped.labels(arm.name, arm.role)
    arm.log = PredictionLog(
        stores,
        run_id=arm.run_id,
        model=arm.name,
        arm=arm.role,
        output_names=outputs,
        sample_rate=config.log_sample_rate,
        flush_seconds=config.log_flush_seconds,
        max_rows=config.log_max_rows,
        on_drop=dropped.inc,
    )


def end_runs(deployments: dict[str, Deployment], stores: Stores) -> None:
    """Mark every arm's prediction-log run finished (the server is stopping)."""
    for deployment in deployments.values():
        for arm in deployment.arms:
            if arm.run_id is not None:
                try:
                    stores.runs.end_run(arm.run_id, "finished", time.time())
                except Exception:  # a store outage at exit must not hide the real shutdown
                    logger.warning("could not end the prediction-log run of %s", arm.ref, exc_info=True)
