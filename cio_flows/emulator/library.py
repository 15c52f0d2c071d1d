"""Reusable content kept in the workspace: snippets (GET/PUT /v1/snippets, DELETE
/v1/snippets/{name}), collections (/v1/collections CRUD and their content), sender identities
(the workspace default and each template's `from`), subscription topics and a person's
subscription preferences.

A collection made from a `url` is not downloaded: it is kept with no rows. Subscription topics
are those named in people's `cio_subscription_preferences` attributes (`{"topics": {"topic_1":
true}}`); the emulator has no topic settings of its own.
"""

from __future__ import annotations

import json
from typing import Any

from .app_api import lookup_person
from .core import APP, ApiError, Req, collect, require_object, route
from .state import State

# -- snippets ---------------------------------------------------------------------------------


@route("GET", "/v1/snippets", APP, mutating=False)
def list_snippets(state: State, req: Req) -> tuple[int, Any]:
    rows = state.store.db.execute("SELECT name, value, updated_at FROM snippets ORDER BY name")
    return 200, {"snippets": [{"name": n, "value": v, "updated_at": u} for n, v, u in rows]}


@route("PUT", "/v1/snippets", APP)
def put_snippet(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    name, value = body.get("name"), body.get("value")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "'name' must be a non-empty string", field="name")
    if not isinstance(value, str):
        raise ApiError(400, "'value' must be a string", field="value")
    now = int(state.clock.now())
    state.store.db.execute(
        "INSERT OR REPLACE INTO snippets(name, value, updated_at) VALUES(?,?,?)", (name, value, now)
    )
    return 200, {"snippet": {"name": name, "value": value, "updated_at": now}}


@route("DELETE", "/v1/snippets/{snippet_name}", APP)
def delete_snippet(state: State, req: Req) -> tuple[int, Any]:
    gone = state.store.db.execute(
        "DELETE FROM snippets WHERE name=?", (req.params["snippet_name"],)
    ).rowcount
    if not gone:
        raise ApiError(404, "snippet not found")
    return 204, None


# -- collections ------------------------------------------------------------------------------

COLLECTION_SQL = "SELECT id, name, data, url, created_at, updated_at FROM collections"


def _collection_view(row: tuple) -> dict[str, Any]:
    cid, name, data, _url, created, updated = row
    rows = json.loads(data)
    keys = sorted({k for item in rows if isinstance(item, dict) for k in item})
    return {
        "id": cid,
        "name": name,
        "rows": len(rows),
        "bytes": len(data.encode()),
        "schema": keys,
        "created_at": created,
        "updated_at": updated,
    }


def _collection(state: State, req: Req) -> tuple:
    raw = req.params["collection_id"]
    row = (
        state.store.db.execute(COLLECTION_SQL + " WHERE id=?", (int(raw),)).fetchone()
        if raw.isdigit()
        else None
    )
    if row is None:
        raise ApiError(404, "collection not found")
    return row


def _collection_fields(body: Any, partial: bool) -> dict[str, Any]:
    body = require_object(body)
    out: dict[str, Any] = {}
    if "name" in body or not partial:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise ApiError(400, "'name' must be a non-empty string", field="name")
        out["name"] = body["name"]
    if "data" in body:
        data = body["data"]
        if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
            raise ApiError(400, "'data' must be a list of objects", field="data")
        out.update(data=json.dumps(data), url=None)
    elif "url" in body:
        if not isinstance(body["url"], str) or not body["url"].startswith(("http://", "https://")):
            raise ApiError(400, "'url' must be an http(s) URL", field="url")
        out.update(data="[]", url=body["url"])  # never downloaded
    elif not partial:
        raise ApiError(400, "give 'data' or 'url'", field="data")
    return out


@route("POST", "/v1/collections", APP)
def create_collection(state: State, req: Req) -> tuple[int, Any]:
    fields = _collection_fields(req.body, partial=False)
    now = int(state.clock.now())
    cid = state.store.db.execute(
        "INSERT INTO collections(name, data, url, created_at, updated_at) VALUES(?,?,?,?,?)",
        (fields["name"], fields["data"], fields["url"], now, now),
    ).lastrowid
    row = state.store.db.execute(COLLECTION_SQL + " WHERE id=?", (cid,)).fetchone()
    return 200, {"collection": _collection_view(row)}


@route("GET", "/v1/collections", APP, mutating=False)
def list_collections(state: State, req: Req) -> tuple[int, Any]:
    rows = state.store.db.execute(COLLECTION_SQL + " ORDER BY id").fetchall()
    return 200, {"collections": [_collection_view(r) for r in rows]}


@route("GET", "/v1/collections/{collection_id}", APP, mutating=False)
def get_collection(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"collection": _collection_view(_collection(state, req))}


def _update(state: State, cid: int, fields: dict[str, Any]) -> dict[str, Any]:
    fields["updated_at"] = int(state.clock.now())
    sets = ", ".join(f"{k}=?" for k in fields)
    state.store.db.execute(f"UPDATE collections SET {sets} WHERE id=?", [*fields.values(), cid])
    row = state.store.db.execute(COLLECTION_SQL + " WHERE id=?", (cid,)).fetchone()
    return {"collection": _collection_view(row)}


