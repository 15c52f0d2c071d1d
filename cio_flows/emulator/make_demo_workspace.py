"""Generate demo_workspace.yaml: ~300 realistic people, segments, templates and an API-triggered
broadcast, deterministically.

    python -m cio_flows.emulator.make_demo_workspace [OUT]

Seeded, so the file only changes when this script does. One person per line (YAML flow style)
keeps the file compact and quick to load.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

SEED = 20240601
PEOPLE = 300
FIRST = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Ben",
    "Carla",
    "Chen",
    "Diego",
    "Elena",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Ian",
    "Ines",
    "Jon",
    "Julia",
    "Kai",
    "Lara",
    "Leo",
    "Lina",
    "Luca",
    "Maya",
    "Mia",
    "Nils",
    "Noah",
    "Omar",
    "Olga",
    "Paul",
    "Priya",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tom",
    "Uma",
    "Vera",
    "Yuki",
    "Zoe",
]
LAST = [
    "Alvarez",
    "Berg",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Xu",
    "Young",
    "Zimmer",
]
COUNTRIES = {
    "US": 30,
    "GB": 10,
    "DE": 10,
    "FR": 8,
    "NL": 5,
    "ES": 5,
    "IT": 4,
    "SE": 3,
    "IE": 2,
    "CA": 7,
    "AU": 5,
    "BR": 5,
    "IN": 4,
    "JP": 2,
}
EU = ("DE", "FR", "NL", "ES", "IT", "SE", "IE")
PLANS = {"free": 60, "pro": 30, "enterprise": 10}
DOMAINS = ("example.com", "example.org", "example.net")
START = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400


def _attr(field: str, value: Any) -> dict[str, Any]:
    return {"attribute": {"field": field, "operator": "eq", "value": value}}


TEMPLATES = [
    {
        "id": 1,
        "trigger": "welcome",
        "name": "Welcome email",
        "channel": "email",
        "subject": "Welcome, {{ customer.first_name | default: 'there' }}!",
        "body": "<p>Hi {{ customer.first_name | default: 'there' }}, welcome aboard.</p>",
    },
    {"id": 2, "trigger": "password_reset", "name": "Password reset", "channel": "email"},
    {
        "id": 3,
        "trigger": "win_back",
        "name": "We miss you",
        "channel": "email",
        "subject": "We miss you, {{ customer.first_name | default: 'friend' }}",
        "body": "<p>{{ trigger.offer | default: 'Come back and see what is new.' }}</p>",
    },
    {"id": 4, "trigger": "receipt", "name": "Payment receipt", "channel": "email"},
    {"id": 5, "trigger": "order_shipped", "name": "Order shipped", "channel": "push"},
    {"id": 6, "trigger": "login_code", "name": "Login code", "channel": "sms"},
    {"id": 7, "trigger": "appointment_reminder", "name": "Reminder", "channel": "whatsapp"},
    {"id": 8, "trigger": "feature_tour", "name": "Feature tour", "channel": "in_app"},
    {"id": 9, "trigger": "inbox_notice", "name": "Account notice", "channel": "inbox_message"},
]

SEGMENTS = [
    {
        "id": 1,
        "name": "Pro plan",
        "description": "People on the pro plan",
        "type": "dynamic",
        "filter": _attr("plan", "pro"),
    },
    {
        "id": 2,
        "name": "Enterprise",
        "description": "Enterprise accounts",
        "type": "dynamic",
        "filter": _attr("plan", "enterprise"),
    },
    {
        "id": 3,
        "name": "EU customers",
        "description": "Country in the European Union",
        "type": "dynamic",
        "filter": {"or": [_attr("country", c) for c in EU]},
    },
    {
        "id": 4,
        "name": "Churn risk",
        "description": "Paying customers flagged as likely to churn",
        "type": "dynamic",
        "filter": {"and": [_attr("churn_risk", "high"), {"not": _attr("plan", "free")}]},
    },
    {
        "id": 5,
        "name": "Newsletter subscribers",
        "description": "Opted in to the newsletter",
        "type": "dynamic",
        "filter": {"and": [_attr("newsletter", True), {"not": _attr("unsubscribed", True)}]},
    },
    {
        "id": 6,
        "name": "Paying customers",
        "description": "Pro or enterprise",
        "type": "dynamic",
        "filter": {"or": [{"segment": {"id": 1}}, {"segment": {"id": 2}}]},
    },
    {
        "id": 7,
        "name": "Has phone",
        "description": "A phone number is on file",
        "type": "dynamic",
        "filter": {"attribute": {"field": "phone", "operator": "exists"}},
    },
]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def person_attributes(rng: random.Random) -> dict[str, Any]:
    """A demo person's attributes; the draws in a fixed order, so a seed gives the same people."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    plan = _pick(rng, PLANS)
    country = _pick(rng, COUNTRIES)
    created = rng.randrange(START, END)
    mrr = {"free": 0, "pro": rng.choice((29, 49, 99)), "enterprise": rng.choice((499, 999, 2499))}
    attrs: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "plan": plan,
        "country": country,
        "created_at": created,
        "mrr": mrr[plan],
        "newsletter": rng.random() < 0.45,
        "churn_risk": rng.choices(("low", "medium", "high"), weights=(70, 20, 10))[0],
    }
    if rng.random() < 0.3:
        attrs["phone"] = f"+1555{rng.randrange(1000000, 9999999)}"
    if rng.random() < 0.05:
        attrs["unsubscribed"] = True
    return attrs


