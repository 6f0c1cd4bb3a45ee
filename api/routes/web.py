"""The search page: one server-rendered HTML file plus a small script that calls the JSON API."""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from indexer.vocab import Vocabulary

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
# Scripts and styles only from this origin; thumbnails and clips arrive as blob: URLs (fetched with the API key).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


PLACEHOLDERS = {"tone": "tone", "setting": "setting", "time": "time_of_day", "category": "category"}


@lru_cache(maxsize=1)
def _page() -> str:
    """The page with the vocabulary's labels filled into the filter menus."""
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    vocab = Vocabulary.load()
    for placeholder, slot in PLACEHOLDERS.items():
        options = "".join(
            f'<option value="{html.escape(label.name)}">{html.escape(label.words)}</option>'
            for label in vocab.by_slot[slot]
        )
        page = page.replace("{{" + placeholder + "_options}}", options)
    return page


@router.get("/", response_class=HTMLResponse)
def index_page() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY"})
