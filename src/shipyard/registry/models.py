"""Frozen records of the registry: a parsed model reference and a model's signature."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.errors import InvalidInputError

ColumnType = Literal["integer", "float", "boolean", "string", "datetime"]
COLUMN_TYPES: tuple[str, ...] = ("integer", "float", "boolean", "string", "datetime")
InputFormat = Literal["dataframe", "ndarray"]
INPUT_FORMATS: tuple[str, ...] = ("dataframe", "ndarray")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed ``name@alias``, ``name/3`` or ``name`` (the latest version): at most one of the two is set."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One named column of a signature and its normalized type (integer, float, boolean, string, datetime)."""

    name: str
    type: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form stored on the model version."""
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True, slots=True)
class Signature:
    """The columns a model takes and the columns it returns.

    ``input_format`` says what the model itself is fed once the input is checked:
    ``"dataframe"`` (columns by name, in the signature's order) or ``"ndarray"`` (a 2-D
    array in the signature's column order, for models fitted on arrays).

    Example:
        >>> sig = Signature(inputs=(ColumnSpec("tenure", "integer"),), outputs=(ColumnSpec("prediction", "float"),))
        >>> sig.to_dict()["inputs"]
        [{'name': 'tenure', 'type': 'integer'}]
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    input_format: str = "dataframe"

    @property
    def input_names(self) -> list[str]:
        """The input columns' names, in order."""
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored on the model version: ``{"inputs": [...], "outputs": [...], "format": ...}``."""
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
            "format": self.input_format,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Read the JSON form back, checking every column's name and type.

        Raises:
            InvalidInputError: a column has no name or a type outside the known set.
        """
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise InvalidInputError(
                f"signature must be a mapping with 'inputs' (and optionally 'outputs'), got {data!r}",
                field="signature",
            )
        input_format = data.get("format", "dataframe")
        if input_format not in INPUT_FORMATS:
            raise InvalidInputError(
                f"signature format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}",
                field="signature.format",
            )
        return cls(
            inputs=_columns(data["inputs"], "inputs"),
            outputs=_columns(data.get("outputs") or [], "outputs"),
            input_format=input_format,
        )


def _columns(items: Any, where: str) -> tuple[ColumnSpec, ...]:
    if not isinstance(items, list | tuple):
        raise InvalidInputError(
            f"signature {where} must be a list of columns, got {items!r}", field=f"signature.{where}"
        )
    columns = []
    for item in items:
        if isinstance(item, ColumnSpec):
            item = item.to_dict()
        name = item.get("name") if isinstance(item, Mapping) else None
        kind = item.get("type") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError(
                f"each signature {where} column needs a non-empty 'name', got {item!r}", field=f"signature.{where}"
            )
        if kind not in COLUMN_TYPES:
            raise InvalidInputError(
                f"signature {where} column {name!r} has type {kind!r}; known types: {', '.join(COLUMN_TYPES)}",
                field=f"signature.{where}",
            )
        columns.append(ColumnSpec(name, kind))
    return tuple(columns)
