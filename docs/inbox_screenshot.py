"""Make docs/inbox.png: the emulator's inbox after a few sends, in headless Chromium at 1,400 px.

python docs/inbox_screenshot.py   # needs Debian's chromium and chromium-driver, and selenium
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from cio_flows.emulator import DEMO_CREDENTIALS, Emulator

OUT = Path(__file__).parent / "inbox.png"
WORKSPACE = {
    "templates": [
        {
            "id": 1,
            "trigger": "welcome",
            "name": "Welcome email",
            "channel": "email",
            "subject": "Welcome, {{ trigger.first_name }}!",
            "body": "<h1>Hi {{ trigger.first_name }}</h1><p>Thanks for joining.</p>",
        },
        {
            "id": 2,
            "trigger": "receipt",
            "name": "Payment receipt",
            "channel": "email",
            "subject": "Your receipt for {{ trigger.amount }}",
            "body": "<p>Paid: {{ trigger.amount }}</p>",
        },
        {
            "id": 3,
            "trigger": "order_shipped",
            "name": "Order shipped",
            "channel": "push",
            "subject": "Order {{ trigger.order }} is on its way",
            "body": "Arrives {{ trigger.day }}",
        },
        {
            "id": 4,
            "trigger": "login_code",
            "name": "Login code",
            "channel": "sms",
            "body": "Your code is {{ trigger.code }}",
        },
    ],
    "broadcasts": [
        {
            "id": 1,
            "name": "Spring launch",
            "channel": "email",
            "segment": 1,
            "subject": "Spring is here",
        }
    ],
    "segments": [
        {
            "id": 1,
            "name": "Everyone on pro",
            "type": "dynamic",
            "filter": {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}},
        }
    ],
    "people": [
        {
            "id": "ada",
            "email": "ada@example.com",
            "attributes": {"plan": "pro", "first_name": "Ada"},
        },
        {"id": "grace", "email": "grace@example.com", "attributes": {"plan": "pro"}},
    ],
    "delivery": {"sent": 0.2, "delivered": 0.5, "trigger": 0.2},
}
SENDS = [
    (
        "email",
        {
            "transactional_message_id": "welcome",
            "to": "ada@example.com",
            "identifiers": {"id": "ada"},
            "message_data": {"first_name": "Ada"},
        },
    ),
    (
        "email",
        {
            "transactional_message_id": "receipt",
            "to": "grace@example.com",
            "identifiers": {"id": "grace"},
            "message_data": {"amount": "$49.00"},
        },
    ),
    (
        "push",
        {
            "transactional_message_id": "order_shipped",
            "identifiers": {"id": "ada"},
            "message_data": {"order": "A-1001", "day": "Friday"},
            "custom_device": {"token": "ada-phone-1", "platform": "ios"},
        },
    ),
    (
        "sms",
        {
            "transactional_message_id": "login_code",
            "to": "+15550100",
            "identifiers": {"id": "grace"},
            "message_data": {"code": "4321"},
        },
    ),
    (
        "email",
        {
            "transactional_message_id": "welcome",
            "to": "linus@bounce.example.com",
            "identifiers": {"id": "linus"},
            "message_data": {"first_name": "Linus"},
        },
    ),
    (
        "email",
        {
            "transactional_message_id": "welcome",
            "to": "margaret@example.com",
            "identifiers": {"id": "margaret"},
            "message_data": {"first_name": "Margaret"},
        },
    ),
]


def main() -> None:
    app = {"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"}
    profile = tempfile.mkdtemp()
    with Emulator(workspace=WORKSPACE) as emu:
        requests.post(emu.url + "/v1/campaigns/1/triggers", json={}, headers=app, timeout=30)
        for channel, body in SENDS:
            requests.post(f"{emu.url}/v1/send/{channel}", json=body, headers=app, timeout=30)
        time.sleep(1.5)  # every lifecycle step reached
        opened = emu.inspect.messages()[-1]["id"]
        requests.post(
            f"{emu.url}/messages/{opened}/metrics",
            data={"metric": "clicked"},
            headers={"Origin": emu.url},
            timeout=30,
        )
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(emu.url + "/")
            time.sleep(1)
            driver.save_screenshot(str(OUT))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
