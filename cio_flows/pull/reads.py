"""The App API reads behind `cio-flows workspace pull`, section by section."""

from __future__ import annotations

from typing import Any

from ..errors import TransportError
from ..wire.transport import Transport
from ..wire.types import Request
from .file import Pulled

# Search needs a filter; "has an id or an email" matches every person.
EVERYONE: dict[str, Any] = {
    "or": [
        {"attribute": {"field": "id", "operator": "exists"}},
        {"attribute": {"field": "email", "operator": "exists"}},
    ]
}
CHANNEL_OF_TYPE = {"twilio": "sms", "inbox": "inbox_message"}
CHANNELS = ("email", "push", "sms", "whatsapp", "in_app", "inbox_message")
# Attributes the App API adds to every person; the file's people carry them elsewhere.
BUILT_IN = {"_created_in_customerio_at", "cio_id", "id", "email"}


class Reader:
    """App API reads through the project's transport (auth, region, rate limit, retries)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def get(self, path: str, params: tuple[tuple[str, str], ...] = ()) -> Any:
        return self.transport.send(Request("app", "GET", path, params=params)).body

    def post(self, path: str, body: Any, params: tuple[tuple[str, str], ...] = ()) -> Any:
        return self.transport.send(Request("app", "POST", path, body, params=params)).body

    def emulator_definitions(self) -> dict[str, Any] | None:
        """An emulator's own view of what the App API does not show; None from Customer.io."""
        try:
            answer = self.transport.send(
                Request("app", "GET", "/_emulator/definitions"), accept=(401, 403, 404)
            )
        except TransportError:
            return None
        body = answer.body
        return body if isinstance(body, dict) and "campaigns" in body else None


def read_workspace(reader: Reader, root: str, people: int) -> Pulled:
    known = reader.emulator_definitions()
    source = f"the emulator at {root}" if known else f"Customer.io ({root})"
    pulled = Pulled(source)
    if known:
        pulled.note("", "Read from an emulator: template triggers, segment conditions and")
        pulled.note("", "campaign steps come from its /_emulator/definitions.")
    _templates(reader, pulled, known)
    _people(reader, pulled, people)
    _segments(reader, pulled, known)
    _broadcasts(reader, pulled, known)
    _campaigns(reader, pulled, known)
    _newsletters(reader, pulled)
    return pulled


def _templates(reader: Reader, pulled: Pulled, known: dict[str, Any] | None) -> None:
    exact = {t["id"]: t for t in (known or {}).get("templates", ())}
    for message in reader.get("/v1/transactional").get("messages", []):
        tid = message["id"]
        if tid in exact:
            tpl = {k: v for k, v in exact[tid].items() if v is not None}
        else:
            contents = reader.get(f"/v1/transactional/{tid}/contents").get("contents") or [{}]
            first = contents[0]
            tpl = {"id": tid, "name": message.get("name") or f"Template {tid}"}
            tpl["channel"] = first.get("type") if first.get("type") in CHANNELS else "email"
            for key in ("subject", "body", "from"):
                if first.get(key):
                    tpl[key] = first[key]
        pulled.templates.append(tpl)
    if not known and pulled.templates:
        pulled.note("templates", "Trigger names are not in the App API: add `trigger: NAME` to")
        pulled.note("templates", "send by name. Channels other than email and push read as email.")


def _people(reader: Reader, pulled: Pulled, limit: int) -> None:
    if limit <= 0:
        pulled.note("people", "No people pulled (--people N pulls N of them).")
        return
    idents: list[dict[str, Any]] = []
    start = ""
    while len(idents) < limit:  # search pages hold at most 1,000 people
        params: tuple[tuple[str, str], ...] = (("limit", str(min(limit - len(idents), 1000))),)
        if start:
            params += (("start", start),)
        found = reader.post("/v1/customers", {"filter": EVERYONE}, params)
        idents += found.get("identifiers") or []
        start = found.get("next") or ""
        if not start or not found.get("identifiers"):
            break
    idents = idents[:limit]
    ids = [i["id"] for i in idents if i.get("id")]
    by_id: dict[str, dict[str, Any]] = {}
    for first in range(0, len(ids), 100):
        answer = reader.post(
            "/v1/customers/attributes", {"ids": ids[first : first + 100]}, (("id_type", "id"),)
        )
        for item in answer.get("customers", []):
            customer = item.get("customer", item)
            by_id[customer["id"]] = customer
    for ident in idents:
        person: dict[str, Any] = {}
        if ident.get("id"):
            person["id"] = ident["id"]
        if ident.get("email"):
            person["email"] = ident["email"]
        customer = by_id.get(ident.get("id") or "")
        if customer:
            attrs = customer.get("attributes") or {}
            created = attrs.get("_created_in_customerio_at")
            if isinstance(created, str) and created.isdigit():
                person["created_at"] = int(created)
            kept = {k: v for k, v in attrs.items() if k not in BUILT_IN}
            if kept:
                person["attributes"] = kept
        if person:
            pulled.people.append(person)
    pulled.note("people", f"{len(pulled.people)} people; the App API shows attribute values as")
    pulled.note("people", "strings. Events, devices and messages are not pulled.")


