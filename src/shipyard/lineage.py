"""The lineage graph: dataset versions → runs (with their code) → model versions, and back.

It answers "which data and code made this model, who owns it, what did this dataset feed"
from one query point. Later capabilities (flows, features, deployments) add node kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.registry._refs import resolve_version
from shipyard.store import Stores
from shipyard.store.entities import ModelVersion, Run


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One object in the graph: ``kind`` is dataset, run, code or model_version."""

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


class _Builder:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[LineageEdge] = set()

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
        if with_outputs:
            for version in self.stores.models.versions_for_runs([run.id]):
                self.link(run_node, self.add_version(version), "produced")
        return run_node

    def graph(self, root: str) -> LineageGraph:
        edges = tuple(sorted(self.edges, key=lambda e: (e.relation, e.source, e.target)))
        return LineageGraph(root, tuple(self.nodes.values()), edges)


def build_lineage(stores: Stores, ref: str) -> LineageGraph:
    """The graph around ``ref``: ``run:<id>``, ``dataset:<name>@<v>``, or a model ``name@alias``/``name/3``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError(f"lineage reference must be a non-empty string, got {ref!r}", field="ref")
    builder = _Builder(stores)
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
