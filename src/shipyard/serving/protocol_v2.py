"""The Open Inference Protocol v2 (KServe, Triton, MLServer): requests to columns, answers to tensors.

Tabular convention (KServe's ``"content_type": "pd"``): each input tensor is one column,
named as in the model's signature, of shape ``[rows]`` or ``[rows, 1]``. A single 2-D
tensor ``[rows, columns]`` whose name is not a column is read positionally, in the
signature's column order (models fitted on arrays). Each output column is one tensor;
outputs that have no column names come back as one tensor ``prediction``.

Example:
    >>> body = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    >>> sorted(request_columns(body, [None], None))
    ['x']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from shipyard.errors import InvalidInputError, SchemaMismatchError
from shipyard.registry.models import Signature
from shipyard.serving._binary import NUMPY_TYPES, decode_tensor, encode_tensor, shape_problem
from shipyard.serving.validation import Array, positional

DATATYPES = (*NUMPY_TYPES, "BYTES")
# an entity id ("key") is listed as BYTES, which every id can be sent as; INT64 ids are accepted too
SIGNATURE_TYPES = {
    "float": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
    "key": "BYTES",
}
_ACCEPTS = {"BOOL": "b", "BYTES": "UOS"}  # JSON data kinds each datatype accepts; numbers below


def _accepts(datatype: str) -> str:
    if datatype in _ACCEPTS:
        return _ACCEPTS[datatype]
    return "fiu" if datatype.startswith("FP") else "iu"


def request_columns(body: Any, binary: Sequence[bytes | None], signature: Signature | None) -> dict[str, Array]:
    """The columns of an inference request (JSON header already parsed, binary slices taken).

    Raises:
        InvalidInputError: the request is not shaped as the protocol says.
        SchemaMismatchError: a tensor's data does not match its declared datatype or shape.
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise InvalidInputError("an inference request needs 'inputs': a non-empty list of tensors", field="inputs")
    problems: list[str] = []
    tensors: dict[str, Array] = {}
    for item, chunk in zip(inputs, binary, strict=True):
        name, array = _tensor(item, chunk, problems)
        if array is None:
            continue
        if name in tensors:
            problems.append(f"input {name!r} is given twice")
        tensors[name] = array
    if problems:
        raise SchemaMismatchError("inference request is malformed: " + "; ".join(problems), problems=problems)
    names = set() if signature is None else set(signature.input_names)
    if len(tensors) == 1:
        name, array = next(iter(tensors.items()))
        if array.ndim == 2 and array.shape[1] > 1 and name not in names:
            return positional(array, signature, tensor=name)
    return tensors


def _tensor(item: Mapping[str, Any], chunk: bytes | None, problems: list[str]) -> tuple[str, Array | None]:
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        problems.append(f"every input needs a 'name', got {name!r}")
        return "", None
    problem = shape_problem(name, shape)
    if problem is not None:
        problems.append(problem)
        return name, None
    shape = cast(list[int], shape)
    if datatype not in DATATYPES:
        problems.append(f"input {name!r}: 'datatype' must be one of {', '.join(DATATYPES)}, got {datatype!r}")
        return name, None
    if chunk is not None:
        return name, decode_tensor(name, datatype, shape, chunk)
    if "data" not in item:
        problems.append(f"input {name!r} has neither 'data' nor binary data")
        return name, None
    try:
        array = np.asarray(item["data"])
    except ValueError:
        problems.append(f"input {name!r}: 'data' is ragged")
        return name, None
    count = math.prod(shape)
    if array.size != count:
        problems.append(f"input {name!r}: shape {shape} holds {count} elements, 'data' has {array.size}")
        return name, None
    if array.dtype.kind not in _accepts(datatype) and not (array.dtype.kind == "O" and datatype.startswith("FP")):
        kind = {"f": "numbers with decimals", "i": "integers", "b": "booleans", "U": "strings"}.get(
            array.dtype.kind, "mixed values"
        )
        problems.append(f"input {name!r} is declared {datatype} but its data holds {kind}")
        return name, None
    if datatype != "BYTES" and array.dtype.kind != "O":
        array = array.astype(NUMPY_TYPES[datatype])
    return name, array.reshape(shape)


def datatype_of(array: Array) -> str:
    """The protocol datatype of an array (strings and objects are ``BYTES``)."""
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"i": "INT", "u": "UINT", "f": "FP"}[kind] + str(array.dtype.itemsize * 8)
    return "BYTES"


def output_tensors(outputs: Array, names: Sequence[str]) -> list[tuple[str, Array]]:
    """The output tensors: one per named column, else a single ``prediction``."""
    if outputs.ndim == 2 and len(names) == outputs.shape[1] > 1:
        return [(name, outputs[:, i]) for i, name in enumerate(names)]
    if outputs.ndim == 1 and len(names) == 1:
        return [(names[0], outputs)]
    return [("prediction", outputs)]


def infer_response(
    *,
    model: str,
    version: int,
    request_id: str | None,
    tensors: Sequence[tuple[str, Array]],
    requested: Any,
    binary_all: bool,
) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON response and the binary chunks that follow it (empty when all outputs are JSON).

    Raises:
        InvalidInputError: ``outputs`` asks for a tensor the model does not return.
    """
    wanted = _requested(requested, [name for name, _ in tensors], binary_all)
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in tensors:
        if name not in wanted:
            continue
        datatype = datatype_of(array)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if wanted[name]:
            chunk = encode_tensor(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = json_values(array)
        outputs.append(tensor)
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    return response, chunks


def _requested(requested: Any, available: list[str], binary_all: bool) -> dict[str, bool]:
    if requested is None:
        return dict.fromkeys(available, binary_all)
    if not isinstance(requested, list) or not all(isinstance(r, dict) for r in requested):
        raise InvalidInputError("'outputs' must be a list of {'name': ...} objects", field="outputs")
    wanted: dict[str, bool] = {}
    for item in requested:
        name = item.get("name")
        if name not in available:
            raise InvalidInputError(
                f"the model has no output {name!r}; its outputs are: {', '.join(available)}", field="outputs"
            )
        parameters = item.get("parameters") or {}
        wanted[name] = bool(parameters.get("binary_data", binary_all)) if isinstance(parameters, dict) else binary_all
    return wanted


def json_values(array: Array) -> list[Any]:
    """An array as a flat JSON list: NaN as null, bytes and dates as strings."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        return [None if v != v else v for v in flat.tolist()]  # NaN is not JSON
    if flat.dtype.kind in "OSUM":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    return list(flat.tolist())


def model_metadata(
    name: str,
    versions: Sequence[int],
    flavor: str,
    signature: Signature | None,
    *,
    outputs: Signature | None = None,
    feature_service: str | None = None,
) -> dict[str, Any]:
    """The protocol's model metadata: name, versions, platform, input and output tensors.

    ``signature`` gives the inputs a request carries and, unless ``outputs`` is given, the
    outputs; a model fed by entity id takes its entity ids and request values (its
    ``feature_service`` is named in the parameters) and returns its own outputs.
    """
    inputs = [] if signature is None else signature.inputs
    returned = signature if outputs is None else outputs
    parameters: dict[str, Any] = {"content_type": "pd"}
    if feature_service is not None:
        parameters["feature_service"] = feature_service
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": f"shipyard-{flavor}",
        "inputs": [{"name": c.name, "datatype": SIGNATURE_TYPES[c.type], "shape": [-1]} for c in inputs],
        "outputs": [
            {"name": c.name, "datatype": SIGNATURE_TYPES[c.type], "shape": [-1]}
            for c in ([] if returned is None else returned.outputs)
        ],
        "parameters": parameters,
    }
