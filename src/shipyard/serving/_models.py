"""The models a server holds: one :class:`Arm` per reference served, swapped atomically when its alias moves.

An arm's :class:`Slot` (a loaded version and the batcher in front of it) is replaced by
one assignment on the event loop. A request reads the current slot and enqueues on its
batcher in one synchronous step, so it lands either on the old slot, which finishes
every request it queued before it stops, or on the new one: none is lost or refused.
A load that fails leaves the old slot serving and keeps the reason in ``last_error``.
A version logged with a feature service is bound to the online store when it is loaded
(:mod:`._features`): its slot's batcher reads the features of each model call's entities.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.registry import LoadedModel, get_model_version, load_model, parse_model_ref
from shipyard.registry.models import Signature
from shipyard.serving._features import FeatureBinding, bind_features
from shipyard.serving.batcher import AnsweredBatch, Batcher, ModelFn
from shipyard.serving.metrics import ArmObserver, ServerMetrics
from shipyard.serving.models import BatchingConfig
from shipyard.serving.prediction_log import PredictionLog
from shipyard.serving.validation import Columns
from shipyard.store import Stores

logger = logging.getLogger("shipyard.serving")
# Flavors whose LoadedModel.predict is ``raw.predict(checked input)`` (see registry/_flavors).
_DIRECT = frozenset({"sklearn", "lightgbm"})
_ZEROS: dict[str, Any] = {"float": 0.0, "integer": 0, "boolean": False, "string": "", "datetime": "1970-01-01"}


@dataclass(frozen=True, slots=True)
class StoresClient:
    """Stores resolved once, passed as the ``client`` of registry calls."""

    stores: Stores


@dataclass(frozen=True, slots=True, eq=False)
class Slot:
    """One loaded version of an arm, the batcher in front of it, and its feature binding (if fed by entity id)."""

    model: LoadedModel
    batcher: Batcher
    observer: ArmObserver
    features: FeatureBinding | None = None
    input_signature: Signature | None = None  # what a request carries (computed once, read per request)

    @property
    def version(self) -> int:
        """The registry version this slot serves."""
        return self.model.version.version


def model_function(model: LoadedModel, method: str) -> ModelFn:
    """The function a batcher calls: checked columns in, the model's ``predict`` (or ``predict_proba``) out.

    Input reaching it was already held to the signature per request (``validation.py``):
    its columns are the signature's, in order, with their types. For flavors whose
    ``predict`` is the estimator's own (``_DIRECT``), the estimator is called on that
    input at once, skipping ``LoadedModel``'s second check, which costs more than the
    model itself on small batches; a batch that came as one matrix is handed over as
    that matrix (or one frame over it), never rebuilt column by column. Other flavors go
    through ``LoadedModel``.
    """
    import pandas as pd

    signature = model.signature
    if model.flavor in _DIRECT and signature is not None and hasattr(model.raw, method):
        estimator_fn = getattr(model.raw, method)
        as_array = signature.input_format == "ndarray"
        names = signature.input_names
        twin = None if as_array else _nameless(model.raw, names)
        matrix_fn = estimator_fn if as_array else getattr(twin, method, None)

        def direct(batch: Columns) -> Any:
            if batch.matrix is not None:
                if matrix_fn is not None:
                    return matrix_fn(batch.matrix)
                return estimator_fn(pd.DataFrame(batch.matrix, columns=names, copy=False))
            frame = pd.DataFrame(batch.data, copy=False)
            return estimator_fn(frame.to_numpy() if as_array else frame)

        return direct
    predict = model.predict if method == "predict" else model.predict_proba

    def checked(batch: Columns) -> Any:
        return predict(pd.DataFrame(batch.data, copy=False))

    return checked


def _nameless(estimator: Any, names: list[str]) -> Any:
    """The estimator without its fitted feature names, to be fed matrices; ``None`` when that could change answers.

    A scikit-learn estimator fitted on a frame checks a frame's column names on every
    call (more than half of a small batch's time for a gradient-boosting model) and warns
    on a bare array. When the names it was fitted on are the signature's, in order, a
    matrix in the signature's order is the same input: a shallow copy (the fitted arrays
    are shared, not copied) that forgot the names takes it as is. Anything else (no
    names, other names or order, names computed by a property as a Pipeline's are) keeps
    the frame.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None or [str(n) for n in fitted] != list(names):
        return None
    twin = copy.copy(estimator)
    try:
        del twin.feature_names_in_
    except AttributeError:
        return None
    return twin


def warm(model: LoadedModel, method: str) -> str | None:
    """Predict once on a synthetic row so first-call costs are paid before traffic; the failure, if any."""
    signature = model.signature
    if signature is None:
        return None
    row = {c.name: np.asarray([_ZEROS[c.type]]) for c in signature.inputs}
    try:
        model_function(model, method)(Columns(row, 1))
    except Exception as exc:  # a model may reject a made-up row; that is not a failed load
        return f"warm-up on a synthetic row failed ({type(exc).__name__}: {exc})"
    return None


class Arm:
    """One reference served (``primary``, ``canary`` or ``shadow``) and its current slot."""

    def __init__(
        self,
        ref: str,
        *,
        role: str,
        stores: Stores,
        batching: BatchingConfig,
        method: str = "predict",
        online_store: str | None = None,
    ) -> None:
        parsed = parse_model_ref(ref)
        self.ref = ref
        self.name = parsed.name
        self.role = role
        self.watched = parsed.version is None
        self.batching = batching
        self.method = method
        self.stores = stores
        self.online_store = online_store
        self.last_error: str | None = None
        self.warning: str | None = None
        self.log: PredictionLog | None = None
        self.run_id: str | None = None
        self.slot: Slot | None = None
        self._metrics: ServerMetrics | None = None
        self._loaded: LoadedModel | None = None
        self._binding: FeatureBinding | None = None
        self._load_seconds = 0.0
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"Arm({self.ref!r}, role={self.role!r}, version={self.version})"

    @property
    def version(self) -> int | None:
        """The version serving now (``None`` before start)."""
        if self.slot is not None:
            return self.slot.version
        return None if self._loaded is None else self._loaded.version.version

    @property
    def model(self) -> LoadedModel:
        """The loaded model serving now."""
        if self.slot is not None:
            return self.slot.model
        assert self._loaded is not None, "preload() first"
        return self._loaded

    @property
    def signature(self) -> Signature | None:
        """The signature of the version serving now."""
        return self.model.signature

    @property
    def input_signature(self) -> Signature | None:
        """What a request carries: entity ids and request values when fed by entity id, else the signature."""
        if self.slot is not None:
            return self.slot.input_signature
        binding = self._binding
        return binding.request_signature if binding is not None else self.signature

    @property
    def features(self) -> FeatureBinding | None:
        """The feature binding of the version serving now (``None``: not fed by entity id)."""
        return self.slot.features if self.slot is not None else self._binding

    def preload(self) -> LoadedModel:
        """Load the version the reference points at, synchronously (before the app starts, before fork)."""
        started = time.perf_counter()
        loaded = load_model(self.ref, client=StoresClient(self.stores))
        self._binding = bind_features(loaded, stores=self.stores, online_store=self.online_store)
        self.warning = warm(loaded, self.method)
        self._load_seconds = time.perf_counter() - started
        self._loaded = loaded
        return loaded

    def start(self, metrics: ServerMetrics) -> None:
        """Put the preloaded version behind a batcher on the running loop."""
        self._metrics = metrics
        self._lock = asyncio.Lock()
        assert self._loaded is not None, "preload() first"
        self.slot = self._slot(self._loaded, self._load_seconds, self._binding)
        self._loaded = self._binding = None
        if self.log is not None:
            self.log.start()

    def _slot(self, model: LoadedModel, load_seconds: float, binding: FeatureBinding | None) -> Slot:
        assert self._metrics is not None
        version = str(model.version.version)
        observer = ArmObserver(self._metrics, self.name, version, self.role)
        log, number = self.log, model.version.version

        def answered(batch: AnsweredBatch) -> None:
            # Once per model call, on the event loop: the per-request path stays free of both.
            observer.answered(batch.queue_seconds, batch.outputs)
            if log is not None:
                log.record(batch, number)

        batcher = Batcher(
            model_function(model, self.method),
            self.batching,
            name=f"{model.version.ref}:{self.role}",
            observer=observer,
            on_batch=answered,
            prepare=None if binding is None else binding.preparer(*self._read_observers()),
        )
        batcher.start()
        self._metrics.load_time.labels(self.name, version, self.role).observe(load_seconds)
        self._metrics.version.labels(self.name, self.role).set(model.version.version)
        signature = model.signature if binding is None else binding.request_signature
        return Slot(model, batcher, observer, binding, signature)

    def _read_observers(self) -> tuple[Callable[[float], None], Callable[[float], None]]:
        assert self._metrics is not None
        rows = self._metrics.feature_read_rows.labels(self.name, self.role)
        seconds = self._metrics.feature_read_time.labels(self.name, self.role)
        return rows.observe, seconds.observe

    async def refresh(self, *, force: bool = False) -> bool:
        """Load and swap in the version the alias points at now, if it moved; True when swapped.

        ``force`` reloads even a pinned reference (``name/3``) or an unmoved alias.
        A failure keeps the old version serving; the reason is in ``last_error``.
        """
        if (not self.watched and not force) or self._lock is None:
            return False
        async with self._lock:
            try:
                return await self._refresh(force)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                assert self._metrics is not None
                self._metrics.load_failures.labels(self.name, self.role).inc()
                logger.warning("reload of %s failed, still serving version %s: %s", self.ref, self.version, exc)
                return False

    async def _refresh(self, force: bool) -> bool:
        client = StoresClient(self.stores)
        target = await asyncio.to_thread(get_model_version, self.ref, client=client)
        if target.version == self.version and not force:
            self.last_error = None
            return False
        started = time.perf_counter()
        loaded = await asyncio.to_thread(load_model, target.ref, client=client)
        binding = await asyncio.to_thread(bind_features, loaded, stores=self.stores, online_store=self.online_store)
        self.warning = await asyncio.to_thread(warm, loaded, self.method)
        new = self._slot(loaded, time.perf_counter() - started, binding)
        old, self.slot = self.slot, new
        self.last_error = None
        logger.info("%s now serves version %s (was %s)", self.ref, new.version, None if old is None else old.version)
        if old is not None:
            await _retire(old)  # the requests it had queued finish on the old version
        return True

    async def stop(self) -> None:
        """Finish queued requests, then write the prediction log's last partition."""
        if self.slot is not None:
            await _retire(self.slot)
        if self.log is not None:
            await asyncio.to_thread(self.log.close)

    def status(self) -> dict[str, Any]:
        """What ``/admin/reload`` and the model metadata report about this arm."""
        return {
            "ref": self.ref,
            "arm": self.role,
            "version": self.version,
            "last_error": self.last_error,
            "warning": self.warning,
            "prediction_log_run": self.run_id,
        }


async def _retire(slot: Slot) -> None:
    """Finish the requests a slot queued, then close its online store."""
    await slot.batcher.close()
    if slot.features is not None:
        await asyncio.to_thread(slot.features.close)
