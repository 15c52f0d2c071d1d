"""Snippets, collections and subscription preferences kept in the workspace."""

from __future__ import annotations

from .conftest import Client


def test_snippets(client: Client) -> None:
    r = client.app("PUT", "/v1/snippets", {"name": "footer", "value": "<p>Bye</p>"})
    assert r.status_code == 200 and r.json()["snippet"]["value"] == "<p>Bye</p>"
    client.app("PUT", "/v1/snippets", {"name": "footer", "value": "<p>See you</p>"})
    listed = client.app("GET", "/v1/snippets").json()["snippets"]
    assert [(s["name"], s["value"]) for s in listed] == [("footer", "<p>See you</p>")]
    assert client.app("PUT", "/v1/snippets", {"name": "x"}).status_code == 400
    assert client.app("DELETE", "/v1/snippets/footer").status_code == 204
    assert client.app("DELETE", "/v1/snippets/footer").status_code == 404
    assert client.app("GET", "/v1/snippets").json() == {"snippets": []}


def test_collections(client: Client) -> None:
    data = [{"city": "Paris", "temp": 20}, {"city": "Oslo", "temp": 5}]
    made = client.app("POST", "/v1/collections", {"name": "cities", "data": data}).json()
    collection = made["collection"]
    assert (collection["rows"], collection["schema"]) == (2, ["city", "temp"])
    path = f"/v1/collections/{collection['id']}"
    assert client.app("GET", path).json()["collection"]["name"] == "cities"
    assert client.app("GET", path + "/content").json() == {"data": data}
    renamed = client.app("PUT", path, {"name": "towns"}).json()["collection"]
    assert renamed["name"] == "towns" and renamed["rows"] == 2
    replaced = client.app("PUT", path + "/content", {"city": "Rome"}).json()["collection"]
    assert replaced["rows"] == 1
    assert client.app("GET", path + "/content").json() == {"city": "Rome"}
    assert [c["id"] for c in client.app("GET", "/v1/collections").json()["collections"]] == [
        collection["id"]
    ]
    assert client.app("DELETE", path).status_code == 204
    assert client.app("GET", path).status_code == 404
    assert client.app("POST", "/v1/collections", {"name": "x"}).status_code == 400


def test_subscription_preferences(client: Client) -> None:
    prefs = {"topics": {"topic_1": True, "topic_2": False}}
    client.track(
        "PUT",
        "/api/v1/customers/pat",
        {"email": "pat@example.com", "cio_subscription_preferences": prefs},
    )
    customer = client.app("GET", "/v1/customers/pat/subscription_preferences").json()["customer"]
    assert customer["unsubscribed"] is False
    assert [(t["id"], t["subscribed"]) for t in customer["topics"]] == [
        ("topic_1", True),
        ("topic_2", False),
    ]
    topics = client.app("GET", "/v1/subscription_topics").json()["topics"]
    assert [(t["id"], t["identifier"]) for t in topics] == [(1, "topic_1"), (2, "topic_2")]
    assert client.app("GET", "/v1/customers/nobody/subscription_preferences").status_code == 404


def test_sender_identities(client: Client) -> None:
    senders = client.app("GET", "/v1/sender_identities").json()["sender_identities"]
    assert senders[0]["email"] == "noreply@example.com" and senders[0]["id"] == 1
    one = client.app("GET", "/v1/sender_identities/1").json()["sender_identity"]
    assert one == senders[0]
    assert client.app("GET", "/v1/sender_identities/99").status_code == 404
    used = client.app("GET", "/v1/sender_identities/1/used_by").json()
    assert used == {"campaigns": [], "sent_newsletters": [], "draft_newsletters": []}
