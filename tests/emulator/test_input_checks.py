"""Exports, metrics and the documented reads about one campaign, broadcast or newsletter refuse
ids the workspace does not hold (404 where documented, 400 for exports)."""

from __future__ import annotations

import pytest

from .conftest import Client


@pytest.mark.parametrize(
    "body",
    [
        {"newsletter_id": 999},
        {"campaign_id": 999},
        {"transactional_message_id": 999},
    ],
)
def test_a_deliveries_export_of_nothing_is_refused(client: Client, body: dict) -> None:
    r = client.app("POST", "/v1/exports/deliveries", body)
    assert r.status_code == 400, r.text
    assert "999 does not exist" in r.json()["errors"][0]["detail"]


def test_a_deliveries_export_of_a_broadcast_is_accepted(client: Client) -> None:
    assert client.app("POST", "/v1/exports/deliveries", {"campaign_id": 1}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/campaigns/999/metrics",
        "/v1/broadcasts/999/metrics",
        "/v1/newsletters/999/metrics",
        "/v1/campaigns/999/actions",
        "/v1/campaigns/999/journey_metrics",
        "/v1/broadcasts/999/actions",
        "/v1/newsletters/999/test_groups",
        "/v1/segments/999/used_by",
    ],
)
def test_reads_about_a_missing_program_are_404(client: Client, path: str) -> None:
    assert client.app("GET", path).status_code == 404


def test_reads_about_a_held_program_answer(client: Client) -> None:
    assert client.app("GET", "/v1/broadcasts/1/actions").status_code == 200
    assert client.app("GET", "/v1/segments/1/used_by").status_code == 200
