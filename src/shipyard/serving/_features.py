"""Serving by entity id: a model's feature-service features, read once per model call.

A version logged with ``log_model(..., features=service)`` knows its feature service
(``LoadedModel.feature_service``). Its requests carry entity ids, the join keys of the
service's entities, plus the request values its on-demand features need (and any other
signature column that is not a feature), in the route's usual shape:
``{"records": [{"user_id": 42, "amount": 20.0}]}`` on the plain JSON route, one tensor per
column on the v2 route. Each request is checked against that *request* signature on
arrival; inside dynamic batching, the requests of one model call are then enriched
together on the model's thread (off the event loop): one ``get_online_features`` for all
their entities, on-demand features computed, the model input assembled in the signature's
order and checked against it.

An entity with no value in a view, or only one older than the view's ttl, follows the
service's ``on_missing``: ``reject`` (the default) refuses that request alone with 422,
naming the entity and the view; ``null`` gives the model nulls (NaN in float columns; an
integer or boolean column cannot hold one, so such a request is refused by the signature).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import InvalidInputError, SchemaMismatchError, ShipyardError
from shipyard.features import FeatureService, FeatureStore, open_online_store
from shipyard.registry import LoadedModel
from shipyard.registry.models import ColumnSpec, Signature
from shipyard.serving.batcher import Prepare, Prepared
from shipyard.serving.validation import KEY, Array, Columns, check_columns
from shipyard.store import Stores

# feature dtypes as signature types
_SIGNATURE_TYPES = {"int": "integer", "float": "float", "string": "string", "bool": "boolean", "timestamp": "datetime"}


class MissingEntityError(InvalidInputError):
    """An entity has no (unexpired) value in a view, and its service rejects such requests."""

    code = "missing_entity"
    status = 422

    def __init__(self, message: str, *, problems: Sequence[str]) -> None:
        super().__init__(message, field="inputs")
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class _Store:
    stores: Stores


@dataclass(frozen=True, slots=True, eq=False)
class FeatureBinding:
    """How one loaded version is fed from the feature store.

    Attributes:
        service: The feature service, at the version the model was logged with.
        store: The feature store it is read from (its own: closed with the version's slot).
        request_signature: What a request carries: entity ids (type ``key``), then request values.
        signature: The model's signature, which the assembled input is checked against.
        full_names: Whether the signature names features ``view__feature``.
        views: Each fetched feature's column name and the view it comes from (for statuses).
        model: The model's reference (``churn/3``), for messages.
        keys: The entity id columns.
    """

    service: FeatureService
    store: FeatureStore
    request_signature: Signature
    signature: Signature
    full_names: bool
    views: Mapping[str, str]
    model: str
    keys: frozenset[str]

    def preparer(self, observe_rows: Callable[[float], None], observe_seconds: Callable[[float], None]) -> Prepare:
        """The batcher's ``prepare`` hook; ``observe_*`` record each read's entity rows and duration."""

        def prepare(parts: Sequence[Columns]) -> Prepared:
            return self.prepare(parts, observe_rows, observe_seconds)

        return prepare

    def prepare(
        self,
        parts: Sequence[Columns],
        observe_rows: Callable[[float], None] | None = None,
        observe_seconds: Callable[[float], None] | None = None,
    ) -> Prepared:
        """One model call's requests (checked against :attr:`request_signature`) as model input.

        One online read for every entity of every request; a request whose entity is missing
        (under ``reject``) or whose assembled row does not fit the signature is refused alone.
        """
        import pyarrow as pa

        counts = [p.rows for p in parts]
        sent = {name: _joined([p.data[name] for p in parts], name in self.keys) for name in parts[0].data}
        started = time.perf_counter()
        response = self.store.get_online_features(pa.table(sent), self.service, full_feature_names=self.full_names)
        if observe_rows is not None and observe_seconds is not None:
            observe_rows(sum(counts))
            observe_seconds(time.perf_counter() - started)
        failed: dict[int, Exception] = {}
        if self.service.on_missing == "reject":
            failed.update(self._missing(response.statuses, sent, counts))
        raw: dict[str, Any] = {}
        for name in self.signature.input_names:
            raw[name] = sent[name] if name in sent else response.values[name]
        return _checked(raw, sent, counts, failed, self.signature, self.model)

    def _missing(
        self, statuses: Mapping[str, list[str]], sent: Mapping[str, Array], counts: Sequence[int]
    ) -> dict[int, Exception]:
        first: dict[str, str] = {}  # one column per view: a view's statuses are the same for all its features
        for column, view in self.views.items():
            first.setdefault(view, column)
        failed: dict[int, Exception] = {}
        start = 0
        for index, count in enumerate(counts):
            problems = []
            for row in range(start, start + count):
                for view, column in first.items():
                    status = statuses[column][row]
                    if status != "present":
                        problems.append(self._problem(sent, row, view, status))
            if problems:
                failed[index] = MissingEntityError(
                    "; ".join(problems) + f" (feature service {self.service.name!r} has on_missing='reject')",
                    problems=problems,
                )
            start += count
        return failed

    def _problem(self, sent: Mapping[str, Array], row: int, view: str, status: str) -> str:
        keys = [c.name for c in self.request_signature.inputs if c.type == KEY]
        entity = ", ".join(f"{key}={_value(sent[key][row])}" for key in keys)
        if status == "expired":
            ttl = self.store.get_feature_view(view).max_age
            return f"entity {entity} has no value in feature view {view!r} newer than its ttl ({ttl})"
        return f"entity {entity} is missing from feature view {view!r}"

    def close(self) -> None:
        """Close the online store's connections."""
        self.store.close()


def _value(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _joined(arrays: Sequence[Array], key: bool) -> Array:
    array = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    if key and array.dtype.kind == "O" and not all(isinstance(v, str) for v in array.tolist()):
        # requests sent ids as numbers and as text: one type for the read (online keys are text)
        array = np.array([str(v) for v in array.tolist()], dtype=object)
    return array


def _checked(
    raw: dict[str, Any],
    sent: Mapping[str, Array],
    counts: Sequence[int],
    failed: dict[int, Exception],
    signature: Signature,
    model: str,
) -> Prepared:
    """The rows of the requests not refused, checked against the signature; a misfit refuses its request."""
    starts = np.cumsum([0, *counts])
    kept = [i for i in range(len(counts)) if i not in failed]
    if failed:
        rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in kept]) if kept else np.arange(0)
        raw = {name: _take(values, rows) for name, values in raw.items()}
        sent = {name: values[rows] for name, values in sent.items()}
        counts = [counts[i] for i in kept]
    if not kept:
        return Prepared(Columns({}, 0), failed, {})
    try:
        inputs = check_columns(raw, signature, model=f"model {model}")
    except SchemaMismatchError:
        return _request_by_request(raw, sent, counts, kept, failed, signature, model)
    return Prepared(inputs, failed, sent)


