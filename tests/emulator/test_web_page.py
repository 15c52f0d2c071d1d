"""The emulator's web page over plain HTTP: pages, the sandboxed email body, the metric
buttons, the live stream and keys never shown. (tests/browser drives it in Chromium.)"""

from __future__ import annotations

import threading

import requests

from cio_flows.emulator import DEMO_CREDENTIALS, Emulator

from .conftest import APP_AUTH

SECRETS = DEMO_CREDENTIALS.secrets()
TEMPLATES = {
    "templates": [
        {
            "id": 1,
            "trigger": "welcome",
            "channel": "email",
            "subject": "Hi {{ trigger.first_name }}",
            "body": "<p>Hello {{ trigger.first_name }}</p><img src='https://remote.example/x.png'>",
        },
        {"id": 2, "trigger": "code", "channel": "sms", "body": "Your code is {{ trigger.code }}"},
    ]
}


def send(client, name: str = "Ada", to: str = "ada@example.com") -> str:
    body = {
        "transactional_message_id": "welcome",
        "to": to,
        "identifiers": {"email": to},
        "message_data": {"first_name": name},
    }
    r = client.app("POST", "/v1/send/email", body)
    assert r.status_code == 200, r.text
    return r.json()["delivery_id"]


def test_pages_answer_html_without_keys_and_outside_the_request_log(client):
    delivery = send(client)
    before = len(client.emulator.inspect.requests())
    for path in (
        "/",
        f"/messages/{delivery}",
        "/people",
        "/people/ada@example.com",
        "/segments",
        "/segments/1",
        "/campaigns",
        "/broadcasts/1",
        "/requests",
        "/?channel=email&status=created&q=ada&template=1&person=ada@example.com",
    ):
        r = client.http.get(client.url + path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert not [s for s in SECRETS if s in r.text], path
    assert len(client.emulator.inspect.requests()) == before  # the page is not an API call
    assert client.http.get(client.url + "/messages/nope").status_code == 404
    assert client.http.get(client.url + "/people/nobody-here").status_code == 404
    assert client.http.get(client.url + "/static/app.js").status_code == 200
    assert client.http.get(client.url + "/static/..%2Fpages.py").status_code == 404


def test_a_key_sent_in_a_query_string_is_not_shown(client):
    client.app("GET", f"/v1/customers?api_key={DEMO_CREDENTIALS.app_key}")
    page = client.http.get(client.url + "/requests").text
    assert "api_key=[REDACTED]" in page and DEMO_CREDENTIALS.app_key not in page


def test_the_email_body_is_served_sandboxed_with_no_remote_loads():
    with Emulator(workspace=TEMPLATES) as emu:
        http = requests.Session()
        r = http.post(
            emu.url + "/v1/send/email",
            json={
                "transactional_message_id": 1,
                "to": "a@example.com",
                "message_data": {"first_name": "Ada"},
            },
            headers=APP_AUTH,
        )
        delivery = r.json()["delivery_id"]
        inbox = http.get(emu.url + "/").text
        assert "Hi Ada" in inbox  # the rendered subject
        assert "Hi Ada" in http.get(emu.url + "/?q=Hello+Ada").text  # the rendered body searched
        assert "Hi Ada" not in http.get(emu.url + "/?q=Hello+Grace").text
        page = http.get(emu.url + f"/messages/{delivery}").text
        assert f'src="/messages/{delivery}/body" sandbox ' in page
        body = http.get(emu.url + f"/messages/{delivery}/body")
        assert body.text.startswith("<p>Hello Ada</p>")
        policy = body.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "img-src data:" in policy
        assert "sandbox" in policy and "script" not in policy  # no script source at all
        assert "Hello Ada" in page  # the text view


def test_an_sms_is_previewed_with_its_rendered_text():
    with Emulator(workspace=TEMPLATES) as emu:
        r = requests.post(
            emu.url + "/v1/send/sms",
            json={
                "transactional_message_id": "code",
                "to": "+15550100",
                "identifiers": {"id": "sam"},
                "message_data": {"code": "4321"},
            },
            headers=APP_AUTH,
        )
        assert r.status_code == 200, r.text
        page = requests.get(emu.url + f"/messages/{r.json()['delivery_id']}").text
        assert '<div class="bubble">Your code is 4321</div>' in page


def test_the_buttons_record_metrics_the_api_then_reports(client):
    delivery = send(client)
    url = client.url + f"/messages/{delivery}/metrics"
    origin = {"Origin": client.url}
    r = client.http.post(url, data={"metric": "clicked"}, headers=origin, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/messages/{delivery}"
    metrics = client.app("GET", f"/v1/messages/{delivery}").json()["message"]["metrics"]
    assert {"sent", "delivered", "opened", "clicked"} <= set(metrics)
    bounced = send(client, "Bo", "bo@example.com")
    r = client.http.post(
        client.url + f"/messages/{bounced}/metrics",
        data={"metric": "bounced"},
        headers=origin,
        allow_redirects=False,
    )
    message = client.app("GET", f"/v1/messages/{bounced}").json()["message"]
    assert "bounced" in message["metrics"] and "delivered" not in message["metrics"]
    assert message["failure_message"]
    refused = client.http.post(
        url, data={"metric": "opened"}, headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert client.http.post(url, data={"metric": "sent"}, headers=origin).status_code == 400


def test_the_live_stream_says_change_after_a_request(client):
    seen: list[str] = []
    with client.http.get(client.url + "/live?since=x", stream=True, timeout=30) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        for line in lines:  # the first event: the page's mark differs from "x"
            if line.startswith("data: "):
                first = line
                break
        threading.Timer(0.2, send, [client]).start()
        for line in lines:
            if line.startswith("data: "):
                seen.append(line)
                break
    assert seen and seen[0] != first


def test_stopping_ends_open_live_streams():
    emu = Emulator(workspace={}).start()
    lines: list[str] = []

    def listen() -> None:
        try:
            with requests.get(emu.url + "/live", stream=True, timeout=60) as r:
                lines.extend(r.iter_lines(decode_unicode=True))
        except requests.RequestException:
            pass

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    for _ in range(600):  # until the stream has begun
        if lines:
            break
        reader.join(0.05)
    assert lines, "the live stream never began"
    server = emu._thread
    assert server is not None
    emu.close()  # waits a few seconds at most for the server thread
    reader.join(30)
    assert not server.is_alive() and not reader.is_alive()


def test_track_metric_reports_record_through_the_same_code(client):
    delivery = send(client)
    r = client.http.post(
        client.url + "/api/v1/metrics", json={"delivery_id": delivery, "metric": "opened"}
    )
    assert r.status_code == 200  # no auth: a recipient's client reports it
    metrics = client.app("GET", f"/v1/messages/{delivery}").json()["message"]["metrics"]
    assert "opened" in metrics and "delivered" in metrics
    push = client.http.post(
        client.url + "/api/v1/push/events",
        json={"delivery_id": delivery, "event": "converted", "timestamp": 1_700_000_000},
    )
    assert push.status_code == 200
    metrics = client.app("GET", f"/v1/messages/{delivery}").json()["message"]["metrics"]
    assert metrics["converted"] == 1_700_000_000
    bad = client.http.post(
        client.url + "/api/v1/metrics", json={"delivery_id": delivery, "metric": "teleported"}
    )
    assert bad.status_code == 400
    unknown = client.http.post(
        client.url + "/api/v1/metrics", json={"delivery_id": "nope", "metric": "opened"}
    )
    assert unknown.status_code == 200


def test_a_campaign_shows_its_trigger_actions_and_messages():
    workspace = {
        **TEMPLATES,
        "campaigns": [
            {
                "id": 10,
                "name": "Welcome series",
                "trigger": {"event": "signed_up"},
                "actions": [{"send": "welcome"}],
            }
        ],
    }
    with Emulator(workspace=workspace) as emu:
        http = requests.Session()
        r = http.post(
            emu.url + "/api/v1/customers/ada/events",
            json={"name": "signed_up", "data": {"first_name": "Ada"}},
            auth=(DEMO_CREDENTIALS.site_id, DEMO_CREDENTIALS.track_key),
        )
        assert r.status_code == 200, r.text
        http.post(emu.url + "/_emulator/clock", json={"advance": 5})
        listing = http.get(emu.url + "/campaigns").text
        assert "Welcome series" in listing and "<code>signed_up</code>" in listing
        page = http.get(emu.url + "/campaigns/10").text
        assert "send welcome" in page  # the action, by its template
        assert 'class="msg"' in page  # the message the campaign sent
        inbox = http.get(emu.url + "/").text
        assert '<a href="/campaigns/10">Welcome series</a>' in inbox
