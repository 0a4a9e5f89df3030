"""Versioned datasets: the functions users call (``sy.log_dataset``, ``sy.load_dataset``, ...).

A version is named by the sha256 of the data's content, so logging the same data again
returns the version it already has; changed data gets the next number. The data is stored
as Parquet in the artifact store together with its schema and summary statistics, and
linked to the active run as an input or an output.

Example:
    >>> import shipyard as sy
    >>> with sy.start_run(experiment="churn"):  # doctest: +SKIP
    ...     ds = sy.log_dataset(train_df, name="churn-train")
    >>> sy.load_dataset("churn-train@1").to_pandas()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.store import Stores
from shipyard.store.entities import DatasetVersion, RunDataset
from shipyard.tracking.api import ActiveRun, HasStores, active_run, resolve_stores

if TYPE_CHECKING:
    from shipyard.datasets.models import LoadedDataset

ROLES = ("input", "output")
GOLDEN_TAG = "golden"
GOLDEN_VALUES = frozenset({"true", "1", "yes"})
LATEST = "latest"
_MAX_NAME = 250


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """Split ``"name@version"`` into ``(name, version)``; ``"name"`` and ``"name@latest"`` give ``None``.

    Example:
        >>> parse_dataset_ref("churn-train@3")
        ('churn-train', 3)
        >>> parse_dataset_ref("churn-train")
        ('churn-train', None)

    Raises:
        InvalidInputError: the reference is empty or its version is not a positive integer.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError(f"dataset reference must be 'name' or 'name@version', got {ref!r}", field="ref")
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not name:
        raise InvalidInputError(
            f"dataset reference {ref!r} has no name before '@'; expected 'name@version'", field="ref"
        )
    if version == LATEST:
        return name, None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise InvalidInputError(
            f"dataset reference {ref!r} has version {version!r}; expected a positive integer "
            f"({name}@1) or none for the latest ({name})",
            field="ref",
        )
    return name, int(version)


def log_dataset(
    data: object,
    name: str,
    *,
    role: str = "input",
    source: str | None = None,
    tags: Mapping[str, Any] | None = None,
    client: HasStores | None = None,
) -> DatasetVersion:
    """Version a table or Parquet/CSV file or folder under ``name``; identical data reuses its version.

    Inside a run, the version is linked to it with ``role`` (``"input"`` or ``"output"``),
    and a new version records the run that created it.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a path (str or Path) to a
            Parquet or CSV file or to a folder of them.
        name: the dataset's name; versions are numbered 1, 2, ... per name.
        role: how the active run uses the data: ``"input"`` or ``"output"``.
        source: where the data came from (a URI, a query); a path's own location by default.
        tags: tags to set on the version (existing tags with other keys are kept).
        client: the client whose stores to use; the settings in force when ``None``.

    Example:
        >>> v = log_dataset(train_df, name="churn-train")  # doctest: +SKIP
        >>> v.ref, v.num_rows, v.schema["age"]  # doctest: +SKIP
        ('churn-train@1', 10000, 'int64')
    """
    _check_name(name)
    if role not in ROLES:
        raise InvalidInputError(f"role must be 'input' or 'output', got {role!r}", field="role")
    if source is not None and not isinstance(source, str):
        raise InvalidInputError(f"source must be a string such as a URI, got {type(source).__name__}", field="source")
    clean_tags = _check_tags(tags)
    # pyarrow is imported on first use so that listing datasets (the CLI) does not pay for it.
    from shipyard.datasets import _hashing, _stats, _storage

    prepared = _storage.prepare(data)
    digest = _hashing.table_digest(prepared.table)
    stores = resolve_stores(client)
    run = _run_on(stores)
    version = stores.datasets.find_dataset_version_by_digest(name, digest)
    if version is None:
        table = prepared.table
        version = stores.datasets.create_dataset_version(
            name,
            digest=digest,
            format=prepared.format,
            schema=_stats.table_schema(table),
            stats=_stats.table_stats(table),
            num_rows=table.num_rows,
            artifact_digest=prepared.write(stores.artifacts),
            source=source if source is not None else prepared.source,
            created_by_run=run.id if run else None,
        )
    if clean_tags:
        stores.datasets.set_dataset_tags(name, version.version, clean_tags)
        version = stores.datasets.get_dataset_version(name, version.version)
    if run is not None:
        stores.datasets.link_datasets([RunDataset(run.id, name, version.version, role)])
    return version


