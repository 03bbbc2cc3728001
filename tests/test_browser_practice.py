"""Practice, progress and drafts in a real Chromium: keyboard only, phone width, axe, focus,
local times, drafts that survive a quick reveal or leaving the page, login back to the page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import axe_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}

# Every text node's rendered size in px: CSS size for HTML, scaled by the SVG's own transform
# for chart text. Returns [size, text] of the smallest ones.
SMALLEST_TEXT = """() => {
  const sizes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!node.textContent.trim() || !element) continue;
    if (element.closest('title, desc, script, style, .visually-hidden, details:not([open]) > :not(summary)')) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let size = parseFloat(getComputedStyle(element).fontSize);
    if (element instanceof SVGElement && element.getScreenCTM()) size *= element.getScreenCTM().a;
    sizes.push([Math.round(size * 10) / 10, node.textContent.trim().slice(0, 40)]);
  }
  sizes.sort((a, b) => a[0] - b[0]);
  return sizes.slice(0, 5);
}"""


def _focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def _answer_by_keyboard(page: Page) -> None:
    """Answer the item on screen with the keyboard alone (any answer will do)."""
    card = page.locator("#practice-card")
    kind = card.get_attribute("data-kind")
    if kind == "choice":
        page.keyboard.press("2")  # choose the second option shown, focus moves to it
        page.keyboard.press("Enter")  # and Enter checks it
    elif kind == "numeric":
        expect(page.locator("#answer")).to_be_focused()  # the field has the focus already
        page.keyboard.type("7")
        page.keyboard.press("Enter")
    else:
        page.keyboard.press("Space")
        expect(card.locator("[data-reveal]")).to_have_attribute("open", "")
        page.keyboard.press("3")
    expect(page.locator("#verdict")).to_be_visible()


def test_a_whole_round_by_keyboard_with_focus_on_each_feedback(page: Page) -> None:
    page.goto("/practice")
    page.get_by_label("Items in the round").fill("3")
    page.get_by_label("Items in the round").press("Enter")
    for n in range(3):
        expect(page.locator("#practice-card .answer-form")).to_be_visible()
        assert f"Item {n + 1} of 3" in page.locator(".practice-meta").first.inner_text()
        _answer_by_keyboard(page)
        expect(page.locator("#verdict")).to_be_visible()
        # Focus is on the feedback, so a screen reader announces it (not lost on <body>).
        expect(page.locator("#verdict")).to_be_focused()
        assert page.locator(".given").count() + page.locator("#verdict").count() >= 1
        if n == 0:
            assert axe_violations(page) == []
        page.keyboard.press("ArrowRight")
    expect(page.locator("h1")).to_have_text("Round summary")
    expect(page.locator(".round-summary > li")).to_have_count(3)
    assert axe_violations(page) == []
    # "Practice" now offers a new round, not the old summary.
    page.get_by_role("link", name="Practice", exact=True).click()
    expect(page.get_by_role("button", name="Start a new round")).to_be_visible()
    assert axe_violations(page) == []


def test_an_unreadable_number_keeps_the_text_and_the_focus(page: Page) -> None:
    page.goto("/practice?question=convolutional-layers&new=true")
    page.locator("#answer").fill("twelve")
    page.keyboard.press("Enter")
    expect(page.locator("#answer-error")).to_contain_text("is not a number")
    expect(page.locator("#answer")).to_have_value("twelve")
    expect(page.locator("#answer")).to_be_focused()
    assert axe_violations(page) == []


def test_undo_by_keyboard_says_so(page: Page) -> None:
    page.goto("/practice?question=pooling&new=true")
    _answer_by_keyboard(page)
    expect(page.locator("#verdict")).to_be_focused()
    page.keyboard.press("u")
    expect(page.locator("#undo-notice")).to_contain_text("taken back")
    assert "Item 1 of" in page.locator(".practice-meta").first.inner_text()


def test_times_are_shown_in_the_learners_time_zone(browser: Browser, live_server: str) -> None:
    context = browser.new_context(base_url=live_server, timezone_id="Asia/Kolkata", locale="en-GB")
    page = context.new_page()
    page.goto("/practice?question=pooling&new=true")
    _answer_by_keyboard(page)
    time = page.locator("#practice-card time[data-local]")
    expect(time).to_have_attribute("data-localised", "true")
    utc = datetime.fromisoformat(time.get_attribute("datetime").replace("Z", "+00:00"))
    local = utc.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert f"{local:%H:%M}" in time.inner_text()
    assert time.get_attribute("title").endswith("UTC")  # the UTC text stays as the tooltip
    context.close()


@pytest.mark.parametrize("path", ["/", "/progress", "/practice"])
def test_phone_width_pages_are_readable(browser: Browser, live_server: str, path: str) -> None:
    context = browser.new_context(base_url=live_server, viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto("/practice?question=class-imbalance&new=true")
    for _ in range(2):  # some history, so the progress page draws its charts
        _answer_by_keyboard(page)
        page.keyboard.press("ArrowRight")
        expect(page.locator("#practice-card .answer-form")).to_be_visible()
    _import_a_due_card(page)
    page.goto(path)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    smallest = page.evaluate(SMALLEST_TEXT)
    assert smallest[0][0] >= 12, smallest
    if path == "/progress":
        # The due count is shown whole: nothing in a row is clipped.
        clipped = page.evaluate(
            """() => [...document.querySelectorAll('.mastery-row *')]
                 .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')
                 .map(e => e.textContent)"""
        )
        assert clipped == []
        due = page.locator(".mastery-row .due").first
        expect(due).to_be_visible()
        assert re.fullmatch(r"\d+ due", due.inner_text())
        assert axe_violations(page) == []
    context.close()


def _import_a_due_card(page: Page) -> None:
    """A card due since yesterday, brought in through the import form (nothing else can make
    an item due without waiting a day)."""
    now = datetime.now(UTC)
    card = {
        "item_id": "pool-max-gradient",
        "question_slug": "pooling",
        "state": 2,
        "step": None,
        "stability": 4.0,
        "difficulty": 5.0,
        "due": (now - timedelta(days=1)).isoformat(),
        "last_review": (now - timedelta(days=5)).isoformat(),
        "reps": 2,
        "lapses": 0,
    }
    export = {
        "format": "cvprep-progress",
        "version": 1,
        "exported_at": now.isoformat(),
        "username": None,
        "reviews": [],
        "cards": [card],
        "drafts": [],
    }
    page.goto("/progress")
    page.locator("#import-file").set_input_files(
        {"name": "due.json", "mimeType": "application/json", "buffer": json.dumps(export).encode()}
    )
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator(".banner")).to_contain_text("Imported")


def test_progress_for_a_new_learner_says_what_to_do(page: Page) -> None:
    page.goto("/progress")
    expect(page.locator(".empty-state")).to_contain_text("Nothing to show yet")
    page.get_by_role("link", name="Start a practice round").click()
    expect(page.locator("#practice-card")).to_be_visible()


def test_a_draft_typed_and_revealed_at_once_is_kept(page: Page) -> None:
    page.goto("/questions/data-augmentation")
    page.locator("#draft").fill("Flips and crops for invariance; mixup for calibration.")
    page.get_by_role("link", name="Reveal the model answer").click()  # before the debounce
    expect(page.locator(".compare .draft-copy")).to_have_text(
        "Flips and crops for invariance; mixup for calibration."
    )
    page.goto("/questions/data-augmentation")
    expect(page.locator("#draft")).to_have_value(
        "Flips and crops for invariance; mixup for calibration."
    )


def test_a_draft_typed_just_before_leaving_is_kept(page: Page) -> None:
    page.goto("/questions/transfer-learning")
    page.locator("#draft").fill("Freeze the backbone when data is scarce.")
    page.goto("/")  # at once: the debounce never fires; the page-hide beacon saves it
    # The beacon is sent as the page goes and may land a moment after the next page loads.
    kept = ""
    for _ in range(20):
        page.goto("/questions/transfer-learning")
        kept = page.locator("#draft").input_value()
        if kept:
            break
        page.wait_for_timeout(250)
    assert kept == "Freeze the backbone when data is scarce."


def test_search_hits_show_marked_snippets_and_pass_axe(page: Page) -> None:
    page.goto("/?q=focal+loss")
    expect(page.locator(".snippet mark").first).to_be_visible()
    assert axe_violations(page) == []


def test_login_returns_to_the_page_you_were_on(page: Page) -> None:
    page.goto("/register")
    page.get_by_label("Username").fill("returning-learner")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("button", name="Log out").click()
    page.goto("/questions/evaluation-metrics")
    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Username").fill("returning-learner")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/questions/evaluation-metrics$"))
    expect(page.locator(".site-nav")).to_contain_text("Signed in as returning-learner")
