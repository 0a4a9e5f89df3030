"""A model's package: its flavor's files plus ``manifest.json``, which lists each file's sha256.

The manifest's own blob digest is what a model version records, so one verified read of
the manifest pins every byte of the model.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.errors import IntegrityError
from shipyard.registry._flavors import Flavor, get_flavor, library_versions
from shipyard.registry.models import Signature
from shipyard.store import Stores
from shipyard.store.artifacts import sha256_file
from shipyard.store.entities import ModelVersion

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def write_manifest(
    folder: Path,
    *,
    name: str,
    flavor: Flavor,
    options: Mapping[str, Any],
    signature: Signature | None,
    run_id: str,
) -> bytes:
    """Hash every file in ``folder``, write ``manifest.json`` beside them and return its bytes."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE):
        digest, size = sha256_file(path)
        files[path.relative_to(folder).as_posix()] = {"sha256": digest, "size": size}
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "flavor": flavor.name,
        "options": dict(options),
        "python_version": platform.python_version(),
        "libraries": library_versions(flavor.libraries),
        "signature": None if signature is None else signature.to_dict(),
        "files": files,
        "run_id": run_id,
        "created_at": time.time(),
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    (folder / MANIFEST_FILE).write_bytes(data)
    return data


def read_manifest(stores: Stores, version: ModelVersion) -> dict[str, Any]:
    """The manifest of a version, read through the artifact store (which re-hashes it).

    Raises:
        IntegrityError: the blob's bytes do not hash to the recorded digest, or it is not
            a manifest of this version's flavor.
    """
    data = stores.artifacts.get_bytes(version.manifest_digest)
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise IntegrityError(f"the manifest of model {version.ref} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IntegrityError(f"the manifest of model {version.ref} lists no files")
    if manifest.get("flavor") != version.flavor:
        raise IntegrityError(
            f"the manifest of model {version.ref} says flavor {manifest.get('flavor')!r}, "
            f"the registry says {version.flavor!r}"
        )
    return manifest


def load_raw(stores: Stores, version: ModelVersion, manifest: Mapping[str, Any]) -> Any:
    """Download each file of the package (each verified against its sha256) and load the model."""
    flavor = get_flavor(version.flavor)
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        root = Path(tmp)
        for relative, info in manifest["files"].items():
            parts = PurePosixPath(relative).parts
            if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
                raise IntegrityError(f"the manifest of model {version.ref} names an unsafe file path {relative!r}")
            stores.artifacts.download(str(info["sha256"]), str(root.joinpath(*parts)))
        return flavor.load(root, manifest.get("options") or {})
