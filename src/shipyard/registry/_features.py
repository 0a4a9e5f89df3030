"""The feature service ``log_model(..., features=...)`` records on a version, found in the metadata store.

The registry sits beside the feature store (neither imports the other), so a service is
taken by name or duck-typed (``.name`` and ``.refs``) and looked up through the
``FeatureRegistry`` store protocol, by its stored kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.errors import InvalidInputError
from shipyard.registry._loaded import FEATURE_SERVICE_TAG, FEATURE_SERVICE_VERSION_TAG, FeatureServiceRef
from shipyard.store import Stores
from shipyard.store.entities import FeatureDefinition, ModelVersion
from shipyard.tracking.api import ActiveRun

SERVICE_KIND = "feature_service"
RUN_FEATURES_TAG = "shipyard.features"
DEFAULT_ON_MISSING = "reject"  # a service's policy for a missing entity, stored only when not the default


def applied_service(stores: Stores, features: object) -> tuple[FeatureServiceRef, tuple[str, ...]]:
    """The applied version of a service (given by name or as the object) and its feature refs.

    A service object must match an applied version's features (and missing-entity policy):
    one changed since its last ``apply`` was never applied as it stands, so a model trained
    on it could not be served as it was trained.

    Raises:
        InvalidInputError: ``features`` is not a service or its name, or was never applied.
    """
    name, refs, on_missing = _name_and_refs(features)
    versions = stores.features.list_feature_definition_versions(SERVICE_KIND, name)
    if not versions:
        known = ", ".join(d.name for d in stores.features.latest_feature_definitions(SERVICE_KIND)) or "none"
        raise InvalidInputError(
            f"feature service {name!r} was never applied; apply it first (FeatureStore.apply or "
            f"shipyard features apply); applied services: {known}",
            field="features",
        )
    chosen = versions[-1] if refs is None else _matching(versions, name, refs, on_missing)
    return FeatureServiceRef(name, chosen.version), tuple(chosen.spec["features"])


def _name_and_refs(features: object) -> tuple[str, tuple[str, ...] | None, str]:
    if isinstance(features, str) and features:
        return features, None, ""
    name, refs = getattr(features, "name", None), getattr(features, "refs", None)
    if not isinstance(name, str) or not isinstance(refs, Sequence) or isinstance(refs, str):
        raise InvalidInputError(
            f"features must be a FeatureService or the name of an applied one, got {features!r}", field="features"
        )
    return name, tuple(str(r) for r in refs), str(getattr(features, "on_missing", DEFAULT_ON_MISSING))


def _matching(
    versions: Sequence[FeatureDefinition], name: str, refs: tuple[str, ...], on_missing: str
) -> FeatureDefinition:
    for definition in reversed(versions):
        spec = definition.spec
        if tuple(spec["features"]) == refs and spec.get("on_missing", DEFAULT_ON_MISSING) == on_missing:
            return definition
    raise InvalidInputError(
        f"feature service {name!r} as given ({', '.join(refs)}) was never applied: its features differ from "
        f"every applied version (latest: {', '.join(versions[-1].spec['features'])}); apply it first",
        field="features",
    )


def version_tags(ref: FeatureServiceRef) -> dict[str, str]:
    """The model-version tags that record the service (the contract serving and lineage read)."""
    return {FEATURE_SERVICE_TAG: ref.name, FEATURE_SERVICE_VERSION_TAG: str(ref.version)}


def record_service(
    run: ActiveRun, version: ModelVersion, service: tuple[FeatureServiceRef, tuple[str, ...]] | None
) -> ModelVersion:
    """Tag the version with its service, and the run with the features used unless already set."""
    if service is None:
        return version
    ref, refs = service
    stores = run.stores
    stores.models.set_model_tags(version.name, version.version, version_tags(ref))
    if RUN_FEATURES_TAG not in stores.runs.get_run(run.id).tags:  # get_historical_features sets it first
        run.set_tags({RUN_FEATURES_TAG: ",".join(refs)})
    return stores.models.get_model_version(version.name, version.version)
