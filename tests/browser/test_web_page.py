"""The emulator's web page in headless Chromium: after a flow sends an email and a push, the
inbox, the message page, the person page and the request log show what happened; a new
message appears without a reload; no page holds a key."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from cio_flows import api
from cio_flows.emulator import DEMO_CREDENTIALS, Emulator
from cio_flows.run.prepare import RunOptions

from .conftest import WIDE

WAIT = 30  # generous: the machine may be loaded; nothing here asserts a duration
WORKSPACE = {
    "templates": [
        {
            "id": 1,
            "trigger": "welcome",
            "name": "Welcome email",
            "channel": "email",
            "subject": "Welcome, {{ trigger.first_name }}!",
            "body": "<h1>Hello {{ trigger.first_name }}</h1>"
            "<p>Your plan: {{ customer.plan }}.</p>"
            "<img src='https://tracker.example.com/pixel.gif' alt='pixel'>"
            "<script>document.title = 'script ran'</script>",
        },
        {
            "id": 2,
            "trigger": "order_shipped",
            "name": "Order shipped",
            "channel": "push",
            "subject": "Order {{ trigger.order }} shipped",
            "body": "It reaches you on {{ trigger.day }}.",
        },
    ]
}
FLOW = textwrap.dedent(
    """\
    version: 1
    name: web_page
    steps:
      - name: create Ada
        identify:
          userId: ada
          traits: {email: ada@example.com, first_name: Ada, plan: pro, city: Lisbon}
      - name: welcome email
        send_email:
          transactional_message_id: welcome
          to: ada@example.com
          identifiers: {id: ada}
          message_data: {first_name: Ada}
      - name: shipped push
        send_push:
          transactional_message_id: order_shipped
          identifiers: {id: ada}
          message_data: {order: A-1001, day: Friday}
          custom_device: {token: ada-phone-token-1, platform: ios}
    """
)
SECRETS = DEMO_CREDENTIALS.secrets()


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> Iterator[Emulator]:
    """An emulator after the flow ran against it."""
    flow = tmp_path_factory.mktemp("flow") / "web_page.yaml"
    flow.write_text(FLOW)
    # Messages reach `delivered` at once: no lifecycle step redraws a page while a test reads it.
    instant = {"sent": 0, "delivered": 0, "trigger": 0}
    with Emulator(workspace=WORKSPACE, delivery=instant) as emu:
        options = api.options_for_emulator(emu, RunOptions(environ={}, journal=False))
        summary = api.run_flow(flow, options)
        assert summary.exit_code == 0
        yield emu


def wait_for_text(browser, css: str, text: str) -> None:
    # Live regions are swapped whole, so an element found a moment ago may be gone: look again.
    WebDriverWait(browser, WAIT, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: text in d.find_element(By.CSS_SELECTOR, css).text,
        message=f"{text!r} never appeared in {css}",
    )


def assert_no_key(browser) -> None:
    source = browser.page_source
    assert not [s for s in SECRETS if s in source], browser.current_url


def open_page(browser, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    assert_no_key(browser)


def test_the_inbox_lists_both_messages_with_rendered_subjects(browser, sent):
    open_page(browser, sent.url + "/?person=ada")  # the flow's person (a later test adds Grace)
    rows = browser.find_elements(By.CSS_SELECTOR, "#inbox-list tr.msg")
    subjects = [r.find_element(By.CSS_SELECTOR, "td.subject").text for r in rows]
    assert subjects == ["Order A-1001 shipped", "Welcome, Ada!"]  # newest first
    text = browser.find_element(By.ID, "inbox-list").text
    assert "ada@example.com" in text and "Welcome email" in text and "Order shipped" in text


def test_the_inbox_filters_by_channel_and_searches(browser, sent):
    open_page(browser, sent.url + "/?channel=push")
    subjects = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#inbox-list td.subject")]
    assert subjects == ["Order A-1001 shipped"]
    open_page(browser, sent.url + "/")
    search = browser.find_element(By.NAME, "q")
    search.send_keys("Welcome", Keys.ENTER)
    WebDriverWait(browser, WAIT).until(lambda d: "q=Welcome" in d.current_url)
    subjects = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#inbox-list td.subject")]
    assert subjects == ["Welcome, Ada!"]


def test_the_message_page_shows_the_rendered_body_sandboxed(browser, sent):
    open_page(browser, sent.url + "/")
    browser.find_element(By.LINK_TEXT, "Welcome, Ada!").click()
    WebDriverWait(browser, WAIT).until(lambda d: "/messages/" in d.current_url)
    assert_no_key(browser)
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Welcome, Ada!"
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.email")
    sandbox = frame.get_attribute("sandbox")
    assert sandbox is not None and "allow-scripts" not in sandbox
    browser.switch_to.frame(frame)
    try:
        WebDriverWait(browser, WAIT).until(
            lambda d: "Hello Ada" in d.find_element(By.TAG_NAME, "body").text
        )
        assert "Your plan: pro." in browser.find_element(By.TAG_NAME, "body").text
        assert browser.title != "script ran"  # the body's script never ran
        pixel = browser.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].naturalWidth", pixel) == 0  # not loaded
        assert_no_key(browser)
    finally:
        browser.switch_to.default_content()
    browser.find_element(By.CSS_SELECTOR, "label[for=view-text]").click()
    assert "Hello Ada" in browser.find_element(By.CSS_SELECTOR, "pre.text-view").text
    assert (
        '"first_name": "Ada"'
        in browser.find_element(By.ID, "data-h").find_element(By.XPATH, "..").text
    )
    assert (
        "/v1/send/email" in browser.find_element(By.ID, "req-h").find_element(By.XPATH, "..").text
    )


def test_the_person_page_shows_email_attributes_and_device(browser, sent):
    open_page(browser, sent.url + "/people")
    browser.find_element(By.LINK_TEXT, "ada").click()
    WebDriverWait(browser, WAIT).until(lambda d: d.current_url.endswith("/people/ada"))
    assert_no_key(browser)
    assert browser.find_element(By.CSS_SELECTOR, ".person-email").text == "ada@example.com"
    attributes = browser.find_element(By.CSS_SELECTOR, "table.attributes").text
    assert "plan pro" in attributes and "city Lisbon" in attributes
    assert "ada-phone-token-1" in browser.find_element(By.CSS_SELECTOR, "ul.devices").text
    messages = browser.find_element(By.CSS_SELECTOR, "table.messages").text
    assert "Welcome, Ada!" in messages and "Order A-1001 shipped" in messages


def test_a_new_email_appears_without_a_reload(browser, sent):
    open_page(browser, sent.url + "/")
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "on"
    )
    browser.execute_script("window.sameDocument = true")
    answer = requests.post(
        sent.url + "/v1/send/email",
        json={
            "transactional_message_id": "welcome",
            "to": "grace@example.com",
            "identifiers": {"id": "grace"},
            "message_data": {"first_name": "Grace"},
        },
        headers={"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"},
        timeout=30,
    )
    assert answer.status_code == 200
    wait_for_text(browser, "#inbox-list td.subject", "Welcome, Grace!")  # the newest, on top
    assert browser.execute_script("return window.sameDocument") is True  # no reload happened


def test_the_request_log_lists_the_send_and_no_key(browser, sent):
    open_page(browser, sent.url + "/requests")
    paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#request-list td.path code")]
    assert "/v1/send/email" in paths and "/v1/send/push" in paths
    for body in browser.find_elements(By.CSS_SELECTOR, "#request-list details"):
        body.find_element(By.TAG_NAME, "summary").click()
    assert_no_key(browser)


def test_every_page_is_keyless_keyboard_reachable_and_fits_a_phone(browser, sent):
    delivery = sent.inspect.messages()[0]["id"]
    pages = [
        "/",
        f"/messages/{delivery}",
        "/people",
        "/people/ada",
        "/segments",
        "/campaigns",
        "/requests",
    ]
    try:
        for width, height in ((390, 844), WIDE):  # a phone, and a 1,400 px screen
            browser.set_window_size(width, height)
            for page in pages:
                open_page(browser, sent.url + page)
                overflow = browser.execute_script(
                    "return document.documentElement.scrollWidth"
                    " - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{page} scrolls sideways at {width}px by {overflow}px"
    finally:
        browser.set_window_size(*WIDE)
    open_page(browser, sent.url + "/")
    body = browser.find_element(By.TAG_NAME, "body")
    reached = []
    for _ in range(40):
        body.send_keys(Keys.TAB) if not reached else browser.switch_to.active_element.send_keys(
            Keys.TAB
        )
        reached.append(browser.switch_to.active_element.text)
        if reached[-1] == "Order A-1001 shipped":
            break
    assert "Inbox" in reached and reached[-1] == "Order A-1001 shipped", reached
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT).until(lambda d: "/messages/" in d.current_url)


def test_light_and_dark(browser, sent):
    colours = {}
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        open_page(browser, sent.url + "/")
        colours[scheme] = browser.execute_script(
            "return getComputedStyle(document.body).backgroundColor"
        )
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert colours["light"] != colours["dark"], colours


def test_the_opened_button_records_an_open_the_api_reports(browser, sent):
    delivery = next(m["id"] for m in sent.inspect.messages() if m["subject"] == "Welcome, Ada!")
    open_page(browser, f"{sent.url}/messages/{delivery}")
    browser.find_element(By.CSS_SELECTOR, "form.record button[value=opened]").click()
    wait_for_text(browser, "#message-facts", "opened")
    answer = requests.get(
        f"{sent.url}/v1/messages/{delivery}",
        headers={"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"},
        timeout=30,
    )
    assert "opened" in answer.json()["message"]["metrics"]
