"""What starts a flow without a person: a cron schedule, a new dataset version, a moved model
alias, an event (monitoring alerts), or a sensor function of your own.

Each trigger keeps a cursor in the store (the last dataset version, alias version or event
id it acted on). The scheduler moves a cursor and enqueues the run in one transaction, so
an event starts exactly one run however many schedulers watch it, and a restarted
scheduler carries on where the cursor stands.

Example:
    >>> @flow(schedule=Schedule("0 3 * * *", timezone="Europe/Paris"),  # doctest: +SKIP
    ...       triggers=[on_dataset("events", param="dataset"), on_alert("churn-drift")])
    ... def retrain(dataset: str = "events@latest"): ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.store import Stores

CATCHUP_POLICIES = ("latest", "all", "none")


@dataclass(frozen=True, slots=True)
class Firing:
    """One reason to run a flow: the cursor after it, a label for the run, and its parameters."""

    cursor: str
    label: str
    params: Mapping[str, Any] = field(default_factory=dict)
    claim_key: str | None = None


class Trigger(Protocol):
    """Something the scheduler polls; ``key`` names its cursor (unique within a flow)."""

    key: str
    priority: int

    def describe(self) -> str: ...
    def baseline(self, stores: Stores) -> str: ...
    def poll(self, stores: Stores, cursor: str) -> list[Firing]: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    """A cron schedule in a timezone, with what to do about slots missed while no scheduler ran.

    ``catchup``: ``"latest"`` runs only the newest missed slot, ``"all"`` runs every one
    in order, ``"none"`` runs none (a slot runs only if it is due within ``grace`` seconds).
    """

    cron: str
    timezone: str = "UTC"
    catchup: str = "latest"
    params: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    grace: float = 60.0

    def __post_init__(self) -> None:
        from croniter import croniter

        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise InvalidInputError(
                f"schedule {self.cron!r} is not a valid cron expression; expected five fields "
                "such as '0 3 * * *' (minute hour day month weekday)",
                field="schedule",
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInputError(
                f"schedule timezone {self.timezone!r} is unknown; use an IANA name such as 'Europe/Paris'",
                field="timezone",
            ) from exc
        if self.catchup not in CATCHUP_POLICIES:
            raise InvalidInputError(
                f"catchup must be one of {', '.join(CATCHUP_POLICIES)}, got {self.catchup!r}", field="catchup"
            )

    def slots(self, after: float, until: float) -> list[float]:
        """Slot times (epoch seconds) strictly after ``after`` and at or before ``until``."""
        from croniter import croniter

        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, dt.datetime.fromtimestamp(after, zone))
        out: list[float] = []
        while True:
            slot = float(it.get_next(float))
            if slot > until:
                return out
            out.append(slot)
            if len(out) >= 10_000:
                return out

    def describe(self) -> str:
        """``cron '0 3 * * *' (Europe/Paris)``."""
        return f"cron {self.cron!r} ({self.timezone})"


def as_schedule(value: str | Schedule | None) -> Schedule | None:
    """A :class:`Schedule` from a cron string (UTC) or a schedule."""
    if value is None or isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return Schedule(value)
    raise InvalidInputError(f"schedule must be a cron string or a Schedule, got {value!r}", field="schedule")


def slot_key(slot: float) -> str:
    """The claim key of a cron slot: its UTC time."""
    return "cron:" + dt.datetime.fromtimestamp(slot, dt.UTC).isoformat()


@dataclass(frozen=True, slots=True)
class OnDataset:
    """Run once per new version of a dataset (``param`` receives ``name@version``)."""

    name: str
    param: str | None = None
    priority: int = 0

    @property
    def key(self) -> str:
        return f"dataset:{self.name}"

    def describe(self) -> str:
        return f"new version of dataset {self.name!r}"

    def baseline(self, stores: Stores) -> str:
        versions = stores.datasets.list_dataset_versions(self.name)
        return str(max((v.version for v in versions), default=0))

    def poll(self, stores: Stores, cursor: str) -> list[Firing]:
        seen = int(cursor or 0)
        versions = sorted(v.version for v in stores.datasets.list_dataset_versions(self.name) if v.version > seen)
        return [
            Firing(str(v), f"dataset:{self.name}@{v}", {self.param: f"{self.name}@{v}"} if self.param else {})
            for v in versions
        ]


@dataclass(frozen=True, slots=True)
class OnModel:
    """Run when a model's alias moves to another version (``param`` receives ``name/version``).

    The scheduler compares the alias with what it last acted on, so an alias moved away
    and back between two polls does not fire.
    """

    name: str
    alias: str
    param: str | None = None
    priority: int = 0

    @property
    def key(self) -> str:
        return f"model:{self.name}@{self.alias}"

    def describe(self) -> str:
        return f"alias {self.alias!r} of model {self.name!r} moves"

    def _current(self, stores: Stores) -> str:
        try:
            version = stores.models.get_registered_model(self.name).aliases.get(self.alias)
        except NotFoundError:
            return ""
        return "" if version is None else str(version)

    def baseline(self, stores: Stores) -> str:
        return self._current(stores)

    def poll(self, stores: Stores, cursor: str) -> list[Firing]:
        current = self._current(stores)
        if not current or current == cursor:
            return []
        params = {self.param: f"{self.name}/{current}"} if self.param else {}
        return [Firing(current, f"model:{self.name}@{self.alias}={current}", params)]


@dataclass(frozen=True, slots=True)
class OnEvent:
    """Run once per event of ``kind`` and ``name`` written with :func:`emit_event` (``param`` gets its payload)."""

    kind: str
    name: str
    param: str | None = None
    priority: int = 0

    @property
    def key(self) -> str:
        return f"event:{self.kind}:{self.name}"

    def describe(self) -> str:
        return f"{self.kind} event {self.name!r}"

    def baseline(self, stores: Stores) -> str:
        return str(stores.flows.last_event_id(self.kind, self.name))

    def poll(self, stores: Stores, cursor: str) -> list[Firing]:
        events = stores.flows.list_events(self.kind, self.name, after_id=int(cursor or 0))
        return [
            Firing(str(e.id), f"{self.kind}:{self.name}#{e.id}", {self.param: dict(e.payload)} if self.param else {})
            for e in events
        ]


@dataclass(frozen=True, slots=True)
class Sensor:
    """Your own check, called every ``interval`` seconds: it returns ``None`` (nothing to do), a key,
    or ``(key, params)``. Each distinct key runs the flow once.
    """

    fn: Callable[[], str | tuple[str, Mapping[str, Any]] | None]
    interval: float = 30.0
    priority: int = 0

    @property
    def key(self) -> str:
        return f"sensor:{getattr(self.fn, '__qualname__', repr(self.fn))}"

    def describe(self) -> str:
        return f"sensor {getattr(self.fn, '__name__', repr(self.fn))} every {self.interval:g} s"

    def baseline(self, stores: Stores) -> str:
        return ""

    def poll(self, stores: Stores, cursor: str) -> list[Firing]:
        found = self.fn()
        if found is None:
            return []
        key, params = (found, {}) if isinstance(found, str) else found
        return [Firing(cursor, f"{self.key}:{key}", dict(params), claim_key=f"{self.key}:{key}")]


def on_dataset(name: str, *, param: str | None = None, priority: int = 0) -> OnDataset:
    """Trigger on every new version of dataset ``name``."""
    return OnDataset(name, param, priority)


def on_model(name: str, alias: str, *, param: str | None = None, priority: int = 0) -> OnModel:
    """Trigger when alias ``alias`` of model ``name`` moves to another version."""
    return OnModel(name, alias, param, priority)


def on_alert(name: str, *, param: str | None = None, priority: int = 0) -> OnEvent:
    """Trigger on every alert ``name`` that monitoring emits (``emit_event("alert", name, ...)``)."""
    return OnEvent("alert", name, param, priority)


def on_event(kind: str, name: str, *, param: str | None = None, priority: int = 0) -> OnEvent:
    """Trigger on every event of ``kind`` named ``name``."""
    return OnEvent(kind, name, param, priority)


def sensor(
    fn: Callable[[], str | tuple[str, Mapping[str, Any]] | None], *, interval: float = 30.0, priority: int = 0
) -> Sensor:
    """Trigger from a function of your own; each distinct key it returns runs the flow once."""
    return Sensor(fn, interval, priority)
