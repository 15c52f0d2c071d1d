"""The JSON Schemas shipped in the package (`cio_flows/schemas/`, also `schemas/` at the repo root)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator


def schema_text(name: str) -> str:
    return files("cio_flows").joinpath("schemas", *name.split("/")).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema by its path below schemas/, e.g. 'flow.schema.json' or 'steps/identify.json'."""
    return json.loads(schema_text(name))


@cache
def validator(name: str) -> Draft202012Validator:
    """The full validator, for precise error paths. Imported late: it costs ~1 s at startup."""
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def step_validator(kind: str) -> Draft202012Validator:
    return validator(f"steps/{kind}.json")


@cache
def fast_check(name: str) -> Callable[[Any], Any]:
    """A compiled validator that raises on the first error: the fast path for valid input."""
    # A fresh copy: the compiler resolves references in place.
    return fastjsonschema.compile(json.loads(schema_text(name)))


def fast_step_check(kind: str) -> Callable[[Any], Any]:
    return fast_check(f"steps/{kind}.json")


def is_valid(name: str, instance: Any) -> bool:
    try:
        fast_check(name)(instance)
    except fastjsonschema.JsonSchemaException:
        return False
    return True
