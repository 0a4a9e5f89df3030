"""The lineage graph: dataset versions → runs (with their code) → model versions, and back.

It answers "which data and code made this model, who owns it, what did this dataset feed"
from one query point. Feature views → feature service → model versions come from the tags
``log_model(..., features=...)`` records, so a feature view also knows which versions use it.
Later capabilities (flows, deployments) add node kinds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.registry._loaded import feature_service_of
from shipyard.registry._refs import resolve_version
from shipyard.store import Stores
from shipyard.store.entities import FeatureDefinition, ModelVersion, Run

# The kinds the feature registry stores definitions under.
VIEW, ON_DEMAND, SERVICE = "feature_view", "on_demand_feature_view", "feature_service"
# The tag a run that scored with a model version carries (batch prediction): ``name/N``.
USED_MODEL_TAG = "shipyard.model_version"
# Where `shipyard serve` records each arm it serves (serving/prediction_log.py writes these; serving sits
# above this module, so the names are repeated here rather than imported).
SERVING_EXPERIMENT = "serving"
SERVED_MODEL_TAG, SERVED_REF_TAG, SERVED_ARM_TAG = (
    "shipyard.serving.model",
    "shipyard.serving.ref",
    "shipyard.serving.arm",
)
MAX_DEPLOYMENT_RUNS = 1000


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One object in the graph: ``kind`` is dataset, run, code, model_version, feature_service or feature_view.

    (``on_demand_feature_view`` too, for features computed from other views; ``deployment`` for a
    reference and arm `shipyard serve` served the version under.)
    """

    id: str
    kind: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """A directed link ``source → target`` such as dataset ``input_to`` run."""

    source: str
    target: str
    relation: str


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """Nodes and edges around the object asked about (``root``)."""

    root: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]

    def node(self, node_id: str) -> LineageNode:
        """The node with this id."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise NotFoundError(f"lineage graph has no node {node_id!r}")

    def of_kind(self, kind: str) -> list[LineageNode]:
        """Every node of one kind, e.g. ``graph.of_kind("dataset")``."""
        return [n for n in self.nodes if n.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "root": self.root,
            "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "attrs": n.attrs} for n in self.nodes],
            "edges": [{"source": e.source, "target": e.target, "relation": e.relation} for e in self.edges],
        }


@dataclass(frozen=True, slots=True)
class FeatureUse:
    """A model version's feature service and the definitions it reads, each at the version in force.

    ``views`` maps each feature view read (directly, or as the input of an on-demand view) to
    its version when the model version was logged; ``on_demand`` maps each on-demand view to
    its version and the views it reads.
    """

    model: str
    version: int
    service: str
    service_version: int
    features: tuple[str, ...]
    views: dict[str, int]
    on_demand: dict[str, tuple[int, tuple[str, ...]]]

    @property
    def ref(self) -> str:
        """The model version as ``name/version``."""
        return f"{self.model}/{self.version}"


class _FeatureDefinitions:
    """Definition versions read once per name, for finding the ones in force at a time."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._versions: dict[tuple[str, str], list[FeatureDefinition]] = {}

    def versions(self, kind: str, name: str) -> list[FeatureDefinition]:
        key = (kind, name)
        if key not in self._versions:
            self._versions[key] = self.stores.features.list_feature_definition_versions(kind, name)
        return self._versions[key]

    def at(self, kind: str, name: str, when: float) -> FeatureDefinition | None:
        """The version in force at ``when`` (the first one if all are later: clocks differ)."""
        versions = self.versions(kind, name)
        before = [d for d in versions if d.created_at <= when]
        return before[-1] if before else (versions[0] if versions else None)

    def use_of(self, version: ModelVersion) -> FeatureUse | None:
        ref = feature_service_of(version)
        if ref is None:
            return None
        service = next((d for d in self.versions(SERVICE, ref.name) if d.version == ref.version), None)
        features = tuple(service.spec["features"]) if service is not None else ()
        views, on_demand = self.reads(features, version.created_at)
        return FeatureUse(version.name, version.version, ref.name, ref.version, features, views, on_demand)

    def reads(
        self, features: tuple[str, ...], when: float
    ) -> tuple[dict[str, int], dict[str, tuple[int, tuple[str, ...]]]]:
        """The views (and on-demand views) that ``view:feature`` refs read, at their versions at ``when``."""
        views: dict[str, int] = {}
        on_demand: dict[str, tuple[int, tuple[str, ...]]] = {}
        for name in dict.fromkeys(f.partition(":")[0] for f in features):
            view = self.at(VIEW, name, when)
            odfv = None if view is not None else self.at(ON_DEMAND, name, when)
            if view is not None:
                views[name] = view.version
            elif odfv is not None:
                sources = tuple(odfv.spec.get("sources", ()))
                on_demand[name] = (odfv.version, sources)
                for source in sources:
                    found = self.at(VIEW, source, when)
                    if found is not None:
                        views.setdefault(source, found.version)
        return views, on_demand


