"""Launching Debian's Chromium through Playwright, and the axe-core accessibility check."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response, sync_playwright

from app.settings import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def require_chromium() -> None:
    """Skip on a developer machine without Chromium; in CI a missing browser is a failure."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = f"Chromium not found at {CHROMIUM}; `make browser` installs Debian's package"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Page) -> list[dict]:
    """WCAG 2 A/AA violations axe-core finds on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'best-practice']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _broken_resource(response: Response) -> str | None:
    """A script, style, image or font that failed. Documents may be deliberate 404s, and
    htmx requests (xhr/fetch) answered 422 are the inline errors some tests ask for."""
    kind = response.request.resource_type
    if response.status < 400 or kind == "document" or kind in ("xhr", "fetch"):
        return None
    return f"{response.status} {response.url}"


@contextmanager
def checked_page(browser: Browser, base_url: str, **options: Any) -> Iterator[Page]:
    """A fresh browser context (its own cookies) on `base_url`; fails the test on any
    JavaScript error or broken resource. bypass_csp lets tests inject axe-core; `options` go
    to `new_context` (a colour scheme, a viewport, JavaScript off)."""
    context = browser.new_context(base_url=base_url, bypass_csp=True, **options)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "response", lambda r: errors.append(problem) if (problem := _broken_resource(r)) else None
    )
    yield opened
    context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A checked page on the shared live server."""
    with checked_page(browser, live_server) as opened:
        yield opened
