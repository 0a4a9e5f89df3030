"""The model registry: the functions users call (``sy.log_model``, ``sy.load_model``, ``sy.set_alias``, ...).

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn") as run:  # doctest: +SKIP
    ...     mv = sy.log_model(model, name="churn", input_example=X[:5])
    >>> sy.set_alias("churn", "champion", mv.version)  # doctest: +SKIP
    >>> sy.load_model("churn@champion").predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.registry._example import write_example
from shipyard.registry._features import applied_service, record_service
from shipyard.registry._flavors import Flavor, choose_flavor, get_flavor
from shipyard.registry._loaded import LoadedModel
from shipyard.registry._package import load_raw, read_manifest, write_manifest
from shipyard.registry._profile import PROFILE_FILE, write_training_profile
from shipyard.registry._refs import check_model_name, parse_model_ref, resolve_version
from shipyard.registry.models import ModelRef, Signature
from shipyard.registry.signature import check_input, infer_outputs, infer_signature
from shipyard.store import Stores
from shipyard.store.entities import ModelVersion, RegisteredModel, is_number
from shipyard.tracking.api import ActiveRun, HasStores, active_run, resolve_stores, start_run

__all__ = [
    "PROFILE_FILE",
    "delete_alias",
    "get_model",
    "get_model_file",
    "get_model_version",
    "list_model_versions",
    "list_models",
    "load_model",
    "log_model",
    "parse_model_ref",
    "set_alias",
    "set_model_tags",
    "update_model",
    "update_model_version",
]

DEFAULT_EXPERIMENT = "default"


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
    owner: str | None = None,
    team: str | None = None,
    flavor: str | None = None,
    training_data: Any = None,
    features: Any = None,
    client: HasStores | None = None,
) -> ModelVersion:
    """Store a model under the active run and register it as the next version of ``name``.

    The flavor is detected (scikit-learn, XGBoost, LightGBM, ONNX, else pyfunc for
    anything with ``predict`` or callable) unless ``flavor`` names one. With an
    ``input_example`` the signature is inferred: inputs from the example, outputs from
    what the stored-and-reloaded model predicts for it. Passport metrics are ``metrics``,
    else the run's latest metrics. With no active run, one is started in experiment
    ``default`` and ended. The version row is written only after every file is stored.

    Args:
        model: The fitted model; for ``flavor="onnx"`` also the bytes or path of a ``.onnx`` file.
        name: The registered model's name (no ``@`` or ``/``); created on first use.
        input_example: A few rows of input (DataFrame, dict of lists, records, 2-D array).
        signature: A :class:`Signature` or its dict form, instead of inferring one.
        metrics: Passport metrics for this version; the run's metrics when ``None``.
        description: What this version is.
        intended_use: What it is meant for.
        limitations: What it must not be used for, known weaknesses.
        owner: Owner of the registered model (set when given).
        team: Team of the registered model (set when given).
        flavor: Force a flavor by name.
        training_data: The data the model was trained on (any table ``shipyard.monitoring.profile``
            reads): its profile, with the model's predictions on it, is stored in the package as
            ``profile.json``, the reference ``shipyard.monitoring.training_profile`` returns.
        features: The :class:`~shipyard.features.FeatureService` (or its name) the model was
            trained on: recorded on the version as tags ``shipyard.feature_service`` and
            ``shipyard.feature_service_version`` (its applied definition version), so
            ``load_model(...).feature_service`` and serving find it; the run gets tag
            ``shipyard.features`` unless ``get_historical_features`` set it.
        client: A ``Client``; the settings in force when ``None``.

    Returns:
        The new version, with ``version`` 1, 2, 3, ... per name.

    Raises:
        InvalidInputError: the name, flavor, example, signature or metrics are invalid, or
            the feature service was never applied (nothing is written).

    Example:
        >>> mv = log_model(model, "churn", input_example=X[:5], owner="ana")  # doctest: +SKIP
        >>> mv.ref  # doctest: +SKIP
        'churn/1'
    """
    check_model_name(name)
    chosen = choose_flavor(model, flavor)
    given_signature = _signature_arg(signature)
    passport = None if metrics is None else _metrics_arg(metrics)
    service = None if features is None else applied_service(_stores_for(client), features)
    with _run_for(name, client) as run:
        with tempfile.TemporaryDirectory(prefix="shipyard-log-model-") as tmp:
            folder = Path(tmp)
            options = _save(chosen, model, folder)
            write_example(folder, input_example)
            final_signature = given_signature or _infer(chosen, folder, options, input_example)
            if training_data is not None:
                write_training_profile(chosen, folder, options, final_signature, training_data)
            manifest = write_manifest(
                folder, name=name, flavor=chosen, options=options, signature=final_signature, run_id=run.id
            )
            run.log_artifacts(folder, artifact_path=f"models/{name}")
        manifest_digest, _ = run.stores.artifacts.put_bytes(manifest)
        if passport is None:
            run.flush()
            passport = dict(run.stores.runs.get_run(run.id).metrics)
        models = run.stores.models
        models.ensure_registered_model(name, description="", owner=owner, team=team)
        version = models.create_model_version(
            name,
            run_id=run.id,
            flavor=chosen.name,
            artifact_path=f"models/{name}",
            manifest_digest=manifest_digest,
            signature=None if final_signature is None else final_signature.to_dict(),
            metrics=passport,
            description=description,
            intended_use=intended_use,
            limitations=limitations,
        )
        return record_service(run, version, service)


def _stores_for(client: HasStores | None) -> Stores:
    """The stores ``_run_for`` will write to, known before any run is started."""
    current = active_run()
    if current is not None and (client is None or client.stores is current.stores):
        return current.stores
    return resolve_stores(client)


@contextlib.contextmanager
def _run_for(name: str, client: HasStores | None) -> Iterator[ActiveRun]:
    current = active_run()
    if current is not None and (client is None or client.stores is current.stores):
        yield current
        return
    with start_run(DEFAULT_EXPERIMENT, f"log_model-{name}", client=client) as run:
        yield run


def _save(flavor: Flavor, model: Any, folder: Path) -> dict[str, Any]:
    try:
        return flavor.save(model, folder)
    except ShipyardError:
        raise
    except Exception as exc:  # pickling and the libraries' own writers raise anything
        raise InvalidInputError(
            f"cannot save the model with the {flavor.name} flavor ({type(exc).__name__}: {exc})", field="model"
        ) from exc


def _infer(flavor: Flavor, folder: Path, options: Mapping[str, Any], example: Any) -> Signature | None:
    if example is None:
        return None
    inputs = infer_signature(example)
    checked = check_input(example, inputs, model="input_example")
    # Predicting with the model read back from its files checks the package round-trips
    # before anything is registered, and gives the outputs exactly as load_model will.
    try:
        reloaded = flavor.load(folder, options)
    except Exception as exc:
        raise InvalidInputError(
            f"the model cannot be read back from the files the {flavor.name} flavor wrote "
            f"({type(exc).__name__}: {exc}); pass flavor='pyfunc' to pickle it whole",
            field="model",
        ) from exc
    try:
        prediction = flavor.predict(reloaded, checked)
    except Exception as exc:
        raise InvalidInputError(
            f"the model failed to predict on input_example ({type(exc).__name__}: {exc}); "
            "give an example the model accepts, or pass signature=",
            field="input_example",
        ) from exc
    return Signature(inputs.inputs, infer_outputs(prediction), inputs.input_format)


def _signature_arg(signature: Signature | Mapping[str, Any] | None) -> Signature | None:
    if signature is None or isinstance(signature, Signature):
        return signature
    return Signature.from_dict(signature)


def _metrics_arg(metrics: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise InvalidInputError(
            f"metrics must be a mapping of name to number, got {type(metrics).__name__}", field="metrics"
        )
    for key, value in metrics.items():
        if not isinstance(key, str) or not is_number(value):
            raise InvalidInputError(f"metric {key!r} must be a number, got {value!r}", field=f"metrics.{key}")
    return {key: float(value) for key, value in metrics.items()}


def load_model(ref: str | ModelRef, *, client: HasStores | None = None) -> LoadedModel:
    """Load a registered model: ``"name@alias"``, ``"name/3"`` or ``"name"`` (the latest version).

    Every file is re-hashed against the manifest, and the manifest against the version's record.

    Raises:
        NotFoundError: no such model, version or alias; the message lists what exists.
        IntegrityError: a stored file was corrupted or tampered with.

    Example:
        >>> model = load_model("churn@champion")  # doctest: +SKIP
        >>> model.predict({"tenure": [3], "plan": [1.0]})  # doctest: +SKIP
    """
    stores = resolve_stores(client)
    version = resolve_version(stores, ref)
    manifest = read_manifest(stores, version)
    raw = load_raw(stores, version, manifest)
    return LoadedModel(version, flavor=get_flavor(version.flavor), raw=raw, manifest=manifest)


def get_model_version(ref: str | ModelRef, *, client: HasStores | None = None) -> ModelVersion:
    """The version a reference points at, without loading the model.

    Raises:
        NotFoundError: no such model, version or alias.

    Example:
        >>> get_model_version("churn@champion").version  # doctest: +SKIP
        3
    """
    return resolve_version(resolve_stores(client), ref)


def get_model_file(ref: str | ModelRef, path: str, *, client: HasStores | None = None) -> bytes:
    """The bytes of one file of a version's package (``"profile.json"``, ...), verified against the manifest.

    Raises:
        NotFoundError: no such model, version or alias, or the package has no file ``path``
            (``field="path"``; the message lists its files).
        IntegrityError: the stored file was corrupted or tampered with.

    Example:
        >>> get_model_file("churn@champion", PROFILE_FILE)[:1]  # doctest: +SKIP
        b'{'
    """
    stores = resolve_stores(client)
    version = resolve_version(stores, ref)
    files = read_manifest(stores, version)["files"]
    if path not in files:
        raise NotFoundError(
            f"model {version.ref} has no file {path!r}; its files are: {', '.join(sorted(files))}", field="path"
        )
    return stores.artifacts.get_bytes(str(files[path]["sha256"]))


def get_model(name: str, *, client: HasStores | None = None) -> RegisteredModel:
    """A registered model with its aliases, tags, owner and latest version.

    Raises:
        NotFoundError: no model has that name.
    """
    return resolve_stores(client).models.get_registered_model(name)


def set_alias(name: str, alias: str, version: int, *, client: HasStores | None = None) -> ModelVersion:
    """Point ``name@alias`` at a version, moving it if it pointed elsewhere.

    Raises:
        NotFoundError: no such model or version.
        InvalidInputError: the alias is not a word (or looks like a version number).

    Example:
        >>> set_alias("churn", "champion", 3)  # doctest: +SKIP
    """
    stores = resolve_stores(client)
    stores.models.set_alias(name, alias, _version_number(version))
    return stores.models.get_model_version(name, version)


def delete_alias(name: str, alias: str, *, client: HasStores | None = None) -> None:
    """Remove ``name@alias``; the version it pointed at stays.

    Raises:
        NotFoundError: no such model or alias.
    """
    resolve_stores(client).models.delete_alias(name, alias)


def set_model_tags(
    name: str, tags: Mapping[str, Any], *, version: int | None = None, client: HasStores | None = None
) -> None:
    """Set tags on a registered model, or on one of its versions; values are stored as strings.

    Raises:
        NotFoundError: no such model or version.
    """
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"tags must be a mapping of name to value, got {type(tags).__name__}", field="tags")
    resolve_stores(client).models.set_model_tags(
        name, None if version is None else _version_number(version), {str(k): str(v) for k, v in tags.items()}
    )


def update_model(
    name: str,
    *,
    description: str | None = None,
    owner: str | None = None,
    team: str | None = None,
    client: HasStores | None = None,
) -> RegisteredModel:
    """Change a registered model's description, owner or team; ``None`` leaves a field as it is.

    Raises:
        NotFoundError: no model has that name.
    """
    fields = {k: v for k, v in (("description", description), ("owner", owner), ("team", team)) if v is not None}
    stores = resolve_stores(client)
    if not fields:
        return stores.models.get_registered_model(name)
    return stores.models.update_registered_model(name, **fields)


def update_model_version(
    ref: str | ModelRef,
    *,
    description: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    client: HasStores | None = None,
) -> ModelVersion:
    """Change a version's description, intended use or limitations; ``None`` leaves a field as it is.

    Raises:
        NotFoundError: no such model, version or alias.
    """
    stores = resolve_stores(client)
    version = resolve_version(stores, ref)
    fields = {
        k: v
        for k, v in (("description", description), ("intended_use", intended_use), ("limitations", limitations))
        if v is not None
    }
    if not fields:
        return version
    return stores.models.update_model_version(version.name, version.version, **fields)


def list_models(*, client: HasStores | None = None) -> list[RegisteredModel]:
    """Every registered model, by name."""
    return resolve_stores(client).models.list_registered_models()


def list_model_versions(name: str, *, client: HasStores | None = None) -> list[ModelVersion]:
    """Every version of a model, oldest first.

    Raises:
        NotFoundError: no model has that name.
    """
    stores = resolve_stores(client)
    stores.models.get_registered_model(name)
    return stores.models.list_model_versions(name)


def _version_number(version: object) -> int:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInputError(f"version must be a positive integer, got {version!r}", field="version")
    return version
