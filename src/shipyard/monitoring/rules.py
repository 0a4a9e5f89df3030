"""Alert rules: ``psi(plan) > 0.2 for 2 windows``, ``roc_auc < 0.8``, ``share_drifted > 0.3``.

A rule reads ``[NAME:] STATISTIC[(FEATURE)] OP NUMBER [for N windows]``:

- per feature: ``psi``, ``ks``, ``ks_pvalue``, ``chi2``, ``chi2_pvalue``, ``js``,
  ``wasserstein``, ``wasserstein_norm`` (from the drift report), ``drift_score`` (the
  score of the feature's own drift method), ``missing_rate``;
- per window: ``share_drifted``, ``drifted_count``, ``rows``, and the performance
  metrics ``accuracy``, ``roc_auc``, ``f1``, ``rmse``, ``mae``;
- ``OP`` is one of ``>``, ``>=``, ``<``, ``<=``; ``for N windows`` fires only when the
  condition held in N windows in a row (1 when left out).

The name is what ``on_alert(NAME)`` waits for; it defaults to the rule's text without
``for ...`` (``psi(plan) > 0.2``). A file of rules holds one rule per line; blank lines
and lines starting with ``#`` are skipped.

Example:
    >>> rule = parse_rule("churn-drift: psi(plan) > 0.2 for 2 windows")
    >>> rule.name, rule.statistic, rule.feature, rule.windows
    ('churn-drift', 'psi', 'plan', 2)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import InvalidInputError

FEATURE_STATISTICS = (
    "psi",
    "ks",
    "ks_pvalue",
    "chi2",
    "chi2_pvalue",
    "js",
    "wasserstein",
    "wasserstein_norm",
    "drift_score",
    "missing_rate",
)
WINDOW_STATISTICS = ("share_drifted", "drifted_count", "rows", "accuracy", "roc_auc", "f1", "rmse", "mae")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_RULE = re.compile(
    r"""^\s*(?:(?P<name>[A-Za-z0-9_.\-]+)\s*:\s*)?
    (?P<stat>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*(?P<feature>[^()]+?)\s*\))?\s*
    (?P<op>>=|<=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*
    (?:for\s+(?P<windows>\d+)\s+windows?)?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule; :func:`parse_rule` makes one from text."""

    name: str
    statistic: str
    op: str
    threshold: float
    feature: str | None = None
    windows: int = 1

    def __post_init__(self) -> None:
        if self.statistic in FEATURE_STATISTICS and self.feature is None:
            raise InvalidInputError(
                f"rule {self.name!r}: {self.statistic} is per feature; write {self.statistic}(FEATURE)", field="rule"
            )
        if self.statistic in WINDOW_STATISTICS and self.feature is not None:
            raise InvalidInputError(
                f"rule {self.name!r}: {self.statistic} is per window and takes no feature; "
                f"per-feature statistics are: {', '.join(FEATURE_STATISTICS)}",
                field="rule",
            )
        if self.statistic not in FEATURE_STATISTICS + WINDOW_STATISTICS:
            raise InvalidInputError(
                f"rule {self.name!r}: unknown statistic {self.statistic!r}; per feature: "
                f"{', '.join(FEATURE_STATISTICS)}; per window: {', '.join(WINDOW_STATISTICS)}",
                field="rule",
            )
        if self.op not in OPERATORS:
            raise InvalidInputError(f"rule {self.name!r}: operator must be one of > >= < <=", field="rule")
        if not isinstance(self.windows, int) or self.windows < 1:
            raise InvalidInputError(f"rule {self.name!r}: 'for N windows' needs N >= 1", field="rule")
        if not self.name:
            raise InvalidInputError("a rule needs a name", field="rule")

    @property
    def subject(self) -> str:
        """``psi(plan)`` or ``roc_auc``: what the rule measures."""
        return f"{self.statistic}({self.feature})" if self.feature else self.statistic

    def describe(self) -> str:
        """The rule as text (parses back to an equal rule)."""
        tail = f" for {self.windows} windows" if self.windows > 1 else ""
        return f"{self.name}: {self.subject} {self.op} {self.threshold:g}{tail}"

    def holds(self, value: float | None) -> bool | None:
        """Whether ``value`` meets the condition; ``None`` when there is no value (NaN or missing)."""
        if value is None or math.isnan(value):
            return None
        return OPERATORS[self.op](value, self.threshold)

    def check_features(self, features: Collection[str]) -> None:
        """Refuse a rule on a feature the model does not have.

        Raises:
            InvalidInputError: the feature is not one of ``features``; the message lists them.
        """
        if self.feature is not None and self.feature not in features:
            raise InvalidInputError(
                f"rule {self.name!r} names feature {self.feature!r}, which the model does not have; "
                f"its features are: {', '.join(sorted(features)) or 'none'}",
                field="rule",
            )


def parse_rule(text: str) -> Rule:
    """A :class:`Rule` from ``[NAME:] STATISTIC[(FEATURE)] OP NUMBER [for N windows]``.

    Raises:
        InvalidInputError: the text does not read as a rule; the message shows the expected form.
    """
    match = _RULE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInputError(
            f"rule {text!r} does not read as '[NAME:] STATISTIC[(FEATURE)] OP NUMBER [for N windows]', "
            "e.g. 'psi(plan) > 0.2 for 2 windows' or 'roc_auc < 0.8'",
            field="rule",
        )
    stat, feature, op = match["stat"].lower(), match["feature"], match["op"]
    subject = f"{stat}({feature})" if feature else stat
    return Rule(
        name=match["name"] or f"{subject} {op} {match['value']}",
        statistic=stat,
        op=op,
        threshold=float(match["value"]),
        feature=feature,
        windows=int(match["windows"] or 1),
    )


def parse_rules(rules: Iterable[str | Rule]) -> list[Rule]:
    """Rules from text or :class:`Rule` objects; names must be unique."""
    parsed = [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    names = [r.name for r in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError(f"two rules are named {twice[0]!r}; give each a name ('NAME: ...')", field="rule")
    return parsed


def read_rules(path: str | Path) -> list[Rule]:
    """The rules of a file: one per line, ``#`` comments and blank lines skipped.

    Raises:
        InvalidInputError: the file cannot be read, or a line is not a rule (the message names the line).
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise InvalidInputError(f"cannot read rules file {str(path)!r}: {exc.strerror}", field="rules") from exc
    rules: list[str | Rule] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            rules.append(parse_rule(text))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}:{number}: {exc.message}", field="rules") from exc
    return parse_rules(rules)


def check_rules(rules: Sequence[Rule], features: Collection[str]) -> None:
    """Refuse any rule naming a feature outside ``features``."""
    for rule in rules:
        rule.check_features(features)


def rule_value(rule: Rule, values: Mapping[str, float]) -> float | None:
    """The value ``rule`` reads from a window's flat values (``psi(plan)``, ``roc_auc``, ...)."""
    return values.get(rule.subject)
