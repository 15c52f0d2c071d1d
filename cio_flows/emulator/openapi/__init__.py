"""Customer.io's published API documents, copied into the package (whitespace removed, content
unchanged): track.json (Track API, OpenAPI 3.1), app.json ("Journeys App API", OpenAPI 3.0, 2025)
and reporting_webhooks.json (the reporting webhook bodies, OpenAPI 3.0).

The emulator reads them for two things: the operations it must serve (a fixed, schema-valid
answer for those it has no model of, see fixed.py) and checking bodies it produces against the
published schemas (reporting webhook events, tests). OpenAPI 3.0 schemas are turned into JSON
Schema 2020-12 first: `nullable: true` allows null, boolean `exclusiveMinimum` becomes numeric,
and `oneOf` is read as `anyOf`: many of the documents' alternatives overlap (metrics "Version 1"
and "Version 2", membership "email or id" and "id only"), so under a strict `oneOf` no answer at
all could be valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
DOCUMENTS = ("track", "app", "reporting_webhooks")
METHODS = ("get", "post", "put", "patch", "delete")
# Keys whose values are data, not schemas: never rewritten.
_DATA_KEYS = frozenset({"example", "examples", "enum", "default", "const", "x-codeSamples"})


@cache
def document(name: str) -> dict[str, Any]:
    """The document as published."""
    with open(HERE / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True, eq=False)
class Operation:
    document: str
    method: str  # upper case
    path: str  # as documented, e.g. /v1/campaigns/{campaign_id}
    spec: dict[str, Any]

    @property
    def pointer(self) -> str:
        return f"/paths/{_escape(self.path)}/{self.method.lower()}"

    @property
    def needs_auth(self) -> bool:
        security = self.spec.get("security")
        if security is None:
            security = document(self.document).get("security", [{}])
        return any(bool(s) for s in security)

    @property
    def statuses(self) -> list[int]:
        return sorted(int(s) for s in self.spec.get("responses", {}) if s.isdigit())

    def response(self, status: int) -> dict[str, Any] | None:
        """The response object of `status` with its $ref followed, or None."""
        found = self.spec.get("responses", {}).get(str(status))
        return deref(self.document, found) if found is not None else None

    def json_schema_pointer(self, status: int) -> str | None:
        """JSON pointer (in the converted document) of the JSON body schema of `status`."""
        raw = self.spec.get("responses", {}).get(str(status))
        if raw is None:
            return None
        if "$ref" in raw:
            base = raw["$ref"][1:]
            raw = deref(self.document, raw)
        else:
            base = f"{self.pointer}/responses/{status}"
        content = raw.get("content") or {}
        for media, body in content.items():
            if "json" in media and "schema" in body:
                return f"{base}/content/{_escape(media)}/schema"
        return None


def operations(*names: str) -> list[Operation]:
    """Every documented operation of the Track and App documents (or of `names`)."""
    out: list[Operation] = []
    for name in names or ("track", "app"):
        for path, item in document(name)["paths"].items():
            for method, spec in item.items():
                if method in METHODS:
                    out.append(Operation(name, method.upper(), path, spec))
    return out


def deref(name: str, node: Any) -> Any:
    """Follow local `$ref`s until a node without one."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 50:
        node = pointer_get(document(name), node["$ref"][1:])
        seen += 1
    return node


def pointer_get(doc: Any, pointer: str) -> Any:
    node = doc
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


# -- validation -------------------------------------------------------------------------------


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema keywords rewritten as JSON Schema 2020-12 (recursively)."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in _DATA_KEYS else to_json_schema(v)) for k, v in node.items()}
    if "oneOf" in out:  # the documents' oneOf branches overlap (README: deviations)
        out["anyOf"] = out.pop("oneOf")
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):
            del out[bound]
            if flag and inclusive in out:
                out[bound] = out.pop(inclusive)
    if out.get("nullable") is True:
        del out["nullable"]
        kind = out.get("type")
        if "$ref" in out or "oneOf" in out or "anyOf" in out or "allOf" in out or kind is None:
            return {"anyOf": [out, {"type": "null"}]}
        out["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    elif out.get("nullable") is False:
        del out["nullable"]
    return out


@cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for name in DOCUMENTS:
        converted = to_json_schema(document(name))
        resource = Resource.from_contents(converted, default_specification=DRAFT202012)
        registry = registry.with_resource(f"urn:cio:{name}", resource)
    return registry.crawl()


@cache
def validator(name: str, pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` of document `name` ($refs resolved)."""
    return Draft202012Validator({"$ref": f"urn:cio:{name}#{pointer}"}, registry=_registry())


def errors(name: str, pointer: str, value: Any) -> list[str]:
    """Readable validation errors of `value` against the schema at `pointer` (empty: valid)."""
    check = validator(name, pointer)
    found = sorted(check.iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in found]
