"""`cio-flows workspace pull`: from one emulator to a file, and a second emulator from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml
from click.testing import CliRunner

from cio_flows.cli import main
from cio_flows.emulator import DEMO_CREDENTIALS, Emulator
from cio_flows.pull import Pulled, Reader, read_workspace

APP_AUTH = {"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"}
FREE = {"attribute": {"field": "plan", "operator": "eq", "value": "free"}}
SOURCE: dict[str, Any] = {
    "templates": [
        {
            "id": 1,
            "trigger": "welcome",
            "name": "Welcome email",
            "channel": "email",
            "subject": "Welcome, {{ customer.first_name }}!",
            "body": "<p>Hi</p>",
        },
        {
            "id": 2,
            "trigger": "nudge",
            "name": "Upgrade nudge",
            "channel": "email",
            "subject": "Still free?",
            "body": "<p>Try pro</p>",
            "from": "team@example.com",
        },
        {
            "id": 3,
            "trigger": "code",
            "name": "Login code",
            "channel": "sms",
            "body": "{{ trigger.code }}",
        },
    ],
    "people": [
        {
            "id": "ada",
            "email": "ada@example.com",
            "attributes": {"plan": "free", "first_name": "Ada"},
        },
        {
            "id": "bob",
            "email": "bob@example.com",
            "attributes": {"plan": "pro", "first_name": "Bob"},
        },
    ],
    "segments": [
        {
            "id": 1,
            "name": "Pro plan",
            "type": "dynamic",
            "filter": {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}},
        },
        {
            "id": 7,
            "name": "Beta testers",
            "description": "Hand-picked",
            "type": "manual",
            "members": ["ada"],
        },
    ],
    "broadcasts": [
        {
            "id": 3,
            "name": "Product update",
            "channel": "email",
            "segment": 7,
            "subject": "What's new",
        }
    ],
    "campaigns": [
        {
            "id": 10,
            "name": "Welcome series",
            "trigger": {"event": "signed_up"},
            "actions": [
                {"wait": 2},
                {"send": "welcome"},
                {"wait": "1d"},
                {"send": 2, "when": FREE},
            ],
        },
        {
            "id": 20,
            "name": "Pro onboarding",
            "trigger": {"segment": 1},
            "filter": FREE,
            "actions": [{"send": 1, "id": 777}],
        },
    ],
}


def app_get(emu: Emulator, path: str) -> Any:
    r = requests.get(emu.url + path, headers=APP_AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def ids_and_names(emu: Emulator) -> dict[str, list[tuple[int, str]]]:
    lists = {
        "segments": "/v1/segments",
        "campaigns": "/v1/campaigns",
        "broadcasts": "/v1/broadcasts",
        "messages": "/v1/transactional",
    }
    return {
        key: sorted((item["id"], item["name"]) for item in app_get(emu, path)[key])
        for key, path in lists.items()
    }


def pull_file(emu: Emulator, out: Path, *extra: str) -> str:
    env = {"CUSTOMERIO_APP_TOKEN": DEMO_CREDENTIALS.app_key, "CUSTOMERIO_APP_URL": emu.url}
    result = CliRunner().invoke(
        main, ["workspace", "pull", "--out", str(out), *extra], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert DEMO_CREDENTIALS.app_key not in result.output
    return out.read_text(encoding="utf-8")


def test_a_second_emulator_from_the_pulled_file_holds_the_same_workspace(tmp_path: Path) -> None:
    out = tmp_path / "pulled.yaml"
    with Emulator(workspace=SOURCE) as first:
        text = pull_file(first, out, "--people", "5")
        expected = ids_and_names(first)
    assert DEMO_CREDENTIALS.app_key not in text
    data = yaml.safe_load(text)
    assert [p["id"] for p in data["people"]] == ["ada", "bob"]
    with Emulator(workspace=out) as second:
        assert ids_and_names(second) == expected
        assert expected["campaigns"] == [(10, "Welcome series"), (20, "Pro onboarding")]
        assert len(expected["messages"]) == 3 and len(expected["segments"]) == 2
        # What the App API does not show came through the emulator's definitions.
        welcome = {c["id"]: c for c in data["campaigns"]}[10]
        assert welcome["actions"][0] == {"wait": 2} and welcome["actions"][2] == {"wait": "1d"}
        assert welcome["actions"][3]["when"] == FREE
        segments = {s["id"]: s for s in app_get(second, "/v1/segments")["segments"]}
        assert segments[1]["type"] == "dynamic" and segments[7]["type"] == "manual"
        members = app_get(second, "/v1/segments/7/membership")["identifiers"]
        assert [m["id"] for m in members] == ["ada"]
        contents = app_get(second, "/v1/transactional/2/contents")["contents"][0]
        assert contents["subject"] == "Still free?" and contents["from"] == "team@example.com"
        actions = app_get(second, "/v1/campaigns/20/actions")["actions"]
        assert [a["id"] for a in actions] == [777]


def test_the_demo_workspace_pulls_and_loads(tmp_path: Path) -> None:
    out = tmp_path / "demo.yaml"
    with Emulator() as first:
        text = pull_file(first, out, "--people", "120")  # more than a search page's default 50
        expected = ids_and_names(first)
    people = yaml.safe_load(text)["people"]
    assert len(people) == 120 and people[0]["attributes"]["first_name"]
    with Emulator(workspace=out) as second:
        assert ids_and_names(second) == expected
        assert len(second.inspect.people()) == 120


class CustomerIo(Reader):
    """Answers as Customer.io would: no /_emulator/definitions, segment conditions hidden."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def get(self, path: str, params: tuple[tuple[str, str], ...] = ()) -> Any:
        return self.answers[path]

    def post(self, path: str, body: Any, params: tuple[tuple[str, str], ...] = ()) -> Any:
        return self.answers[path]

    def emulator_definitions(self) -> dict[str, Any] | None:
        return None


