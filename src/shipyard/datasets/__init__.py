"""Versioned datasets: content-hashed versions with schema, statistics and run lineage.

Example:
    >>> from shipyard.datasets import log_dataset, load_dataset
    >>> v = log_dataset(df, name="churn-train")  # doctest: +SKIP
    >>> load_dataset(v.ref).to_pandas()  # doctest: +SKIP
"""

from shipyard.datasets.api import (
    get_dataset,
    list_dataset_versions,
    list_datasets,
    load_dataset,
    log_dataset,
    parse_dataset_ref,
    set_golden,
)
from shipyard.datasets.models import LoadedDataset
from shipyard.store.entities import DatasetVersion

__all__ = [
    "DatasetVersion",
    "LoadedDataset",
    "get_dataset",
    "list_dataset_versions",
    "list_datasets",
    "load_dataset",
    "log_dataset",
    "parse_dataset_ref",
    "set_golden",
]
