"""A model version's training profile: the profile of its training data and of its predictions on it.

``log_model(..., training_data=...)`` writes it into the package as ``profile.json`` (listed and
hashed in the manifest like every other file); monitoring compares live traffic with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInputError, ShipyardError
from shipyard.registry._flavors import Flavor
from shipyard.registry.models import Signature
from shipyard.registry.signature import check_input, to_frame

if TYPE_CHECKING:
    import pyarrow as pa

PROFILE_FILE = "profile.json"
PREDICTION = "prediction"


def write_training_profile(
    flavor: Flavor, folder: Path, options: Mapping[str, Any], signature: Signature | None, data: Any
) -> None:
    """Profile ``data`` with the reloaded model's predictions on it into ``folder/profile.json``.

    Arrays, dicts of lists and lists of records are named as the model's input is (the
    signature's names, else ``f0``, ``f1``, ...), so the profile's columns are the ones serving logs.
    """
    # numpy, pyarrow and the sketches load only when a profile is asked for: `shipyard models` stays quick.
    import numpy as np
    import pyarrow as pa

    from shipyard.datasets.profile import iter_batches, profile

    if isinstance(data, np.ndarray | list | tuple | Mapping):
        data = to_frame(data, None if signature is None else signature.input_names)
    schema, batches = iter_batches(data)
    if schema is None:
        raise InvalidInputError("training_data has no rows to profile", field="training_data")
    table = pa.Table.from_batches(list(batches), schema=schema)
    if table.num_rows == 0:
        raise InvalidInputError("training_data has no rows to profile", field="training_data")
    columns = _prediction_columns(_predict(flavor, folder, options, signature, table), table.num_rows)
    names = [n for n in columns if n not in table.column_names]
    for name in names:
        table = table.append_column(name, columns[name])
    (folder / PROFILE_FILE).write_text(profile(table, prediction=names).to_json(), encoding="utf-8")


def _predict(
    flavor: Flavor, folder: Path, options: Mapping[str, Any], signature: Signature | None, table: pa.Table
) -> Any:
    frame = table.to_pandas()
    try:
        model = flavor.load(folder, options)
        checked = frame if signature is None else check_input(frame, signature, model="training_data")
        return flavor.predict(model, checked)
    except ShipyardError as exc:
        raise InvalidInputError(f"training_data does not fit the model: {exc}", field="training_data") from exc
    except Exception as exc:  # a model's predict raises anything
        raise InvalidInputError(
            f"the model failed to predict on training_data ({type(exc).__name__}: {exc}); give the columns "
            "it was trained on, or an input_example so extra columns are dropped",
            field="training_data",
        ) from exc


def _prediction_columns(prediction: Any, rows: int) -> dict[str, pa.Array]:
    import numpy as np
    import pyarrow as pa

    if hasattr(prediction, "to_numpy"):
        prediction = prediction.to_numpy()
    values = np.asarray(prediction)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape[:1] != (rows,) or values.ndim > 2:
        return {}  # an output that is not one row per input row has no distribution to profile
    if values.ndim == 1:
        return {PREDICTION: pa.array(values)}
    return {f"{PREDICTION}_{i}": pa.array(values[:, i]) for i in range(values.shape[1])}
