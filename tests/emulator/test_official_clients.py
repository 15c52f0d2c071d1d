"""Customer.io's own Python clients, pointed at the emulator, and read back via the App API.

The Track client hard-codes https, so its base_url is overridden after construction; the App
client takes `url`; the Pipelines client takes `host`. Names come from the modules that define
them: customerio and customerio-cdp-analytics both ship customerio/__init__.py, and whichever pip
installs last decides what the package root exports (tests/test_fresh_machine.py).
"""

from __future__ import annotations

import pytest
from customerio.analytics import Client as PipelinesClient
from customerio.api import APIClient, SendEmailRequest, SendPushRequest
from customerio.client_base import CustomerIOException
from customerio.track import CustomerIO

from cio_flows.emulator import DEMO_CREDENTIALS as C

from .conftest import eq


@pytest.fixture
def track(emu):
    client = CustomerIO(C.site_id, C.track_key, retries=0)
    client.base_url = f"{emu.url}/api/v1"
    yield client
    client.close()


@pytest.fixture
def api(emu):
    client = APIClient(C.app_key, url=emu.url, retries=0)
    yield client
    client.close()


def test_track_client_identify_track_delete(track, client, emu):
    track.identify(id="oc1", email="oc1+tag@x.io", plan="pro", seats=3)
    track.track(customer_id="oc1", name="purchase", data={"amount": 49}, id="01HZX")
    track.track(customer_id="oc1", name="purchase", data={"amount": 49}, id="01HZX")  # deduped
    track.pageview(customer_id="oc1", page="/pricing")
    track.track_anonymous(anonymous_id="anon-oc", name="visited")
    assert client.search(eq("email", "oc1+tag@x.io")).json()["ids"] == ["oc1"]
    attrs = client.attributes("oc1").json()["customer"]["attributes"]
    assert (attrs["plan"], attrs["seats"]) == ("pro", "3")
    names = [
        (e["type"], e["name"])
        for e in emu.inspect.events()
        if e["person"] and e["person"]["id"] == "oc1"
    ]
    assert names == [("event", "purchase"), ("page", "/pricing")]
    assert [e["anonymous_id"] for e in emu.inspect.events() if e["name"] == "visited"] == [
        "anon-oc"
    ]
    track.delete(customer_id="oc1")
    assert client.attributes("oc1").status_code == 404


def test_track_client_devices_suppress_merge(track, client, emu):
    track.identify(id="odev", email="odev@x.io")
    track.add_device(customer_id="odev", device_id="tok-9", platform="ios")
    assert [d["id"] for d in emu.inspect.devices()] == ["tok-9"]
    track.delete_device(customer_id="odev", device_id="tok-9")
    assert emu.inspect.devices() == []
    track.identify(id="osec", extra="yes")
    track.merge_customers("id", "odev", "id", "osec")
    assert client.attributes("odev").json()["customer"]["attributes"]["extra"] == "yes"
    track.suppress(customer_id="odev")
    assert client.attributes("odev").status_code == 404
    track.unsuppress(customer_id="odev")


def test_track_client_identifier_with_slash_and_email(track, client):
    track.identify(id="team/a b", plan="free")
    r = client.app("POST", "/v1/customers/attributes", {"ids": ["team/a b"]})
    assert r.json()["customers"][0]["customer"]["attributes"]["plan"] == "free"


def test_track_client_raises_on_errors(track):
    with pytest.raises(CustomerIOException, match="400"):
        track.track(customer_id="x", name="e" * 101)


def test_app_client_send_email(api, emu):
    request = SendEmailRequest(
        transactional_message_id="welcome",
        identifiers={"id": "user_0005"},
        to="someone@x.io",
        message_data={"first_name": "Sam"},
    )
    response = api.send_email(request)
    assert set(response) == {"delivery_id", "queued_at"}
    (delivery,) = emu.inspect.deliveries()
    assert delivery["delivery_id"] == response["delivery_id"]
    assert delivery["recipient"] == "someone@x.io"
    with pytest.raises(CustomerIOException, match="404"):
        api.send_email(
            SendEmailRequest(transactional_message_id="nope", identifiers={"id": "x"}, to="x@y.io")
        )


def test_pipelines_client_sync_mode(emu, client):
    pipelines = PipelinesClient(C.pipelines_key, host=emu.url, sync_mode=True, max_retries=0)
    pipelines.identify("pc1", {"email": "pc1@x.io", "plan": "enterprise"})
    pipelines.track("pc1", "signed_up", {"source": "ads"})
    assert client.search(eq("email", "pc1@x.io")).json()["ids"] == ["pc1"]
    assert client.attributes("pc1").json()["customer"]["attributes"]["plan"] == "enterprise"
    (event,) = [e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "pc1"]
    assert event["data"] == {"source": "ads"} and event["message_id"]


