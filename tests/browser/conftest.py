"""Headless Chromium for the emulator's web page, driven by selenium.

Debian's `chromium` and `chromium-driver` packages: the driver is /usr/bin/chromedriver and
selenium is given it explicitly, so it never downloads one. Without them the tests fail under
CI=true (CI installs them) and are skipped elsewhere, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CIO_FLOWS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CIO_FLOWS_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
WIDE = (1400, 1000)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is missing: apt-get install -y chromium chromium-driver"
    return None


def require_browser() -> None:
    """Fail under CI=true when Chromium or its driver is missing (CI installs them), else skip."""
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    require_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cio-flows-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDE[0]},{WIDE[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
