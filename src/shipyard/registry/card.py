"""Model cards: a Markdown page about one model version, written from what the registry knows.

Nothing is typed by hand: names, ownership and text come from the registry; metrics,
parameters, data and lineage from the training run; environment from the manifest.

Example:
    >>> print(model_card("churn@champion"))  # doctest: +SKIP
    # churn — version 3
    ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.errors import NotFoundError
from shipyard.registry._package import read_manifest
from shipyard.registry._refs import resolve_version
from shipyard.registry.models import ModelRef
from shipyard.store import Stores
from shipyard.store.entities import ModelVersion, RegisteredModel, Run
from shipyard.tracking.api import HasStores, resolve_stores

_NONE = "_not recorded_"


def model_card(ref: str | ModelRef, *, client: HasStores | None = None) -> str:
    """The Markdown model card of a version: ``"name@alias"``, ``"name/3"`` or ``"name"``.

    Sections: summary (aliases, owner, team), description, intended use, limitations,
    metrics, training parameters, data, lineage, environment and signature.

    Raises:
        NotFoundError: no such model, version or alias.

    Example:
        >>> Path("CARD.md").write_text(model_card("churn/3"))  # doctest: +SKIP
    """
    stores = resolve_stores(client)
    version = resolve_version(stores, ref)
    model = stores.models.get_registered_model(version.name)
    run = _run(stores, version.run_id)
    manifest = read_manifest(stores, version)
    sections = [
        _summary(model, version),
        _text("Description", version.description or model.description),
        _text("Intended use", version.intended_use),
        _text("Limitations", version.limitations),
        _section("Metrics", _table(("metric", "value"), ((k, _number(v)) for k, v in sorted(version.metrics.items())))),
        _section("Training parameters", _table(("parameter", "value"), sorted((run.params if run else {}).items()))),
        _section("Data", _data(stores, version.run_id)),
        _section("Lineage", _lineage(version, run)),
        _section("Environment", _environment(version, manifest)),
        _section("Signature", _signature(version.signature)),
    ]
    return "\n\n".join(sections) + "\n"


def _run(stores: Stores, run_id: str | None) -> Run | None:
    if run_id is None:
        return None
    try:
        return stores.runs.get_run(run_id)
    except NotFoundError:  # the run was deleted; the version and its card outlive it
        return None


def _summary(model: RegisteredModel, version: ModelVersion) -> str:
    created = dt.datetime.fromtimestamp(version.created_at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("Model", f"`{version.name}`"),
        ("Version", str(version.version)),
        ("Aliases", ", ".join(f"`{a}`" for a in version.aliases) or "none"),
        ("Owner", model.owner or _NONE),
        ("Team", model.team or _NONE),
        ("Flavor", version.flavor),
        ("Registered", created),
    ]
    tags = {**model.tags, **version.tags}
    if tags:
        rows.append(("Tags", ", ".join(f"`{k}={v}`" for k, v in sorted(tags.items()))))
    lines = [f"# {version.name} — version {version.version}", ""]
    lines += [f"- **{label}:** {_cell(value)}" for label, value in rows]
    return "\n".join(lines)


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body}"


def _text(title: str, body: str) -> str:
    return _section(title, body.strip() or _NONE)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    return f"{value:.6g}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    body = [f"| {' | '.join(_cell(c) for c in row)} |" for row in rows]
    if not body:
        return _NONE
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|", *body]
    return "\n".join(lines)


def _data(stores: Stores, run_id: str | None) -> str:
    if run_id is None:
        return _NONE
    rows = []
    for link in stores.datasets.run_datasets([run_id]):
        try:
            dataset = stores.datasets.get_dataset_version(link.name, link.version)
            rows.append((f"`{dataset.ref}`", link.role, _count(dataset.num_rows), f"`{dataset.digest[:12]}`"))
        except NotFoundError:
            rows.append((f"`{link.name}@{link.version}`", link.role, "?", "deleted"))
    return _table(("dataset", "role", "rows", "digest"), rows)


def _count(rows: int | None) -> str:
    return "?" if rows is None else f"{rows:,}"


def _lineage(version: ModelVersion, run: Run | None) -> str:
    if run is None:
        return f"Training run `{version.run_id}` is not available." if version.run_id else _NONE
    lineage: Mapping[str, Any] = run.lineage
    git = lineage.get("git") or {}
    commit = git.get("commit")
    code = f"`{commit}`" + (" (uncommitted changes)" if git.get("dirty") else "") if commit else _NONE
    rows = [
        ("run", f"`{run.id}` ({run.name})" if run.name else f"`{run.id}`"),
        ("experiment", run.experiment),
        ("git commit", code),
        ("git branch", git.get("branch") or _NONE),
        ("entry point", f"`{lineage['entry_point']}`" if lineage.get("entry_point") else _NONE),
        ("user", lineage.get("user") or run.user or _NONE),
        ("host", lineage.get("host") or _NONE),
        ("python", lineage.get("python") or _NONE),
    ]
    if run.parent_run_id:
        rows.append(("parent run", f"`{run.parent_run_id}`"))
    return _table(("item", "value"), rows)


def _environment(version: ModelVersion, manifest: Mapping[str, Any]) -> str:
    libraries: Mapping[str, str] = manifest.get("libraries") or {}
    rows = [("flavor", version.flavor), ("python", manifest.get("python_version") or _NONE)]
    rows += sorted(libraries.items())
    files = manifest.get("files") or {}
    listing = ", ".join(f"`{name}`" for name in sorted(files)) or _NONE
    return _table(("component", "version"), rows) + f"\n\nFiles: {listing} (each verified by sha256 on load)."


def _signature(signature: Mapping[str, Any] | None) -> str:
    if not signature:
        return "No signature was recorded: inputs are not checked."
    inputs = _table(("input", "type"), ((f"`{c['name']}`", c["type"]) for c in signature.get("inputs", [])))
    outputs = _table(("output", "type"), ((f"`{c['name']}`", c["type"]) for c in signature.get("outputs", [])))
    return f"{inputs}\n\n{outputs}"
