"""The filter language gives the same, intended answers on SQLite and PostgreSQL.

Every case runs on both engines (the ``stores`` fixture) against the same expectation, so
a rule that one engine bends (SQLite reading ``"e"`` as 0, or its LIKE ignoring case)
fails on that engine.
"""

from __future__ import annotations

import time

import pytest

from shipyard.store import Stores

# run name -> the text of params.x: numbers, near-numbers and things that are not numbers.
NUMBERS = {
    "e": "e",
    "dot": ".",
    "dashes": "--",
    "exp": "1e3",
    "spaced": " 2",
    "inf": "inf",
    "nan": "nan",
    "neg-zero": "-0",
    "hex": "0x10",
    "three": "3",
    "half": ".5",
    "neg": "-4.5",
    "empty": "",
}
# run name -> the text of params.opt: case and LIKE's special characters.
TEXTS = {
    "Adam": "Adam",
    "adam": "adam",
    "ADAM": "ADAM",
    "pct": "100%",
    "pcx": "100x",
    "under": "a_b",
    "axb": "axb",
    "backslash": "a\\b",
    "star": "a*b",
    "question": "a?b",
    "bracket": "[a]",
}


def _populate(stores: Stores) -> None:
    exp = stores.runs.create_experiment("contract")
    for values, key in ((NUMBERS, "x"), (TEXTS, "opt")):
        for name, value in values.items():
            run = stores.runs.create_run(
                exp.id, name=name, user="u", parent_run_id=None, lineage={}, tags={}, start_time=time.time()
            )
            stores.runs.log_params(run.id, {key: value})


def _names(stores: Stores, filter: str) -> list[str]:
    page = stores.runs.search_runs([], filter=filter, order_by=["name"], max_results=100, page_token=None)
    return sorted(run.name for run in page)


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # Numeric comparisons see only decimal numbers: never e . -- inf nan 0x10 " 2" "".
        ("params.x > -1", ["exp", "half", "neg-zero", "three"]),
        ("params.x >= 0", ["exp", "half", "neg-zero", "three"]),
        ("params.x < 0", ["neg"]),
        ("params.x <= 1000", ["exp", "half", "neg", "neg-zero", "three"]),
        ("params.x > 999.5", ["exp"]),
        ("not params.x > -1000 and params.x != ''", ["dashes", "dot", "e", "hex", "inf", "nan", "spaced"]),
        # Equality stays a text comparison.
        ("params.x = 3", ["three"]),
        ("params.x = '-0'", ["neg-zero"]),
        ("params.x in ('inf', 'nan')", ["inf", "nan"]),
    ],
)
def test_numeric_param_comparisons_follow_one_rule(stores: Stores, filter: str, expected: list[str]) -> None:
    _populate(stores)
    assert _names(stores, filter) == expected


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # like is case-sensitive, ilike is not.
        ("params.opt like 'adam'", ["adam"]),
        ("params.opt like 'A%'", ["ADAM", "Adam"]),
        ("params.opt ilike 'adam'", ["ADAM", "Adam", "adam"]),
        ("params.opt not like 'adam' and params.opt ilike 'ADAm'", ["ADAM", "Adam"]),
        ("name like 'a%'", ["adam", "axb"]),
        # % and _ are wildcards; escaped with a backslash they are literal.
        ("params.opt like '100%'", ["pct", "pcx"]),
        (r"params.opt like '100\%'", ["pct"]),
        ("params.opt like 'a_b'", ["axb", "backslash", "question", "star", "under"]),
        (r"params.opt like 'a\_b'", ["under"]),
        (r"params.opt like 'a\\b'", ["backslash"]),
        # SQLite GLOB's own wildcards are plain characters in a LIKE pattern.
        ("params.opt like 'a*b'", ["star"]),
        ("params.opt like 'a?b'", ["question"]),
        ("params.opt like '[a]'", ["bracket"]),
        ("params.opt ilike 'A?B'", ["question"]),
    ],
)
def test_like_is_case_sensitive_and_escapes_work(stores: Stores, filter: str, expected: list[str]) -> None:
    _populate(stores)
    assert _names(stores, filter) == expected
