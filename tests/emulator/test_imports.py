"""CSV imports of people from data: URLs and local files; other sources are refused, recorded."""

from __future__ import annotations

import base64

from .conftest import Client


def _csv(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def _import(client: Client, url: str, **extra: str) -> dict:
    spec = {"name": "signups", "data_file_url": url, "type": "people", "identifier": "id", **extra}
    r = client.app("POST", "/v1/imports", {"import": spec})
    assert r.status_code == 200, r.text
    return r.json()["import"]


def test_people_are_imported_from_a_csv(client: Client) -> None:
    done = _import(client, _csv("id,email,plan\nimp1,imp1@example.com,pro\nimp2,,free\n"))
    assert (done["state"], done["rows_to_import"], done["rows_imported"]) == ("imported", 2, 2)
    person = client.attributes("imp1").json()["customer"]
    assert (
        person["attributes"]["plan"] == "pro"
        and person["attributes"]["email"] == "imp1@example.com"
    )
    again = client.app("GET", f"/v1/imports/{done['id']}").json()["import"]
    assert again == done


def test_only_existing_skips_new_people(client: Client) -> None:
    done = _import(
        client,
        _csv("id,plan\nuser_0001,enterprise\nbrand_new,free\n"),
        data_to_process="only_existing",
    )
    assert done["rows_imported"] == 1
    assert client.attributes("brand_new").status_code == 404


def test_remote_files_and_other_types_fail_with_a_reason(client: Client) -> None:
    remote = _import(client, "https://example.com/people.csv")
    assert remote["state"] == "failed" and "local" in remote["error"]
    events = _import(client, _csv("id,name\na,b\n"), type="event")
    assert events["state"] == "failed" and "people only" in events["error"]
    assert client.app("POST", "/v1/imports", {"import": {"name": "x"}}).status_code == 400
