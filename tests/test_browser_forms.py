"""Demo forms in a real Chromium: number controls, field marking, uploads that stay, Back, and
tables and formulas that fit the screen."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

# The augmentation gallery's decimal controls: (label, min, max, step).
DECIMALS = [
    ("Scale from", "0.01", "1", "0.01"),
    ("Scale to", "0.01", "1", "0.01"),
    ("Flip probability", "0", "1", "0.05"),
    ("Brightness", "0", "1", "0.05"),
    ("Contrast", "0", "1", "0.05"),
    ("Saturation", "0", "1", "0.05"),
    ("Hue", "0", "0.5", "0.01"),
    ("α (λ ~ Beta(α, α))", "0.05", "10", "0.05"),
]


def test_decimal_controls_take_their_limits_and_accept_a_half(page: Page) -> None:
    page.goto("/demos/augmentation")
    for label, low, high, step in DECIMALS:
        field = page.get_by_label(label, exact=True)
        # The attributes reach the browser as numbers, not as escaped text.
        assert field.evaluate("e => [e.min, e.max, e.step]") == [low, high, step], label
        field.fill("0.5")
        assert field.evaluate("e => e.validity.valid"), label


def test_arrow_keys_step_by_the_fields_step_and_stop_at_its_limits(page: Page) -> None:
    page.goto("/demos/augmentation")
    scale = page.get_by_label("Scale from", exact=True)
    scale.fill("0.08")
    scale.press("ArrowUp")
    expect(scale).to_have_value("0.09")
    scale.press("ArrowDown")
    scale.press("ArrowDown")
    expect(scale).to_have_value("0.07")
    flip = page.get_by_label("Flip probability")
    flip.fill("1")
    flip.press("ArrowUp")
    expect(flip).to_have_value("1")  # max

    page.goto("/demos/pooling")
    kernel = page.get_by_label("Kernel (k×k)")
    kernel.fill("2")
    for _ in range(3):
        kernel.press("ArrowDown")
    expect(kernel).to_have_value("1")  # never 0 or −2


def test_a_value_the_browser_refuses_is_explained_beside_the_form(page: Page) -> None:
    page.goto("/demos/pooling")
    kernel = page.get_by_label("Kernel (k×k)")
    kernel.fill("40")
    page.get_by_role("button", name="Pool", exact=True).click()
    error = page.locator("#pooling-result .demo-error")
    expect(error).to_contain_text("Kernel (k×k):")
    expect(kernel).to_have_attribute("aria-invalid", "true")
    described = (kernel.get_attribute("aria-describedby") or "").split()
    assert error.get_attribute("id") in described

    kernel.fill("3")
    page.get_by_role("button", name="Pool", exact=True).click()
    expect(page.locator("#pooling-result .demo-summary")).to_contain_text("Kernel 3×3")
    expect(kernel).not_to_have_attribute("aria-invalid", "true")


def test_the_layer_form_shows_and_sends_only_the_fields_of_its_kind(page: Page) -> None:
    page.goto("/demos/shapes")
    groups, ceil = page.get_by_label("Groups"), page.get_by_label("ceil_mode")
    expect(groups).to_be_visible()
    expect(ceil).to_be_hidden()
    with page.expect_request(re.compile(r"/demos/shapes\?.*kind=max_pool2d")) as sent:
        page.get_by_label("Layer", exact=True).select_option("max_pool2d")
    assert "groups=" not in sent.value.url and "out_channels=" not in sent.value.url
    expect(groups).to_be_hidden()
    expect(ceil).to_be_visible()
    expect(page.locator("#layer-result .figures")).to_contain_text("3 × 112 × 112")


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def mean_colour(src: str) -> np.ndarray:
    data = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), float).mean(axis=(0, 1))


def test_an_uploaded_photo_stays_while_the_settings_change(page: Page, tmp_path: Path) -> None:
    red = tmp_path / "red-square.png"
    red.write_bytes(png_bytes((220, 20, 20)))
    page.goto("/demos/pooling")
    page.get_by_label("Or your own photo").set_input_files(str(red))
    picker = page.get_by_label("Photo", exact=True)
    expect(picker.locator("option:checked")).to_have_text("Your photo: red-square.png")
    page.get_by_role("button", name="Pool my photo").click()
    summary = page.locator("#pooling-result .demo-summary")
    expect(summary).to_contain_text("on your photo (red-square.png)")

    page.get_by_label("Kernel (k×k)").fill("4")
    page.get_by_label("Kernel (k×k)").press("Tab")  # a change of another control
    expect(summary).to_contain_text("Kernel 4×4")
    expect(summary).to_contain_text("on your photo (red-square.png)")
    photo = page.locator("#pooling-result .pool-photo img").first.get_attribute("src") or ""
    red_part, green, blue = mean_colour(photo)
    assert red_part > 180 and green < 60 and blue < 60  # still the upload, not a sample
    expect(picker.locator("option:checked")).to_have_text("Your photo: red-square.png")

    picker.select_option("coffee")  # a sample photo lets the upload go
    expect(summary).not_to_contain_text("your photo")
    expect(picker.locator("[data-upload-option]")).to_have_count(0)


def test_back_restores_the_search_box_with_its_results(page: Page) -> None:
    page.goto("/")
    search = page.get_by_label("Search questions and answers")
    search.fill("pooling")
    expect(page.locator(".count")).to_contain_text("match “pooling”")
    expect(page).to_have_url(re.compile(r"q=pooling"))
    search.fill("focal")
    expect(page.locator(".count")).to_contain_text("match “focal”")
    expect(page).to_have_url(re.compile(r"q=focal"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"q=pooling"))
    expect(page.locator(".count")).to_contain_text("match “pooling”")
    expect(page.get_by_label("Search questions and answers")).to_have_value("pooling")


def test_back_restores_the_augmentation_form_with_its_gallery(page: Page) -> None:
    page.goto("/demos/augmentation?views=4&size=64")
    page.get_by_label("Batch mixing").select_option("mixup")
    expect(page).to_have_url(re.compile(r"mix=mixup"))
    expect(page.locator(".gallery figcaption").first).to_contain_text("+")
    page.get_by_label("Views").fill("2")
    page.get_by_label("Views").press("Tab")
    expect(page).to_have_url(re.compile(r"views=2"))
    expect(page.locator(".gallery li")).to_have_count(2)
    page.go_back()
    expect(page).to_have_url(re.compile(r"views=4.*mix=mixup"))
    expect(page.locator(".gallery li")).to_have_count(4)
    expect(page.get_by_label("Views")).to_have_value("4")
    expect(page.get_by_label("Batch mixing")).to_have_value("mixup")
    page.go_back()
    expect(page.get_by_label("Batch mixing")).to_have_value("none")


def _fits(page: Page, selector: str) -> bool:
    return page.locator(selector).first.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


@pytest.mark.parametrize(
    ("path", "selector"),
    [
        ("/demos/architectures", ".table-wrap"),
        ("/demos/shapes/model?arch=efficientnet_b0", ".summary-wrap"),
        ("/demos/shapes/model?arch=vit_b_16", ".summary-wrap"),
        ("/demos/shapes/model?arch=swin_t", ".summary-wrap"),
        ("/questions/architecture-evolution?reveal=true", ".prose .table-wrap"),
    ],
)
def test_wide_tables_show_every_column_on_a_laptop_screen(
    browser: Browser, live_server: str, path: str, selector: str
) -> None:
    context = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.goto(path)
    assert _fits(page, selector), path
    if "summary" in selector:  # the receptive-field column is on screen without scrolling
        header = page.locator(".summary-table th", has_text="Receptive field").bounding_box()
        assert header is not None and header["x"] + header["width"] <= 1366
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def test_the_inline_architecture_table_shows_every_column(
    browser: Browser, live_server: str
) -> None:
    context = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.goto("/questions/architecture-evolution")
    page.locator(".try-it a").first.click()
    page.locator("#q-architectures-result table").wait_for()
    assert _fits(page, "#q-architectures-result .table-wrap")
    context.close()


def test_on_a_phone_wide_tables_scroll_in_their_region_and_formulas_wrap(
    browser: Browser, live_server: str
) -> None:
    context = browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto("/demos/shapes")
    formula = page.locator("#layer-result .formula")
    assert formula.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # results on screen
    page.goto("/demos/architectures")
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("e => e.scrollWidth > e.clientWidth")  # scrolls inside …
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # … only
    context.close()
