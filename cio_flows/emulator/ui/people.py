"""People for the web page: a searchable list and one person's attributes, devices,
segments, activity and messages."""

from __future__ import annotations

from typing import Any

from ..activities import activity_rows
from ..app_api import customer_view, segment_rows
from ..state import State
from ..store import CIO_ID, EMAIL, ID
from . import inbox

PAGE = 100
ACTIVITY_SHOWN = 200


def search(
    state: State, q: str, before: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """People newest first whose id, email, cio_id or an attribute value contains `q`
    (people: id, email, cio_id, created_at), and the pk to continue before."""
    sql = "SELECT p.pk, p.id, p.email, p.cio_id, p.created_at FROM people p WHERE 1"
    args: list[Any] = []
    if q:
        pattern = inbox.like(q)
        sql += (
            " AND (p.id LIKE ? ESCAPE '\\' OR p.email LIKE ? ESCAPE '\\' OR p.cio_id=? OR"
            " EXISTS(SELECT 1 FROM attrs a WHERE a.pk=p.pk AND a.str LIKE ? ESCAPE '\\'))"
        )
        args += [pattern, pattern, q, pattern]
    if before is not None:
        sql, args = sql + " AND p.pk<?", [*args, before]
    found = state.store.db.execute(sql + " ORDER BY p.pk DESC LIMIT ?", [*args, PAGE + 1])
    people = [
        {"pk": r[0], "id": r[1], "email": r[2], "cio_id": r[3], "created_at": r[4]}
        for r in found.fetchall()
    ]
    more = people[PAGE - 1]["pk"] if len(people) > PAGE else None
    return people[:PAGE], more


def find(state: State, ref: str) -> int | None:
    """A person by id, then cio_id, then email (the page's links use the id, else cio_id)."""
    for kind in (ID, CIO_ID, EMAIL):
        pk = state.store.find(kind, ref)
        if pk is not None:
            return pk
    return None


def person(state: State, pk: int) -> dict[str, Any]:
    view = customer_view(state, pk)
    row = state.store.person(pk) or {}
    attributes = {
        name: text for name, _, text, _ in state.store.attributes(pk)
    }  # the App API's string forms
    seqs = [
        s
        for (s,) in state.store.db.execute(
            "SELECT seq FROM deliveries WHERE pk=? ORDER BY seq DESC LIMIT ?", (pk, inbox.PAGE)
        )
    ]
    return {
        "pk": pk,
        "id": row.get("id"),
        "email": row.get("email"),
        "cio_id": row.get("cio_id"),
        "created_at": row.get("created_at"),
        "unsubscribed": view["unsubscribed"],
        "attributes": attributes,
        "devices": view["devices"],
        "segments": segments_of(state, pk),
        "activity": activity_rows(state, pk, limit=ACTIVITY_SHOWN),
        "messages": inbox.rows(state, [s for s in seqs]),
    }


def segments_of(state: State, pk: int) -> list[dict[str, Any]]:
    out = []
    for seg in segment_rows(state):
        sql, args = state.segments.segment_condition(seg["id"])
        hit = state.store.db.execute(
            f"SELECT 1 FROM people p WHERE p.pk=? AND {sql}", [pk, *args]
        ).fetchone()
        if hit:
            out.append(seg)
    return out


def link(p: dict[str, Any] | None) -> str | None:
    """The person page's path segment: the id when there is one, else the cio_id."""
    if not p:
        return None
    return p.get("id") or p.get("cio_id")
