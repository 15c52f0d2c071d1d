"""Messages and metrics of a broadcast or transactional message, a segment's users, the
workspaces list and deleting a newsletter, from what the emulator holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cio_flows.emulator import Emulator

from .conftest import Client


def test_a_transactional_message_lists_its_messages_and_metrics(client: Client) -> None:
    client.emulator.configure(delivery={"sent": 0, "delivered": 0})
    sent = []
    for i in range(3):
        body = {
            "transactional_message_id": 1,
            "to": f"t{i}@example.com",
            "identifiers": {"id": f"t{i}"},
        }
        sent.append(client.app("POST", "/v1/send/email", body).json()["delivery_id"])
    client.app("POST", "/v1/send/email", {**body, "transactional_message_id": 2})
    listed = client.app("GET", "/v1/transactional/1/messages").json()
    assert {m["id"] for m in listed["messages"]} == set(sent)
    series = client.app("GET", "/v1/transactional/1/metrics").json()["metric"]["series"]
    assert sum(series["delivered"]) == 3
    assert client.app("GET", "/v1/transactional/999/messages").status_code == 404


def test_a_broadcast_lists_its_messages(client: Client) -> None:
    client.emulator.configure(delivery={"trigger": 0})
    client.app("POST", "/v1/campaigns/1/triggers", {"ids": ["user_0007", "user_0023"]})
    listed = client.app("GET", "/v1/broadcasts/1/messages").json()["messages"]
    assert sorted(m["customer_id"] for m in listed) == ["user_0007", "user_0023"]


def test_workspaces_count_people(client: Client) -> None:
    (workspace,) = client.app("GET", "/v1/workspaces").json()["workspaces"]
    assert workspace["people"] == len(client.emulator.inspect.people())


@pytest.fixture(scope="module")
def demo() -> Iterator[Emulator]:
    with Emulator(workspace={"demo": {"people": 30, "seed": 1}}) as emu:
        yield emu


def test_newsletters_can_be_deleted_and_segments_name_their_users(demo: Emulator) -> None:
    client = Client(demo)
    used = client.app("GET", "/v1/segments/5/used_by").json()["used_by"]
    assert used["sent_newsletters"] == [1, 2]
    assert client.app("DELETE", "/v1/newsletters/1").status_code == 204
    assert client.app("GET", "/v1/newsletters/1").status_code == 404
    assert client.app("DELETE", "/v1/newsletters/1").status_code == 404


def test_a_broadcast_has_one_action_and_no_invented_links(client: Client) -> None:
    (action,) = client.app("GET", "/v1/broadcasts/1/actions").json()["actions"]
    assert action["id"] == 1001 and action["broadcast_id"] == 1 and action["type"] == "email"
    assert client.app("GET", "/v1/broadcasts/1/actions/1001").json()["action"] == action
    assert client.app("GET", "/v1/broadcasts/1/actions/5").status_code == 404
    assert client.app("GET", "/v1/broadcasts/1/metrics/links").json() == {"links": []}
    assert client.app("GET", "/v1/broadcasts/9/metrics/links").status_code == 404
    series = client.app("GET", "/v1/broadcasts/1/actions/1001/metrics").json()["metric"]["series"]
    assert set(series) >= {"sent", "delivered"}


def test_a_campaign_action_counts_its_own_messages(demo: Emulator) -> None:
    client = Client(demo)
    whole = client.app("GET", "/v1/campaigns/10/metrics").json()["metric"]["series"]
    first = client.app("GET", "/v1/campaigns/10/actions/11/metrics").json()["metric"]["series"]
    second = client.app("GET", "/v1/campaigns/10/actions/12/metrics").json()["metric"]["series"]
    assert sum(first["sent"]) + sum(second["sent"]) == sum(whole["sent"]) > 0
    assert client.app("GET", "/v1/campaigns/999/actions/11/metrics").status_code == 404


def test_a_newsletter_shows_its_content(demo: Emulator) -> None:
    client = Client(demo)
    (content,) = client.app("GET", "/v1/newsletters/2/contents").json()["contents"]
    assert (content["id"], content["newsletter_id"], content["name"]) == (202, 2, "Summer update")
    one = client.app("GET", "/v1/newsletters/2/contents/202").json()["content"]
    assert one == content
    assert client.app("GET", "/v1/newsletters/2/contents/201").status_code == 404
    assert client.app("GET", "/v1/newsletters/2/test_groups").json() == {"test_groups": []}