def test_pipelines_client_batches_and_flush(emu, client):
    errors = []
    pipelines = PipelinesClient(
        C.pipelines_key,
        host=emu.url,
        upload_size=25,
        gzip=True,
        on_error=lambda e, batch: errors.append(e),
    )
    for i in range(60):
        pipelines.identify(f"pb{i}", {"cohort": "flushed", "n": i})
    pipelines.track("pb0", "User Deleted")
    pipelines.flush()
    pipelines.join()
    assert errors == []
    ids = client.search(eq("cohort", "flushed"), limit=1000).json()["ids"]
    assert len(ids) == 59 and "pb0" not in ids
    batches = [r for r in emu.inspect.requests("pipelines") if r["path"] == "/v1/batch"]
    assert len(batches) >= 3 and all(r["status"] == 200 for r in batches)


def test_track_client_people_operations(track, client, emu):
    track.identify(id="oc2", email="oc2@x.io", plan="free")
    track.add_device(customer_id="oc2", device_id="tok/2", platform="android", app_version="3")
    (device,) = client.attributes("oc2").json()["customer"]["devices"]
    assert (device["id"], device["platform"], device["attributes"]) == (
        "tok/2",
        "android",
        {"app_version": "3"},
    )
    track.delete_device(customer_id="oc2", device_id="tok/2")
    assert client.attributes("oc2").json()["customer"]["devices"] == []
    track.identify(id="oc3", seats=4)
    track.track(customer_id="oc3", name="joined")
    track.merge_customers("id", "oc2", "id", "oc3")
    assert client.attributes("oc3").status_code == 404
    merged = client.attributes("oc2").json()["customer"]["attributes"]
    assert (merged["plan"], merged["seats"]) == ("free", "4")
    track.track_anonymous(anonymous_id="anon-9", name="viewed", data={"page": "/"})
    (anon,) = [e for e in emu.inspect.events() if e["anonymous_id"] == "anon-9"]
    assert (anon["name"], anon["data"]) == ("viewed", {"page": "/"})
    track.suppress(customer_id="oc2")
    track.identify(id="oc2", plan="pro")
    assert client.attributes("oc2").status_code == 404
    track.unsuppress(customer_id="oc2")
    track.identify(id="oc2", plan="pro")
    assert client.attributes("oc2").json()["customer"]["attributes"]["plan"] == "pro"


def test_app_client_push_and_inbox(api, client, emu):
    emu.configure(delivery={"sent": 0, "delivered": 0, "trigger": 0})
    request = SendPushRequest(
        transactional_message_id="order_shipped",
        identifiers={"id": "user_0010"},
        title="Shipped",
        device={"token": "tok-py", "platform": "ios"},
    )
    response = api.send_push(request)
    assert set(response) == {"delivery_id", "queued_at"}
    message = client.app("GET", f"/v1/messages/{response['delivery_id']}").json()["message"]
    assert (message["type"], message["recipient"]) == ("push", "tok-py")
    assert "delivered" in message["metrics"]
    send_inbox = getattr(api, "send_inbox_message", None)
    if send_inbox is None:  # older customerio releases have no inbox send
        return
    from customerio.api import SendInboxMessageRequest

    inbox = send_inbox(
        SendInboxMessageRequest(transactional_message_id=9, identifiers={"id": "user_0010"})
    )
    message = client.app("GET", f"/v1/messages/{inbox['delivery_id']}").json()["message"]
    assert message["type"] == "inbox"


def test_pipelines_client_page_screen_group_alias(emu, client):
    pipelines = PipelinesClient(C.pipelines_key, host=emu.url, sync_mode=True, max_retries=0)
    pipelines.identify("pg1", {"plan": "pro"})
    pipelines.identify("pg0", {"legacy": "yes"})
    pipelines.page("pg1", "Docs", "Pricing", {"path": "/pricing"})
    pipelines.screen("pg1", "App", "Home", {"tab": 1})
    pipelines.group("pg1", "acme", {"name": "Acme", "object_type_id": "1"})
    pipelines.alias("pg0", "pg1")
    seen = [
        (e["type"], e["name"])
        for e in emu.inspect.events()
        if e["person"] and e["person"]["id"] == "pg1"
    ]
    assert seen == [("page", "Pricing"), ("screen", "Home")]
    (acme,) = [o for o in emu.inspect.objects() if o["object_id"] == "acme"]
    assert acme["attributes"]["name"] == "Acme"
    assert [r["person"]["id"] for r in acme["relationships"]] == ["pg1"]
    assert client.attributes("pg0").status_code == 404
    assert client.attributes("pg1").json()["customer"]["attributes"]["legacy"] == "yes"
