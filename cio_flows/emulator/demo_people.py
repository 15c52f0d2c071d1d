"""A generated demo workspace of any size, written with bulk inserts so 50,000 people load in
seconds: `cio-flows emulator --demo-people 50000`, or a workspace `demo: {people: N, seed: S}`.

The same people, segments and templates as the bundled demo (make_demo_workspace.py), plus a
history of messages over the last 40 days, each with recorded metrics (sent, delivered, opened,
clicked, bounced, ...; unix times, as Customer.io's are): two campaigns, two newsletters, two
API-triggered broadcasts and transactional messages. Seeded: the same N and seed give the same
people and outcomes (times are relative to when the workspace loads).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from . import make_demo_workspace as small
from .records import dumps
from .store import Store, as_string, now

DAY, HOUR = 86400, 3600
HISTORY_DAYS = 40

# (kind, id, name, channel, details): campaigns and broadcasts share an id space, as in
# Customer.io; each action has its message template.
PROGRAMS: list[tuple[str, int, str, str, dict[str, Any]]] = [
    (
        "campaign",
        10,
        "Onboarding",
        "email",
        {"type": "event", "actions": [[11, "email"], [12, "push"]]},
    ),
    (
        "campaign",
        20,
        "Win-back",
        "email",
        {"type": "segment", "actions": [[21, "email"]], "segment": 4},
    ),
    ("newsletter", 1, "Monthly product news", "email", {"template": 201, "days_ago": 30}),
    ("newsletter", 2, "Summer update", "email", {"template": 202, "days_ago": 9}),
]
ACTIONS = {  # action id -> (template id, channel, subject)
    11: (101, "email", "Welcome aboard"),
    12: (102, "push", "Three tips to get started"),
    21: (103, "email", "We miss you"),
}
EXTRA_BROADCAST = {
    "id": 2,
    "name": "Spring sale",
    "channel": "email",
    "segment": 5,
    "subject": "Spring sale: 30% off",
}
BOUNCES = [
    "550 5.1.1 <{to}>: mailbox unavailable (hard bounce)",
    "552 5.2.2 <{to}>: mailbox full (soft bounce)",
    "554 5.7.1 <{to}>: message rejected as spam",
]
SMS_FAILURES = ["30003 Unreachable destination handset", "30005 Unknown destination handset"]
COLUMNS = (
    "delivery_id, pk, channel, template_id, template, identifiers, recipient, subject, body,"
    " queued_at, send_at, kind, broadcast_id, trigger_id, created_f, start_f, outcome, failure,"
    " campaign_id, newsletter_id, action_id, metrics"
)


def populate(store: Store, people: int, seed: int = small.SEED) -> None:
    """Write N people, the demo's segments/templates/broadcasts and a message history into an
    empty store (the caller holds the transaction)."""
    if not isinstance(people, int) or isinstance(people, bool) or people < 1:
        raise ValueError("demo: 'people' must be a positive integer")
    rng = random.Random(seed)
    at = now()
    db = store.db
    db.executemany(
        "INSERT INTO templates(id, trigger, name, channel) VALUES(?,?,?,?)",
        [(t["id"], t["trigger"], t["name"], t["channel"]) for t in small.TEMPLATES],
    )
    rows, attrs, events, persons = [], [], [], []
    width = max(4, len(str(people)))
    for n in range(1, people + 1):
        person = _person(rng, n, width)
        cio_id = hashlib.sha1(person["id"].encode()).hexdigest()[:12]
        pk = n
        created = person["created_at"]
        rows.append((pk, cio_id, person["id"], person["email"], created, created))
        for name, value in person["attributes"].items():
            attrs.append((pk, name, dumps(value), as_string(value), created))
        events.append((pk, "signed_up", '{"plan":"free"}', created))
        persons.append((pk, cio_id, person))
    db.executemany(
        "INSERT INTO people(pk, cio_id, id, email, created_at, updated_at) VALUES(?,?,?,?,?,?)",
        rows,
    )
    db.executemany("INSERT INTO attrs(pk,name,value,str,ts) VALUES(?,?,?,?,?)", attrs)
    db.executemany(
        "INSERT INTO events(pk, name, type, data, timestamp, family) "
        "VALUES(?,?,'event',?,?,'workspace')",
        events,
    )
    for seg in small.SEGMENTS:
        db.execute(
            "INSERT INTO segments(id, name, description, type, filter, tags, created_at,"
            " updated_at) VALUES(?,?,?,?,?,NULL,?,?)",
            (
                seg["id"],
                seg["name"],
                seg["description"],
                seg["type"],
                json.dumps(seg["filter"]),
                at,
                at,
            ),
        )
    db.execute(
        "INSERT INTO segments(id, name, description, type, filter, tags, created_at, updated_at)"
        " VALUES(8, 'Beta testers', 'Hand-picked', 'manual', NULL, NULL, ?, ?)",
        (at, at),
    )
    beta = sorted(rng.sample(range(1, people + 1), min(12, people)))
    db.executemany("INSERT INTO segment_members VALUES(8, ?)", [(pk,) for pk in beta])
    for b in (*small.BROADCASTS, EXTRA_BROADCAST):
        db.execute(
            "INSERT INTO broadcasts(id, name, channel, segment_id, subject, created_at)"
            " VALUES(?,?,?,?,?,?)",
            (b["id"], b["name"], b["channel"], b["segment"], b["subject"], at - 60 * DAY),
        )
    for kind, pid, name, channel, details in PROGRAMS:
        db.execute(
            "INSERT INTO programs(kind, id, name, channel, created_at, details) VALUES(?,?,?,?,?,?)",
            (kind, pid, name, channel, at - 90 * DAY, json.dumps(details)),
        )
    db.executemany(
        f"INSERT INTO deliveries({COLUMNS}) VALUES({','.join('?' * 22)})",
        _messages(rng, persons, set(beta), at),
    )


def _person(rng: random.Random, n: int, width: int) -> dict[str, Any]:
    attrs = small.person_attributes(rng)
    first, last, created = attrs["first_name"], attrs["last_name"], attrs["created_at"]
    email = f"{first.lower()}.{last.lower()}{n}@{rng.choice(small.DOMAINS)}"
    return {"id": f"user_{n:0{width}d}", "email": email, "created_at": created, "attributes": attrs}


def _messages(rng: random.Random, persons: list, beta: set[int], at: int):
    """One row per message: who gets what, when, and how it went."""
    start = at - HISTORY_DAYS * DAY
    seq = 0

    def message(pk, cio_id, person, channel, template_id, subject, sent_at, program):
        nonlocal seq
        seq += 1
        to, metrics, failure = _outcome(rng, person, channel, sent_at, at)
        ident = {"id": person["id"], "email": person["email"], "cio_id": cio_id}
        outcome = next((m for m in ("bounced", "failed", "undeliverable") if m in metrics), None)
        return (
            f"demo{seq:08d}",
            pk,
            channel,
            template_id,
            program.get("template") or subject,
            dumps(ident),
            to,
            subject,
            "{}",
            sent_at,
            None,
            program.get("kind", "transactional"),
            program.get("broadcast_id"),
            None,
            float(sent_at),
            float(sent_at),
            outcome or "delivered",
            failure,
            program.get("campaign_id"),
            program.get("newsletter_id"),
            program.get("action_id"),
            json.dumps(metrics, separators=(",", ":")),
        )

    for pk, cio_id, person in persons:
        a = person["attributes"]
        subscribed = a["newsletter"] and not a.get("unsubscribed")
        if subscribed:
            for kind, pid, name, _channel, details in PROGRAMS:
                if kind == "newsletter":
                    sent = at - details["days_ago"] * DAY + rng.randrange(0, 2 * HOUR)
                    program = {"kind": kind, "newsletter_id": pid, "template": name}
                    yield message(
                        pk, cio_id, person, "email", details["template"], name, sent, program
                    )
            sent = at - 3 * DAY + rng.randrange(0, HOUR)
            program = {"kind": "broadcast", "broadcast_id": 2, "template": "Spring sale"}
            yield message(
                pk, cio_id, person, "email", 301, EXTRA_BROADCAST["subject"], sent, program
            )
        if pk in beta:
            sent = at - 12 * DAY + rng.randrange(0, HOUR)
            program = {"kind": "broadcast", "broadcast_id": 1, "template": "Beta feature"}
            yield message(pk, cio_id, person, "email", 302, "New in beta", sent, program)
        if rng.random() < 0.3:  # joined recently: the onboarding campaign's two messages
            joined = rng.randrange(start, at - DAY)
            for offset, action in ((0, 11), (DAY, 12)):
                template_id, channel, subject = ACTIONS[action]
                program = {"kind": "campaign", "campaign_id": 10, "action_id": action}
                program["template"] = subject
                yield message(
                    pk, cio_id, person, channel, template_id, subject, joined + offset, program
                )
        if a["churn_risk"] == "high" and a["plan"] != "free":
            template_id, channel, subject = ACTIONS[21]
            program = {"kind": "campaign", "campaign_id": 20, "action_id": 21, "template": subject}
            sent = rng.randrange(start, at - HOUR)
            yield message(pk, cio_id, person, channel, template_id, subject, sent, program)
        if rng.random() < 0.1:
            sent = rng.randrange(start, at - HOUR)
            yield message(pk, cio_id, person, "email", 2, "Reset your password", sent, {})
        if a["plan"] != "free" and rng.random() < 0.8:
            sent = rng.randrange(start, at - HOUR)
            yield message(pk, cio_id, person, "email", 4, "Your receipt", sent, {})
        if "phone" in a and rng.random() < 0.3:
            sent = rng.randrange(start, at - HOUR)
            yield message(pk, cio_id, person, "sms", 6, "", sent, {})


def _outcome(
    rng: random.Random, person: dict, channel: str, sent_at: int, at: int
) -> tuple[str, dict[str, int], str | None]:
    """(recipient, metrics {name: unix time}, failure message) of one message."""
    metrics = {"sent": sent_at}
    if channel == "email":
        to = person["email"]
        if rng.random() < 0.03:
            metrics["bounced"] = sent_at + rng.randrange(2, 60)
            return to, metrics, rng.choice(BOUNCES).format(to=to)
        open_rate, click_rate = 0.45, 0.3
    elif channel == "push":
        if rng.random() < 0.12:
            del metrics["sent"]
            metrics["undeliverable"] = sent_at
            return "", metrics, "the person has no devices"
        to, open_rate, click_rate = f"device-{person['id']}", 0.2, 0.0
    else:
        to = person["attributes"].get("phone", "")
        if rng.random() < 0.04:
            metrics["failed"] = sent_at + rng.randrange(1, 30)
            return to, metrics, rng.choice(SMS_FAILURES)
        open_rate, click_rate = 0.0, 0.08
    delivered = sent_at + rng.randrange(1, 90)
    metrics["delivered"] = delivered
    if rng.random() < open_rate:
        opened = delivered + int(rng.expovariate(1 / (3 * HOUR)))
        if opened < at:
            metrics["opened"] = metrics["human_opened"] = opened
            if rng.random() < click_rate:
                clicked = opened + rng.randrange(5, 600)
                metrics["clicked"] = metrics["human_clicked"] = min(clicked, at)
                if rng.random() < 0.1:
                    metrics["converted"] = min(clicked + rng.randrange(60, DAY), at)
            if channel == "email" and rng.random() < 0.01:
                metrics["unsubscribed"] = min(opened + 30, at)
    elif channel == "sms" and rng.random() < click_rate:
        metrics["clicked"] = min(delivered + rng.randrange(5, 3600), at)
    if channel == "email" and rng.random() < 0.002:
        metrics["spammed"] = min(delivered + HOUR, at)
    return to, metrics, None
