"""The ``search_runs`` filter language, compiled to one SQL expression (never filtered in Python).

Grammar::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op value | field ["not"] "in" "(" value ("," value)* ")"
                | field ["not"] ("like" | "ilike") string
    field      := ("metrics" | "params" | "tags" | "attributes") "." name | attribute
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="

Attributes: ``status``, ``name``, ``user``, ``run_id``, ``start_time``, ``end_time``,
``duration``. Names with spaces or dots go in backticks: ``metrics.`val loss` < 0.3``.

The same rules on SQLite and PostgreSQL:

- ``params.x < 5`` (``<``, ``<=``, ``>``, ``>=`` with a number) compares numerically and only
  matches params whose whole text is a decimal number: an optional sign, digits with an
  optional fraction, an optional exponent of one or two digits (``3``, ``-0``, ``.5``, ``1e3``).
  ``inf``, ``nan``, ``0x10``, ``" 2"``, ``e`` or ``.`` never match a numeric comparison.
- ``like`` is case-sensitive, ``ilike`` is not; ``%`` matches any run of characters, ``_``
  one character, and ``\\%``, ``\\_``, ``\\\\`` match a literal ``%``, ``_`` or backslash
  (``params.rate like '100\\%'``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, exists, func, literal, not_, or_, select

from shipyard.errors import InvalidFilterError, InvalidInputError
from shipyard.store import schema as s

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<field>(?:[A-Za-z_][\w]*)\.(?:`[^`]+`|[\w.\-/:]+)|`[^`]+`|[A-Za-z_]\w*)
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike"}
_PREFIXES = {"metrics", "metric", "params", "param", "tags", "tag", "attributes", "attribute", "attr", "run"}
_ATTRIBUTES = {
    "status": s.runs.c.status,
    "name": s.runs.c.name,
    "user": s.runs.c.user_name,
    "run_id": s.runs.c.id,
    "id": s.runs.c.id,
    "start_time": s.runs.c.start_time,
    "end_time": s.runs.c.end_time,
    "duration": s.runs.c.end_time - s.runs.c.start_time,
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time", "duration"}
# What counts as a number in a param, for both engines: bounded so PostgreSQL's cast never overflows.
_NUMBER = r"[-+]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][-+]?[0-9]{1,2})?"
_NUMBER_RE = re.compile(_NUMBER)
_LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int
    value: Any = None


@dataclass(frozen=True, slots=True)
class _Field:
    kind: str  # metrics | params | tags | attributes
    key: str
    pos: int


def _unquote_string(text: str) -> str:
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidFilterError(f"unexpected character {text[pos]!r}", text=text, position=pos)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "number":
            tokens.append(_Token("value", raw, pos, float(raw) if any(c in raw for c in ".eE") else int(raw)))
        elif kind == "string":
            tokens.append(_Token("value", raw, pos, _unquote_string(raw)))
        elif kind == "field" and raw.lower() in _KEYWORDS:
            tokens.append(_Token("kw", raw.lower(), pos))
        elif kind != "ws":
            tokens.append(_Token(kind, raw, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, dialect: str) -> None:
        self.text = text
        self.dialect = dialect
        self.tokens = _tokenize(text)
        self.i = 0

    # token helpers
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            return self.take()
        return None

    def fail(self, message: str, token: _Token | None = None) -> InvalidFilterError:
        token = token or self.peek()
        found = "end of filter" if token.kind == "end" else repr(token.text)
        return InvalidFilterError(f"{message}, found {found}", text=self.text, position=token.pos)

    # grammar
    def parse(self) -> ColumnElement[bool]:
        expr = self.parse_or()
        if self.peek().kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the filter")
        return expr

    def parse_or(self) -> ColumnElement[bool]:
        parts = [self.parse_and()]
        while self.accept("kw", "or"):
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else or_(*parts)

    def parse_and(self) -> ColumnElement[bool]:
        parts = [self.parse_not()]
        while self.accept("kw", "and"):
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else and_(*parts)

    def parse_not(self) -> ColumnElement[bool]:
        if self.accept("kw", "not"):
            return not_(self.parse_not())
        if self.accept("punct", "("):
            inner = self.parse_or()
            if not self.accept("punct", ")"):
                raise self.fail("expected ')'")
            return inner
        return self.parse_comparison()

    def parse_field(self) -> _Field:
        token = self.peek()
        if token.kind != "field":
            raise self.fail("expected a field such as metrics.auc, params.lr, tags.team or status")
        self.take()
        raw = token.text
        if raw.startswith("`"):
            return self._attribute(raw.strip("`"), token)
        prefix, _, key = raw.partition(".")
        if not key:
            return self._attribute(prefix, token)
        prefix = prefix.lower()
        if prefix not in _PREFIXES:
            raise InvalidFilterError(
                f"unknown field prefix {prefix!r}; use metrics., params., tags. or attributes.",
                text=self.text,
                position=token.pos,
            )
        key = key.strip("`")
        kind = {"metric": "metrics", "param": "params", "tag": "tags"}.get(prefix, prefix)
        if kind in {"attribute", "attr", "run"}:
            return self._attribute(key, token)
        return _Field(kind, key, token.pos)

    def _attribute(self, name: str, token: _Token) -> _Field:
        if name.lower() not in _ATTRIBUTES:
            known = ", ".join(sorted(_ATTRIBUTES))
            raise InvalidFilterError(
                f"unknown attribute {name!r}; attributes are: {known} "
                "(prefix metrics., params. or tags. for logged values)",
                text=self.text,
                position=token.pos,
            )
        return _Field("attributes", name.lower(), token.pos)

    def parse_value(self) -> Any:
        token = self.peek()
        if token.kind != "value":
            raise self.fail("expected a number or a quoted string")
        return self.take().value

    def parse_comparison(self) -> ColumnElement[bool]:
        field = self.parse_field()
        negate = bool(self.accept("kw", "not"))
        token = self.peek()
        if token.kind == "kw" and token.text == "in":
            self.take()
            if not self.accept("punct", "("):
                raise self.fail("expected '(' after 'in'")
            values = [self.parse_value()]
            while self.accept("punct", ","):
                values.append(self.parse_value())
            if not self.accept("punct", ")"):
                raise self.fail("expected ',' or ')' in the value list")
            expr = self.compile(field, "in", values, token)
        elif token.kind == "kw" and token.text in {"like", "ilike"}:
            self.take()
            pattern = self.parse_value()
            if not isinstance(pattern, str):
                raise self.fail(f"'{token.text}' needs a quoted pattern", self.tokens[self.i - 1])
            expr = self.compile(field, token.text, _like_pattern(self.tokens[self.i - 1].text), token)
        elif token.kind == "op" and not negate:
            self.take()
            expr = self.compile(field, token.text, self.parse_value(), token)
        else:
            raise self.fail("expected a comparison (=, !=, <, <=, >, >=), 'in', 'like' or 'ilike'")
        return not_(expr) if negate else expr

    # compilation
    def compile(self, field: _Field, op: str, value: Any, token: _Token) -> ColumnElement[bool]:
        if field.kind == "attributes":
            column = _ATTRIBUTES[field.key]
            self._check_type(field, op, value, numeric=field.key in _NUMERIC_ATTRIBUTES, token=token)
            return self._apply(column, op, value)
        if field.kind == "metrics":
            self._check_type(field, op, value, numeric=True, token=token)
            m = s.latest_metrics.c
            return exists(
                select(1).where(
                    m.run_id == s.runs.c.id, m.key == field.key, m.is_nan.is_(False), self._apply(m.value, op, value)
                )
            )
        table = s.params if field.kind == "params" else s.tags
        column = table.c.value
        numeric = isinstance(value, int | float) or (
            isinstance(value, list) and all(isinstance(v, int | float) for v in value)
        )
        if numeric and op in {"<", "<=", ">", ">="}:
            condition = self._apply(_as_number(column, self.dialect), op, value)
        else:
            condition = self._apply(column, op, value if op in {"like", "ilike"} else _as_text(value))
        return exists(select(1).where(table.c.run_id == s.runs.c.id, table.c.key == field.key, condition))

    def _apply(self, column: Any, op: str, value: Any) -> ColumnElement[bool]:
        if op in {"like", "ilike"}:
            return _like(column, value, self.dialect, ignore_case=op == "ilike")
        return _OPS[op](column, value)

    def _check_type(self, field: _Field, op: str, value: Any, *, numeric: bool, token: _Token) -> None:
        values = value if isinstance(value, list) else [value]
        if numeric and op in {"like", "ilike"}:
            raise InvalidFilterError(
                f"'{op}' compares text, but {field.kind}.{field.key} is a number", text=self.text, position=token.pos
            )
        if numeric and not all(isinstance(v, int | float) for v in values):
            raise InvalidFilterError(
                f"{field.kind}.{field.key} is a number; compare it with a number, not a string",
                text=self.text,
                position=token.pos,
            )
        if not numeric and op in {"<", "<=", ">", ">="} and field.kind == "attributes":
            raise InvalidFilterError(
                f"attribute {field.key!r} is text; use =, !=, in, like or ilike", text=self.text, position=token.pos
            )


def _as_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_number(column: Any, dialect: str) -> ColumnElement[Any]:
    """The param as a float when its text is a number by :data:`_NUMBER`, else NULL (never matches)."""
    if dialect == "postgresql":
        # CASE, not AND: PostgreSQL may evaluate AND's operands in any order, and casting 'e' raises.
        return case((column.op("~")(f"^{_NUMBER}$"), cast(column, Float)), else_=None)
    return func.shipyard_number(column)


def sqlite_number(text: str | None) -> float | None:
    """SQLite's ``shipyard_number(text)``: the same rule as PostgreSQL's regex and cast."""
    if not isinstance(text, str) or _NUMBER_RE.fullmatch(text) is None:
        return None
    return float(text)


def sqlite_lower(text: str | None) -> str | None:
    """SQLite's ``shipyard_lower(text)``: Unicode lower case, as PostgreSQL's, not SQLite's ASCII one."""
    return text.lower() if isinstance(text, str) else text


