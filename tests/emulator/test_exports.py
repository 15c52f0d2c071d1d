"""Exports (customers, deliveries), their lifecycle and file format; campaign / broadcast /
newsletter lists and metrics; workspace activities; the generated demo workspace."""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Iterator

import pytest
import requests

from cio_flows.emulator import Emulator

from .conftest import Client, eq

EXPORT_DELAY = 0.3


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A generated demo of 400 people (message history included); exports done after 0.3 s."""
    with Emulator(workspace={"demo": {"people": 400}}, delivery={"export": EXPORT_DELAY}) as emu:
        yield emu


def _done(client: Client, export_id: int) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        export = client.app("GET", f"/v1/exports/{export_id}").json()["export"]
        if export["status"] == "done":
            return export
        time.sleep(0.05)
    raise AssertionError("export never done")


def _file(client: Client, export_id: int) -> list[dict[str, str]]:
    url = client.app("GET", f"/v1/exports/{export_id}/download").json()["url"]
    answer = requests.get(url, timeout=10)  # no Authorization header: a signed link
    assert answer.status_code == 200
    assert answer.content[:2] == b"\x1f\x8b"  # gzip
    return list(csv.DictReader(io.StringIO(gzip.decompress(answer.content).decode())))


def test_customers_export_is_pending_then_done_with_a_gzip_csv(client: Client) -> None:
    started = client.app("POST", "/v1/exports/customers", {"filters": eq("plan", "pro")})
    assert started.status_code == 200
    export = started.json()["export"]
    assert (export["status"], export["total"], export["type"]) == ("pending", 0, "customers")
    early = client.app("GET", f"/v1/exports/{export['id']}/download")
    assert early.status_code == 400  # not done yet
    done = _done(client, export["id"])
    rows = _file(client, export["id"])
    pro = client.search(eq("plan", "pro"), limit=1000).json()["ids"]
    assert done["total"] == len(rows) == len(pro) > 0
    assert [r["id"] for r in rows] == pro
    assert list(rows[0])[:5] == [
        "cio_id",
        "id",
        "email",
        "_created_in_customerio_at",
        "unsubscribed",
    ]
    first = client.attributes(rows[0]["id"]).json()["customer"]["attributes"]
    for name in ("plan", "mrr", "country", "first_name"):
        assert rows[0][name] == first[name]  # the strings the attributes endpoint shows
    assert client.app("GET", f"/v1/exports/{export['id']}").json()["export"]["downloads"] == 1
    listed = client.app("GET", "/v1/exports").json()["exports"]
    assert [e["id"] for e in listed] == [export["id"]]


def test_customers_export_with_attributes_has_only_those_columns(client: Client) -> None:
    body = {"filters": eq("plan", "enterprise"), "attributes": ["mrr"]}
    export = client.app("POST", "/v1/exports/customers", body).json()["export"]
    _done(client, export["id"])
    rows = _file(client, export["id"])
    assert set(rows[0]) == {
        "cio_id",
        "id",
        "email",
        "_created_in_customerio_at",
        "unsubscribed",
        "mrr",
    }


def test_export_errors(client: Client) -> None:
    assert client.app("POST", "/v1/exports/customers", {}).status_code == 400
    bad = {"filters": {"attribute": {"field": "plan", "operator": "nope"}}}
    assert client.app("POST", "/v1/exports/customers", bad).status_code == 400
    two = {"newsletter_id": 1, "campaign_id": 10}
    assert client.app("POST", "/v1/exports/deliveries", two).status_code == 400
    assert client.app("GET", "/v1/exports/12345").status_code == 404


def test_download_link_is_signed(client: Client) -> None:
    export = client.app("POST", "/v1/exports/customers", {"filters": eq("plan", "pro")})
    export_id = export.json()["export"]["id"]
    _done(client, export_id)
    url = client.app("GET", f"/v1/exports/{export_id}/download").json()["url"]
    tampered = url.replace("signature=", "signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403
    other = url.replace(f"/{export_id}.csv.gz", f"/{export_id + 1}.csv.gz")
    assert requests.get(other, timeout=10).status_code == 403
    logged = client.emulator.inspect.requests("download")
    assert logged and all("signature=" not in e["query"] or "..." in e["query"] for e in logged)


def test_deliveries_export_matches_the_messages_api(client: Client) -> None:
    export = client.app("POST", "/v1/exports/deliveries", {"newsletter_id": 1}).json()["export"]
    _done(client, export["id"])
    rows = _file(client, export["id"])
    listed = client.app("GET", "/v1/messages", params={"newsletter_id": 1, "limit": 1000})
    messages = {m["id"]: m for m in listed.json()["messages"]}
    assert {r["id"] for r in rows} == set(messages) and rows
    for row in rows[:50]:
        message = messages[row["id"]]
        assert row["newsletter_id"] == "1" and row["type"] == "email"
        for metric in ("sent", "delivered", "opened", "clicked", "bounced"):
            assert row[metric] == str(message["metrics"].get(metric, ""))
        assert row["failure_message"] == (message["failure_message"] or "")


def test_metrics_count_the_messages_held(client: Client) -> None:
    listed = client.app("GET", "/v1/messages", params={"newsletter_id": 2, "limit": 1000})
    messages = listed.json()["messages"]
    body = client.app("GET", "/v1/newsletters/2/metrics", params={"period": "days"}).json()
    series = body["metric"]["series"]
    assert len(series["sent"]) == 45  # no steps: the maximum for days
    for metric in ("sent", "delivered", "opened", "clicked", "bounced"):
        assert sum(series[metric]) == sum(metric in m["metrics"] for m in messages)
    short = client.app("GET", "/v1/broadcasts/2/metrics", params={"steps": 1}).json()
    assert len(short["metric"]["series"]["sent"]) == 2  # at least 2 periods
    assert client.app("GET", "/v1/campaigns/10/metrics", params={"version": 3}).status_code == 400
    assert client.app("GET", "/v1/campaigns/10/metrics").status_code == 200  # version 1
    campaign = client.app("GET", "/v1/campaigns/10/metrics", params={"version": 1})
    assert sum(campaign.json()["metric"]["series"]["sent"]) > 0
    assert client.app("GET", "/v1/campaigns/99/metrics", params={"version": 1}).status_code == 404


def test_program_lists(client: Client) -> None:
    campaigns = client.app("GET", "/v1/campaigns").json()["campaigns"]
    assert [c["name"] for c in campaigns] == ["Onboarding", "Win-back"]
    assert campaigns[0]["actions"] == [{"id": 11, "type": "email"}, {"id": 12, "type": "push"}]
    broadcasts = client.app("GET", "/v1/broadcasts").json()["broadcasts"]
    assert [b["id"] for b in broadcasts] == [1, 2]
    newsletter = client.app("GET", "/v1/newsletters/1").json()["newsletter"]
    assert newsletter["name"] == "Monthly product news"


def test_workspace_activities_newest_first(client: Client) -> None:
    body = client.app("GET", "/v1/activities", params={"limit": 50}).json()
    stamps = [a["timestamp"] for a in body["activities"]]
    assert len(stamps) == 50 and stamps == sorted(stamps, reverse=True) and body["next"]
    opened = client.app("GET", "/v1/activities", params={"type": "opened_email", "limit": 5})
    assert {a["type"] for a in opened.json()["activities"]} == {"opened_email"}


def test_workspace_activity_pages_follow_on(client: Client) -> None:
    """Small pages, each read after the last one's cursor, are the big page cut up: nothing
    repeated or skipped, with and without a filter."""
    for params in ({}, {"type": "opened_email"}, {"name": "Welcome aboard"}):
        whole = client.app("GET", "/v1/activities", params={**params, "limit": 100}).json()
        paged: list[dict] = []
        cursor = ""
        while len(paged) < 98:
            page = client.app(
                "GET", "/v1/activities", params={**params, "limit": 7, "start": cursor}
            ).json()
            assert len(page["activities"]) == 7 and page["next"]
            paged += page["activities"]
            cursor = page["next"]
        assert paged == whole["activities"][:98]
        assert len({a["id"] for a in paged}) == 98
    bad = client.app("GET", "/v1/activities", params={"start": "not-a-cursor"})
    assert bad.status_code == 400


def test_message_pages_follow_on(client: Client) -> None:
    """Pages read after each cursor are the big page cut up, filtered or not."""
    for params in ({}, {"metric": "opened"}, {"type": "push"}):
        whole = client.app("GET", "/v1/messages", params={**params, "limit": 60}).json()
        paged: list[dict] = []
        cursor = ""
        while len(paged) < 60:
            page = client.app(
                "GET", "/v1/messages", params={**params, "limit": 6, "start": cursor}
            ).json()
            assert len(page["messages"]) == 6 and page["next"], params
            paged += page["messages"]
            cursor = page["next"]
        assert paged == whole["messages"]
        assert len({m["id"] for m in paged}) == 60


def test_demo_size_is_what_was_asked(client: Client) -> None:
    people = client.emulator.inspect.people()
    assert len(people) == 400 and people[-1]["id"] == "user_0400"
    segments = {s["name"]: s["count"] for s in client.emulator.inspect.segments()}
    assert segments["Beta testers"] == 12 and 0 < segments["Pro plan"] < 400


def test_demo_setting_is_checked() -> None:
    from cio_flows.emulator import WorkspaceError

    with pytest.raises(WorkspaceError, match="demo"):
        Emulator(workspace={"demo": {"people": 0}})
