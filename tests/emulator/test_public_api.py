"""The public surface the CLI and notebooks rely on."""

from __future__ import annotations

import io
import threading

import requests

import cio_flows.emulator as emulator_pkg
from cio_flows.emulator import DEMO_CREDENTIALS, Credentials, Emulator
from cio_flows.emulator.server import banner


def test_exports():
    assert set(emulator_pkg.__all__) == {
        "DEMO_CREDENTIALS",
        "DEMO_PATH",
        "Credentials",
        "Emulator",
        "Faults",
        "Inspector",
        "RateLimit",
        "WorkspaceError",
        "serve",
    }
    assert (
        Credentials(
            "emulator-site", "emulator-track-key", "emulator-pipelines-key", "emulator-app-key"
        )
        == DEMO_CREDENTIALS
    )


def test_credentials_from_env_fall_back_per_variable():
    env = {"CUSTOMERIO_SITE_ID": "site-9", "CUSTOMERIO_APP_TOKEN": "app-secret"}
    creds = Credentials.from_env(env)
    assert creds == Credentials(
        "site-9", "emulator-track-key", "emulator-pipelines-key", "app-secret"
    )
    assert Credentials.from_env({}) == DEMO_CREDENTIALS


def test_banner_never_prints_keys_from_the_environment():
    env = {
        "CUSTOMERIO_TRACK_TOKEN": "super-secret-track",
        "CUSTOMERIO_APP_TOKEN": "super-secret-app",
    }
    text = banner("http://127.0.0.1:1", Credentials.from_env(env), env)
    assert "super-secret" not in text
    assert "(from CUSTOMERIO_TRACK_TOKEN)" in text and "(from CUSTOMERIO_APP_TOKEN)" in text
    assert "emulator-pipelines-key" in text and "http://127.0.0.1:1" in text


def test_emulator_accepts_custom_credentials():
    creds = Credentials("s", "t", "p", "a")
    with Emulator(creds, workspace={}) as emu:
        r = requests.get(f"{emu.url}/v1/segments", headers={"Authorization": "Bearer a"})
        assert r.status_code == 200
        r = requests.get(
            f"{emu.url}/v1/segments", headers={"Authorization": "Bearer emulator-app-key"}
        )
        assert r.status_code == 401


def test_start_stop_and_url():
    emu = Emulator(workspace={})
    try:
        emu.url  # noqa: B018
        raise AssertionError("url before start should fail")
    except RuntimeError:
        pass
    emu.start()
    url = emu.url
    assert url.startswith("http://127.0.0.1:") and requests.get(f"{url}/_emulator/health").ok
    emu.stop()
    try:
        requests.get(f"{url}/_emulator/health", timeout=1)
        raise AssertionError("still answering after stop()")
    except requests.ConnectionError:
        pass
    emu.start()  # restartable, on a free port
    assert requests.get(f"{emu.url}/_emulator/health").ok
    emu.close()


def test_two_emulators_side_by_side():
    with Emulator(workspace={}) as a, Emulator(workspace={}) as b:
        assert a.url != b.url
        requests.put(
            f"{a.url}/api/v1/customers/only-a",
            json={},
            auth=(DEMO_CREDENTIALS.site_id, DEMO_CREDENTIALS.track_key),
        )
        assert a.inspect.person("only-a") and b.inspect.person("only-a") is None


def test_serve_prints_banner_and_runs_until_interrupted(monkeypatch):
    from cio_flows.emulator import server

    out = io.StringIO()
    started = threading.Event()
    real_sleep = server.time.sleep

    def fake_sleep(seconds):
        started.set()
        raise KeyboardInterrupt

    monkeypatch.setattr(
        server.time, "sleep", lambda s: fake_sleep(s) if s == 0.5 else real_sleep(s)
    )
    server.serve(port=0, workspace={}, out=out)
    assert started.is_set()
    assert "Customer.io emulator listening on http://127.0.0.1:" in out.getvalue()
