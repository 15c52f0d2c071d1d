"""Validate step payloads against schemas/steps/<kind>.json, before and after rendering."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import fastjsonschema

from ..errors import Location, PayloadError
from .jinja_env import is_template
from .model import Path_
from .schemas import error_schema, fast_step_check, instance_keys, step_validator

if TYPE_CHECKING:
    from jsonschema import ValidationError


def payload_errors(
    kind: str, payload: Any, *, allow_templates: bool = False
) -> list[ValidationError]:
    """Schema errors for a payload, first in document order.

    With allow_templates, a template string may stand for a value of any type (it is rendered
    later), so errors about it are left to the check after rendering.
    """
    errors = list(step_validator(kind).iter_errors(payload))
    if allow_templates:
        errors = [e for e in errors if not _about_template(e)]
    # At one place an unknown field comes first: `usrId` is why `userId` is missing.
    return sorted(
        errors,
        key=lambda e: ([str(p) for p in e.absolute_path], e.validator != "additionalProperties"),
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'steps'?` for the closest choice, or "" when none is close."""
    by_folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f"; did you mean '{by_folded[close[0]]}'?" if close else ""


def _about_template(error: ValidationError) -> bool:
    if is_template(error.instance):
        return True
    if error.context:  # oneOf/anyOf: fine if some branch fails only because of templates
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        return any(all(_about_template(e) for e in subs) for subs in branches.values())
    return False


Locate = Callable[[Path_], Location]


def check_payload(
    kind: str,
    payload: Any,
    locate: Locate,
    *,
    locate_key: Locate | None = None,
    allow_templates: bool = False,
    step: str | None = None,
    row: int | None = None,
) -> None:
    """Raise PayloadError for the first problem, located at the offending field.

    locate finds a value by its path in the payload; locate_key, when given, a mapping key (so
    an unknown field is reported on its own line).
    """
    try:
        fast_step_check(kind)(payload)
        return
    except fastjsonschema.JsonSchemaException:
        pass  # jsonschema below says precisely where and why (or, with templates, whether)
    errors = payload_errors(kind, payload, allow_templates=allow_templates)
    if errors:
        error = errors[0]
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            path = (*path, _unknown_fields(error)[0])
            location = (locate_key or locate)(path)
        else:
            location = locate(path)
        raise payload_error(error, location, step=step, row=row)


def _unknown_fields(error: ValidationError) -> list[str]:
    return sorted(instance_keys(error.instance) - set(error_schema(error).get("properties", {})))


def payload_error(
    error: ValidationError, location: Location | None, *, step: str | None, row: int | None
) -> PayloadError:
    field = _field_name(error.absolute_path)
    validator = error.validator
    if validator == "required":
        missing = error.message.split("'")[1]
        name = f"{field}.{missing}" if field else missing
        return PayloadError(
            f"missing required field '{name}'", location=location, step=step, row=row
        )
    if validator == "additionalProperties":
        unknown = _unknown_fields(error)[0]
        known = sorted(error_schema(error).get("properties", {}))
        return PayloadError(
            f"unknown field '{unknown}'" + (f" in '{field}'" if field else ""),
            location=location,
            step=step,
            row=row,
            expected=f"one of {', '.join(known)}",
            found=f"'{unknown}'" + did_you_mean(unknown, known),
        )
    where = f"field '{field}'" if field else "the payload"
    found = describe_found(error.instance)
    if validator == "format" and error.validator_value not in PERSONAL_FORMATS:
        found = repr(error.instance)  # a date or a URL: the value itself says what is wrong
    return PayloadError(
        f"invalid {where}",
        location=location,
        step=step,
        row=row,
        expected=_expected(error),
        found=found,
    )


# Formats whose values are personal data: named by type and length only, like other strings.
PERSONAL_FORMATS = frozenset({"email", "idn-email", "hostname", "ipv4", "ipv6"})


def _field_name(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _expected(error: ValidationError) -> str:
    schema, validator = error_schema(error), error.validator
    if validator == "type":
        types = schema["type"]
        return " or ".join(types) if isinstance(types, list) else types
    if validator == "enum":
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if validator == "const":
        return repr(schema["const"])
    if validator in ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"):
        return f"{validator} {error.validator_value}"
    if validator in ("oneOf", "anyOf"):
        return schema.get("description") or "one of the allowed forms"
    if validator == "format":
        name = str(error.validator_value)
        return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
    if validator == "minProperties":
        return f"at least {error.validator_value} field(s)"
    if validator == "maxProperties":
        return f"at most {error.validator_value} field(s)"
    return error.message


def describe_found(value: Any) -> str:
    """The found value's type, and the value itself only when it cannot be personal data."""
    if value is None or isinstance(value, bool):
        return repr(value).lower() if value is not None else "null"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string of {len(value)} character(s)" if value else "empty string"
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:6])
        return f"mapping with keys {keys}" if keys else "empty mapping"
    if isinstance(value, list):
        return f"list of {len(value)} item(s)"
    return type(value).__name__
