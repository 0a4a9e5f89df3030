"""Resolving feature refs to definitions, and expanding what ``apply`` was given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shipyard.errors import InvalidInputError
from shipyard.features import _specs
from shipyard.features.models import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView, parse_ref

Features = Sequence[str] | FeatureService


@dataclass(frozen=True, slots=True)
class Resolved:
    """Feature refs resolved to definitions: what to fetch per view and what to compute on demand."""

    refs: tuple[tuple[str, str], ...]
    fetch: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    on_demand: tuple[OnDemandFeatureView, ...]


def resolve_refs(defs: Mapping[tuple[str, str], Definition], features: Features) -> Resolved:
    """Resolve refs (or a service) to the views to read and the on-demand views to run."""
    if isinstance(features, FeatureService):
        refs = features.refs
    elif isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise InvalidInputError(
            f"features must be a non-empty list of 'view:feature' refs or a FeatureService, got {features!r}",
            field="features",
        )
    else:
        refs = tuple(features)
    parsed = [parse_ref(r) for r in refs]
    views_and_odfvs = [o for o in defs.values() if isinstance(o, (FeatureView, OnDemandFeatureView))]
    known = sorted(f"{o.name}:{f}" for o in views_and_odfvs for f in o.features)
    fetch: dict[str, list[str]] = {}
    odfvs: dict[str, OnDemandFeatureView] = {}
    for view_name, feature in parsed:
        obj = defs.get((_specs.VIEW, view_name)) or defs.get((_specs.ON_DEMAND, view_name))
        if not isinstance(obj, (FeatureView, OnDemandFeatureView)) or feature not in obj.features:
            raise InvalidInputError(
                f"unknown feature {view_name}:{feature}; known features: {', '.join(known) or 'none'}",
                field="features",
            )
        if isinstance(obj, FeatureView):
            fetch.setdefault(view_name, [])
            if feature not in fetch[view_name]:
                fetch[view_name].append(feature)
        else:
            odfvs[view_name] = obj
            for source in obj.sources:
                wanted = fetch.setdefault(source.name, [])
                wanted.extend(f for f in source.features if f not in wanted)
    views = {name: defs[(_specs.VIEW, name)] for name in fetch}
    return Resolved(
        tuple(dict.fromkeys(parsed)),
        tuple((views[n], tuple(fs)) for n, fs in fetch.items()),  # type: ignore[misc]
        tuple(odfvs.values()),
    )


def expand(objects: Iterable[Definition]) -> list[Definition]:
    """The definitions plus the entities and views they reference, each once, checked.

    A name given two different definitions (a view and an on-demand view built from an
    older copy of it) is an error rather than a silent pick.
    """
    out: dict[tuple[str, str], Definition] = {}

    def add(obj: Definition) -> None:
        key = (_specs.kind_of(obj), obj.name)
        if key in out and out[key] != obj:
            raise InvalidInputError(f"two different {key[0]} definitions are named {obj.name!r}", field="objects")
        out[key] = obj

    def add_with_references(obj: Definition) -> None:
        for referenced in _references(obj):
            add_with_references(referenced)
        add(obj)

    for obj in objects:
        if not isinstance(obj, (Entity, FeatureView, OnDemandFeatureView, FeatureService)):
            raise InvalidInputError(
                f"apply takes Entity, FeatureView, OnDemandFeatureView and FeatureService objects, got {obj!r}",
                field="objects",
            )
        add_with_references(obj)
    return list(out.values())


def _references(obj: Definition) -> list[Definition]:
    """The definitions ``obj`` names directly: a view's entities, an on-demand view's views, ..."""
    if isinstance(obj, FeatureView):
        return list(obj.entities)
    if isinstance(obj, OnDemandFeatureView):
        return list(obj.sources)
    if isinstance(obj, FeatureService):
        return [item for item in obj.features if not isinstance(item, str)]
    return []
