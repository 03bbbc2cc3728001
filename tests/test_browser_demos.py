"""The demos in a real Chromium against `cvprep serve`: inside a question, hover, errors, axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import axe_violations

pytestmark = pytest.mark.browser


def _figure(page: Page, scope: str, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f"{scope} .figures div").filter(has_text=name).locator("dd")


def test_shape_calculator_inside_a_question_updates_without_a_reload(page: Page) -> None:
    page.goto("/questions/convolutional-layers")
    demo = page.locator(".question-demos")
    page.locator(".try-it a").first.click()  # the link at the top jumps to the demo …
    expect(demo.get_by_role("heading", name="Shape calculator")).to_be_in_viewport()
    output = _figure(page, "#q-layer-result", "Output")
    expect(output).to_have_text("64 × 112 × 112")  # … which fills itself in once in view
    formulas = page.locator("#q-layer-result details.formula-box")
    expect(formulas).not_to_have_attribute("open", "")  # folded: part of the answer
    page.evaluate("window.__noReload = true")

    demo.get_by_label("Kernel", exact=True).fill("3")
    demo.get_by_label("Stride", exact=True).fill("1")
    demo.get_by_label("Padding", exact=True).fill("same")
    demo.get_by_role("button", name="Calculate").click()

    expect(output).to_have_text("64 × 224 × 224")
    expect(_figure(page, "#q-layer-result", "Parameters")).to_have_text("1,728")
    expect(page.locator("#q-layer-result .demo-code").first).to_contain_text('padding="same"')
    assert page.evaluate("window.__noReload") is True  # swapped in place, not a new page
    assert page.url.endswith("/questions/convolutional-layers#try-shape-calculator")


def test_an_invalid_field_shows_its_message_inline(page: Page) -> None:
    page.goto("/demos/shapes")
    page.evaluate("window.__noReload = true")
    page.get_by_label("Groups").fill("5")
    page.get_by_role("button", name="Calculate").click()
    error = page.locator("#layer-result .demo-error")
    expect(error).to_have_text("Groups: must divide channels (3); got 5")
    groups = page.get_by_label("Groups")
    expect(groups).to_have_attribute("aria-invalid", "true")
    assert "demo-error" in (groups.get_attribute("aria-describedby") or "").split()
    assert page.evaluate("window.__noReload") is True
    page.get_by_label("Groups").fill("1")
    page.get_by_role("button", name="Calculate").click()
    expect(error).to_have_count(0)
    expect(groups).not_to_have_attribute("aria-invalid", "true")  # the mark goes with the error


def test_hovering_a_pooled_cell_shows_what_it_reads_and_where_its_gradient_goes(page: Page) -> None:
    page.goto("/demos/pooling")
    max_pool = page.locator('.pool-method[data-method="max"]')
    max_pool.locator('.output-grid td[data-out="1,1"]').hover()
    read = max_pool.locator(".input-grid td.read")
    expect(read).to_have_count(4)
    assert [cell.get_attribute("data-cell") for cell in read.all()] == ["2,2", "2,3", "3,2", "3,3"]
    expect(max_pool.locator(".grad-grid td.nonzero")).to_have_count(1)
    expect(max_pool.locator(".traced-cell")).to_have_text("1,1")

    average = page.locator('.pool-method[data-method="avg"]')
    average.locator('.output-grid td[data-out="0,2"]').focus()  # keyboard works too
    expect(average.locator(".grad-grid td.nonzero")).to_have_count(4)
    expect(average.locator('.grad-grid td[data-cell="0,4"]')).to_have_text("0.25")


def test_the_augmentation_gallery_pushes_its_state_into_the_address(page: Page) -> None:
    page.goto("/demos/augmentation")
    page.get_by_label("Batch mixing").select_option("mixup")
    expect(page.locator(".gallery figcaption").first).to_contain_text("+")
    assert "mix=mixup" in page.url
    shared = page.url
    first = page.locator(".gallery img").first.get_attribute("src")
    page.goto(shared)
    assert page.locator(".gallery img").first.get_attribute("src") == first


@pytest.mark.parametrize(
    "path",
    [
        "/demos/",
        "/demos/shapes",
        "/demos/shapes/model?arch=resnet18",
        "/demos/shapes/stack",
        "/demos/pooling",
        "/demos/augmentation",
        "/demos/architectures",
        "/demos/shapes?groups=5",
    ],
)
def test_demo_pages_pass_the_accessibility_check(page: Page, path: str) -> None:
    page.goto(path)
    assert axe_violations(page) == []


def test_demo_pages_fit_a_phone_screen(browser: Browser, live_server: str) -> None:
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740})
    page = context.new_page()
    for path in ("/demos/shapes", "/demos/pooling", "/demos/augmentation", "/demos/shapes/model"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    context.close()


@pytest.mark.parametrize("path", ["/demos/pooling", "/questions/convolutional-layers"])
def test_demos_are_accessible_in_dark_mode(browser: Browser, live_server: str, path: str) -> None:
    context = browser.new_context(base_url=live_server, bypass_csp=True, color_scheme="dark")
    page = context.new_page()
    page.goto(path)
    result = page.locator(".demo-result").first
    result.scroll_into_view_if_needed()  # an inline demo fills itself in once in view
    result.locator(".figures, .pool-grid").first.wait_for()
    assert axe_violations(page) == []
    context.close()