def _segments(reader: Reader, pulled: Pulled, known: dict[str, Any] | None) -> None:
    exact = {s["id"]: s for s in (known or {}).get("segments", ())}
    in_file = {p.get("id") or p.get("email") for p in pulled.people}
    for seg in reader.get("/v1/segments").get("segments", []):
        entry: dict[str, Any] = {"id": seg["id"], "name": seg["name"]}
        if seg.get("description"):
            entry["description"] = seg["description"]
        known_seg = exact.get(seg["id"])
        if known_seg and known_seg.get("filter") is not None:
            entry.update(type="dynamic", filter=known_seg["filter"])
        else:
            entry["type"] = "manual"
            if known_seg:
                members = known_seg.get("members", [])
            else:
                members = _members(reader, seg["id"]) if pulled.people else []
                if seg.get("type") == "dynamic":
                    pulled.note(
                        "segments",
                        f"Segment {seg['id']} ({seg['name']}) is dynamic there: its conditions "
                        "are not in the App API, so it is manual here.",
                    )
            kept = [m for m in members if m in in_file]
            if kept:
                entry["members"] = kept
        pulled.segments.append(entry)


def _members(reader: Reader, segment_id: int) -> list[str]:
    answer = reader.get(f"/v1/segments/{segment_id}/membership", (("limit", "30000"),))
    return [i.get("id") or i.get("email") for i in answer.get("identifiers", [])]


def _broadcasts(reader: Reader, pulled: Pulled, known: dict[str, Any] | None) -> None:
    exact = {b["id"]: b for b in (known or {}).get("broadcasts", ())}
    segment_ids = {s["id"] for s in pulled.segments}
    for b in reader.get("/v1/broadcasts").get("broadcasts", []):
        entry: dict[str, Any] = {"id": b["id"], "name": b["name"]}
        actions = b.get("actions") or [{}]
        kind = actions[0].get("type", "email")
        entry["channel"] = (
            CHANNEL_OF_TYPE.get(kind, kind) if kind in (*CHANNELS, "twilio") else "email"
        )
        segments = [s for s in b.get("recipient_segment_ids") or [] if s in segment_ids]
        if segments:
            entry["segment"] = segments[0]
        subject = exact.get(b["id"], {}).get("subject")
        if subject:
            entry["subject"] = subject
        pulled.broadcasts.append(entry)
    if pulled.broadcasts and not known:
        pulled.note("broadcasts", "Only API-triggered broadcasts run in the emulator; their")
        pulled.note("broadcasts", "message content is not pulled.")


def _campaigns(reader: Reader, pulled: Pulled, known: dict[str, Any] | None) -> None:
    exact = {c["id"]: c for c in (known or {}).get("campaigns", ())}
    template_ids = {t["id"] for t in pulled.templates}
    segment_ids = {s["id"] for s in pulled.segments}
    for c in reader.get("/v1/campaigns").get("campaigns", []):
        if c["id"] in exact:
            pulled.campaigns.append(_known_campaign(exact[c["id"]]))
            continue
        trigger: dict[str, Any]
        if c.get("type") == "event" and c.get("event_name"):
            trigger = {"event": c["event_name"]}
        elif c.get("type") == "segment" and set(c.get("trigger_segment_ids") or []) & segment_ids:
            trigger = {"segment": sorted(set(c["trigger_segment_ids"]) & segment_ids)[0]}
        else:
            pulled.note(
                "campaigns",
                f"Campaign {c['id']} ({c['name']}): a {c.get('type') or 'unknown'}-triggered "
                "campaign the emulator cannot run; left out.",
            )
            continue
        actions = reader.get(f"/v1/campaigns/{c['id']}/actions").get("actions", [])
        steps = []
        for action in actions:
            if action.get("id") is None:
                continue
            tid = action["id"]  # each message action becomes a template of its own
            if tid not in template_ids:
                kind = action.get("type", "email")
                channel = (
                    CHANNEL_OF_TYPE.get(kind, kind) if kind in (*CHANNELS, "twilio") else "email"
                )
                tpl = {"id": tid, "name": action.get("name") or f"Action {tid}", "channel": channel}
                for key in ("subject", "body", "from"):
                    if action.get(key):
                        tpl[key] = action[key]
                pulled.templates.append(tpl)
                template_ids.add(tid)
            steps.append({"send": tid, "id": tid})
        if not steps:
            pulled.note("campaigns", f"Campaign {c['id']} ({c['name']}) has no message actions.")
            continue
        pulled.campaigns.append(
            {"id": c["id"], "name": c["name"], "trigger": trigger, "actions": steps}
        )
    if pulled.campaigns and not known:
        pulled.note("campaigns", "The App API shows a campaign's message actions only: the waits,")
        pulled.note("campaigns", "conditions (`when`), filters and branches between them are not")
        pulled.note("campaigns", "pulled. Each message action is a template with the action's id.")


def _known_campaign(c: dict[str, Any]) -> dict[str, Any]:
    trigger = {"event": c["event_name"]} if c["type"] == "event" else {"segment": c["segment"]}
    entry: dict[str, Any] = {"id": c["id"], "name": c["name"], "trigger": trigger}
    if c.get("filter") is not None:
        entry["filter"] = c["filter"]
    actions = []
    for step in c["steps"]:
        if "wait" in step:
            actions.append({"wait": _duration(step["wait"])})
            continue
        action: dict[str, Any] = {"send": step["send"], "id": step["id"]}
        if step.get("when") is not None:
            action["when"] = step["when"]
        actions.append(action)
    entry["actions"] = actions
    return entry


def _duration(seconds: float) -> int | str:
    """1 day as "1d", 2 hours as "2h": the way a person writes a wait."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return int(seconds) if float(seconds).is_integer() else str(seconds)


def _newsletters(reader: Reader, pulled: Pulled) -> None:
    newsletters = reader.get("/v1/newsletters").get("newsletters", [])
    if newsletters:
        pulled.note("newsletters", "Newsletters (the emulator does not run them):")
        for n in newsletters:
            pulled.note("newsletters", f"{n['id']}: {n.get('name', '')}")
