"""Workspace reads at scale: exports vs search, the Parquet cache, messages and metrics frames."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cio_flows.analysis import Workspace
from cio_flows.analysis.deliveries import METRIC_COLUMNS
from cio_flows.emulator import Credentials, Emulator

KEYS = Credentials(
    site_id="cachesite-41f", track_key="cachetrack-9e2-secret",
    pipelines_key="cachepipe-77a-secret", app_key="cacheapp-3c5d-secret",
)  # fmt: skip


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    workspace = {"demo": {"people": 1500}}
    with Emulator(credentials=KEYS, workspace=workspace, delivery={"export": 0.2}) as emu:
        yield emu


def _env(emulator: Emulator) -> dict[str, str]:
    return {"CUSTOMERIO_APP_TOKEN": KEYS.app_key, "CUSTOMERIO_APP_URL": emulator.url}


def _connect(emulator: Emulator, cache, **kwargs) -> Workspace:
    return Workspace.connect(environ=_env(emulator), cache=cache, progress=False, **kwargs)


def _app_calls(emulator: Emulator) -> list[dict]:
    return emulator.inspect.requests("app")


def test_export_and_search_give_the_same_frame(emulator: Emulator) -> None:
    with _connect(emulator, False) as ws:
        before = len(_app_calls(emulator))
        searched = ws.people(via="search")
        search_calls = len(_app_calls(emulator)) - before
        before = len(_app_calls(emulator))
        exported = ws.people(via="export")
        export_calls = _app_calls(emulator)[before:]
        pro_search = ws.people({"segment": {"id": 1}}, via="search")
        pro_export = ws.people({"segment": {"id": 1}}, via="export")
    assert len(searched) == 1500
    pd.testing.assert_frame_equal(searched, exported)
    pd.testing.assert_frame_equal(pro_search, pro_export)
    assert searched["mrr"].dtype == "int64" and searched["newsletter"].dtype == bool
    assert search_calls == 2 + 15  # 1,000 ids a search page, 100 people an attribute call
    paths = [c["path"] for c in export_calls]
    assert paths[0] == "/v1/exports/customers" and paths[-1].endswith("/download")
    assert len(export_calls) < search_calls


def test_auto_switches_to_an_export_past_the_threshold(emulator: Emulator) -> None:
    with _connect(emulator, False) as ws:
        ws.export_above = 1000
        before = len(_app_calls(emulator))
        everyone = ws.people()
        calls = [c["path"] for c in _app_calls(emulator)[before:]]
        small = ws.people({"segment": {"id": 8}})  # 12 beta testers: search
    assert len(everyone) == 1500 and "/v1/exports/customers" in calls
    assert "/v1/customers/attributes" not in calls
    assert len(small) == 12


def test_a_repeated_read_answers_from_the_cache(emulator: Emulator, tmp_path: Path) -> None:
    with _connect(emulator, tmp_path) as ws:
        first = ws.people({"segment": {"id": 2}})
    with _connect(emulator, tmp_path) as again:  # another session, same workspace
        before = len(_app_calls(emulator))
        second = again.people({"segment": {"id": 2}})
        assert len(_app_calls(emulator)) == before  # not one App API call
        pd.testing.assert_frame_equal(first, second)
        assert again.cache.hits == 1
        again.people({"segment": {"id": 2}}, refresh=True)
        assert len(_app_calls(emulator)) > before
        other = again.people({"segment": {"id": 1}})  # another filter: another entry
        assert len(other) != len(first)


def test_max_age_bypasses_an_old_entry(emulator: Emulator, tmp_path: Path) -> None:
    with _connect(emulator, tmp_path, max_age=0.2) as ws:
        ws.people({"segment": {"id": 8}})
        before = len(_app_calls(emulator))
        ws.people({"segment": {"id": 8}})
        assert len(_app_calls(emulator)) == before
        time.sleep(0.3)
        ws.people({"segment": {"id": 8}})
        assert len(_app_calls(emulator)) > before


def test_the_cache_is_keyed_by_workspace(emulator: Emulator, tmp_path: Path) -> None:
    with _connect(emulator, tmp_path) as ws:
        ws.people({"segment": {"id": 8}})
    env = {**_env(emulator), "CUSTOMERIO_REGION": "eu"}
    with Workspace.connect(environ=env, cache=tmp_path, progress=False) as eu:
        before = len(_app_calls(emulator))
        eu.people({"segment": {"id": 8}})
        assert len(_app_calls(emulator)) > before
    assert len(list(tmp_path.iterdir())) == 2


def test_no_key_in_any_cache_path_or_file(emulator: Emulator, tmp_path: Path) -> None:
    with _connect(emulator, tmp_path) as ws:
        ws.people({"segment": {"id": 8}})
        ws.messages(broadcast_id=1)
        ws.broadcast_metrics(2)
        ws.activities(limit=20)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 4
    for path in files:
        data = path.read_bytes()
        for secret in KEYS.secrets():
            assert secret not in str(path)
            assert secret.encode() not in data


def test_default_cache_is_under_the_user_cache_dir(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with _connect(emulator, None) as ws:
        ws.people({"segment": {"id": 8}})
    assert list((tmp_path / "cio-flows" / "reads").rglob("people-*.parquet"))
    with Workspace.emulator(environ={}, progress=False) as local:
        assert local.cache is None  # an emulator started here: its data dies with it


def test_messages_frame_is_typed(emulator: Emulator) -> None:
    with _connect(emulator, False) as ws:
        api = ws.messages(newsletter_id=1, via="api")
        exported = ws.messages(newsletter_id=1, via="export")
        everything = ws.messages()
    pd.testing.assert_frame_equal(api, exported)
    assert len(api) > 100 and (api["newsletter_id"] == 1).all()
    for metric in METRIC_COLUMNS:
        assert str(api[metric].dtype).startswith("datetime64") and str(api[metric].dt.tz) == "UTC"
    assert api["template_id"].dtype == "Int64" and api["campaign_id"].isna().all()
    assert api["sent"].notna().all() and api["opened"].notna().any()
    bounced = api[api["bounced"].notna()]
    assert len(bounced) and bounced["failure_message"].str.contains("bounce|spam").all()
    assert set(everything["channel"]) >= {"email", "push", "sms"}
    assert everything["created"].is_monotonic_decreasing or len(everything) > len(api)


def test_metrics_frames_are_periods_by_metrics(emulator: Emulator) -> None:
    with _connect(emulator, False) as ws:
        newsletter = ws.newsletter_metrics(1)
        campaign = ws.campaign_metrics(10, period="weeks")
        broadcast = ws.broadcast_metrics(2, period="days", steps=7)
        messages = ws.messages(newsletter_id=1)
        activities = ws.activities(type="opened_email", limit=30)
    assert len(newsletter) == 45 and newsletter.index.is_monotonic_increasing
    assert str(newsletter.index.tz) == "UTC-05:00"
    assert newsletter["sent"].sum() == messages["sent"].notna().sum()
    assert newsletter["opened"].sum() == messages["opened"].notna().sum()
    assert campaign["sent"].sum() > 0 and len(campaign) == 12
    assert len(broadcast) == 7 and broadcast["sent"].dtype == "int64"
    assert len(activities) == 30 and set(activities["type"]) == {"opened_email"}
    assert str(activities["timestamp"].dtype).startswith("datetime64")
