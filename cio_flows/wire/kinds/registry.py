"""The step-kind registry: each kind declares itself once, in the module that implements it.

A kind module calls `register(StepKind(...))` at import; the kinds package imports every module
it holds (pkgutil), so adding a kind is one module plus its schema file `schemas/steps/<name>.json`.
The loader, payload checks, `plan`, the executor and the docs table all look kinds up here.

A kind defined outside the package (a plugin, a test) registers the same way and gives its payload
schema as a `Path` or an inline mapping instead of a name below `cio_flows/schemas/`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..families import FAMILIES
from ..types import Operation, Request, Send, StepKeys

# The family of identify/track/delete: Pipelines when its key is set, else Track.
PEOPLE = "people"
# A kind whose payload names its family in `api` (the raw `request` kind).
ANY = "any"

SchemaSource = str | Path | Mapping[str, Any]
# (payload, keys, people family) -> the step's entry in a people batch call (Pipelines /v1/batch
# or Track /api/v2/batch), or None when this payload must be sent alone.
BatchItem = Callable[[dict[str, Any], StepKeys, str], "dict[str, Any] | None"]
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class StepKind:
    """One step kind: what a flow writes (`name: payload`) and what it sends."""

    name: str
    description: str  # one line: the flow schema's description of the key, and the docs table
    operation: Operation  # builds the requests and reads the answers
    family: str  # the API family it needs, or PEOPLE
    # Only reads: safe to repeat, and the only kinds wait_until may poll.
    reads: bool = False
    # Its requests are safe to resend when an answer is lost (reads, deduplicated or idempotent
    # writes). When False every request it builds is marked so: never retried blindly, and
    # UNKNOWN when it may have arrived. When True the operation may still mark a request it
    # builds `repeatable=False` itself (`request` decides from its method and `idempotent`).
    repeatable: bool = True
    # The payload schema: a name below cio_flows/schemas/ (default "steps/<name>.json"), a Path to
    # a JSON file, or the schema itself.
    schema: SchemaSource = ""
    # Set when the kind's requests can share people batch calls in `--data` runs.
    batch: BatchItem | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"step kind name {self.name!r}: expected lower_snake_case")
        if self.family not in (*FAMILIES, PEOPLE, ANY):
            known = ", ".join((*FAMILIES, PEOPLE, ANY))
            raise ValueError(
                f"step kind {self.name!r}: family {self.family!r} is not one of {known}"
            )
        if not self.description.strip():
            raise ValueError(f"step kind {self.name!r} has no description")

    def family_for(self, people_family: str) -> str:
        """The API family this kind talks to, given where people calls go."""
        return people_family if self.family == PEOPLE else self.family

    def families_for(self, people_family: str, payload: Any = None) -> tuple[str, ...]:
        """The API families a step may call. For ANY, the one its payload's `api` names; every
        family while `api` is a template, so the keys check still comes before any send."""
        if self.family != ANY:
            return (self.family_for(people_family),)
        api = payload.get("api") if isinstance(payload, Mapping) else None
        return (api,) if api in FAMILIES else FAMILIES

    @cached_property
    def payload_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (a fresh dict per kind; do not change it in place)."""
        source = self.schema or f"steps/{self.name}.json"
        if isinstance(source, Mapping):
            return dict(json.loads(json.dumps(source)))
        if isinstance(source, Path):
            text = source.read_text(encoding="utf-8")
        else:
            text = files("cio_flows").joinpath("schemas", *source.split("/")).read_text("utf-8")
        schema: dict[str, Any] = json.loads(text)
        return schema

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        """The request `plan` shows; the only one unless the kind pages."""
        return self._marked(self.operation.first_request(payload, keys, people_family))

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        """Send what it takes and return the result a flow can save."""
        if self.repeatable:
            return self.operation.execute(payload, keys, people_family, send)
        return self.operation.execute(
            payload, keys, people_family, lambda request: send(self._marked(request))
        )

    def _marked(self, request: Request) -> Request:
        if self.repeatable or not request.repeatable:
            return request
        return dataclasses.replace(request, repeatable=False)


_kinds: dict[str, StepKind] = {}
_generation = 0


def register(kind: StepKind) -> StepKind:
    """Add a kind; a second kind with the same name is an error naming both modules."""
    global _generation
    existing = _kinds.get(kind.name)
    if existing is not None:
        raise ValueError(
            f"step kind {kind.name!r} is declared twice: in {_module(existing)}"
            f" and in {_module(kind)}"
        )
    _kinds[kind.name] = kind
    _generation += 1
    return kind


def _module(kind: StepKind) -> str:
    return type(kind.operation).__module__


def unregister(name: str) -> None:
    """Remove a kind (for tests and plugins that registered one for a while)."""
    global _generation
    _kinds.pop(name, None)
    _generation += 1


def generation() -> int:
    """Changes whenever the set of kinds changes: caches of schemas built from it key on it."""
    return _generation


def get(name: str) -> StepKind:
    """The kind called `name`; KeyError naming the known ones otherwise."""
    try:
        return _kinds[name]
    except KeyError:
        raise KeyError(f"unknown step kind {name!r}; known: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    """Every kind's name, in declaration order."""
    return tuple(_kinds)


def all_kinds() -> tuple[StepKind, ...]:
    return tuple(_kinds.values())


def reading_kinds() -> frozenset[str]:
    """Kinds that only read: safe to repeat, pollable by wait_until."""
    return frozenset(name for name, kind in _kinds.items() if kind.reads)