def _request_by_request(
    raw: dict[str, Any],
    sent: Mapping[str, Array],
    counts: Sequence[int],
    kept: Sequence[int],
    failed: dict[int, Exception],
    signature: Signature,
    model: str,
) -> Prepared:
    """Check each request's rows alone, so only the requests that do not fit are refused."""
    starts = np.cumsum([0, *counts])
    good: list[np.ndarray[Any, Any]] = []
    for position, index in enumerate(kept):
        rows = np.arange(starts[position], starts[position + 1])
        try:
            check_columns(
                {name: _take(values, rows) for name, values in raw.items()}, signature, model=f"model {model}"
            )
        except ShipyardError as exc:
            failed[index] = exc
        else:
            good.append(rows)
    if not good:
        return Prepared(Columns({}, 0), failed, {})
    rows = np.concatenate(good)
    inputs = check_columns({name: _take(values, rows) for name, values in raw.items()}, signature)
    return Prepared(inputs, failed, {name: values[rows] for name, values in sent.items()})


def _take(values: Any, rows: Array) -> Any:
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[i] for i in rows.tolist()]


def bind_features(model: LoadedModel, *, stores: Stores, online_store: str | None) -> FeatureBinding | None:
    """How ``model`` is fed by entity id, or ``None`` when it was not logged with a feature service.

    Raises:
        NotFoundError: its feature service (at its version) was not applied here.
        InvalidInputError: the model has no signature, or a signature column is neither one of
            the service's features, an entity id nor a request value.
    """
    ref = model.feature_service
    if ref is None:
        return None
    signature = model.signature
    name = model.version.ref
    if signature is None:
        raise InvalidInputError(
            f"model {name} uses feature service {ref.name!r} but has no signature; log it with an input_example",
            field="signature",
        )
    store = FeatureStore(online_store=online_store, client=_Store(stores))
    try:
        open_online_store(store.online_uri).close()  # a bad URI fails the load, not the first request
        return _bind(store, store.get_feature_service(ref.name, version=ref.version), signature, name)
    finally:
        store.close()  # reopened by the first read, in the process that serves (no connection crosses a fork)


def _bind(store: FeatureStore, service: FeatureService, signature: Signature, model: str) -> FeatureBinding:
    resolved = store.resolve(service)
    full = {f"{view}__{feature}": view for view, feature in resolved.refs}
    short = {feature: view for view, feature in resolved.refs}
    full_names = any(n in full and n not in short for n in signature.input_names)
    features = full if full_names else short
    fetched = {v.name for v, _ in resolved.fetch}
    keys = list(dict.fromkeys(k for v, _ in resolved.fetch for k in v.join_keys))
    request = {f.name: _SIGNATURE_TYPES[f.dtype] for odfv in resolved.on_demand for f in odfv.request_schema}
    by_name = {c.name: c.type for c in signature.inputs}
    unknown = [n for n in by_name if n not in features and n not in keys and n not in request]
    for name in unknown:
        request[name] = by_name[name]  # a raw request value the model takes as it is
    if not keys:
        raise InvalidInputError(
            f"model {model}: feature service {service.name!r} reads no feature view, so a request has no entity to "
            "look up",
            field="features",
        )
    specs = [ColumnSpec(k, KEY) for k in keys] + [ColumnSpec(n, t) for n, t in request.items() if n not in keys]
    return FeatureBinding(
        service=service,
        store=store,
        request_signature=Signature(tuple(specs)),
        signature=signature,
        full_names=full_names,
        views={n: v for n, v in features.items() if v in fetched},
        model=model,
        keys=frozenset(keys),
    )