def _person(rng: random.Random, n: int) -> dict[str, Any]:
    attrs = person_attributes(rng)
    first, last, created = attrs["first_name"], attrs["last_name"], attrs["created_at"]
    plan, mrr = attrs["plan"], {attrs["plan"]: attrs["mrr"]}
    events = [{"name": "signed_up", "timestamp": created, "data": {"plan": "free"}}]
    t = created
    for _ in range(rng.randrange(0, 4)):
        t += rng.randrange(DAY, 30 * DAY)
        events.append({"name": "logged_in", "timestamp": t, "data": {}})
    if plan != "free":
        t += rng.randrange(DAY, 60 * DAY)
        events.append(
            {
                "name": "plan_upgraded",
                "timestamp": t,
                "data": {"from_plan": "free", "to_plan": plan, "mrr": mrr[plan]},
            }
        )
        events.append(
            {
                "name": "purchase",
                "timestamp": t + 60,
                "data": {"amount": mrr[plan], "currency": "USD"},
            }
        )
    email = f"{first.lower()}.{last.lower()}{n}@{rng.choice(DOMAINS)}"
    return {
        "id": f"user_{n:04d}",
        "email": email,
        "created_at": created,
        "attributes": attrs,
        "events": events,
    }


# API-triggered broadcasts; id 1 goes to the Beta testers (a manual segment), so a flow can
# trigger it for a small, known audience.
BROADCASTS = [
    {
        "id": 1,
        "name": "Beta feature announcement",
        "channel": "email",
        "segment": 8,
        "subject": "New in beta",
    },
]


# A journey the emulator runs on its clock (flows/scenarios/trial_journey.yaml tests it): two
# seconds after `trial_started` the welcome, a day later the win-back email for free users only.
CAMPAIGNS = [
    {
        "id": 30,
        "name": "Trial journey",
        "trigger": {"event": "trial_started"},
        "actions": [
            {"wait": 2},
            {"send": "welcome"},
            {"wait": "1d"},
            {"send": "win_back", "when": _attr("plan", "free")},
        ],
    },
]


def build(seed: int = SEED, count: int = PEOPLE) -> dict[str, Any]:
    rng = random.Random(seed)
    people = [_person(rng, n) for n in range(1, count + 1)]
    beta = sorted(rng.sample([p["id"] for p in people], 12))
    segments = [
        *SEGMENTS,
        {
            "id": 8,
            "name": "Beta testers",
            "description": "Hand-picked",
            "type": "manual",
            "members": beta,
        },
    ]
    return {
        "version": 1,
        "name": "demo",
        "templates": TEMPLATES,
        "segments": segments,
        "broadcasts": BROADCASTS,
        "campaigns": CAMPAIGNS,
        "people": people,
    }


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Demo workspace for the Customer.io emulator. Generated by make_demo_workspace.py:",
        "# edit the script, not this file.",
        f"version: {data['version']}",
        f"name: {data['name']}",
        "templates:",
        *(f"  - {_flow(t)}" for t in data["templates"]),
        "segments:",
        *(f"  - {_flow(s)}" for s in data["segments"]),
        "broadcasts:",
        *(f"  - {_flow(b)}" for b in data["broadcasts"]),
        "campaigns:",
        *(f"  - {_flow(c)}" for c in data["campaigns"]),
        "people:",
        *(f"  - {_flow(p)}" for p in data["people"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).with_name("demo_workspace.yaml")
    out.write_text(render(build()), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
