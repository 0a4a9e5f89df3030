"""Pydantic models of the HTTP bodies, for the OpenAPI document only.

Handlers parse bodies with orjson and check them by hand (faster, and with error
messages that name each field the way the protocol expects); these models describe
the same shapes for ``/docs``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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
