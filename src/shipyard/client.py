"""``Client``: one object over every capability, the same embedded and (later) remote.

Example:
    >>> client = Client()                                   # doctest: +SKIP
    >>> runs = client.search_runs("churn", filter="metrics.auc > 0.9", order_by=["metrics.auc desc"])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.config import Settings, resolve_settings
from shipyard.datasets.api import referenced_digests as dataset_digests
from shipyard.errors import NotFoundError
from shipyard.flows import FlowRun, get_flow_run
from shipyard.lineage import LineageGraph, build_lineage
from shipyard.store import Stores, open_stores
from shipyard.store.entities import ArtifactRef, Experiment, MetricPoint, Page, Run
from shipyard.tracking import api as tracking


class Client:
    """Access to runs, datasets, models and lineage in one store.

    Args:
        store: metadata URI (``sqlite:///...``, ``postgresql://...``); default from settings.
        artifacts: artifact root URL (``file://...``, ``s3://...``); default from settings.
        settings: fully resolved settings, overriding both.
    """

    def __init__(
        self, store: str | None = None, artifacts: str | None = None, *, settings: Settings | None = None
    ) -> None:
        self.settings = settings or resolve_settings(store_uri=store, artifact_uri=artifacts)
        self.stores: Stores = open_stores(self.settings)

    def __repr__(self) -> str:
        from shipyard.store import redact_uri

        return f"Client(store={redact_uri(self.settings.store_uri)!r}, artifacts={self.settings.artifact_uri!r})"

    # experiments and runs ----------------------------------------------------------
    def list_experiments(self) -> list[Experiment]:
        """Every experiment, by name."""
        return self.stores.runs.list_experiments()

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``; raises NotFoundError naming the ones that exist."""
        return self.stores.runs.get_experiment(name)

    def create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created when it does not exist yet."""
        return self.stores.runs.create_experiment(name)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags, status and lineage."""
        return tracking.get_run(run_id, client=self)

    def search_runs(
        self,
        experiments: str | Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        """Runs matching ``filter``, compiled to one SQL query, ordered and paged.

        Returns a :class:`~shipyard.store.entities.Page`: a list of at most ``max_results``
        runs (newest first unless ``order_by`` says otherwise) whose ``next_page_token``,
        passed back as ``page_token``, gives the next page; it is ``None`` on the last one.

        Example:
            >>> client.search_runs("churn",  # doctest: +SKIP
            ...     filter="(metrics.auc > 0.9 or metrics.f1 > 0.8) and params.model in ('lgbm', 'xgb')",
            ...     order_by=["metrics.auc desc"])
            >>> page = client.search_runs("churn", max_results=100)  # doctest: +SKIP
            >>> while page.next_page_token:  # doctest: +SKIP
            ...     page = client.search_runs("churn", max_results=100, page_token=page.next_page_token)
        """
        names = [experiments] if isinstance(experiments, str) else list(experiments or [])
        ids = [self.stores.runs.get_experiment(name).id for name in names]
        tracking.fail_stale_runs(self.stores)
        return self.stores.runs.search_runs(
            ids, filter=filter, order_by=list(order_by), max_results=max_results, page_token=page_token
        )

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged point of one metric, ordered by step then time."""
        return self.stores.runs.get_metric_history(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricPoint] = (),
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write many metric points, params and tags to a run, each kind in one transaction.

        Points keep their own step and timestamp (MLflow's ``MlflowClient.log_batch``).

        Example:
            >>> points = [MetricPoint("loss", 1 / (1 + step), step, time.time()) for step in range(3)]
            >>> client.log_batch(run_id, points, params={"lr": 0.1})  # doctest: +SKIP
        """
        # The same checks as sy.log_metric, so a bad point fails before anything is written.
        points = [tracking._metric_point(*point) for point in metrics]
        if params:
            self.stores.runs.log_params(run_id, tracking._stringify("param", params))
        if points:
            self.stores.runs.log_metrics(run_id, points)
        if tags:
            self.stores.runs.set_tags(run_id, tracking._stringify("tag", tags))

    def delete_run(self, run_id: str, *, force: bool = False) -> None:
        """Soft-delete a run; ``gc`` removes it for good.

        A run that produced registered model versions is kept unless ``force``: the
        error names the versions.
        """
        tracking.delete_run(run_id, force=force, client=self)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRef]:
        """The files logged under a run."""
        self.stores.runs.get_run(run_id)
        return self.stores.runs.list_artifacts(run_id, prefix)

    def download_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy one artifact to ``dest``, verifying its hash."""
        return tracking.download_artifact(run_id, path, dest, client=self)

    # flows ------------------------------------------------------------------------
    def get_flow_run(self, run_id: str) -> FlowRun:
        """A flow run with every task run: name, state, attempts, start, end, resources."""
        return get_flow_run(run_id, client=self)

    # lineage and housekeeping ------------------------------------------------------
    def lineage(self, ref: str) -> LineageGraph:
        """The graph around a model version (``name@alias``, ``name/3``), a run id or a dataset (``name@2``)."""
        return build_lineage(self.stores, ref)

    def gc(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Purge soft-deleted records, then delete blobs no record references."""
        # A dry run counts the same statements and rolls them back: its report is what gc deletes.
        purged = self.stores.gc.purge_deleted(dry_run=dry_run)
        # Folder datasets keep their files' digests inside a manifest blob the store cannot read.
        live = self.stores.gc.referenced_digests() | dataset_digests(client=self)
        orphans = [d for d in self.stores.artifacts.list_digests() if d not in live]
        removed = len(orphans) if dry_run else self.stores.artifacts.delete(orphans)
        return {**purged, "orphan_blobs": len(orphans), "blobs_deleted": removed}

    def find_run(self, run_id: str) -> Run | None:
        """The run, or ``None`` when it does not exist."""
        try:
            return self.get_run(run_id)
        except NotFoundError:
            return None
