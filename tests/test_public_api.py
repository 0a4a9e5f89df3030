"""The public surface is what we meant, and importing shipyard stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import shipyard

EXPECTED = {
    "__version__",
    "start_run",
    "end_run",
    "active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "log_artifact",
    "log_artifacts",
    "flush",
    "autolog",
    "log_dataset",
    "load_dataset",
    "log_model",
    "load_model",
    "set_alias",
    "delete_alias",
    "task",
    "flow",
    "Resources",
    "Schedule",
    "on_dataset",
    "on_model",
    "on_alert",
    "resume",
    "log_labels",
    "Client",
}


def test_exported_names() -> None:
    assert set(shipyard.__all__) == EXPECTED
    for name in EXPECTED - {"__version__"}:
        assert callable(getattr(shipyard, name)), name


def test_import_has_no_heavy_dependencies() -> None:
    code = (
        "import sys, shipyard; "
        "print(','.join(m for m in ('sqlalchemy', 'fastapi', 'pandas', 'ray', 'sklearn') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_lazy_map_and_all_agree() -> None:
    assert set(shipyard.__all__) - {"__version__"} == set(shipyard._PUBLIC_API)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        shipyard.no_such_thing  # noqa: B018