def _like_pattern(raw: str) -> str:
    """A quoted filter string as a LIKE pattern: ``\\%``, ``\\_``, ``\\\\`` stay escaped."""
    body = raw[1:-1]
    if raw[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", lambda m: m.group(0) if m.group(1) in "%_\\" else m.group(1), body)


_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}


def _glob(pattern: str) -> str:
    """A LIKE pattern (backslash escapes) as the equivalent, case-sensitive SQLite GLOB pattern."""
    out, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            out.append(_GLOB_LITERAL.get(escaped, escaped))
        elif char in "%_":
            out.append("*" if char == "%" else "?")
        else:
            out.append(_GLOB_LITERAL.get(char, char))
    return "".join(out)


def _like(column: Any, pattern: str, dialect: str, *, ignore_case: bool) -> ColumnElement[bool]:
    if dialect == "postgresql":
        op = column.ilike if ignore_case else column.like
        return op(pattern, escape=_LIKE_ESCAPE)  # type: ignore[no-any-return]
    # SQLite's LIKE ignores ASCII case and has no default escape; GLOB is exact.
    if ignore_case:
        return func.shipyard_lower(column).op("GLOB")(literal(_glob(pattern.lower())))  # type: ignore[no-any-return]
    return column.op("GLOB")(literal(_glob(pattern)))  # type: ignore[no-any-return]


