"""``shipyard features``: plan and apply definitions from a file, browse the catalog, materialize."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.cli._common import JsonOption, emit_json, when
from shipyard.errors import InvalidInputError

if TYPE_CHECKING:
    from shipyard.features import Change, FeatureStore, FeatureView
    from shipyard.features.models import Definition
    from shipyard.lineage import FeatureUse

app = typer.Typer(help="Feature store: definitions, catalog, materialization.", no_args_is_help=True)

PathArg = Annotated[str, typer.Argument(help="a Python file defining entities, feature views and services")]


def _store() -> FeatureStore:
    # Imported here: the feature store pulls in pyarrow, which other commands need not pay for.
    from shipyard.features import FeatureStore

    return FeatureStore()


def _definitions(path: str) -> list[Definition]:
    from shipyard.features._repo import load_definitions

    return load_definitions(path)


def _console() -> Console:
    # Built per command so the width follows the terminal (and COLUMNS) of this invocation.
    return Console()


def _changes_table(changes: list[Change], title: str) -> Table:
    table = Table("kind", "name", "action", "version", "breaks readers", title=title)
    for c in changes:
        version = "-" if c.version is None else str(c.version)
        table.add_row(c.kind, escape(c.name), c.action, version, escape("; ".join(c.breaking)) or "-")
    return table


@app.command("plan")
def plan_command(path: PathArg) -> None:
    """Show what `apply` would store: new definitions, new versions, changes that break readers."""
    changes = _store().plan(_definitions(path))
    _console().print(_changes_table(changes, f"plan for {escape(path)}"))


@app.command("apply")
def apply_command(
    path: PathArg,
    force: Annotated[bool, typer.Option("--force", help="apply changes that break readers too")] = False,
) -> None:
    """Store the definitions of a file, each changed one as a new version."""
    store = _store()
    definitions = _definitions(path)
    changes = store.plan(definitions)
    store.apply(definitions, force=force)
    _console().print(_changes_table(changes, f"applied {escape(path)}"))


def _freshness(store: FeatureStore) -> dict[str, float | None]:
    return {m.view: m.max_event_time for m in store.stores.features.list_materializations()}


def _ttl(view: FeatureView) -> str:
    return "-" if view.max_age is None else str(view.max_age)


def _used_by(store: FeatureStore) -> dict[str, list[FeatureUse]]:
    """The model versions reading each feature view (from the tags ``log_model(features=)`` sets)."""
    from shipyard.lineage import feature_uses

    out: dict[str, list[FeatureUse]] = {}
    for use in feature_uses(store.stores):
        for view in use.views:
            out.setdefault(view, []).append(use)
    return out


def _use_json(use: FeatureUse, view: str) -> dict[str, object]:
    return {
        "model": use.model,
        "version": use.version,
        "feature_service": use.service,
        "feature_service_version": use.service_version,
        "view_version": use.views[view],
    }


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List feature views: owner, entities, features, ttl, freshness, and the model versions using them."""
    store = _store()
    fresh = _freshness(store)
    used = _used_by(store)
    if as_json:
        emit_json(
            {
                "name": view.name,
                "owner": view.owner,
                "entities": [e.name for e in view.entities],
                "features": {f.name: f.dtype for f in view.schema},
                "ttl": None if view.max_age is None else str(view.max_age),
                "freshness": fresh.get(view.name),
                "description": view.description,
                "used_by": [_use_json(u, view.name) for u in used.get(view.name, [])],
            }
            for view in store.list_feature_views()
        )
        return
    table = Table("view", "owner", "entities", "features", "ttl", "freshness", "used by", "description")
    for view in store.list_feature_views():
        entities = ", ".join(e.name for e in view.entities)
        table.add_row(
            escape(view.name),
            escape(view.owner or "-"),
            escape(entities),
            str(len(view.schema)),
            _ttl(view),
            when(fresh.get(view.name)),
            escape(", ".join(u.ref for u in used.get(view.name, [])) or "-"),
            escape(view.description or "-"),
        )
    _console().print(table)


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="a feature view's name")]) -> None:
    """Show one feature view: owner, description, source, schema, freshness and the model versions using it."""
    store = _store()
    view = store.get_feature_view(name)
    versions = store.stores.features.list_feature_definition_versions("feature_view", name)
    keys = ", ".join(view.join_keys)
    console = _console()
    console.print(
        f"[bold]{escape(view.name)}[/bold]  version={versions[-1].version}  owner={escape(view.owner or '-')}  "
        f"join keys={escape(keys)}  ttl={_ttl(view)}  freshness={when(_freshness(store).get(view.name))}\n"
        f"{escape(view.description or '')}\n"
        f"source={escape(str(view.source.spec()))}"
    )
    table = Table("feature", "dtype", "description", title=f"{escape(view.name)} schema")
    for f in view.schema:
        table.add_row(escape(f.name), f.dtype, escape(f.description or "-"))
    console.print(table)
    used = Table("model version", "feature service", "view version", title=f"used by ({escape(view.name)})")
    for use in _used_by(store).get(view.name, []):
        used.add_row(escape(use.ref), escape(f"{use.service}@{use.service_version}"), str(use.views[view.name]))
    console.print(used if used.row_count else "used by: no model version (log_model(..., features=SERVICE))")