def test_what_customer_io_does_not_show_is_said_in_comments() -> None:
    answers = {
        "/v1/transactional": {"messages": [{"id": 4, "name": "Receipt"}]},
        "/v1/transactional/4/contents": {"contents": [{"type": "email", "subject": "Paid"}]},
        "/v1/segments": {"segments": [{"id": 1, "name": "Pro plan", "type": "dynamic"}]},
        "/v1/broadcasts": {"broadcasts": []},
        "/v1/newsletters": {"newsletters": [{"id": 9, "name": "March news"}]},
        "/v1/campaigns": {
            "campaigns": [
                {"id": 10, "name": "Welcome", "type": "event", "event_name": "signed_up"},
                {"id": 11, "name": "Birthday", "type": "date"},
            ]
        },
        "/v1/campaigns/10/actions": {
            "actions": [{"id": 501, "type": "email", "name": "Hi", "subject": "Hello"}]
        },
    }
    pulled: Pulled = read_workspace(CustomerIo(answers), "https://api.customer.io", 0)
    text = pulled.to_yaml()
    data = yaml.safe_load(text)
    assert data["campaigns"] == [
        {
            "id": 10,
            "name": "Welcome",
            "trigger": {"event": "signed_up"},
            "actions": [{"send": 501, "id": 501}],
        }
    ]
    assert {t["id"] for t in data["templates"]} == {4, 501}
    assert data["segments"] == [{"id": 1, "name": "Pro plan", "type": "manual"}]
    assert "conditions are not in the App API" in text
    assert "Birthday" in text and "cannot run" in text
    assert "waits" in text and "March news" in text
    with Emulator(workspace=data):
        pass  # the file loads


def test_without_an_app_key_nothing_is_read_and_the_exit_is_2() -> None:
    env = {"CUSTOMERIO_APP_TOKEN": None, "CUSTOMERIO_APP_URL": "http://127.0.0.1:9"}
    result = CliRunner().invoke(main, ["workspace", "pull"], env=env)
    assert result.exit_code == 2
    assert "CUSTOMERIO_APP_TOKEN" in result.output


def test_a_name_with_line_breaks_stays_inside_its_comment() -> None:
    """A segment named with a line break (from a real workspace's App API) is quoted in a
    comment: it must not add lines of YAML to the file."""
    pulled = Pulled(source="https://api.customer.io")
    for brk in ("\n", "\r", "\u2028", "\x85"):
        name = f"VIP{brk}people: [{{id: injected}}]{brk}clock: nope"
        pulled.note("segments", f"Segment 9 ({name}) is dynamic there: manual here.")
    loaded = yaml.safe_load(pulled.to_yaml())
    assert set(loaded) == {"version", "name"}  # no `people` or `clock` came from a name


def test_an_out_file_that_cannot_be_written_is_exit_2_before_any_read(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    with Emulator(workspace=SOURCE) as emu:
        before = len(emu.inspect.requests("app"))
        env = {"CUSTOMERIO_APP_TOKEN": DEMO_CREDENTIALS.app_key, "CUSTOMERIO_APP_URL": emu.url}
        out = tmp_path / "a_file" / "pulled.yaml"  # a folder that is a file
        result = CliRunner().invoke(main, ["workspace", "pull", "--out", str(out)], env=env)
        assert result.exit_code == 2, result.output
        assert "cannot write it" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert len(emu.inspect.requests("app")) == before
        assert "templates" in pull_file(emu, tmp_path / "new" / "folder" / "pulled.yaml")


def test_a_refused_app_key_is_exit_3() -> None:
    with Emulator(workspace=SOURCE) as emu:
        env = {"CUSTOMERIO_APP_TOKEN": "not-the-key-0123456789", "CUSTOMERIO_APP_URL": emu.url}
        result = CliRunner().invoke(main, ["workspace", "pull"], env=env)
    assert result.exit_code == 3, result.output
    assert "401" in result.output and "not-the-key-0123456789" not in result.output