def feature_uses(stores: Stores) -> list[FeatureUse]:
    """Every model version logged with a feature service, with the feature views it reads.

    The catalog's "used by" (``shipyard features list/show``) and a feature view's lineage
    come from here.
    """
    definitions = _FeatureDefinitions(stores)
    uses = []
    for model in stores.models.list_registered_models():
        for version in stores.models.list_model_versions(model.name):
            use = definitions.use_of(version)
            if use is not None:
                uses.append(use)
    return uses


class _Builder:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[LineageEdge] = set()
        self.definitions = _FeatureDefinitions(stores)
        self.root_view: str | None = None
        self.root_service: str | None = None

    def add(self, node: LineageNode) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, relation: str) -> None:
        self.edges.add(LineageEdge(source, target, relation))

    def add_version(self, version: ModelVersion) -> str:
        model = self.stores.models.get_registered_model(version.name)
        return self.add(
            LineageNode(
                f"model:{version.name}/{version.version}",
                "model_version",
                f"{version.name}/{version.version}",
                {
                    "aliases": list(version.aliases),
                    "flavor": version.flavor,
                    "owner": model.owner,
                    "team": model.team,
                    "manifest_digest": version.manifest_digest,
                    "metrics": dict(version.metrics),
                },
            )
        )

    def add_run(self, run: Run, *, with_outputs: bool = True) -> str:
        run_node = self.add(
            LineageNode(
                f"run:{run.id}",
                "run",
                f"{run.experiment}/{run.name}",
                {"status": run.status, "user": run.user, "start_time": run.start_time, "params": dict(run.params)},
            )
        )
        git = run.lineage.get("git") or {}
        code_label = f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}" if git else "no git"
        code = self.add(
            LineageNode(
                f"code:{git.get('commit', run.lineage.get('entry_point', 'unknown'))}",
                "code",
                f"{run.lineage.get('entry_point', '?')} @ {code_label}",
                {"git": git, "entry_point": run.lineage.get("entry_point"), "python": run.lineage.get("python")},
            )
        )
        self.link(code, run_node, "executed_by")
        for link in self.stores.datasets.run_datasets([run.id]):
            data_version = self.stores.datasets.get_dataset_version(link.name, link.version)
            data = self.add(
                LineageNode(
                    f"dataset:{link.name}@{link.version}",
                    "dataset",
                    f"{link.name}@{link.version}",
                    {
                        "digest": data_version.digest,
                        "num_rows": data_version.num_rows,
                        "golden": data_version.tags.get("golden") == "true",
                    },
                )
            )
            if link.role == "input":
                self.link(data, run_node, "input_to")
            else:
                self.link(run_node, data, "produced")
        if run.parent_run_id:
            try:
                parent = self.stores.runs.get_run(run.parent_run_id)
            except NotFoundError:
                parent = None
            if parent is not None:
                self.link(self.add_run(parent, with_outputs=False), run_node, "parent_of")
        used = self.used_version(run)
        if used is not None:  # a batch prediction run: the version it scored with
            self.link(self.add_version(used), run_node, "used_by")
        if with_outputs:
            for version in self.stores.models.versions_for_runs([run.id]):
                self.link(run_node, self.add_version(version), "produced")
        return run_node

    def add_deployments(self, version_node: str, version: ModelVersion) -> None:
        """Where the version was served: one node per reference and arm, from the serving runs (newest 1,000)."""
        experiment = self.stores.runs.find_experiment(SERVING_EXPERIMENT)
        if experiment is None:
            return
        name = version.name.replace("\\", "\\\\").replace("'", "\\'")
        runs = self.stores.runs.search_runs(
            [experiment.id],
            filter=f"tags.`{SERVED_MODEL_TAG}` = '{name}'",
            order_by=["start_time desc"],
            max_results=MAX_DEPLOYMENT_RUNS,
            page_token=None,
        )
        served: dict[tuple[str, str], list[Run]] = {}
        for run in runs:
            if run.lineage.get("version") == version.version:
                key = (run.tags.get(SERVED_REF_TAG, version.ref), run.tags.get(SERVED_ARM_TAG, "primary"))
                served.setdefault(key, []).append(run)
        for (ref, arm), arm_runs in sorted(served.items()):
            node = self.add(
                LineageNode(
                    f"deployment:{ref}:{arm}",
                    "deployment",
                    f"{ref} ({arm})",
                    {
                        "ref": ref,
                        "arm": arm,
                        "hosts": sorted({str(r.lineage.get("host", "?")) for r in arm_runs}),
                        "starts": len(arm_runs),
                        "last_start": arm_runs[0].start_time,
                        "runs": [r.id for r in arm_runs],
                    },
                )
            )
            self.link(version_node, node, "deployed_as")

    def used_version(self, run: Run) -> ModelVersion | None:
        """The model version a run used (tag ``shipyard.model_version`` = ``name/N``), if it still exists."""
        name, _, number = run.tags.get(USED_MODEL_TAG, "").rpartition("/")
        if not name or not number.isdigit():
            return None
        try:
            return self.stores.models.get_model_version(name, int(number))
        except NotFoundError:
            return None

    def add_features(self, version_node: str, use: FeatureUse) -> None:
        """The version's feature service and the views it reads, each at its version."""
        service = self.root_service
        if service not in (f"{SERVICE}:{use.service}", f"{SERVICE}:{use.service}@{use.service_version}"):
            label = f"{use.service}@{use.service_version}"
            service = self.add(LineageNode(f"{SERVICE}:{label}", SERVICE, label, {"features": list(use.features)}))
        self.link(service, version_node, "features_for")
        self.add_inputs(service, use.features, use.views, use.on_demand)

    def add_inputs(
        self,
        service: str,
        features: tuple[str, ...],
        views: dict[str, int],
        on_demand: dict[str, tuple[int, tuple[str, ...]]],
    ) -> None:
        for name in dict.fromkeys(f.partition(":")[0] for f in features):
            if name in on_demand:
                number, sources = on_demand[name]
                odfv = self.add_definition(ON_DEMAND, name, number)
                self.link(odfv, service, "part_of")
                for source in sources:
                    if source in views:
                        self.link(self.add_definition(VIEW, source, views[source]), odfv, "input_to")
            elif name in views:
                self.link(self.add_definition(VIEW, name, views[name]), service, "part_of")

    def add_definition(self, kind: str, name: str, number: int) -> str:
        if kind == VIEW and self.root_view == f"{VIEW}:{name}":
            return self.root_view  # the view asked about stands for all its versions
        found = next((d for d in self.definitions.versions(kind, name) if d.version == number), None)
        spec = found.spec if found is not None else {}
        attrs = {"version": number, "owner": spec.get("owner"), "description": spec.get("description")}
        return self.add(LineageNode(f"{kind}:{name}@{number}", kind, f"{name}@{number}", attrs))

    def add_feature_view(self, name: str) -> str:
        """A feature view as the root: the services and model versions that read any of its versions."""
        versions = self.definitions.versions(VIEW, name)
        if not versions:
            known = ", ".join(d.name for d in self.stores.features.latest_feature_definitions(VIEW)) or "none"
            raise NotFoundError(f"feature view {name!r} does not exist; known views: {known}", field="ref")
        latest = versions[-1]
        attrs = {
            "version": latest.version,
            "owner": latest.spec.get("owner"),
            "description": latest.spec.get("description"),
        }
        self.root_view = self.add(
            LineageNode(f"{VIEW}:{name}", VIEW, f"{name} (latest version {latest.version})", attrs)
        )
        for use in feature_uses(self.stores):
            if name in use.views:
                version = self.stores.models.get_model_version(use.model, use.version)
                self.add_features(self.add_version(version), use)
        return self.root_view

    def add_feature_service(self, ref: str) -> str:
        """A service as the root (``NAME`` for all its versions, ``NAME@V`` for one): its views and models."""
        name, _, number = ref.partition("@")
        versions = self.definitions.versions(SERVICE, name)
        if not versions:
            known = ", ".join(d.name for d in self.stores.features.latest_feature_definitions(SERVICE)) or "none"
            raise NotFoundError(f"feature service {name!r} does not exist; known services: {known}", field="ref")
        chosen = next((d for d in versions if str(d.version) == number), None) if number else versions[-1]
        if chosen is None:
            listed = ", ".join(str(d.version) for d in versions)
            raise NotFoundError(f"feature service {name!r} has no version {number!r}; its versions are: {listed}")
        features = tuple(chosen.spec["features"])
        label = f"{name}@{chosen.version}" if number else f"{name} (latest version {chosen.version})"
        attrs = {"version": chosen.version, "features": list(features), "owner": chosen.spec.get("owner")}
        self.root_service = self.add(LineageNode(f"{SERVICE}:{ref}", SERVICE, label, attrs))
        # Its views as that version was applied (or as they are now, for the latest).
        when = chosen.created_at if number else time.time()
        self.add_inputs(self.root_service, features, *self.definitions.reads(features, when))
        for use in feature_uses(self.stores):
            if use.service == name and (not number or use.service_version == chosen.version):
                version = self.stores.models.get_model_version(use.model, use.version)
                self.add_features(self.add_version(version), use)
        return self.root_service

    def graph(self, root: str) -> LineageGraph:
        edges = tuple(sorted(self.edges, key=lambda e: (e.relation, e.source, e.target)))
        return LineageGraph(root, tuple(self.nodes.values()), edges)


