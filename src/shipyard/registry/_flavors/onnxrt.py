"""The ONNX flavor: ``model.onnx`` as given, run with onnxruntime on the CPU."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError

_FILE = "model.onnx"
# ONNX tensor element types and the numpy dtypes onnxruntime takes for them.
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor:
    """An ``onnx.ModelProto``, or (with ``flavor="onnx"``) the bytes or path of a ``.onnx`` file."""

    name = "onnx"
    libraries = ("onnx", "onnxruntime", "numpy")

    def matches(self, model: object) -> bool:
        """True for an ``onnx.ModelProto``; onnx is imported already when one exists."""
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def accepts(self, model: object) -> bool:
        """A ModelProto, bytes, or a path (checked when saving)."""
        return isinstance(model, bytes | str | os.PathLike) or self.matches(model)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write the serialized model to ``model.onnx`` after checking that it parses."""
        if isinstance(model, bytes):
            data = model
        elif isinstance(model, str | os.PathLike):
            if not Path(model).is_file():
                raise InvalidInputError(f"ONNX file {str(model)!r} does not exist", field="model")
            data = Path(model).read_bytes()
        else:
            data = model.SerializeToString()
        _check_parses(data)
        (folder / _FILE).write_bytes(data)
        return {}

    def load(self, folder: Path, options: Mapping[str, Any]) -> Any:
        """An onnxruntime ``InferenceSession`` on the CPU."""
        import onnxruntime as ort

        return ort.InferenceSession(str(folder / _FILE), providers=["CPUExecutionProvider"])

    def predict(self, raw: Any, data: Any) -> Any:
        """The model's first output (the label, for classifiers converted by skl2onnx)."""
        first = raw.get_outputs()[0].name
        return _flat(raw.run([first], _feeds(raw, data))[0])

    def proba(self, raw: Any) -> Callable[[Any], Any] | None:
        """A function returning the probability output, when the model has one (named ``*prob*``)."""
        names = [o.name for o in raw.get_outputs() if "prob" in o.name.lower()]
        if not names:
            return None

        def predict_proba(data: Any) -> Any:
            return _probabilities(raw.run(names[:1], _feeds(raw, data))[0])

        return predict_proba


def _check_parses(data: bytes) -> None:
    try:
        import onnx
    except ImportError:  # onnxruntime still rejects a bad file at load time
        return
    try:
        onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError, among others
        raise InvalidInputError(
            f"the bytes given with flavor='onnx' are not an ONNX model: {exc}", field="model"
        ) from exc


def _feeds(session: Any, data: Any) -> dict[str, Any]:
    import numpy as np

    inputs = session.get_inputs()
    if len(inputs) == 1:
        array = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        return {inputs[0].name: array.astype(_DTYPES.get(inputs[0].type, array.dtype))}
    feeds = {}
    for position, spec in enumerate(inputs):
        column = data[spec.name].to_numpy() if hasattr(data, "columns") else np.asarray(data)[:, position]
        feeds[spec.name] = column.reshape(-1, 1).astype(_DTYPES.get(spec.type, column.dtype))
    return feeds


def _flat(output: Any) -> Any:
    import numpy as np

    array = np.asarray(output)
    return array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array


def _probabilities(output: Any) -> Any:
    import numpy as np

    if isinstance(output, list) and output and isinstance(output[0], dict):
        # skl2onnx's ZipMap: one {label: probability} per row, labels in the classes' order.
        labels = list(output[0])
        return np.array([[row[label] for label in labels] for row in output])
    return np.asarray(output)
