"""A real headless Chromium (Debian's ``chromium`` + ``chromedriver``, driven by Selenium)
against a real ``facerec serve`` on the test pack.

Without chromium or chromedriver the tests skip, saying so; with ``FACEREC_BROWSER_REQUIRED=1``
(set by ``.ci/run``, which installs both) they fail instead, so CI cannot skip them quietly.
``FACEREC_CONSOLE_SCREENSHOTS=DIR`` writes the pages' screenshots there (the README's come from
``FACEREC_CONSOLE_SCREENSHOTS=docs/figures``); otherwise they go to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.console import Console
from tests.servers import Server

# the keys the console is given; a wrong one must get the API's own 401
BOTH = "console-both-scopes-key-0123"
RECOGNIZE = "console-recognize-key-01234"
WRONG = "console-not-a-configured-key"
KEYS = [
    {"name": "console", "key": BOTH, "scopes": ["recognize", "manage"]},
    {"name": "app", "key": RECOGNIZE, "scopes": ["recognize"]},
]

# Chromium on a machine with no way out: without these it waits on the network it lacks
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a camera for the camera button: Chromium's own test pattern, no dialog
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in the dev extra)"
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if absent:
        return (
            f"{' and '.join(absent)} not found: apt-get install chromium chromium-driver "
            "(Debian's packages; .ci/run installs them)"
        )
    return None


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("FACEREC_BROWSER_REQUIRED") == "1":
            pytest.fail(f"FACEREC_BROWSER_REQUIRED=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1200,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(shutil.which("chromedriver")))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_script_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def server(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("console") / "data"
    with Server(test_pack, data, {"FACEREC_API_KEYS": json.dumps(KEYS)}) as running:
        running.start()
        yield running


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """The same service over HTTP, with the key: what the page shows is checked against it."""
    with server.client() as client:
        client.headers["X-API-Key"] = BOTH
        yield client


@pytest.fixture
def empty_gallery(api: httpx.Client) -> None:
    """Each test starts on an empty gallery (deleted through the API)."""
    while True:
        items = api.get("/identities", params={"limit": 1000}).json()["items"]
        if not items:
            return
        for item in items:
            assert api.delete(f"/identities/{item['id']}").status_code == 204


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("FACEREC_CONSOLE_SCREENSHOTS")
    folder = Path(named) if named else tmp_path_factory.mktemp("console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def console(driver: Any, server: Server, screenshots: Path, empty_gallery: None) -> Console:
    page = Console(driver, f"{server.url}/console/", screenshots)
    page.reset()
    return page


@pytest.fixture(scope="session")
def t1_path(insightface_images: Path) -> Path:
    return insightface_images / "t1.jpg"
