"""The step kinds. Each module here declares its kinds with `register()` (see registry.py); every
module is imported below, so a new kind is a new module plus its schema file, nothing else.

Kinds know Customer.io's wire format and nothing of YAML or HTTP.
"""

from __future__ import annotations

import importlib
import pkgutil

from ...errors import NeedsPipelines
from ..families import FAMILIES
from ..types import Operation, Request, Response, Send, StepKeys
from . import people  # noqa: F401  (registered first: the people kinds lead the "known:" lists)
from .registry import (
    PEOPLE,
    StepKind,
    all_kinds,
    generation,
    get,
    names,
    reading_kinds,
    register,
    unregister,
)


def discover() -> None:
    """Import every module of this package, so each registers its kinds."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


discover()

__all__ = [
    "FAMILIES",
    "PEOPLE",
    "NeedsPipelines",
    "Operation",
    "Request",
    "Response",
    "Send",
    "StepKeys",
    "StepKind",
    "all_kinds",
    "generation",
    "get",
    "names",
    "reading_kinds",
    "register",
    "unregister",
]
