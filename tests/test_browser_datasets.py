"""Your own data set in a real Chromium: upload a zip with the form, read the preview (the
thumbnails load, the skipped file named), start the New-run form from it, axe on both pages,
delete it from the dialog that asks first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import axe_violations
from tests.datasets_zips import image_bytes, make_zip

pytestmark = pytest.mark.browser


def test_upload_preview_and_train_link(page: Page, tmp_path: Path) -> None:
    entries = [
        (f"garden/{c}/{i}.png", image_bytes(10 * n + i, size=24))
        for n, c in enumerate(("roses", "tulips"))
        for i in range(3)
    ]
    entries.append(("garden/tulips/broken.png", b"\x89PNG\r\n\x1a\n not really"))
    archive = tmp_path / "garden.zip"
    archive.write_bytes(make_zip(entries))

    page.goto("/datasets")
    assert axe_violations(page) == []
    page.get_by_label("Name").fill("Flowers")
    page.get_by_label("Zip file").set_input_files(str(archive))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Flowers")
    expect(page.locator("#skipped")).to_contain_text("1 × not decodable as an image")
    expect(page.locator("#skipped .skipped-files")).to_have_text("garden/tulips/broken.png")
    thumbs = page.locator(".dataset-thumbs img")
    expect(thumbs).to_have_count(6)
    # Every thumbnail decoded in the browser (a broken one would also fail the fixture).
    page.wait_for_function(
        "() => [...document.querySelectorAll('.dataset-thumbs img')]"
        ".every(img => img.complete && img.naturalWidth === 96)"
    )
    assert axe_violations(page) == []
    preview = page.url
    page.locator("#train-link").click()
    expect(page).to_have_url(re.compile(r"/runs/new\?dataset=upload:\d+$"))
    expect(page.locator("#input-dataset")).to_have_value(re.compile(r"^upload:\d+$"))
    expect(page.locator("#input-dataset option:checked")).to_contain_text("Flowers")
    expect(page.locator("#config-yaml")).to_contain_text("folder: uploads/")
    assert axe_violations(page) == []
    # Both pages fit a phone: wide tables scroll inside their own region.
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/datasets", preview):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    # Delete asks in a dialog over the page; Escape keeps the data set, "Delete it" deletes.
    opener = page.locator("#delete-dataset")
    opener.click()
    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog).to_contain_text("Delete the data set 'Flowers'?")
    expect(dialog).to_contain_text("Nothing else uses it.")
    assert axe_violations(page) == []
    page.keyboard.press("Escape")
    expect(opener).to_be_focused()
    opener.click()
    dialog.get_by_role("button", name="Delete it").click()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(page.locator("main")).to_contain_text("No data sets yet")
