"""Deployable bundles: a folder with everything a container needs to serve one model version.

``build_bundle("churn@champion", "out/")`` writes::

    out/
      Dockerfile          slim Python, non-root user, HEALTHCHECK, ``shipyard serve`` on 0.0.0.0:8080
      requirements.txt    the serving stack and the flavor's libraries, pinned to the versions installed here
      wheels/             shipyard itself, as a wheel built from the installed package
      shipyard.toml       points shipyard at the bundled store below (paths relative to this file)
      model/              a SQLite store holding only this version, aliased, and its verified files
      k8s/                deployment.yaml (v2 health probes, resources), service.yaml, hpa.yaml

The image needs no registry: ``shipyard serve NAME@ALIAS`` run in the bundle's folder
finds ``shipyard.toml`` and serves the bundled copy (locally too: ``cd out && shipyard
serve churn@champion``). The bundled version is number 1 of its store and carries tags
``source_version`` and ``source_manifest`` naming what it was copied from; its files are
byte-identical (the same sha256). The folder appears whole or not at all: it is written
beside ``out`` and renamed into place.

Example:
    >>> bundle = build_bundle("churn@champion", "out/")  # doctest: +SKIP
    >>> sorted(p.name for p in bundle.path.iterdir())  # doctest: +SKIP
    ['Dockerfile', 'k8s', 'model', 'requirements.txt', 'shipyard.toml', 'wheels']
"""

from __future__ import annotations

import base64
import hashlib
import platform
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard.config import resolve_settings
from shipyard.errors import InvalidInputError
from shipyard.registry import get_model_version, load_model, parse_model_ref, set_alias, set_model_tags
from shipyard.serving._bundle_files import dns_name, dockerfile, k8s_manifests, to_yaml
from shipyard.serving._models import StoresClient
from shipyard.store import close_stores, open_stores
from shipyard.store.entities import ModelVersion
from shipyard.tracking.api import HasStores, resolve_stores, start_run

__all__ = ["PORT", "Bundle", "build_bundle", "requirements"]

PORT = 8080
SERVING_EXTRA = "ui"  # shipyard's extra with the HTTP stack `shipyard serve` needs
DEFAULT_ALIAS = "bundled"  # the alias a bundle serves when it was built from NAME/VERSION


@dataclass(frozen=True, slots=True)
class Bundle:
    """What ``build_bundle`` wrote.

    Attributes:
        path: The bundle's folder.
        ref: What the container serves, ``NAME@ALIAS``.
        source: The registry version it was copied from.
        image: The image name the Kubernetes manifests use.
    """

    path: Path
    ref: str
    source: ModelVersion
    image: str


