"""Each page of the console in a real browser: verify, status, errors as the API words them,
downscaling before upload, names as text, phone width, labels and the keyboard, the camera,
and the collection selector (absent while the API has no collections)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from service.app import create_app
from service.settings import Settings
from tests.browser.conftest import BOTH, RECOGNIZE, WRONG
from tests.browser.console import Console, box_of
from tests.servers import Server, free_port

BOB = [54.0, 262.0, 171.0, 395.0]  # a face of t1.jpg (not its largest)


def _crop(t1_path: Path, box: list[float], path: Path) -> Path:
    """A JPEG of one face of t1.jpg with a margin around it."""
    x1, y1, x2, y2 = box
    margin = (x2 - x1) * 0.8
    image = Image.open(t1_path)
    image.crop((max(0, x1 - margin), max(0, y1 - margin), x2 + margin, y2 + margin)).save(
        path, quality=95
    )
    return path


def _shown_similarity(console: Console) -> str:
    console.wait(lambda: console.all("#verify-result .similarity"))
    return str(console.css("#verify-result .similarity").text)


def test_verify_two_photos_and_a_photo_against_an_identity(
    console: Console, api: httpx.Client, t1_path: Path, tmp_path: Path
) -> None:
    crop = _crop(t1_path, BOB, tmp_path / "bob.jpg")
    console.open("verify", key=BOTH)
    console.upload("verify-file-a", t1_path)
    console.upload("verify-file-b", crop)
    console.wait(lambda: console.by_id("verify-run").is_enabled())
    console.by_id("verify-run").click()
    expected = api.post(
        "/verify", files={"image": t1_path.read_bytes(), "image2": crop.read_bytes()}
    ).json()
    assert _shown_similarity(console) == f"{expected['similarity']:.3f}"
    assert not expected["match"]
    assert console.css("#verify-result .verdict-word").text == "Not the same person"
    # similarity and threshold on one bar, each at its place
    bar = console.css("#verify-result .bar")
    assert f"threshold {expected['threshold']:.3f}" in bar.get_attribute("aria-label")
    width = bar.size["width"]
    low = -1.0 if min(expected["similarity"], expected["threshold"]) < 0 else 0.0
    for marker, value in (
        ("similarity", expected["similarity"]),
        ("threshold", expected["threshold"]),
    ):
        left = console.css(f"#verify-result .{marker}-marker").location["x"] - bar.location["x"]
        assert abs(left - (value - low) / (1 - low) * width) <= 4, (marker, left, width)

    # a photo against an enrolled identity (enrolled through the API with the face's box)
    made = api.post("/identities", json={"name": "Bob", "external_id": "b-1"}).json()
    added = api.post(
        f"/identities/{made['id']}/faces",
        files={"image": t1_path.read_bytes()},
        data={"box": str(BOB)},
    )
    assert added.status_code == 201, added.text
    console.css('input[name="verify-mode"][value="identity"]').click()
    console.wait(lambda: len(console.all("#verify-identity-select option")) == 2)
    Select(console.by_id("verify-identity-select")).select_by_visible_text("Bob (b-1)")
    console.upload("verify-file-a", crop)
    console.wait(lambda: console.by_id("verify-run").is_enabled())
    console.by_id("verify-run").click()
    expected = api.post(
        "/verify", files={"image": crop.read_bytes()}, data={"identity_id": made["id"]}
    ).json()
    console.wait(lambda: made["id"] in console.by_id("verify-result").text)
    assert _shown_similarity(console) == f"{expected['similarity']:.3f}"
    assert expected["match"]
    assert console.css("#verify-result .verdict-word").text == "Same person"
    console.screenshot("verify")


def test_status_page_says_what_info_says(console: Console, api: httpx.Client) -> None:
    info = api.get("/info").json()
    console.open("status")
    console.wait(lambda: console.js("return document.getElementById('key-dialog').open"))
    console.by_id("key-cancel").click()  # /info and /health/ready are open: no key needed
    console.wait(lambda: console.all("#status-result dd"))
    field = {
        str(dd.get_attribute("data-field")): str(dd.text) for dd in console.all("#status-result dd")
    }
    for key in ("pack", "detector", "recognizer", "runtime", "device", "version"):
        assert field[key] == str(info[key]), key
    assert field["gallery_size"] == str(info["gallery_size"])
    assert field["ready"] == "yes"
    assert info["untrained"] is True
    warning = console.css("#status-result .untrained")
    assert warning.is_displayed() and "Untrained recognizer" in warning.text
    red, green, blue = (
        int(v) for v in warning.value_of_css_property("color").split("(")[1].split(",")[:3]
    )
    assert red > 150 and green < 90 and blue < 90, (red, green, blue)  # red, as the issue says
    assert console.by_id("untrained-banner").is_displayed()
    console.screenshot("status")


def test_a_wrong_key_shows_the_apis_401_message(console: Console, server: Server) -> None:
    with server.client() as plain:
        said = plain.get("/identities", headers={"X-API-Key": WRONG}).json()["error"]
        forbidden = plain.get("/identities", headers={"X-API-Key": RECOGNIZE}).json()["error"]
    console.open("gallery", key=WRONG)
    text = console.error("gallery-list-error")
    assert said["code"] == "unauthorized"
    assert text.startswith(f"{said['code']} (HTTP 401): {said['message']}"), text
    assert console.css("#gallery-list-error .error-message").text == said["message"]

    console.give_key(RECOGNIZE)  # a key without the manage scope: the API's 403, as worded
    console.wait(lambda: "HTTP 403" in console.error("gallery-list-error"))
    assert console.css("#gallery-list-error .error-message").text == forbidden["message"]


def test_a_non_image_upload_shows_the_apis_4xx_message(
    console: Console, api: httpx.Client, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a photo\n")
    console.open("identify", key=BOTH)
    console.upload("identify-file", notes)
    text = console.error("identify-error")
    answer = api.post("/identify", files={"image": ("notes.txt", notes.read_bytes(), "text/plain")})
    said = answer.json()["error"]
    assert 400 <= answer.status_code < 500
    assert text.startswith(f"{said['code']} (HTTP {answer.status_code}): {said['message']}"), text

    console.go("gallery")
    console.upload("gallery-enrol-file", notes)
    text = console.error("gallery-enrol-error")
    assert text.startswith(f"{said['code']} (HTTP {answer.status_code}): {said['message']}"), text
    assert console.browser_errors() == []


def test_a_large_photo_is_downscaled_in_the_browser(
    console: Console, t1_path: Path, tmp_path: Path
) -> None:
    big = tmp_path / "t1-big.jpg"
    Image.open(t1_path).resize((3840, 2658), Image.Resampling.LANCZOS).save(big, quality=92)
    console.open("identify", key=BOTH)
    # a slow answer shows progress, elapsed time and Cancel; YuNet answers in a fraction of a
    # second here, so the browser's network emulation holds the request back 3 s
    console.slow_network(3000)
    try:
        console.upload("identify-file", big)
        console.wait(lambda: console.all("#identify-busy progress"))
        assert "Identifying…" in console.by_id("identify-busy").text
        assert console.all("#identify-busy button")[0].text == "Cancel"
        console.wait(lambda: console.rows("#identify-result"), timeout=300)
    finally:
        console.slow_network(None)
    assert not console.all("#identify-busy progress")
    note = console.css("#identify-result figcaption").text
    assert note.startswith("downscaled in the browser from 3840×2658 to 1920×1329"), note
    # what went up is what is shown: 1920 px wide, and the service's boxes are in its pixels
    assert console.js("return document.querySelector('#identify-result img').naturalWidth") == 1920
    rows = console.rows("#identify-result")
    assert len(rows) >= 6  # t1.jpg's six faces
    right_edges = [box_of(r["box"])[2] for r in rows]
    assert 1280 < max(right_edges) <= 1920
    assert {r["name"] for r in rows} == {"unknown"}  # an empty gallery
    assert {r["best"] for r in rows} == {"(empty gallery)"}

    # Cancel stops waiting: the page says so and stays usable
    console.slow_network(3000)
    try:
        console.upload("identify-file", big)
        console.wait(lambda: console.all("#identify-busy button"))
        console.css("#identify-busy button").click()
        assert "cancelled" in console.error("identify-error")
        assert not console.all("#identify-busy progress")
    finally:
        console.slow_network(None)


def test_names_are_shown_as_text_never_as_markup(console: Console, api: httpx.Client) -> None:
    name = '<img src=x onerror="window.pwned=1">'
    assert api.post("/identities", json={"name": name}).status_code == 201
    console.open("gallery", key=BOTH)
    console.wait(lambda: console.all("#gallery-list tbody tr"))
    assert console.css("#gallery-list button.identity-open").text == name
    console.css("#gallery-list button.identity-open").click()
    console.wait(lambda: console.all("#detail-title"))
    assert console.by_id("detail-title").text == name
    assert console.all("#gallery-list img, #gallery-detail img") == []
    assert console.js("return window.pwned === undefined")


def test_search_and_paging(console: Console, api: httpx.Client) -> None:
    for i in range(25):
        body = {"name": f"person {i:02d}", "external_id": f"emp-{i:02d}"}
        assert api.post("/identities", json=body).status_code == 201
    console.open("gallery", key=BOTH)
    console.wait(lambda: console.by_id("gallery-range").text == "1–20 of 25")
    console.by_id("gallery-next").click()
    console.wait(lambda: console.by_id("gallery-range").text == "21–25 of 25")
    assert len(console.all("#gallery-list tbody tr")) == 5
    assert not console.by_id("gallery-next").is_enabled()
    console.by_id("gallery-search").send_keys("emp-1")  # external ids emp-10 … emp-19
    console.wait(lambda: console.by_id("gallery-range").text == "1–10 of 10 found")
    shown = [b.text for b in console.all("#gallery-list button.identity-open")]
    assert shown == [f"person {i}" for i in range(10, 20)]


def test_identity_page_rename_add_and_delete_faces(
    console: Console, api: httpx.Client, t1_path: Path, tmp_path: Path
) -> None:
    crop = _crop(t1_path, BOB, tmp_path / "bob.jpg")
    made = api.post("/identities", json={"name": "Rob"}).json()
    console.open("gallery", key=BOTH)
    console.wait(lambda: console.all('button[aria-label="Open Rob"]'))
    console.css('button[aria-label="Open Rob"]').click()
    console.wait(lambda: console.all("#detail-name"))
    # rename, with an external id
    console.by_id("detail-name").clear()
    console.by_id("detail-name").send_keys("Robert")
    console.by_id("detail-external").send_keys("emp-42")
    console.css("#gallery-detail form button[type=submit]").click()
    console.wait(
        lambda: console.all("#detail-title") and console.by_id("detail-title").text == "Robert"
    )
    assert api.get(f"/identities/{made['id']}").json()["external_id"] == "emp-42"
    # a group photo is refused as the API says, with the way out
    console.upload("detail-add-file", t1_path)
    text = console.error("gallery-detail .error-slot")
    assert text.startswith("too_many_faces (HTTP 422): image 1 holds 6 faces"), text
    assert "Enrol from a photo" in console.by_id("gallery-detail").text
    # a one-face photo is enrolled; its quality figures are listed
    console.upload("detail-add-file", crop)
    console.wait(lambda: len(console.all("button.face-delete")) == 1)
    (face,) = api.get(f"/identities/{made['id']}/faces").json()
    row = console.css("#gallery-detail tbody tr").text
    assert (
        f"{face['score']:.3f}" in row and f"{round(face['width'])} × {round(face['height'])}" in row
    )
    # deleted after the confirmation: gone from the API too
    console.css("button.face-delete").click()
    console.wait(lambda: console.js("return document.getElementById('confirm-dialog').open"))
    assert "gone for good" in console.by_id("confirm-text").text
    console.by_id("confirm-yes").click()
    console.wait(lambda: "No faces yet" in console.by_id("gallery-detail").text)
    assert api.get(f"/identities/{made['id']}/faces").json() == []


def _unlabelled(console: Console) -> list[str]:
    """Visible controls without an accessible name (a label, aria-label or their text)."""
    return list(
        console.js(
            """
            return [...document.querySelectorAll('input, select, textarea, button')]
              .filter(el => el.offsetParent !== null && el.type !== 'hidden')
              .filter(el => !((el.labels && [...el.labels].some(l => l.textContent.trim()))
                              || (el.getAttribute('aria-label') || '').trim()
                              || (el.tagName === 'BUTTON' && el.textContent.trim())
                              || el.closest('label')))
              .map(el => el.outerHTML.slice(0, 120));
            """
        )
    )


def test_phone_width_labels_and_keyboard(console: Console, api: httpx.Client) -> None:
    made = api.post("/identities", json={"name": "Katherine", "external_id": "k-1"}).json()
    console.driver.set_window_size(390, 844)
    console.open("identify")
    # the key dialog by keyboard alone: type, Enter
    console.wait(lambda: console.js("return document.activeElement.id") == "key-input")
    ActionChains(console.driver).send_keys(BOTH, Keys.ENTER).perform()
    console.wait(lambda: not console.js("return document.getElementById('key-dialog').open"))
    for page in ("identify", "verify", "gallery", "status"):
        console.go(page)
        if page == "gallery":
            console.wait(lambda: console.all('button[aria-label="Open Katherine"]'))
            console.css('button[aria-label="Open Katherine"]').click()
            console.wait(lambda: console.all("#detail-title"))
        if page == "status":
            console.wait(lambda: console.all("#status-result dd"))
        overflow = console.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{page} is wider than a phone by {overflow} px"
        assert _unlabelled(console) == [], page
        if page == "gallery":
            console.screenshot("phone", width=390)
    # every page is reached from the keyboard: Tab to the nav link, Enter
    console.js("document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(12):
        ActionChains(console.driver).send_keys(Keys.TAB).perform()
        if console.js("return document.activeElement.textContent") == "Verify":
            break
    assert console.js("return document.activeElement.dataset.nav") == "verify"
    ActionChains(console.driver).send_keys(Keys.ENTER).perform()
    console.wait(lambda: console.by_id("page-verify").is_displayed())
    assert made["id"]


def test_the_camera_where_the_browser_allows_it(console: Console) -> None:
    """Chromium's fake camera (a test pattern; --use-fake-device-for-media-stream): a frame
    is taken and identified. The pattern holds no face, and the page says so."""
    console.open("identify", key=BOTH)
    console.css("#identify-picker button.camera").click()
    console.wait(
        lambda: console.js("return document.getElementById('camera-video').videoWidth > 0")
    )
    console.by_id("camera-take").click()
    console.wait(lambda: "No face found in this photo." in console.by_id("identify-result").text)
    assert console.requests_to("/identify") == 1


def test_no_collection_selector_while_the_api_has_none(console: Console) -> None:
    console.open("gallery", key=BOTH)
    console.wait(lambda: console.by_id("gallery-range").text == "no identities yet")
    console.wait(lambda: console.requests_to("/collections") >= 1)  # probed: 404 today
    assert not console.by_id("collection-box").is_displayed()


@pytest.fixture
def with_collections(test_pack: Path, tmp_path: Path) -> Iterator[str]:
    """The real app, open mode, plus a stand-in ``GET /collections``: the collections API
    (issue 18) is not built yet, so this one route is faked to show the console is ready for
    it. Everything else is the real service, in-process on uvicorn."""
    port = free_port()
    settings = Settings(
        pack=test_pack, data_dir=tmp_path / "data", device="cpu", det_threshold=0.7, port=port
    )
    app = create_app(settings)

    @app.get("/collections", include_in_schema=False)
    async def collections() -> dict[str, object]:
        return {"items": [{"id": "default", "name": "default"}, {"id": "shop", "name": "Shop"}]}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the in-process app did not become ready"
        time.sleep(0.3)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_collection_selector_once_the_api_has_collections(
    driver: object, with_collections: str, screenshots: Path
) -> None:
    console = Console(driver, f"{with_collections}/console/", screenshots)
    console.reset()
    console.open("gallery")  # open mode: no key asked
    console.wait(lambda: console.by_id("collection-box").is_displayed())
    options = [o.text for o in console.all("#collection option")]
    assert options == ["default", "Shop (shop)"]
    console.wait(lambda: console.requests_to("/identities") >= 1)  # default: the plain routes
    Select(console.by_id("collection")).select_by_visible_text("Shop (shop)")
    console.wait(
        lambda: any(p.startswith("/collections/shop/identities") for p in console.request_paths())
    )
    # the stand-in has no /collections/shop/identities: the API's 404, shown as it is worded
    assert "not_found (HTTP 404)" in console.error("gallery-list-error")
    assert console.js("return sessionStorage.getItem('facerec.collection')") == "shop"
