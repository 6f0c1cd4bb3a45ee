"""Against a live uvicorn server on 127.0.0.1: real HTTP, raw paths, concurrency, and the search page in
Debian chromium driven by Playwright."""

from __future__ import annotations

import http.client
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import uvicorn

from api.app import create_app
from indexer.encoders import SentenceTransformerEncoder
from search.engine import Engine
from tests.api.api_support import ADMIN, READ, READ_KEY, make_settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/visual-intent-search-page.png")
TOOL_SCREENSHOT = Path("/tmp/visual-intent-search-tool.png")
PAGE_QUERY = "show me how this jacket looks in the Alps at night"
CLIP_QUERY = "sunglasses at the beach, golden hour, playful"  # finds scn-0003, a two-shot webm clip


@pytest.fixture(scope="module")
def live_url(
    fixture_index: Path, tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder
) -> Iterator[str]:
    db = tmp_path_factory.mktemp("live") / "index"
    shutil.copytree(fixture_index, db)
    app = create_app(make_settings(db, max_body_bytes=64 * 1024), Engine.open(db, text=text_encoder))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_live_health_and_search(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as http:
        assert http.get("/v1/health").json()["status"] == "ok"
        response = http.post("/v1/search", json={"query": PAGE_QUERY, "k": 3}, headers=READ)
        assert response.status_code == 200 and response.json()["scenes"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert http.post("/v1/search", json={"query": "x"}).json()["error"]["code"] == "unauthorized"


def test_live_raw_traversal_paths_are_404(live_url: str) -> None:
    """http.client sends the path as written (no dot-segment normalisation, unlike browsers and httpx)."""
    host, port = live_url.removeprefix("http://").split(":")
    for path in (
        "/v1/thumbnails/../manifest.json",
        "/v1/thumbnails/../../../../etc/passwd",
        "/v1/thumbnails/scn-0003/../../manifest.json",
        "/v1/thumbnails/%2e%2e/%2e%2e/manifest.json",
        "/static/../routes/web.py",
        "/static/%2e%2e/settings.py",
    ):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", path, headers={"X-API-Key": READ_KEY})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 404, (path, response.status)
        assert b'"code":"not_found"' in body and b"schema_version" not in body and b"import" not in body


def test_live_chunked_body_over_the_limit_is_413(live_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    with httpx.Client(base_url=live_url, timeout=30) as http:
        response = http.post("/v1/search", content=chunks(), headers={**READ, "Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        declared = http.post("/v1/search", content=b"x" * (65 * 1024), headers=READ)
        assert declared.status_code == 413


def test_live_concurrent_reads_while_writing(live_url: str) -> None:
    def search(i: int) -> int:
        with httpx.Client(base_url=live_url, timeout=60) as http:
            body = {"query": f"jacket at night {i}", "k": 5}
            return http.post("/v1/search", json=body, headers=READ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(search, i) for i in range(24)]
        with httpx.Client(base_url=live_url, timeout=60) as http:
            scene = {"scene_id": "live-1", "prompt": "a parka on a glacier at night under the aurora"}
            assert http.post("/v1/scenes", json={"scenes": [scene]}, headers=ADMIN).status_code == 200
        statuses = [f.result() for f in futures]
    assert statuses == [200] * 24
    with httpx.Client(base_url=live_url, timeout=30) as http:
        assert http.get("/v1/scenes/live-1", headers=READ).status_code == 200
        metrics = http.get("/metrics").text
    assert 'visual_intent_writes_total{kind="upsert_scenes"} 1.0' in metrics


def _family_root_shown_with_a_remix(live_url: str, k: int) -> str:
    """A result that roots a remix family another result belongs to (remixes that change the scenario are
    results of their own, so the page shows both)."""
    body = {"query": PAGE_QUERY, "sku": "SKU-JKT-001", "k": k}
    with httpx.Client(base_url=live_url, timeout=30) as http:
        hits = http.post("/v1/search", headers=READ, json=body).json()["scenes"]
    families = [h["family_id"] for h in hits]
    return next(h["scene_id"] for h in hits if h["scene_id"] == h["family_id"] and families.count(h["family_id"]) > 1)


@pytest.mark.browser
def test_search_page_in_chromium(live_url: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(live_url + "/")
            page.fill("#api-key", READ_KEY)
            page.fill("#query", PAGE_QUERY)
            page.fill("#sku", "SKU-JKT-001")
            page.click("#search-button")
            page.wait_for_selector("body[data-state=done]", timeout=30_000)
            cards = page.locator(".card")
            assert cards.count() >= 3
            assert page.locator("#frame-chips .chip").count() >= 2
            assert "setting: alpine" in page.inner_text("#frame-chips")
            assert page.locator(".card .chip.tone").count() >= 1
            assert page.locator(".card .chip.match").count() >= 1
            assert "best shot" in page.inner_text("#results")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.thumb img')].some(i => !i.hidden && i.naturalWidth > 0)",
                timeout=15_000,
            )
            assert page.locator("#ads .ad").count() >= 1
            root = _family_root_shown_with_a_remix(live_url, page.locator(".card").count())
            family = page.locator(f".card[data-scene-id='{root}']")
            family.locator(".lineage-button").click()
            page.wait_for_selector(".lineage:not([hidden]) >> text=root:", timeout=15_000)
            assert family.locator(".lineage .chip.node").count() >= 2  # a tree: this scene and its remixes
            assert family.locator(".tree .current").count() == 1 and family.locator(".tree ul li").count() >= 1
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            page.fill("#api-key", "wrong-key-but-long-enough")
            page.click("#search-button")
            page.wait_for_selector("body[data-state=error]", timeout=15_000)
            assert "unknown API key" in page.inner_text("#error")
            assert [p for p in problems if "401" not in p] == []
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, problems: list[str]) -> Page:
    """A page whose session already holds the read key (as after typing it once)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.add_init_script(f"sessionStorage.setItem('visual-intent-api-key', '{READ_KEY}')")
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page


def _not_blank(png: bytes) -> bool:
    """A real picture, not one flat colour (a failed render or an empty box)."""
    import io

    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as image:
        return max(ImageStat.Stat(image.convert("RGB")).stddev) > 8


def _cards(page: Page) -> list[str]:
    return [str(c.get_attribute("data-scene-id")) for c in page.locator(".card").all()]


@pytest.mark.browser
def test_search_page_as_a_working_tool(live_url: str, browser: Browser) -> None:
    problems: list[str] = []
    page = _page(browser, problems)
    # a shared link runs its search on load, with the query and filters filled in from the URL
    page.goto(f"{live_url}/?q={quote(CLIP_QUERY)}&k=20&collapse=0")
    page.wait_for_selector("body[data-state=done]", timeout=30_000)
    assert page.input_value("#query") == CLIP_QUERY and page.input_value("#k") == "20"
    assert not page.is_checked("#collapse") and not page.is_visible("#examples")
    shared = _cards(page)
    assert "scn-0003" in shared

    # play the best shot: the clip is fetched with the key, seeks to the shot and renders real frames
    card = page.locator('.card[data-scene-id="scn-0003"]')
    card.locator(".play-button").click()
    page.wait_for_selector('.card[data-scene-id="scn-0003"][data-playing="1"]', timeout=20_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('.card[data-scene-id=\"scn-0003\"] video');"
        " return v && v.readyState >= 2 && !v.seeking; }",
        timeout=20_000,
    )
    start = float(card.locator(".shot").inner_text().split(": ")[1].split("s")[0])
    current = card.locator("video").evaluate("v => v.currentTime")
    assert start - 0.05 <= current <= start + 3.0
    assert _not_blank(card.locator(".thumb").screenshot())

    # per-channel scores on demand
    card.locator(".scores-button").click()
    rows = card.locator(".scores tr")
    assert rows.count() >= 3 and "dense" in card.locator(".scores").inner_text()
    page.screenshot(path=str(TOOL_SCREENSHOT), full_page=True)
    assert _not_blank(TOOL_SCREENSHOT.read_bytes())

    # more like this, then less like another: the examples go into the URL and never come back as results
    first = shared[0]
    page.locator(f'.card[data-scene-id="{first}"] .like-button').click()
    page.wait_for_function(f"() => location.search.includes('like={first}')", timeout=15_000)
    page.wait_for_selector("body[data-state=done]", timeout=30_000)
    assert page.is_visible("#examples") and not page.is_visible("#frame")
    assert f"Scenes like {first}" in page.inner_text("#examples") and first not in _cards(page)
    avoid = _cards(page)[0]
    page.locator(f'.card[data-scene-id="{avoid}"] .unlike-button').click()
    page.wait_for_function(f"() => location.search.includes('unlike={avoid}')", timeout=15_000)
    page.wait_for_selector("body[data-state=done]", timeout=30_000)
    liked = _cards(page)
    assert liked and not {first, avoid} & set(liked)
    params = parse_qs(urlsplit(page.url).query)
    assert params["like"] == [first] and params["unlike"] == [avoid]

    # the shared link reproduces the same results in a fresh page
    again = _page(browser, problems)
    again.goto(page.url)
    again.wait_for_selector("body[data-state=done]", timeout=30_000)
    assert _cards(again) == liked
    assert problems == []


@pytest.mark.browser
def test_search_page_empty_and_error_states(live_url: str, browser: Browser) -> None:
    filters = {"times_of_day": ["night"], "settings": ["beach"], "tones": ["minimalist"], "categories": ["furniture"]}
    with httpx.Client(base_url=live_url, timeout=30) as http:
        body = {"query": "a sofa", "k": 5, "filters": filters}
        assert http.post("/v1/search", json=body, headers=READ).json()["scenes"] == []  # no such scene
    problems: list[str] = []
    page = _page(browser, problems)
    page.goto(f"{live_url}/?q=a+sofa&time=night&setting=beach&tone=minimalist&category=furniture")
    page.wait_for_selector("body[data-state=empty]", timeout=30_000)
    assert page.is_visible("#empty") and "No eligible scene matched" in page.inner_text("#empty")
    assert page.locator(".card").count() == 0 and not page.is_visible("#error")
    page.fill("#api-key", "wrong-key-but-long-enough")
    page.click("#search-button")
    page.wait_for_selector("body[data-state=error]", timeout=15_000)
    assert "unknown API key" in page.inner_text("#error") and "[unauthorized]" in page.inner_text("#error")
    assert not page.is_visible("#empty") and page.locator(".card").count() == 0
    assert [p for p in problems if "401" not in p] == []
