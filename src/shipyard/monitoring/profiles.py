"""Stored profiles: a model version's training profile and on-demand profiles of dataset versions.

The profile code itself lives in :mod:`shipyard.datasets.profile` (the registry, a lower layer,
computes a training profile at ``log_model(..., training_data=...)``); this module reads and
writes the stored ones.

Example:
    >>> from shipyard.monitoring import drift, training_profile
    >>> report = drift(training_profile("churn@champion"), todays_requests)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib

from shipyard.datasets.api import load_dataset, parse_dataset_ref
from shipyard.datasets.profile import Profile, profile
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.registry.api import PROFILE_FILE, get_model_file
from shipyard.registry.models import ModelRef
from shipyard.tracking.api import HasStores, resolve_stores

PROFILE_TAG = "shipyard.profile"


def training_profile(model_ref: str | ModelRef, *, client: HasStores | None = None) -> Profile:
    """The profile of a model version's training data (and its predictions on it), stored by ``log_model``.

    Raises:
        NotFoundError: no such model or version, or it was logged without ``training_data=``.

    Example:
        >>> training_profile("churn@champion").columns["tenure"].quantiles([0.5])  # doctest: +SKIP
    """
    try:
        data = get_model_file(model_ref, PROFILE_FILE, client=client)
    except NotFoundError as exc:
        if getattr(exc, "field", None) != "path":
            raise
        raise NotFoundError(
            f"model {model_ref} has no training profile; log it with log_model(..., training_data=train_df)",
            field="model",
        ) from exc
    return Profile.from_json(data)


def profile_dataset(name: str, version: int | None = None, *, client: HasStores | None = None) -> Profile:
    """The profile of a dataset version (``name`` may be ``"name@3"``), computed once and then stored.

    The profile is stored as an artifact and recorded on the version as tag ``shipyard.profile``.

    Raises:
        NotFoundError: no such dataset or version.

    Example:
        >>> drift(profile_dataset("churn-train", 3), "events/today.parquet").drifted  # doctest: +SKIP
    """
    base, number = parse_dataset_ref(name)
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInputError(f"version must be a positive integer, got {version!r}", field="version")
        if number is not None and number != version:
            raise InvalidInputError(f"{name!r} names version {number} but version={version} was given", field="version")
        number = version
    stores = resolve_stores(client)
    found = stores.datasets.get_dataset_version(base, number)
    digest = found.tags.get(PROFILE_TAG)
    if digest:
        # gc does not know this tag's blob; a collected one is computed again.
        with contextlib.suppress(NotFoundError):
            return Profile.from_json(stores.artifacts.get_bytes(digest))
    computed = profile(load_dataset(found.ref, client=client).to_arrow())
    digest, _ = stores.artifacts.put_bytes(computed.to_json().encode())
    stores.datasets.set_dataset_tags(base, found.version, {PROFILE_TAG: digest})
    return computed