def _parse_time(value: str | None, option: str) -> dt.datetime | str | None:
    if value is None or value == "now":
        return value
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"{option} must be an ISO time such as 2026-01-31T12:00 or 'now', got {value!r}", field=option
        ) from exc


@app.command("materialize")
def materialize_command(
    end: Annotated[str, typer.Option("--end", help="latest event time to copy (ISO, UTC) or 'now'")] = "now",
    start: Annotated[str | None, typer.Option("--start", help="copy only events after this time")] = None,
    incremental: Annotated[bool, typer.Option("--incremental", help="start where the last run ended")] = False,
    views: Annotated[list[str] | None, typer.Option("--view", help="only this view (repeatable)")] = None,
) -> None:
    """Copy the latest feature values per entity into the online store, with a progress bar."""
    store = _store()
    console = _console()
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:

        def progress(view: str, done: int, total: int) -> None:
            if view not in tasks:
                tasks[view] = bar.add_task(view, total=total)
            bar.update(tasks[view], completed=done, total=total)

        end_time = _parse_time(end, "--end")
        if incremental:
            records = store.materialize_incremental(end_time, views=views, progress=progress)
        else:
            records = store.materialize(_parse_time(start, "--start"), end_time, views=views, progress=progress)
    for r in records:
        console.print(f"{escape(r.view)}: {r.rows} entities, latest event {when(r.max_event_time)}")


@app.command("ingest")
def ingest_command(
    stream: Annotated[str, typer.Option("--stream", help="redis://HOST[:PORT][/DB]/STREAM")],
    view: Annotated[str, typer.Option("--view", help="the feature view the entries belong to")],
    group: Annotated[str, typer.Option("--group", help="Redis consumer group")] = "shipyard-features",
    consumer: Annotated[str | None, typer.Option("--consumer", help="consumer name (default: per host)")] = None,
    max_messages: Annotated[int | None, typer.Option("--max-messages", help="stop after this many entries")] = None,
) -> None:
    """Push a Redis Stream's entries to the online store continuously (at-least-once; Ctrl-C stops)."""
    from shipyard.features.stream import IngestStats, ingest_stream

    console = _console()

    def report(stats: IngestStats) -> None:
        console.print(f"pushed {stats.pushed}, dead-lettered {stats.dead}")

    stats = ingest_stream(
        _store(), stream, view=view, group=group, consumer=consumer, max_messages=max_messages, on_batch=report
    )
    console.print(f"done: pushed {stats.pushed}, dead-lettered {stats.dead}")
