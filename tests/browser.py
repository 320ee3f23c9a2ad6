"""Headless Chromium for the page tests (no tests here): Debian's ``chromium`` driven through
its ``chromium-driver`` with Selenium, never a downloaded browser. `.ci/run` installs both;
where they are missing, `chromium` skips the test saying so.

`Browser.open` loads a page and returns what the tests check: the console messages, every
URL the page asked for (from the DevTools network log), and the value cells."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("OTEL_COSTATTR_TEST_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("OTEL_COSTATTR_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
DESKTOP, NARROW = (1280, 900), (390, 844)

CELLS_JS = """return Array.from(document.querySelectorAll('[data-col]')).map(e => ({
  rollup: e.dataset.rollup, row: e.dataset.row, col: e.dataset.col, exact: e.dataset.exact,
  window: e.dataset.window, traceId: e.dataset.traceId, text: e.textContent}));"""


_BROWSER_SCHEMES = ("chrome://", "chrome-untrusted://", "chrome-extension://", "devtools://")


@dataclass
class Loaded:
    """What one page load showed: console entries, requested URLs, value cells."""

    console: list[dict[str, Any]]
    requests: list[str]
    cells: list[dict[str, Any]]


class Browser:
    """One headless Chromium (a fresh profile) for a test module."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="costattr-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        self.driver.set_page_load_timeout(60)

    def open(self, url: str, *, size: tuple[int, int] = DESKTOP) -> Loaded:
        self.driver.set_window_size(*size)
        self.driver.get_log("performance")  # drop what came before
        self.driver.get_log("browser")
        self.driver.get(url)
        return self.loaded()

    def follow(self, element: Any, *, submit: bool = False) -> Loaded:
        """Click ``element`` (or submit its form) and return what the page it leads to showed.

        A click or submit returns before the next page is there; reading at once can read the
        old page (CI once saw the unfiltered overview's cells after a filter's submit). So this
        waits until the old document is gone and the new one has loaded."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.driver.find_element("tag name", "html")
        element.submit() if submit else element.click()
        wait = WebDriverWait(self.driver, 60)
        wait.until(expected_conditions.staleness_of(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        return self.loaded()

    def loaded(self) -> Loaded:
        """What the page now shown asked for and said (since the last call)."""
        requests = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                params = message["params"]
                # The browser's own pages (Chromium 150's new-tab page loads modules and a
                # data: image beside the first load) are not the page's requests.
                if not params.get("documentURL", "").startswith(_BROWSER_SCHEMES):
                    requests.append(params["request"]["url"])
        console = self.driver.get_log("browser")
        return Loaded(console, requests, self.driver.execute_script(CELLS_JS))

    def screenshot(self, name: str, size: tuple[int, int]) -> Path:
        """The whole page at ``size``'s width, kept under ``test-artifacts/``."""
        import base64

        self.driver.set_window_size(*size)
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}-{size[0]}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def overflow(self) -> int:
        """How far the page is wider than the window (0: nothing sideways but the tables'
        own scroll boxes)."""
        return self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


def chromium() -> Browser:
    """A `Browser`, or a skip naming what is missing."""
    missing = [p for p in (CHROMIUM, DRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"no Chromium here ({', '.join(missing)} missing): apt-get install chromium chromium-driver"
        )
    pytest.importorskip("selenium", reason="selenium is in the [test] extra")
    return Browser()


def errors(loaded: Loaded) -> list[dict[str, Any]]:
    """Console entries at warning level or worse."""
    return [e for e in loaded.console if e["level"] in ("SEVERE", "WARNING")]


def outside(loaded: Loaded, allowed: str) -> list[str]:
    """Requested URLs that do not start with ``allowed``."""
    return [u for u in loaded.requests if not u.startswith(allowed)]
