"""The main flows in a real Chromium against `cvprep serve`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import axe_violations

pytestmark = pytest.mark.browser


def test_search_open_reveal_and_next(page: Page) -> None:
    page.goto("/")
    expect(page.locator("li.question-card")).to_have_count(12)
    page.evaluate("window.__noReload = true")

    page.get_by_label("Search questions and answers").fill("pool")
    cards = page.locator("li.question-card")
    expect(page.locator(".count")).to_contain_text("match “pool”")
    assert cards.count() < 12
    assert page.evaluate("window.__noReload") is True  # the list was swapped, not reloaded
    assert "q=pool" in page.url

    page.locator("li.question-card h2 a[href='/questions/pooling']").click()
    expect(page).to_have_url(re.compile(r"/questions/pooling$"))
    expect(page.locator("h1")).to_be_visible()

    page.evaluate("window.__noReload = true")
    page.get_by_role("link", name="Reveal the model answer").click()
    answer = page.locator("#answer")
    expect(answer).to_be_visible()
    expect(answer.locator(".prose h3").first).to_be_visible()
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#answer-heading")).to_be_focused()

    page.locator("a[rel=next]").click()
    expect(page).to_have_url(re.compile(r"/questions/residual-connections$"))


def test_draft_is_saved_as_you_type_and_shown_beside_the_answer(page: Page) -> None:
    page.goto("/questions/batch-normalization")
    page.get_by_label("Draft your answer").fill("It normalises each channel over the batch.")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    page.reload()
    expect(page.get_by_label("Draft your answer")).to_have_value(
        "It normalises each channel over the batch."
    )
    page.get_by_role("link", name="Reveal the model answer").click()
    expect(page.locator(".compare .draft-copy")).to_have_text(
        "It normalises each channel over the batch."
    )


def test_reveal_shows_the_answer_aloud_and_the_keyboard_opens_the_depth(page: Page) -> None:
    page.goto("/questions/residual-connections")
    page.get_by_role("link", name="Reveal the model answer").click()
    aloud = page.locator("#answer .answer-aloud")
    expect(aloud.get_by_role("heading", name="The answer you would give aloud")).to_be_visible()
    follow_ups = page.locator("#answer #common-follow-ups")
    expect(follow_ups).to_be_hidden()

    summary = page.locator("#answer details.answer-depth > summary")
    summary.focus()
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    expect(follow_ups).to_be_visible()
    expect(page.locator("#answer details.answer-depth")).to_have_attribute("open", "")


def test_a_link_to_a_section_of_the_depth_opens_it(page: Page) -> None:
    page.goto("/questions/residual-connections?reveal=true#go-deeper")
    expect(page.locator("#go-deeper")).to_be_visible()


@pytest.mark.parametrize("path", ["/", "/questions/pooling?reveal=true", "/nope"])
def test_pages_pass_the_accessibility_check(page: Page, path: str) -> None:
    page.goto(path)
    assert axe_violations(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_accessible_in_light_and_dark_mode(browser: Browser, live_server: str, scheme: str) -> None:
    context = browser.new_context(base_url=live_server, bypass_csp=True, color_scheme=scheme)
    page = context.new_page()
    page.goto("/questions/convolutional-layers?reveal=true")
    assert axe_violations(page) == []
    context.close()


def test_works_on_a_phone_sized_screen(browser: Browser, live_server: str) -> None:
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto("/questions/architecture-evolution?reveal=true")
    # The page itself never scrolls sideways; wide tables scroll inside their own region.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def _answer_current_item(page: Page) -> None:
    """Answer whatever the practice card shows, the way a learner would (keyboard first)."""
    card = page.locator("#practice-card")
    kind = card.get_attribute("data-kind")
    if kind == "choice":
        page.keyboard.press("1")
        card.get_by_role("button", name="Check").click()
    elif kind == "numeric":
        card.get_by_label("Your answer", exact=False).fill("7")
        card.get_by_role("button", name="Check").click()
    else:
        page.locator("body").press("Space")
        expect(card.locator("[data-reveal]")).to_have_attribute("open", "")
        page.keyboard.press("3")
    expect(page.locator("#verdict")).to_be_visible()


def test_guest_practises_registers_and_keeps_progress(page: Page) -> None:
    page.goto("/practice?new=true")
    for _ in range(3):
        _answer_current_item(page)
        page.keyboard.press("ArrowRight")
        expect(page.locator("#practice-card form.answer-form")).to_be_visible()

    page.goto("/progress")
    page.reload()
    expect(page.locator(".stats")).to_contain_text("3 reviews")
    assert axe_violations(page) == []

    page.get_by_role("link", name="Register").first.click()
    page.get_by_label("Username").fill("browser-learner")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".site-nav")).to_contain_text("Signed in as browser-learner")
    expect(page.locator(".stats")).to_contain_text("3 reviews")

    page.get_by_role("button", name="Log out").click()
    page.goto("/progress")
    expect(page.locator(".empty-state")).to_contain_text("Nothing to show yet")

    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Username").fill("browser-learner")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".stats")).to_contain_text("3 reviews")


def test_practice_page_passes_the_accessibility_check(page: Page) -> None:
    page.goto("/practice?question=pooling&new=true")
    assert axe_violations(page) == []
