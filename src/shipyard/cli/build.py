"""``shipyard build``: write a deployable bundle (Dockerfile, pinned requirements, model, Kubernetes manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.cli._common import console

STEPS = 5  # the progress messages build_bundle sends


def build(
    ref: Annotated[str, typer.Argument(help="The model to bundle: NAME@ALIAS, NAME/VERSION or NAME (latest).")],
    out: Annotated[Path, typer.Argument(help="The folder to write; must not exist or be empty.")],
    image: Annotated[
        str | None, typer.Option(help="Image the Kubernetes Deployment runs (default NAME:VERSION).")
    ] = None,
    replicas: Annotated[int, typer.Option(help="Deployment replicas and the autoscaler's minimum.")] = 2,
) -> None:
    """Write a container bundle for one model: Dockerfile, requirements, the model and k8s/ manifests.

    Example: shipyard build churn@champion dist/churn --image registry.local/churn:3
    """
    from shipyard.serving.bundle import build_bundle

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"bundling {ref}", total=STEPS)

        done = iter(range(STEPS))

        def step(message: str) -> None:
            bar.update(task, description=message, completed=next(done, STEPS))

        bundle = build_bundle(ref, out, image=image, replicas=replicas, progress=step)
        bar.update(task, completed=STEPS)
    console.print(
        f"wrote {bundle.path}/ serving {bundle.ref} (from {bundle.source.ref}), image {bundle.image}", soft_wrap=True
    )
    console.print(
        f"  docker build -t {bundle.image} {bundle.path} && kubectl apply -f {bundle.path / 'k8s'}", soft_wrap=True
    )