def build_bundle(
    ref: str,
    out: str | Path,
    *,
    image: str | None = None,
    replicas: int = 2,
    client: HasStores | None = None,
    progress: Callable[[str], None] | None = None,
) -> Bundle:
    """Write a deployable bundle of one model version into ``out`` (which must not exist or be empty).

    Args:
        ref: ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (latest).
        out: The folder to create.
        image: The image the Kubernetes Deployment runs; ``NAME:VERSION`` when ``None``.
        replicas: Replicas of the Deployment, and the autoscaler's minimum.
        client: A ``Client``; the settings in force when ``None``.
        progress: Called with a short description before each step.

    Raises:
        NotFoundError: no such model, version or alias.
        InvalidInputError: ``out`` is a file or a non-empty folder, or ``replicas`` is below 1.

    Example:
        >>> build_bundle("churn@champion", "dist/churn", image="registry.local/churn:3")  # doctest: +SKIP
    """
    target = Path(out)
    if target.is_file() or (target.is_dir() and any(target.iterdir())):
        raise InvalidInputError(
            f"bundle folder {str(target)!r} exists and is not empty; give a new folder", field="out"
        )
    if not isinstance(replicas, int) or replicas < 1:
        raise InvalidInputError(f"replicas must be a positive integer, got {replicas!r}", field="replicas")
    step = progress or (lambda _: None)
    step(f"resolving {ref}")
    source = get_model_version(ref, client=client)
    loaded = load_model(source.ref, client=client)  # every file verified, the model loads
    if loaded.feature_service is not None:
        # The bundle's store holds the model alone: no feature definitions, no online store to read.
        raise InvalidInputError(
            f"{source.ref} is fed by feature service {loaded.feature_service.name!r} (requests carry entity ids); "
            "a bundle holds no feature store to look them up, so serve it with `shipyard serve` against the store",
            field="ref",
        )
    manifest = loaded.manifest
    parsed = parse_model_ref(ref)
    alias = parsed.alias or DEFAULT_ALIAS
    served = f"{source.name}@{alias}"
    chosen_image = image or f"{dns_name(source.name)}:{source.version}"
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent.resolve() / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        step(f"copying {source.ref} into a bundled store")
        _copy_version(source, manifest, alias, work, client)
        step("building the shipyard wheel")
        wheel = _shipyard_wheel(work / "wheels")
        step("pinning requirements")
        libraries = tuple(manifest.get("libraries") or {})
        (work / "requirements.txt").write_text(requirements(libraries, wheel=f"./wheels/{wheel}"))
        (work / "shipyard.toml").write_text('store = "sqlite:///model/shipyard.db"\nartifacts = "model/artifacts"\n')
        (work / "Dockerfile").write_text(dockerfile(served, python=platform.python_version(), port=PORT))
        (work / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
        step("writing Kubernetes manifests")
        (work / "k8s").mkdir()
        for name, manifest in k8s_manifests(source, image=chosen_image, port=PORT, replicas=replicas).items():
            (work / "k8s" / name).write_text(to_yaml(manifest))
        if target.is_dir():
            target.rmdir()  # empty, checked above
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Bundle(target, served, source, chosen_image)


def _copy_version(
    source: ModelVersion, manifest: Mapping[str, Any], alias: str, work: Path, client: HasStores | None
) -> None:
    """Copy one version's verified files into a new SQLite store under ``work/model`` and alias it."""
    stores = resolve_stores(client)
    manifest_bytes = stores.artifacts.get_bytes(source.manifest_digest)  # re-hashed on read
    files = manifest["files"]
    model_dir = work / "model"
    settings = resolve_settings(
        store_uri=f"sqlite:///{model_dir / 'shipyard.db'}",
        artifact_uri=f"file://{model_dir / 'artifacts'}",
        cwd=work,
        env={},
    )
    model_dir.mkdir()
    bundled = StoresClient(open_stores(settings))
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-bundle-") as tmp:
            package = Path(tmp)
            for relative, info in files.items():
                destination = package.joinpath(*relative.split("/"))
                stores.artifacts.download(str(info["sha256"]), str(destination))  # verified against its sha256
            (package / "manifest.json").write_bytes(manifest_bytes)
            with start_run("bundle", f"bundle-{source.ref}", client=bundled) as run:
                run.log_artifacts(package, artifact_path=source.artifact_path)
                run_id = run.id
        digest, _ = bundled.stores.artifacts.put_bytes(manifest_bytes)
        models = bundled.stores.models
        models.ensure_registered_model(source.name, description="", owner=None, team=None)
        copy = models.create_model_version(
            source.name,
            run_id=run_id,
            flavor=source.flavor,
            artifact_path=source.artifact_path,
            manifest_digest=digest,
            signature=source.signature,
            metrics=dict(source.metrics),
            description=source.description,
            intended_use=source.intended_use,
            limitations=source.limitations,
        )
        set_alias(source.name, alias, copy.version, client=bundled)
        tags = {**source.tags, "source_version": str(source.version), "source_manifest": source.manifest_digest}
        set_model_tags(source.name, tags, version=copy.version, client=bundled)
    finally:
        close_stores(settings)


def requirements(libraries: tuple[str, ...], *, wheel: str | None = None) -> str:
    """``requirements.txt``: shipyard's base and serving dependencies and ``libraries``, pinned to installed versions.

    A dependency not installed here keeps shipyard's own lower bound. ``wheel`` is the
    line that installs shipyard itself (a path to the bundled wheel).
    """
    lines: dict[str, str] = {}
    for requirement in metadata.requires("shipyard") or []:
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        if "extra ==" in marker and f"extra == '{SERVING_EXTRA}'" not in marker:
            continue
        marker = marker.replace(f"and extra == '{SERVING_EXTRA}'", "").replace(f"extra == '{SERVING_EXTRA}'", "")
        name = _name(spec)
        lines[name.lower()] = _pinned(spec, name) + (f"; {marker.strip()}" if marker.strip() else "")
    for library in libraries:
        lines.setdefault(library.lower(), _pinned(library, library))
    head = [
        "# shipyard serve and the model's flavor libraries, pinned to the versions the bundle was built with",
        f"# (Python {platform.python_version()}); shipyard itself comes from the bundled wheel.",
    ]
    return "\n".join([*head, *(lines[key] for key in sorted(lines)), *([wheel] if wheel else [])]) + "\n"


def _name(spec: str) -> str:
    end = len(spec)
    for position, char in enumerate(spec):
        if not (char.isalnum() or char in "._-"):
            end = position
            break
    return spec[:end]


def _pinned(spec: str, name: str) -> str:
    extras = spec[len(name) :].partition("]")[0] + "]" if spec[len(name) :].startswith("[") else ""
    try:
        return f"{name}{extras}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return spec


def _shipyard_wheel(folder: Path) -> str:
    """A pure-Python wheel of the installed shipyard (editable installs included); returns its file name."""
    distribution = metadata.distribution("shipyard")
    version = distribution.version
    package = Path(__file__).resolve().parents[1]  # the installed shipyard package folder
    info = f"shipyard-{version}.dist-info"
    folder.mkdir()
    name = f"shipyard-{version}-py3-none-any.whl"
    records: list[str] = []
    with zipfile.ZipFile(folder / name, "w", compression=zipfile.ZIP_DEFLATED) as wheel:

        def add(arcname: str, data: bytes) -> None:
            wheel.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arcname},sha256={digest},{len(data)}")

        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                add(f"shipyard/{path.relative_to(package).as_posix()}", path.read_bytes())
        add(f"{info}/METADATA", (distribution.read_text("METADATA") or "").encode())
        add(f"{info}/entry_points.txt", (distribution.read_text("entry_points.txt") or "").encode())
        add(f"{info}/WHEEL", _WHEEL.encode())
        wheel.writestr(f"{info}/RECORD", "\n".join([*records, f"{info}/RECORD,,"]) + "\n")
    return name


_WHEEL = "Wheel-Version: 1.0\nGenerator: shipyard build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
