"""The console as a user drives it: pages, the key dialog, uploads, what the page says."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

WAIT_S = 180  # MTCNN on two busy cores: an enrolment of six faces takes tens of seconds


class Console:
    def __init__(self, driver: Any, url: str, screenshots: Path) -> None:
        self.driver = driver
        self.url = url
        self.screenshots = screenshots

    # ---------- navigation ----------

    def reset(self) -> None:
        """A fresh tab state: no key, no collection, desktop width, the identify page."""
        self.driver.set_window_size(1200, 900)
        self.driver.get(self.url)
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get("about:blank")

    def open(self, page: str, key: str | None = None) -> None:
        """Load the console on ``page``; give ``key`` in the dialog it opens when none is kept."""
        self.driver.get(f"{self.url}#{page}")
        self.wait(lambda: self.js("return document.readyState") == "complete")
        if key is not None:
            self.wait(lambda: self.js("return document.getElementById('key-dialog').open"))
            self.give_key(key)

    def give_key(self, key: str) -> None:
        if not self.js("return document.getElementById('key-dialog').open"):
            self.by_id("key-change").click()
        field = self.by_id("key-input")
        field.clear()
        field.send_keys(key)
        self.css("#key-form button[type=submit]").click()
        self.wait(lambda: not self.js("return document.getElementById('key-dialog').open"))

    def go(self, page: str) -> None:
        self.css(f'nav a[data-nav="{page}"]').click()
        self.wait(lambda: self.by_id(f"page-{page}").is_displayed())

    # ---------- elements ----------

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def by_id(self, element_id: str) -> Any:
        return self.driver.find_element("id", element_id)

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return list(self.driver.find_elements("css selector", selector))

    def wait(self, condition: Callable[[], Any], timeout: float = WAIT_S) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(lambda _: condition())

    def slow_network(self, latency_ms: int | None) -> None:
        """Chromium's own network emulation (DevTools): every request from the page waits
        ``latency_ms`` more; ``None`` restores the plain network. It makes an answer slow on
        purpose, so what the page shows while it waits is seen whatever the detector's speed."""
        conditions = {
            "offline": False,
            "latency": latency_ms or 0,
            "downloadThroughput": -1,
            "uploadThroughput": -1,
        }
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)

    def upload(self, input_id: str, path: Path) -> None:
        self.by_id(input_id).send_keys(str(path))

    def error(self, slot: str) -> str:
        """The text of the error shown in ``slot`` once there is one."""
        self.wait(lambda: self.all(f"#{slot} .error"))
        return str(self.css(f"#{slot} .error").text)

    def requests_to(self, suffix: str) -> int:
        """How many requests this page load sent to a path ending in ``suffix``."""
        return int(
            self.js(
                "return performance.getEntriesByType('resource')"
                ".filter(e => new URL(e.name).pathname.endsWith(arguments[0])).length",
                suffix,
            )
        )

    def request_paths(self) -> list[str]:
        return list(
            self.js(
                "return performance.getEntriesByType('resource')"
                ".map(e => new URL(e.name).pathname + new URL(e.name).search)"
            )
        )

    def rows(self, table: str) -> list[dict[str, str]]:
        """A results table's rows as {cell class: text} (cells ``name``, ``box``, ...)."""
        found = []
        for row in self.all(f"{table} tbody tr"):
            cells = {}
            for cell in row.find_elements("css selector", "td"):
                for name in (cell.get_attribute("class") or "").split():
                    cells.setdefault(name, str(cell.text))
            found.append(cells)
        return found

    def browser_errors(self) -> list[str]:
        """Script errors in the browser's console (a 4xx answer is logged as a failed load
        by Chromium itself; those are the API's answers, not the console's failures)."""
        return [
            str(entry["message"])
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
        ]

    # ---------- screenshots ----------

    def screenshot(self, name: str, width: int = 1200, max_height: int = 2400) -> Path:
        """The whole page (up to ``max_height``) as a small palette PNG."""
        size = self.driver.get_window_size()
        self.js("window.scrollTo(0, 0)")
        height = int(self.js("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(width, min(max_height, height + 140))
        self.js("window.scrollTo(0, 0)")
        png = self.driver.get_screenshot_as_png()
        self.driver.set_window_size(size["width"], size["height"])
        image = Image.open(io.BytesIO(png)).convert("RGB")
        path = self.screenshots / f"console-{name}.png"
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        return path


def box_of(text: str) -> list[float]:
    """A box as the page writes it, ``x1, y1, x2, y2``."""
    return [float(v) for v in text.split(",")]


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0
