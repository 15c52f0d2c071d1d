"""The sandboxed Jinja environment every template renders in, and the names templates see:
the flow's vars, the run's names (RUN_NAMES) and the helpers now(), unix_now() and uuid(),
whose values come from the run's own source (HELPERS) so a recording can replay them."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, pass_context

from ..wire.timestamps import to_unix
from .sandbox import Sandbox

_TEMPLATE_MARKERS = ("{{", "{%", "{#")

# Names every template can use besides the flow's vars.
RUN_NAMES = frozenset({"row", "steps", "run", "env", "item", "response"})


def now() -> str:
    """The current UTC time as ISO-8601 (what Pipelines wants for timestamps and createdAt)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def unix_now() -> int:
    """The current UTC time as unix seconds (what the Track and App APIs want)."""
    return int(datetime.now(UTC).timestamp())


def new_uuid() -> str:
    return str(uuid_module.uuid4())


# Context key of the run's now()/unix_now()/uuid() source: a recording keeps what they return,
# a replay feeds those values back. Per run (per row), never global: parallel runs keep theirs.
HELPERS = "__helpers__"


class Helpers:
    """now(), unix_now() and uuid() as a run without a source of its own sees them."""

    def now(self) -> str:
        return now()

    def unix_now(self) -> int:
        return unix_now()

    def uuid(self) -> str:
        return new_uuid()


_LIVE_HELPERS = Helpers()


def _helper(name: str) -> Callable[..., Any]:
    @pass_context
    def helper(context: Any) -> Any:
        return getattr(context.get(HELPERS) or _LIVE_HELPERS, name)()

    helper.__name__ = name
    return helper


# What `| omit_if_empty` renders for an empty value: the field holding it is left out of the
# payload (drop_omitted), so an empty optional column does not overwrite an attribute with "".
OMIT = "\x00cio-flows:omit\x00"


def omit_if_empty(value: Any) -> Any:
    """`{{ row.phone | omit_if_empty }}`: the value, or (None, "", [], {}) no field at all."""
    return OMIT if value is None or value in ("", [], {}) else value


def drop_omitted(value: Any) -> Any:
    """The payload without the fields (and list items) `omit_if_empty` left out."""
    if isinstance(value, dict):
        return {k: drop_omitted(v) for k, v in value.items() if v != OMIT}
    if isinstance(value, list):
        return [drop_omitted(item) for item in value if item != OMIT]
    if isinstance(value, str) and OMIT in value:  # inside a longer text: nothing
        return value.replace(OMIT, "")
    return value


def _build_environment() -> Sandbox:
    env = Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.update({name: _helper(name) for name in ("now", "unix_now", "uuid")})
    env.filters.update(unix=to_unix, omit_if_empty=omit_if_empty)
    return env


ENVIRONMENT = _build_environment()
HELPER_NAMES = frozenset(ENVIRONMENT.globals)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _TEMPLATE_MARKERS)


def as_expression(text: str) -> str:
    """A condition as a template: braces added unless it has them (`when: row.vip`)."""
    text = text.strip()
    return text if text.startswith("{{") else "{{ " + text + " }}"