def build_lineage(stores: Stores, ref: str) -> LineageGraph:
    """The graph around ``ref``: a run, a dataset, a feature view or service, or a model.

    The forms: ``run:<id>``, ``dataset:<name>@<v>``, ``feature_view:<name>``,
    ``feature_service:<name>[@<v>]``, a model ``name@alias``/``name/3``. A model's graph
    includes the feature service it was logged with and the views that service reads. A
    feature view's graph shows the services and model versions that read it (any of its
    versions); a service's, its views and the model versions logged with it.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError(f"lineage reference must be a non-empty string, got {ref!r}", field="ref")
    builder = _Builder(stores)
    if ref.startswith(f"{VIEW}:"):
        return builder.graph(builder.add_feature_view(ref.removeprefix(f"{VIEW}:")))
    if ref.startswith(f"{SERVICE}:"):
        return builder.graph(builder.add_feature_service(ref.removeprefix(f"{SERVICE}:")))
    if ref.startswith("run:"):
        root = builder.add_run(stores.runs.get_run(ref.removeprefix("run:")))
        return builder.graph(root)
    if ref.startswith("dataset:"):
        name, _, number = ref.removeprefix("dataset:").partition("@")
        data = stores.datasets.get_dataset_version(name, int(number) if number.isdigit() else None)
        root = f"dataset:{data.name}@{data.version}"
        for link in stores.datasets.dataset_runs(data.name, data.version):
            builder.add_run(stores.runs.get_run(link.run_id))
        if root not in builder.nodes:
            builder.add(LineageNode(root, "dataset", data.ref, {"digest": data.digest}))
        return builder.graph(root)
    version = resolve_version(stores, ref)
    root = builder.add_version(version)
    builder.add_deployments(root, version)
    use = builder.definitions.use_of(version)
    if use is not None:
        builder.add_features(root, use)
    if version.run_id:
        try:
            run = stores.runs.get_run(version.run_id)
        except NotFoundError:  # deleted with --force: say so, the version itself is still known
            deleted = builder.add(
                LineageNode(f"run:{version.run_id}", "run", f"{version.run_id} (deleted)", {"deleted": True})
            )
            builder.link(deleted, root, "produced")
        else:
            builder.add_run(run)
    return builder.graph(root)
