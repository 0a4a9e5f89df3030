"""``shipyard lineage REF``: the graph of data, runs, code and models around one object."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.tree import Tree

from shipyard.cli._common import client, console
from shipyard.lineage import LineageGraph


def render_lineage(graph: LineageGraph) -> Tree:
    """The graph as a Rich tree rooted at the object asked about, inputs as branches."""
    incoming: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        incoming.setdefault(edge.target, []).append((edge.source, edge.relation))
    root = graph.node(graph.root)
    tree = Tree(f"[bold]{root.kind}[/bold] {root.label}")

    def grow(branch: Tree, node_id: str, seen: set[str]) -> None:
        for source, relation in sorted(incoming.get(node_id, [])):
            if source in seen:
                continue
            node = graph.node(source)
            child = branch.add(f"[bold]{node.kind}[/bold] {node.label} [dim]({relation.replace('_', ' ')})[/dim]")
            grow(child, source, seen | {source})

    grow(tree, graph.root, {graph.root})
    outgoing = [e for e in graph.edges if e.source == graph.root]
    for edge in outgoing:
        node = graph.node(edge.target)
        tree.add(f"[dim]{edge.relation.replace('_', ' ')} →[/dim] [bold]{node.kind}[/bold] {node.label}")
    return tree


def lineage(
    ref: Annotated[str, typer.Argument(help="model name@alias or name/3, run:<id>, or dataset:<name>@<v>")],
) -> None:
    """Show where an object came from: datasets → run (code) → model version."""
    console.print(render_lineage(client().lineage(ref)))
