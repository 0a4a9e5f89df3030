"""``shipyard lineage REF``: the graph of data, runs, code and models around one object."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

import typer
from rich.tree import Tree

from shipyard.cli._common import client, console, dataset_ref
from shipyard.errors import NotFoundError
from shipyard.lineage import LineageGraph
from shipyard.store import Stores

_RUN_ID = re.compile(r"^[0-9a-f]{6,32}$")


def render_lineage(graph: LineageGraph) -> Tree:
    """The graph as a Rich tree rooted at the object asked about: inputs as branches, then what it feeds."""
    incoming: dict[str, list[tuple[str, str]]] = {}
    outgoing: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        incoming.setdefault(edge.target, []).append((edge.source, edge.relation))
        outgoing.setdefault(edge.source, []).append((edge.target, edge.relation))
    root = graph.node(graph.root)
    tree = Tree(f"[bold]{root.kind}[/bold] {root.label}")

    def grow(branch: Tree, node_id: str, seen: set[str], links: dict[str, list[tuple[str, str]]]) -> None:
        # Downstream is followed as far as upstream: a feature view's services, then their model versions.
        for other, relation in sorted(links.get(node_id, [])):
            if other in seen:
                continue
            node, words = graph.node(other), relation.replace("_", " ")
            if links is incoming:
                label = f"[bold]{node.kind}[/bold] {node.label} [dim]({words})[/dim]"
            else:
                label = f"[dim]{words} →[/dim] [bold]{node.kind}[/bold] {node.label}"
            grow(branch.add(label), other, seen | {other}, links)

    grow(tree, graph.root, {graph.root}, incoming)
    grow(tree, graph.root, {graph.root}, outgoing)
    return tree


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="a model (NAME@ALIAS, NAME/3, NAME), a dataset (NAME@3, NAME), a run id or prefix, "
            "a feature view (NAME) or service (NAME, NAME@2); prefix with model:, dataset:, run:, "
            "feature_view: or feature_service: when a name is both"
        ),
    ],
) -> None:
    """Show where an object came from (datasets, features → run (code) → model version) and what it feeds."""
    c = client()
    console.print(render_lineage(c.lineage(lineage_ref(c.stores, ref))))


def lineage_ref(stores: Stores, ref: str) -> str:
    """The reference ``Client.lineage`` takes for what the user typed.

    Every form another command prints works here: ``models show``'s NAME/3 and NAME@ALIAS,
    ``datasets show``'s NAME@3, the run ids of ``runs list`` (or a prefix of 6+ characters),
    and the explicit ``model:``, ``dataset:`` (NAME@3 or NAME/3), ``run:``, ``feature_view:`` and
    ``feature_service:`` forms; a bare name no model or dataset has may be a feature view
    (``features list``) or a feature service (NAME@2 as ``features show`` prints it).
    """
    kind, sep, rest = ref.partition(":")
    if sep and kind in ("model", "dataset", "run", "feature_view", "feature_service"):
        return rest if kind == "model" else f"dataset:{dataset_ref(rest)}" if kind == "dataset" else ref
    if _RUN_ID.match(ref) and _exists(lambda: stores.runs.get_run(ref)):
        return f"run:{ref}"
    name = re.split(r"[@/]", ref, maxsplit=1)[0]
    if _exists(lambda: stores.models.get_registered_model(name)):
        return ref
    if _exists(lambda: stores.datasets.get_dataset_version(name)):
        return f"dataset:{dataset_ref(ref)}"
    if stores.features.list_feature_definition_versions("feature_view", ref):
        return f"feature_view:{ref}"
    if stores.features.list_feature_definition_versions("feature_service", name):
        return f"feature_service:{ref}"
    models = ", ".join(sorted(m.name for m in stores.models.list_registered_models())[:10]) or "none"
    datasets = ", ".join(sorted(d.name for d in stores.datasets.list_datasets())[:10]) or "none"
    raise NotFoundError(
        f"no model, dataset or run is named {name!r}, nor a feature view or service; "
        f"models: {models}; datasets: {datasets}",
        field="ref",
    )


def _exists(lookup: Callable[[], object]) -> bool:
    try:
        lookup()
    except NotFoundError:
        return False
    return True
