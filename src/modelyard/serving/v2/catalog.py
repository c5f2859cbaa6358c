"""What the V2 health and metadata APIs answer, for every V2 transport (REST and gRPC).

A V2 *model* is an endpoint; a V2 *version* is one of its variants, named by the variant's
name or by the number of the model version it serves (``/versions/green``, ``/versions/3``),
as :meth:`DataPlane.version` resolves it. Without a version, inference follows the endpoint's
traffic split; metadata describes the production variant with the largest weight (the first
listed on a tie), the one most requests meet.

The metadata's ``versions`` are the numbers a request may name (the Open Inference Protocol's
contract): the production variants'. A shadow answers no caller by design (it is sent copies
of production's requests), so a number only shadows serve is neither listed nor taken; a
caller who means to try a shadow names its variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from typing import Any

from modelyard.errors import ModelNotReady
from modelyard.serving.dataplane import DataPlane
from modelyard.serving.table import EndpointRoute, VariantRoute
from modelyard.serving.v2.tensors import model_metadata

__all__ = [
    "SERVER_NAME",
    "describe",
    "model_ready",
    "served_versions",
    "server_metadata",
    "server_ready",
    "server_version",
    "variant",
]

SERVER_NAME = "modelyard"


@lru_cache(maxsize=1)
def server_version() -> str:
    """This package's version, from its installed metadata."""
    try:
        return metadata.version("modelyard")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def server_metadata(extensions: Sequence[str]) -> dict[str, Any]:
    """``{"name", "version", "extensions"}``: the V2 server metadata of a transport that
    implements ``extensions``."""
    return {"name": SERVER_NAME, "version": server_version(), "extensions": list(extensions)}


def server_ready(core: DataPlane) -> bool:
    """Ready once the plan is loaded and every deployed model is loaded and warmed."""
    return core.deployer.ready


def model_ready(core: DataPlane, name: str, version: str | None) -> bool:
    """Whether endpoint ``name`` (at ``version``, if given) can answer now.

    Raises:
        EndpointNotFound, VersionNotFound: no such endpoint or version is deployed.
    """
    try:
        variant(core, name, version)
    except ModelNotReady:
        return False
    return True


def describe(core: DataPlane, name: str, version: str | None) -> dict[str, Any]:
    """The V2 model metadata of endpoint ``name`` (at ``version``, if given).

    Raises:
        EndpointNotFound, VersionNotFound, ModelNotReady.
    """
    route, chosen = _resolve(core, name, version)
    return model_metadata(name, chosen.served.spec, served_versions(route))


def variant(core: DataPlane, name: str, version: str | None) -> VariantRoute:
    """The variant that ``version`` names, or the one that describes the endpoint.

    Raises:
        EndpointNotFound, VersionNotFound, ModelNotReady.
    """
    return _resolve(core, name, version)[1]


def served_versions(route: EndpointRoute) -> list[str]:
    """The model version numbers a request to the endpoint may name, as strings, in ascending
    order: its production variants' (``EndpointRoute.production_versions``), never a
    shadow's."""
    return [str(v) for v in route.production_versions()]


def _resolve(core: DataPlane, name: str, version: str | None) -> tuple[EndpointRoute, VariantRoute]:
    route = core.endpoint(name)
    if version is not None:
        return route, core.version(route, version)
    production = (v for v in route.variants.values() if v.shadow is None)
    return route, max(production, key=lambda v: v.weight)  # first on a tie
