"""Alert states and notifications: a rule fires once when its condition holds, resolves once when it stops.

Each rule is ``ok`` until it fires, then ``firing`` until a window no longer meets its
condition, then ``resolved`` (until it fires again). A window without a value for the
rule (no rows, no labels yet) changes nothing. Only transitions notify: the log always,
a webhook when given (a JSON ``POST``), and a firing alert is also written as an event
``emit_event("alert", rule.name, payload)``, so flows declared with ``on_alert(rule.name)``
start. The monitor keeps the states in each stored report, so they carry over from one
``shipyard monitor`` run to the next.

Example:
    >>> states, changes = evaluate(rules, {"psi(plan)": 0.4}, {}, at=time.time())  # doctest: +SKIP
    >>> notify(changes, [webhook("http://127.0.0.1:9000/hook")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.flows import emit_event
from shipyard.monitoring.rules import Rule, rule_value
from shipyard.tracking.api import HasStores

logger = logging.getLogger("shipyard.monitoring")
STATES = ("ok", "firing", "resolved")
Notifier = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one rule stands: its state, the windows in a row its condition held, its last value."""

    rule: str
    state: str = "ok"
    streak: int = 0
    since: float | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """The state :meth:`to_dict` wrote."""
        state = str(data.get("state", "ok"))
        return cls(
            str(data["rule"]),
            state if state in STATES else "ok",
            int(data.get("streak", 0)),
            data.get("since"),
            data.get("value"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule that started firing or resolved in this window, with what to tell about it."""

    rule: Rule
    state: str
    value: float | None
    at: float
    context: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """What notifications carry (and the ``alert`` event, when firing)."""
        return {
            "alert": self.rule.name,
            "state": self.state,
            "rule": self.rule.describe(),
            "subject": self.rule.subject,
            "value": self.value,
            "threshold": self.rule.threshold,
            "at": self.at,
            **self.context,
        }


def evaluate(
    rules: Sequence[Rule],
    values: Mapping[str, float],
    previous: Mapping[str, AlertState],
    *,
    at: float,
    context: Mapping[str, Any] | None = None,
) -> tuple[dict[str, AlertState], list[Transition]]:
    """Each rule's next state from this window's ``values``, and the transitions that happened.

    ``values`` maps a rule's subject (``psi(plan)``, ``roc_auc``) to this window's value.
    """
    states: dict[str, AlertState] = {}
    changes: list[Transition] = []
    for rule in rules:
        before = previous.get(rule.name, AlertState(rule.name))
        value = rule_value(rule, values)
        held = rule.holds(value)
        if held is None:
            states[rule.name] = before
            continue
        streak = before.streak + 1 if held else 0
        state, since = before.state, before.since
        if held and streak >= rule.windows and before.state != "firing":
            state, since = "firing", at
        elif not held and before.state == "firing":
            state, since = "resolved", at
        states[rule.name] = AlertState(rule.name, state, streak, since, value)
        if state != before.state:
            changes.append(Transition(rule, state, value, at, dict(context or {})))
    return states, changes


def notify(
    changes: Sequence[Transition], notifiers: Sequence[Notifier] = (), *, client: HasStores | None = None
) -> None:
    """Tell the log and every notifier about each transition; emit an ``alert`` event for each firing."""
    for change in changes:
        payload = change.payload()
        log_notifier(payload)
        for notifier in notifiers:
            notifier(payload)
        if change.state == "firing":
            emit_event("alert", change.rule.name, payload, client=client)


def log_notifier(payload: Mapping[str, Any]) -> None:
    """Write a transition to the ``shipyard.monitoring`` log (warning when firing)."""
    level = logging.WARNING if payload.get("state") == "firing" else logging.INFO
    logger.log(
        level,
        "alert %s %s: %s = %s",
        payload.get("alert"),
        payload.get("state"),
        payload.get("subject"),
        payload.get("value"),
    )


def webhook(url: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> Notifier:
    """A notifier that POSTs each transition as JSON to ``url``; a failed POST is logged, never raised.

    Raises:
        InvalidInputError: ``url`` is not an http(s) URL.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"webhook must be an http:// or https:// URL, got {url!r}", field="webhook")
    sent_headers = {"Content-Type": "application/json", **(headers or {})}

    def post(payload: Mapping[str, Any]) -> None:
        body = json.dumps(dict(payload), default=str).encode()
        request = urllib.request.Request(url, data=body, headers=sent_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:  # an unreachable hook must not stop monitoring
            logger.error("alert webhook %s failed for %s: %s", url, payload.get("alert"), exc)

    return post
