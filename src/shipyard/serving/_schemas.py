"""Pydantic models of the HTTP bodies, for the OpenAPI document only.

Handlers parse bodies with orjson and check them by hand (faster, and with error
messages that name each field the way the protocol expects); these models describe
the same shapes for ``/docs``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from shipyard.registry.models import Signature

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"
]


class RequestInput(BaseModel):
    """One input tensor: with the tabular convention, one column of the model's signature."""

    name: str = Field(examples=["tenure"])
    shape: list[int] = Field(examples=[[2]])
    datatype: Datatype
    parameters: dict[str, Any] | None = Field(
        default=None, description='{"binary_data_size": N} when the data follows the JSON header in binary'
    )
    data: list[Any] | None = Field(default=None, examples=[[3, 14]])


class RequestOutput(BaseModel):
    """An output asked for, optionally in binary."""

    name: str
    parameters: dict[str, Any] | None = Field(default=None, description='{"binary_data": true} for binary')


class InferenceRequest(BaseModel):
    """An Open Inference Protocol v2 request."""

    id: str | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description='{"content_type": "pd"}; {"binary_data_output": true} for binary outputs'
    )
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """One output tensor."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    """An Open Inference Protocol v2 response."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[ResponseOutput]


class ErrorBody(BaseModel):
    """Every error: a message naming each offending field; ``problems`` lists them one by one."""

    error: str
    problems: list[str] | None = None


class TensorMetadata(BaseModel):
    """An input or output of a model."""

    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model's metadata."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] | None = None


class ServerMetadata(BaseModel):
    """The server's metadata."""

    name: str
    version: str
    extensions: list[str]


class PredictRequest(BaseModel):
    """Rows as ``records`` (one object per row), or as ``columns`` and ``data`` (one list per row)."""

    records: list[dict[str, Any]] | None = Field(default=None, examples=[[{"tenure": 3, "charges": 70.5}]])
    columns: list[str] | None = Field(default=None, examples=[["tenure", "charges"]])
    data: list[list[Any]] | None = Field(default=None, examples=[[[3, 70.5]]])


class PredictResponse(BaseModel):
    """One prediction per row, and the version that made them."""

    model: str
    version: int
    predictions: list[Any]


REQUEST_BODIES: tuple[type[BaseModel], ...] = (InferenceRequest, PredictRequest)

# a signature column's JSON schema and example value (a "key" is an entity id: integer or string)
_JSON_TYPES: dict[str, dict[str, Any]] = {
    "key": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
}
_EXAMPLES: dict[str, tuple[str, Any]] = {
    "key": ("INT64", 42),
    "integer": ("INT64", 1),
    "float": ("FP64", 1.5),
    "boolean": ("BOOL", True),
    "string": ("BYTES", "a"),
    "datetime": ("BYTES", "2026-01-01T00:00:00"),
}


def entity_rows(model: str, signature: Signature, components: dict[str, Any]) -> str:
    """Add the body of requests by entity id to ``model`` to ``components``; returns its name."""
    name = "EntityRows_" + re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    row = {
        "type": "object",
        "properties": {c.name: _JSON_TYPES[c.type] for c in signature.inputs},
        "required": [c.name for c in signature.inputs],
        "additionalProperties": False,
    }
    components[name] = {
        "title": name,
        "description": (
            f"Rows for model {model}, which reads its features from the feature store: each row gives "
            "the entity ids (and request values); or the same as columns and data."
        ),
        "type": "object",
        "properties": {"records": {"type": "array", "items": row, "minItems": 1}},
        "required": ["records"],
        "example": {"records": [example_row(signature)]},
    }
    return name


def example_row(signature: Signature) -> dict[str, Any]:
    """One example row of ``signature``'s inputs."""
    return {c.name: _EXAMPLES[c.type][1] for c in signature.inputs}


def example_tensors(signature: Signature) -> dict[str, Any]:
    """An example v2 request with one row of ``signature``'s inputs."""
    return {
        "inputs": [
            {"name": c.name, "shape": [1], "datatype": _EXAMPLES[c.type][0], "data": [_EXAMPLES[c.type][1]]}
            for c in signature.inputs
        ]
    }
