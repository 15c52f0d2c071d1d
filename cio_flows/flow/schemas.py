"""The JSON Schemas shipped in the package (`cio_flows/schemas/`, also `schemas/` at the repo root).

Step payload schemas are found through the step-kind registry (`cio_flows.wire.kinds`), and the flow
schema a flow is checked against takes its step kinds from the registry too: a kind registered
from outside the package is a valid step key. Compiled validators are cached per registry
generation, so registering a kind makes them be built again.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import fastjsonschema

from ..wire import kinds
from .compiled_checks import compiled_check

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

FLOW_SCHEMA = "flow.schema.json"


def instance_keys(instance: Any) -> set[str]:
    """The keys of the object an error is about (none when it is not an object)."""
    return set(instance) if isinstance(instance, dict) else set()


def error_schema(error: ValidationError) -> Mapping[str, Any]:
    """The part of the schema an error is about (a boolean schema has no keywords: empty)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


def schema_text(name: str) -> str:
    return files("cio_flows").joinpath("schemas", *name.split("/")).read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema file as shipped, by its path below schemas/, e.g. 'flow.schema.json'."""
    schema: dict[str, Any] = json.loads(schema_text(name))
    return schema


def step_kind_properties() -> dict[str, dict[str, Any]]:
    """The flow schema's `$defs.step.properties` entry of every registered step kind."""
    return {kind.name: _step_kind_property(kind) for kind in kinds.all_kinds()}


def _step_kind_property(kind: kinds.StepKind) -> dict[str, Any]:
    types = kind.payload_schema.get("type")
    if isinstance(types, list) and "null" in types:  # the step may be written with no payload
        return {"type": types, "description": kind.description}
    return {"$ref": "#/$defs/payload", "description": kind.description}


def flow_schema() -> dict[str, Any]:
    """The flow schema flows are checked against: the shipped file, step kinds from the registry."""
    return _flow_schema(kinds.generation())


@cache
def _flow_schema(generation: int) -> dict[str, Any]:
    schema = copy.deepcopy(load_schema(FLOW_SCHEMA))
    schema["$defs"]["step"]["properties"].update(step_kind_properties())
    return schema


def _schema(name: str) -> dict[str, Any]:
    return flow_schema() if name == FLOW_SCHEMA else load_schema(name)


def validator(name: str) -> Draft202012Validator:
    """The full validator, for precise error paths."""
    return _validator(name, kinds.generation())


# Format libraries jsonschema's format module imports when installed, for formats our schemas
# never use: rfc3987_syntax ("iri", its grammar takes 1 to 2.5 s to build), isoduration
# ("duration", loads arrow), webcolors ("color"), uri_template ("uri-template").
UNUSED_FORMAT_LIBRARIES = ("rfc3987_syntax", "isoduration", "webcolors", "uri_template")


def _import_jsonschema() -> Any:
    """jsonschema, imported late and without the format libraries our schemas do not need.

    The notebooks and dev extras install them, and every `cio-flows validate` paid for their
    import. Our schemas use only date-time, email and uri, so those imports are refused while
    jsonschema loads (and allowed again after, for anyone else)."""
    import sys

    if "jsonschema" in sys.modules:
        return sys.modules["jsonschema"]
    blocked = [name for name in UNUSED_FORMAT_LIBRARIES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        import jsonschema
    finally:
        for name in blocked:
            del sys.modules[name]
    return jsonschema


@cache
def _validator(name: str, generation: int) -> Draft202012Validator:
    return _full_validator(_schema(name))


def _full_validator(schema: dict[str, Any]) -> Draft202012Validator:
    validator_class: type[Draft202012Validator] = _import_jsonschema().Draft202012Validator
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def step_validator(kind: str) -> Draft202012Validator:
    """The full validator of a step kind's payload."""
    return _step_validator(kind, kinds.generation())


@cache
def _step_validator(kind: str, generation: int) -> Draft202012Validator:
    return _full_validator(kinds.get(kind).payload_schema)


def fast_check(name: str) -> Callable[[Any], Any]:
    """A compiled validator that raises on the first error: the fast path for valid input."""
    return _fast_check(name, kinds.generation())


@cache
def _fast_check(name: str, generation: int) -> Callable[[Any], Any]:
    return compiled_check(_schema(name))


def fast_step_check(kind: str) -> Callable[[Any], Any]:
    return _fast_step_check(kind, kinds.generation())


@cache
def _fast_step_check(kind: str, generation: int) -> Callable[[Any], Any]:
    return compiled_check(without_negated_if(copy.deepcopy(kinds.get(kind).payload_schema)))


def without_negated_if(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a root `if: {not: A}, then: B` (no else) as `anyOf: [A, B]`: the same
    instances valid, but the compiled check of a valid payload raises nothing. fastjsonschema
    runs `not` as a check that must fail, and a failing check builds an exception holding the
    whole schema: 1.4 µs of each valid identify or track. Only the fast check uses this form;
    errors still come from the schema as written."""
    negated = schema.get("if")
    if (
        "then" not in schema
        or "else" in schema
        or not isinstance(negated, dict)
        or list(negated) != ["not"]
    ):
        return schema
    either = {"anyOf": [negated["not"], schema["then"]]}
    del schema["if"], schema["then"]
    schema["allOf"] = [*schema.get("allOf", []), either]
    return schema


def is_valid(name: str, instance: Any) -> bool:
    try:
        fast_check(name)(instance)
    except fastjsonschema.JsonSchemaException:
        return False
    return True