@route("PUT", "/v1/collections/{collection_id}", APP)
def update_collection(state: State, req: Req) -> tuple[int, Any]:
    row = _collection(state, req)
    return 200, _update(state, row[0], _collection_fields(req.body, partial=True))


@route("DELETE", "/v1/collections/{collection_id}", APP)
def delete_collection(state: State, req: Req) -> tuple[int, Any]:
    row = _collection(state, req)
    state.store.db.execute("DELETE FROM collections WHERE id=?", (row[0],))
    return 204, None


@route("GET", "/v1/collections/{collection_id}/content", APP, mutating=False)
def collection_content(state: State, req: Req) -> tuple[int, Any]:
    data = json.loads(_collection(state, req)[2])
    return 200, data[0] if len(data) == 1 else {"data": data}


@route("PUT", "/v1/collections/{collection_id}/content", APP)
def replace_content(state: State, req: Req) -> tuple[int, Any]:
    row = _collection(state, req)
    body = require_object(req.body, "collection contents")
    rows = body["data"] if isinstance(body.get("data"), list) and len(body) == 1 else [body]
    return 200, _update(state, row[0], {"data": json.dumps(rows), "url": None})


# -- sender identities ------------------------------------------------------------------------

DEFAULT_SENDER = "Emulator <noreply@example.com>"


def _senders(state: State) -> list[dict[str, Any]]:
    """The workspace default, then each distinct `from` of its templates, numbered from 1."""
    addresses = [DEFAULT_SENDER]
    for (sender,) in state.store.db.execute(
        "SELECT DISTINCT sender FROM templates WHERE sender IS NOT NULL ORDER BY sender"
    ):
        if sender not in addresses and "{" not in sender:  # Liquid senders vary per message
            addresses.append(sender)
    out = []
    for number, address in enumerate(addresses, start=1):
        name, _, rest = address.partition("<")
        email = rest.rstrip(">").strip() if rest else address.strip()
        out.append(
            {
                "id": number,
                "deduplicate_id": f"{number}:0",
                "name": name.strip() if rest else email,
                "email": email,
                "address": address,
                "template_type": "email",
                "auto_generated": number == 1,
            }
        )
    return out


def _sender(state: State, req: Req) -> dict[str, Any]:
    raw = req.params["sender_id"]
    for sender in _senders(state):
        if str(sender["id"]) == raw:
            return sender
    raise ApiError(404, "sender identity not found")


@route("GET", "/v1/sender_identities", APP, mutating=False)
def list_senders(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"sender_identities": _senders(state)}


@route("GET", "/v1/sender_identities/{sender_id}", APP, mutating=False)
def get_sender(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"sender_identity": _sender(state, req)}


@route("GET", "/v1/sender_identities/{sender_id}/used_by", APP, mutating=False)
def sender_used_by(state: State, req: Req) -> tuple[int, Any]:
    _sender(state, req)
    return 200, {"campaigns": [], "sent_newsletters": [], "draft_newsletters": []}


# -- subscription topics and preferences ------------------------------------------------------


def _preferences(state: State, pk: int) -> dict[str, bool]:
    row = state.store.db.execute(
        "SELECT value FROM attrs WHERE pk=? AND name='cio_subscription_preferences'", (pk,)
    ).fetchone()
    try:
        value = json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        return {}
    topics = value.get("topics") if isinstance(value, dict) else None
    return {str(k): bool(v) for k, v in topics.items()} if isinstance(topics, dict) else {}


def _topic_number(identifier: str) -> int:
    tail = identifier.rpartition("_")[2]
    return int(tail) if tail.isdigit() else 0


@route("GET", "/v1/subscription_topics", APP, mutating=False)
def subscription_topics(state: State, req: Req) -> tuple[int, Any]:
    named: set[str] = set()
    for (pk,) in state.store.db.execute(
        "SELECT pk FROM attrs WHERE name='cio_subscription_preferences'"
    ):
        named |= set(_preferences(state, pk))
    topics = [
        {
            "id": _topic_number(t),
            "identifier": t,
            "name": t,
            "description": "",
            "subscribed_by_default": False,
        }
        for t in sorted(named)
    ]
    return 200, {"topics": topics}


@route("GET", "/v1/customers/{customer_id}/subscription_preferences", APP, mutating=False)
def subscription_preferences(state: State, req: Req) -> tuple[int, Any]:
    pk = lookup_person(state, req)
    person = state.store.known_person(pk)
    unsubscribed = state.store.db.execute(
        "SELECT 1 FROM attrs WHERE pk=? AND name='unsubscribed' AND str='true'", (pk,)
    ).fetchone()
    topics = [
        {"id": t, "name": t, "description": "", "subscribed": on}
        for t, on in sorted(_preferences(state, pk).items())
    ]
    identifiers = {"email": person["email"], "id": person["id"], "cio_id": person["cio_id"]}
    return 200, {
        "customer": {
            "id": person["id"] or "",
            "identifiers": identifiers,
            "unsubscribed": bool(unsubscribed),
            "topics": topics,
            "header": {"title": "Subscription preferences", "subtitle": ""},
        }
    }


ROUTES = collect(globals())
