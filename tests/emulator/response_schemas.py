"""Response JSON Schemas for the Track and Pipelines APIs, derived by hand from Customer.io's
published OpenAPI specs (pipelines.json, track.json), so tests never read the spec files.

Derivation notes:
- Both specs describe 200 as "A successful request returns an empty object response" with no
  schema: written here as an object with no properties (the live service sends `{}`).
- v1 400: components/responses/400, `{"meta": {"errors": [string]}}`.
- merge_customers 400: `{"meta": {"error": string}}`.
- v2 entity/batch 400: `{"errors": components/schemas/errors}` = [{reason, field, message}].
- v2 batch 207: `{"errors": [{batch_index: integer, reason, field, message}]}`.
- accounts/region 200: {url, region: us|eu, environment_id: integer}. One deliberate departure:
  the spec enumerates the two real Track hosts for `url`; the emulator answers its own root so a
  client that follows `url` stays local, hence `format: uri` instead of the enum.
- Pipelines strict-mode errors reuse the spec's 400 shape (the reference calls the real shape
  UNVERIFIED).
"""

from __future__ import annotations

EMPTY = {"type": "object", "maxProperties": 0}
META_ERRORS = {
    "type": "object",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["errors"],
            "properties": {"errors": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        }
    },
}
META_ERROR = {
    "type": "object",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        }
    },
}
_V2_ERROR_ITEM = {
    "type": "object",
    "required": ["reason", "field", "message"],
    "properties": {
        "reason": {"type": "string"},
        "field": {"type": "string"},
        "message": {"type": "string"},
    },
}
V2_ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": _V2_ERROR_ITEM, "minItems": 1}},
}
V2_BATCH_207 = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "allOf": [
                    _V2_ERROR_ITEM,
                    {
                        "required": ["batch_index"],
                        "properties": {"batch_index": {"type": "integer", "minimum": 0}},
                    },
                ]
            },
        }
    },
}
REGION = {
    "type": "object",
    "required": ["url", "region", "environment_id"],
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "region": {"type": "string", "enum": ["us", "eu"]},
        "environment_id": {"type": "integer"},
    },
}

V1 = {200: EMPTY, 400: META_ERRORS}

RESPONSES: dict[tuple[str, str], dict[int, dict]] = {
    # Pipelines
    **{
        ("POST", f"/v1/{kind}"): {200: EMPTY, 400: META_ERRORS, 401: META_ERRORS}
        for kind in ("identify", "track", "page", "screen", "group", "alias", "batch")
    },
    # Track v1
    ("GET", "/api/v1/accounts/region"): {200: REGION},
    ("PUT", "/api/v1/customers/{identifier}"): V1,
    ("DELETE", "/api/v1/customers/{identifier}"): V1,
    ("PUT", "/api/v1/customers/{identifier}/devices"): V1,
    ("DELETE", "/api/v1/customers/{identifier}/devices/{device_id}"): V1,
    ("POST", "/api/v1/customers/{identifier}/suppress"): V1,
    ("POST", "/api/v1/customers/{identifier}/unsuppress"): V1,
    ("POST", "/api/v1/customers/{identifier}/events"): V1,
    ("POST", "/api/v1/events"): V1,
    ("POST", "/api/v1/merge_customers"): {200: EMPTY, 400: META_ERROR},
    ("POST", "/api/v1/segments/{segment_id}/add_customers"): V1,
    ("POST", "/api/v1/segments/{segment_id}/remove_customers"): V1,
    # Track v2
    ("POST", "/api/v2/entity"): {200: EMPTY, 400: V2_ERRORS},
    ("POST", "/api/v2/batch"): {200: EMPTY, 207: V2_BATCH_207, 400: V2_ERRORS},
}