_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v,
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<>": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "in": lambda c, v: c.in_(v),
}


def compile_filter(text: str, dialect: str) -> ColumnElement[bool]:
    """Compile a filter string into a WHERE clause over the ``runs`` table.

    Raises:
        InvalidFilterError: the filter does not parse; the message points at the position.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"filter must be a string, got {type(text).__name__}", field="filter")
    return _Parser(text, dialect).parse()


def compile_order_by(clauses: Sequence[str]) -> list[Any]:
    """Compile ``["metrics.auc desc", "start_time"]`` into ORDER BY terms (missing values last)."""
    terms: list[Any] = []
    for clause in clauses:
        parts = clause.strip().rsplit(None, 1)
        direction = "asc"
        if len(parts) == 2 and parts[1].lower() in {"asc", "desc"}:
            clause, direction = parts[0], parts[1].lower()
        parser = _Parser(clause.strip(), "any")
        field = parser.parse_field()
        if parser.peek().kind != "end":
            raise InvalidFilterError(
                "order_by takes a field and an optional asc or desc", text=clause, position=parser.peek().pos
            )
        if field.kind == "attributes":
            column: Any = _ATTRIBUTES[field.key]
        elif field.kind == "metrics":
            m = s.latest_metrics.c
            column = select(m.value).where(m.run_id == s.runs.c.id, m.key == field.key).scalar_subquery()
        else:
            table = s.params if field.kind == "params" else s.tags
            column = (
                select(table.c.value).where(table.c.run_id == s.runs.c.id, table.c.key == field.key).scalar_subquery()
            )
        term = column.desc() if direction == "desc" else column.asc()
        terms.append(term.nulls_last())
    return terms