def load_dataset(ref: str, *, client: HasStores | None = None) -> LoadedDataset:
    """The data of ``"name@version"`` (or the latest of ``"name"``), verified against its stored hash.

    Inside a run, the version is linked to it as an input.

    Example:
        >>> df = load_dataset("churn-train@2").to_pandas()  # doctest: +SKIP

    Raises:
        NotFoundError: no such dataset or version (the message lists the versions).
        IntegrityError: the stored bytes do not match their digest.
    """
    from shipyard.datasets import _storage
    from shipyard.datasets.models import LoadedDataset

    name, number = parse_dataset_ref(ref)
    stores = resolve_stores(client)
    version = stores.datasets.get_dataset_version(name, number)
    table = _storage.read_table(version, stores.artifacts)
    run = _run_on(stores)
    if run is not None:
        stores.datasets.link_datasets([RunDataset(run.id, version.name, version.version, "input")])
    return LoadedDataset(version, table)


def get_dataset(ref: str, *, client: HasStores | None = None) -> DatasetVersion:
    """The version ``ref`` names (``"name@3"``, or ``"name"`` for the latest), without its data.

    Raises:
        NotFoundError: no such dataset or version.
    """
    name, number = parse_dataset_ref(ref)
    return resolve_stores(client).datasets.get_dataset_version(name, number)


def list_datasets(*, golden: bool = False, client: HasStores | None = None) -> list[DatasetVersion]:
    """The latest version of every dataset, by name; ``golden=True`` keeps the golden ones.

    A dataset is golden when one of its versions carries the tag ``golden=true``.
    """
    return resolve_stores(client).datasets.list_datasets(golden=golden)


def list_dataset_versions(name: str, *, client: HasStores | None = None) -> list[DatasetVersion]:
    """Every version of one dataset, oldest first.

    Raises:
        NotFoundError: no dataset is called ``name`` (the message lists those that exist).
    """
    stores = resolve_stores(client)
    versions = stores.datasets.list_dataset_versions(name)
    if not versions:
        known = ", ".join(v.name for v in stores.datasets.list_datasets()[:20]) or "none yet"
        raise NotFoundError(f"dataset {name!r} does not exist; datasets: {known}", field="dataset")
    return versions


def set_golden(ref: str, golden: bool = True, *, client: HasStores | None = None) -> DatasetVersion:
    """Mark a version golden (a trusted reference set), or unmark it with ``golden=False``.

    ``"name"`` marks the latest version; unmarking ``"name"`` unmarks every version of it.

    Example:
        >>> set_golden("churn-eval@4")  # doctest: +SKIP
        >>> [v.name for v in list_datasets(golden=True)]  # doctest: +SKIP
        ['churn-eval']
    """
    name, number = parse_dataset_ref(ref)
    stores = resolve_stores(client)
    target = stores.datasets.get_dataset_version(name, number)
    if golden:
        changed = [target]
    elif number is None:
        changed = [v for v in stores.datasets.list_dataset_versions(name) if is_golden(v)]
    else:
        changed = [target]
    for version in changed:
        stores.datasets.set_dataset_tags(name, version.version, {GOLDEN_TAG: "true" if golden else "false"})
    return stores.datasets.get_dataset_version(name, target.version)


def referenced_digests(*, client: HasStores | None = None) -> set[str]:
    """Every blob digest dataset versions need: their artifacts and the files their folder manifests list.

    Garbage collection must keep these; the metadata store alone knows only the manifests.
    """
    from shipyard.datasets import _storage

    stores = resolve_stores(client)
    digests: set[str] = set()
    for latest in stores.datasets.list_datasets():
        for version in stores.datasets.list_dataset_versions(latest.name):
            digests.add(version.artifact_digest)
            digests.update(_storage.nested_digests(version, stores.artifacts))
    return digests


def is_golden(version: DatasetVersion) -> bool:
    """True when the version carries the tag ``golden=true``."""
    return version.tags.get(GOLDEN_TAG, "").lower() in GOLDEN_VALUES


def _run_on(stores: Stores) -> ActiveRun | None:
    # A run in another metadata store cannot be linked to: its id would dangle here.
    run = active_run()
    if run is None or run.stores.settings.store_uri != stores.settings.store_uri:
        return None
    return run


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"dataset name must be a non-empty string, got {name!r}", field="name")
    if len(name) > _MAX_NAME or "@" in name or name != name.strip():
        raise InvalidInputError(
            f"dataset name {name!r} must be at most {_MAX_NAME} characters, without '@' (it separates the "
            "version in 'name@3') and without leading or trailing spaces",
            field="name",
        )


def _check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"tags must be a mapping of name to value, got {type(tags).__name__}", field="tags")
    for key in tags:
        if not isinstance(key, str) or not key or len(key) > _MAX_NAME:
            raise InvalidInputError(
                f"tag name must be a non-empty string of at most {_MAX_NAME} characters, got {key!r}", field="tags"
            )
    return {key: str(value) for key, value in tags.items()}


__all__ = [
    "get_dataset",
    "is_golden",
    "list_dataset_versions",
    "list_datasets",
    "load_dataset",
    "log_dataset",
    "parse_dataset_ref",
    "referenced_digests",
    "set_golden",
]
