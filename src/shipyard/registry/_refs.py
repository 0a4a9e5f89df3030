"""Model references (``name@alias``, ``name/3``, ``name``) and the version each one points at."""

from __future__ import annotations

from shipyard.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.registry.models import ModelRef
from shipyard.store import Stores
from shipyard.store.entities import ModelVersion

_FORMS = "'name@alias', 'name/3' or 'name' (the latest version)"


def check_model_name(name: object) -> str:
    """``name`` when it can name a registered model.

    Raises:
        InvalidInputError: not a non-empty string, or it holds ``@`` or ``/``.
    """
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "@/"):
        raise InvalidInputError(f"model name must be a non-empty string without '@' or '/', got {name!r}", field="name")
    return name


def parse_model_ref(ref: str | ModelRef) -> ModelRef:
    """Parse ``name@alias``, ``name/3`` or ``name`` (meaning the latest version).

    Raises:
        InvalidInputError: the reference has none of these forms.

    Example:
        >>> parse_model_ref("churn@champion")
        ModelRef(name='churn', version=None, alias='champion')
        >>> parse_model_ref("churn/3").version
        3
    """
    if isinstance(ref, ModelRef):
        return ref
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError(f"model reference must be {_FORMS}, got {ref!r}", field="ref")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        if not alias.isidentifier():
            hint = f"; for version {alias} write '{name}/{alias}'" if alias.isdigit() else ""
            raise InvalidInputError(f"model reference {ref!r} has no valid alias after '@'{hint}", field="ref")
        return ModelRef(_ref_name(name, ref), alias=alias)
    if "/" in ref:
        name, _, number = ref.partition("/")
        if not number.isdigit() or int(number) < 1:
            raise InvalidInputError(
                f"model reference {ref!r}: the version after '/' must be a positive integer", field="ref"
            )
        return ModelRef(_ref_name(name, ref), version=int(number))
    return ModelRef(_ref_name(ref, ref))


def _ref_name(name: str, ref: str) -> str:
    if not name.strip() or "/" in name or "@" in name:
        raise InvalidInputError(f"model reference must be {_FORMS}, got {ref!r}", field="ref")
    return name


def resolve_version(stores: Stores, ref: str | ModelRef) -> ModelVersion:
    """The version a reference points at.

    Raises:
        NotFoundError: the model, the version or the alias does not exist; the message
            lists what does.
    """
    try:
        parsed = parse_model_ref(ref)
        model = stores.models.get_registered_model(parsed.name)
    except (InvalidInputError, NotFoundError) as exc:
        _raise_if_dataset(stores, ref, exc)
        raise
    if parsed.version is not None:
        return stores.models.get_model_version(parsed.name, parsed.version)
    if parsed.alias is not None:
        version = model.aliases.get(parsed.alias)
        if version is None:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise NotFoundError(
                f"model {parsed.name!r} has no alias {parsed.alias!r}; its aliases are: {known}", field="alias"
            )
        return stores.models.get_model_version(parsed.name, version)
    if model.latest_version is None:
        raise NotFoundError(f"model {parsed.name!r} has no versions yet; log one with log_model", field="version")
    return stores.models.get_model_version(parsed.name, model.latest_version)


def _raise_if_dataset(stores: Stores, ref: str | ModelRef, exc: ShipyardError) -> None:
    """A model reference that names a dataset: say so, with references that work for it.

    ``churn-train@1`` is how datasets are named, so the generic hint ("write
    'churn-train/1'") would lead to "model 'churn-train' does not exist".
    """
    if not isinstance(ref, str):
        return
    name, _, number = ref.replace("/", "@").partition("@")
    if not number.isdigit() and number:
        return
    try:
        stores.models.get_registered_model(name)
        return  # a model of that name exists: the original error is the right one
    except NotFoundError:
        pass
    try:
        data = stores.datasets.get_dataset_version(name, int(number) if number else None)
    except (NotFoundError, InvalidInputError):
        return
    raise NotFoundError(
        f"{name!r} is a dataset, not a model: its lineage is 'dataset:{data.ref}' "
        f"(shipyard lineage dataset:{data.ref}); show it with: shipyard datasets show {data.ref}",
        field="ref",
    ) from exc
