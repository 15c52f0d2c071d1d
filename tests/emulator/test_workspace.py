"""Workspace files: the shipped demo, custom workspaces, errors, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cio_flows.emulator import DEMO_PATH, Emulator, WorkspaceError
from cio_flows.emulator import make_demo_workspace as make

from .conftest import Client, eq


def test_demo_file_is_what_the_script_generates():
    assert DEMO_PATH.read_text(encoding="utf-8") == make.render(make.build())


def test_demo_contents(emu):
    people = emu.inspect.people()
    assert len(people) == 300
    assert people[0]["id"] == "user_0001" and "@" in people[0]["email"]
    assert {p["attributes"]["plan"] for p in people} == {"free", "pro", "enterprise"}
    assert all(
        {"first_name", "country", "created_at", "mrr"} <= set(p["attributes"]) for p in people
    )
    segments = emu.inspect.segments()
    assert 6 <= len(segments) <= 9
    assert {
        "Pro plan",
        "Enterprise",
        "EU customers",
        "Churn risk",
        "Newsletter subscribers",
        "Beta testers",
    } <= {s["name"] for s in segments}
    assert all(s["count"] > 0 for s in segments)
    triggers = {t["trigger"] for t in emu._state.templates.values()}
    assert {"welcome", "password_reset", "win_back", "receipt"} <= triggers
    assert {"email", "push", "sms"} <= {t["channel"] for t in emu._state.templates.values()}
    assert len(emu.inspect.events()) > 600


def test_demo_cio_ids_are_stable(emu):
    first = emu.inspect.person("user_0001")["cio_id"]
    with Emulator() as other:
        assert other.inspect.person("user_0001")["cio_id"] == first


def test_custom_workspace_from_dict_and_file(tmp_path):
    data = {
        "templates": [{"id": 10, "trigger": "hello", "channel": "sms"}],
        "segments": [
            {"id": 3, "name": "Gold", "filter": eq("tier", "gold")},
            {"id": 4, "name": "Picked", "members": ["a@x.io"]},
        ],
        "people": [
            {
                "id": "a",
                "email": "a@x.io",
                "attributes": {"tier": "gold"},
                "events": [{"name": "joined", "timestamp": 1700000000}],
            },
            {"email": "b@x.io", "attributes": {"tier": "silver"}},
        ],
    }
    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(data))
    for source in (data, path, str(path)):
        with Emulator(workspace=source) as emu:
            c = Client(emu)
            assert c.app("GET", "/v1/segments/3/membership").json()["ids"] == ["a"]
            assert c.app("GET", "/v1/segments/4/customer_count").json()["count"] == 1
            r = c.app(
                "POST",
                "/v1/send/sms",
                {"transactional_message_id": "hello", "identifiers": {"id": "a"}, "to": "+1555"},
            )
            assert r.status_code == 200
            welcome = {"transactional_message_id": "welcome", "to": "a@x.io"}
            assert c.app("POST", "/v1/send/email", welcome).status_code == 404


BAD = {
    "unknown key": {"peeple": []},
    "person without identifier": {"people": [{"attributes": {}}]},
    "template without id": {"templates": [{"trigger": "x"}]},
    "bad channel": {"templates": [{"id": 1, "channel": "fax"}]},
    "bad segment filter": {"segments": [{"id": 1, "name": "x", "filter": {"and": []}}]},
    "unknown member": {"segments": [{"id": 1, "name": "x", "members": ["ghost"]}]},
    "bad limits": {"limits": "fast"},
}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_invalid_workspaces_are_refused_with_a_message(data):
    with pytest.raises((WorkspaceError, ValueError)) as info:
        Emulator(workspace=data)
    assert str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(WorkspaceError, match="cannot read"):
        Emulator(workspace=tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("people: [unclosed")
    with pytest.raises(WorkspaceError, match="invalid YAML"):
        Emulator(workspace=broken)


def test_file_database_keeps_state_across_restarts(tmp_path: Path):
    db = str(tmp_path / "state.sqlite")
    with Emulator(db_path=db) as emu:
        Client(emu).track("PUT", "/api/v1/customers/kept", {"a": 1})
        Client(emu).track("DELETE", "/api/v1/customers/user_0001")
    with Emulator(db_path=db) as emu:
        assert emu.inspect.person("kept") is not None
        assert emu.inspect.person("user_0001") is None  # not reloaded over existing state
        emu.reset()
        assert emu.inspect.person("kept") is None and emu.inspect.person("user_0001") is not None


def test_broadcasts_and_delivery_timing_from_a_workspace():
    data = {
        "segments": [{"id": 3, "name": "QA", "type": "manual", "members": ["qa1"]}],
        "people": [{"id": "qa1", "email": "qa1@x.io"}, {"id": "qa2", "email": "qa2@x.io"}],
        "broadcasts": [{"id": 5, "name": "QA push", "channel": "email", "segment": 3}],
        "delivery": {"sent": 0, "delivered": 0, "trigger": 0},
    }
    with Emulator(workspace=data) as emu:
        client = Client(emu)
        tid = client.app("POST", "/v1/campaigns/5/triggers", {}).json()["id"]
        status = client.app("GET", f"/v1/campaigns/5/triggers/{tid}").json()
        assert status["processed_at"] is not None and status["recipients_count"] == 1
        (msg,) = client.app("GET", "/v1/messages", params={"broadcast_id": 5}).json()["messages"]
        assert (msg["customer_id"], msg["recipient"]) == ("qa1", "qa1@x.io")
        assert "delivered" in msg["metrics"]
        client.http.close()


def test_demo_has_broadcast_1(client):
    r = client.app("GET", "/v1/broadcasts/1/triggers")
    assert r.status_code == 200 and r.json() == {"triggers": []}


@pytest.mark.parametrize(
    "data",
    [
        {"broadcasts": [{"name": "no id"}]},
        {"broadcasts": [{"id": 1, "name": "x", "channel": "fax"}]},
        {"broadcasts": [{"id": 1, "name": "x", "segment": 99}]},
        {"broadcasts": [{"id": 1, "name": "x", "colour": "red"}]},
        {"broadcasts": [{"id": 1, "name": "x"}, {"id": 1, "name": "y"}]},
        {"delivery": {"sent": 2, "delivered": 1}},
        {"delivery": {"soon": 1}},
    ],
)
def test_invalid_broadcasts_and_timing_are_refused(data):
    with pytest.raises((WorkspaceError, ValueError)):
        Emulator(workspace=data).close()
