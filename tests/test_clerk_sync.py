"""Syncs from where people sign up: rows from a paginated HTTP API (a stand-in of Clerk's users
list), and `cio-flows serve` running a flow per signed webhook delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from clerk_standin import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    clerk_api,
    clerk_user,
    serving,
    svix_headers,
)
from support import cli

from cio_flows.emulator import Emulator
from cio_flows.run.http_source import retry_after

ROOT = Path(__file__).resolve().parent.parent
SYNC = ROOT / "flows" / "clerk" / "sync_users.yaml"
WEBHOOK = ROOT / "flows" / "clerk" / "webhook.yaml"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env["CIO_FLOWS_JOURNAL"] = str(tmp_path / "journal.db")
    return {**env, **extra}


def _emulator_env(emulator: Emulator) -> dict[str, str]:
    keys = emulator.credentials
    return {
        "CUSTOMERIO_SITE_ID": keys.site_id,
        "CUSTOMERIO_TRACK_TOKEN": keys.track_key,
        "CUSTOMERIO_PIPELINES_KEY": keys.pipelines_key,
        "CUSTOMERIO_APP_TOKEN": keys.app_key,
        **{f"CUSTOMERIO_{family}_URL": emulator.url for family in ("TRACK", "PIPELINES", "APP")},
    }


def _identified(emulator: Emulator) -> set[str]:
    return {p["id"] for p in emulator.inspect.people()}


# --- the HTTP source -------------------------------------------------------------------------


@pytest.mark.slow
def test_sync_reads_1234_users_in_13_pages_and_identifies_everyone(tmp_path: Path) -> None:
    with clerk_api(1234) as clerk:
        env = _env(tmp_path, CLERK_API_URL=clerk.url, CLERK_SECRET_KEY=SECRET_KEY)
        done = subprocess.run(
            cli("run", str(SYNC), "--emulator", "--report", str(tmp_path / "r.json")),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "1234 ok over 1234 row(s)" in done.stdout
    assert len(clerk.page_reads) == 13
    assert clerk.page_reads[-1].endswith("offset=1200")
    output = done.stdout + done.stderr + (tmp_path / "r.json").read_text()
    assert SECRET_KEY not in output


def test_sync_sends_what_the_source_holds(tmp_path: Path) -> None:
    """In process, on an emulator: the people and their primary emails arrive."""
    from cio_flows import RunOptions, run_flow

    with clerk_api(250) as clerk, Emulator(workspace={}) as emulator:
        environ = {
            **_emulator_env(emulator),
            "CLERK_API_URL": clerk.url,
            "CLERK_SECRET_KEY": SECRET_KEY,
        }
        summary = run_flow(SYNC, RunOptions(environ=environ, journal=tmp_path / "j.db"))
        assert summary.exit_code == 0
        assert len(clerk.page_reads) == 3  # 100 + 100 + 50
        people = {p["id"]: p for p in emulator.inspect.people()}
    assert len(people) == 250
    assert (
        people["user_00007"]["email"] == "user7@example.com"
    )  # the primary address, not the first


@pytest.mark.slow
def test_a_wrong_key_stops_before_anything_is_sent_and_is_not_printed(tmp_path: Path) -> None:
    wrong = "sk_test_wrong_key_123456"
    with clerk_api(20) as clerk, Emulator(workspace={}) as emulator:
        env = _env(tmp_path, CLERK_API_URL=clerk.url, CLERK_SECRET_KEY=wrong)
        env.update(_emulator_env(emulator))
        done = subprocess.run(
            cli("run", str(SYNC)), env=env, capture_output=True, text=True, timeout=120
        )
        sent = emulator.inspect.requests()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HTTP 401" in done.stderr and "sync_users.yaml:10:5" in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert sent == []


@pytest.mark.slow
def test_plan_lists_the_source_pages(tmp_path: Path) -> None:
    with clerk_api(150) as clerk:
        env = _env(tmp_path, CLERK_API_URL=clerk.url, CLERK_SECRET_KEY=SECRET_KEY)
        done = subprocess.run(
            cli("plan", str(SYNC), "--format", "jsonl"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    pages = [line for line in lines if line.get("source") == "for_each.http"]
    assert [p["url"].rsplit("offset=", 1)[1] for p in pages] == ["0", "100"]
    assert SECRET_KEY not in done.stdout


@pytest.mark.slow
def test_validate_reads_no_page(tmp_path: Path) -> None:
    with clerk_api(10) as clerk:
        env = _env(tmp_path, CLERK_API_URL=clerk.url, CLERK_SECRET_KEY=SECRET_KEY)
        done = subprocess.run(
            cli("validate", str(SYNC)), env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert clerk.page_reads == []


def test_retry_after_is_capped_and_parsed_safely() -> None:
    assert retry_after("2", 1.0) == 2.0
    assert retry_after(None, 4.0) == 4.0
    assert retry_after("inf", 1.0) is None
    assert retry_after("1e400", 1.0) is None
    assert retry_after("3600", 1.0) is None
    assert retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 1.0) is None
    assert retry_after("soon", 1.5) == 1.5


# --- cio-flows serve -------------------------------------------------------------------------


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Emulator]]:
    with Emulator() as emulator:
        env = {**_env(tmp_path), **_emulator_env(emulator)}
        with serving(WEBHOOK, env) as url:
            yield url, emulator


def _deliver(
    url: str, event: dict, msg_id: str, *, secret: str = WEBHOOK_SECRET, stamp: int | None = None
) -> requests.Response:
    body = json.dumps(event).encode()
    headers = svix_headers(body, msg_id, int(time.time()) if stamp is None else stamp, secret)
    return requests.post(url, data=body, headers=headers, timeout=60)


def _welcomes(emulator: Emulator, user_id: str) -> int:
    return sum(
        1
        for d in emulator.inspect.deliveries()
        if d.get("template") == "welcome" and (d.get("identifiers") or {}).get("id") == user_id
    )


@pytest.mark.slow
def test_a_signed_user_created_identifies_and_welcomes_once(served) -> None:
    url, emulator = served
    event = {"type": "user.created", "object": "event", "data": clerk_user(42)}
    first = _deliver(url, event, "msg_2abc")
    assert first.status_code == 200, first.text
    assert "user_00042" in _identified(emulator)
    assert _welcomes(emulator, "user_00042") == 1
    again = _deliver(url, event, "msg_2abc")  # Svix redelivers the same message
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert _welcomes(emulator, "user_00042") == 1
    # The same event sent again as a new message: the welcome's `once` key holds.
    other = _deliver(url, event, "msg_3def")
    assert other.status_code == 200 and other.json()["counts"]["skipped"] >= 1
    assert _welcomes(emulator, "user_00042") == 1


@pytest.mark.slow
def test_bad_or_stale_signatures_are_refused_and_send_nothing(served) -> None:
    url, emulator = served
    before = len(emulator.inspect.requests())
    event = {"type": "user.created", "data": clerk_user(7)}
    forged = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    assert _deliver(url, event, "msg_forged", secret=forged).status_code == 401
    stale = _deliver(url, event, "msg_stale", stamp=int(time.time()) - 3600)
    assert stale.status_code == 401
    unsigned = requests.post(url, json=event, timeout=30)
    assert unsigned.status_code == 400
    assert len(emulator.inspect.requests()) == before
    assert _identified(emulator).isdisjoint({"user_00007"})


@pytest.mark.slow
def test_user_deleted_deletes_and_a_non_object_body_is_400(served) -> None:
    url, emulator = served
    user = clerk_user(9)
    assert _deliver(url, {"type": "user.created", "data": user}, "msg_c9").status_code == 200
    deleted = _deliver(url, {"type": "user.deleted", "data": {"id": user["id"]}}, "msg_d9")
    assert deleted.status_code == 200, deleted.text
    assert user["id"] not in _identified(emulator)
    body = b"[1, 2]"
    headers = svix_headers(body, "msg_list", int(time.time()))
    assert requests.post(url, data=body, headers=headers, timeout=30).status_code == 400


@pytest.mark.slow
def test_serve_without_the_secret_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        cli("serve", str(WEBHOOK), "--verify", "svix", "--secret-env", "NOT_SET_ANYWHERE"),
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "$NOT_SET_ANYWHERE" in done.stderr


def test_svix_verification_matches_the_documented_scheme() -> None:
    from cio_flows.serve.svix import SignatureError, secret_key, verify

    key = secret_key(WEBHOOK_SECRET)
    body = b'{"type": "user.created"}'
    now = 1_750_000_000
    headers = svix_headers(body, "msg_1", now)
    assert verify(key, headers, body, now=now + 10) == "msg_1"
    rotated = {**headers, "svix-signature": "v1,bm90LWl0 " + headers["svix-signature"]}
    assert verify(key, rotated, body, now=now) == "msg_1"  # one of several signatures matches
    with pytest.raises(SignatureError):
        verify(key, headers, body + b" ", now=now)  # the body changed
    with pytest.raises(SignatureError):
        verify(key, headers, body, now=now + 301)  # outside the tolerance
    with pytest.raises(ValueError):
        secret_key("whsec_not base64!")


def test_run_with_svix_id_key_order_is_stable() -> None:
    """The journal's run id for a delivery depends on the flow and the delivery id only."""
    from cio_flows.run.prepare import RunOptions
    from cio_flows.serve.deliveries import DeliveryRunner

    first = DeliveryRunner(WEBHOOK, RunOptions(journal=Path(sys.prefix) / "unused.db"))
    assert first.run_id("msg_1") == first.run_id("msg_1") != first.run_id("msg_2")


def test_resume_reads_the_source_again_and_sends_only_what_did_not_succeed(
    tmp_path: Path,
) -> None:
    from cio_flows import RunOptions, run_flow

    with clerk_api(120) as clerk, Emulator(workspace={}) as emulator:
        environ = {**_emulator_env(emulator), "CLERK_API_URL": clerk.url}
        environ["CLERK_SECRET_KEY"] = SECRET_KEY
        options = RunOptions(environ=environ, journal=tmp_path / "j.db")
        first = run_flow(SYNC, options)
        sent = len(emulator.inspect.requests())
        again = run_flow(SYNC, replace(options, resume=first.run_id))
        assert first.exit_code == again.exit_code == 0
        assert len(emulator.inspect.requests()) == sent  # every row was done: nothing sent
        assert len(clerk.page_reads) == 4  # 2 pages a run, read again by the resume


def test_plan_without_the_source_settings_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in _env(tmp_path).items() if not k.startswith("CLERK_")}
    done = subprocess.run(
        cli("plan", str(SYNC)), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "the environment variable CLERK_API_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr
