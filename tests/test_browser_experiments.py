"""An experiment from the browser: launch it from its question's page, watch it, read its
comparison (real Chromium, a real `cvprep serve` with its worker process)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from benchmarks.load import serving
from tests.browser import _broken_resource, axe_violations

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser-experiments")
    env = {"DATA_DIR": str(data), "DATABASE_URL": "", "RUN_WORKERS": "1"}
    with serving(env) as (_, base_url):
        yield base_url


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=server_url, bypass_csp=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "response", lambda r: errors.append(problem) if (problem := _broken_resource(r)) else None
    )
    yield opened
    context.close()
    assert errors == [], errors


def test_launch_from_the_question_and_read_the_comparison(page: Page) -> None:
    page.goto("/questions/residual-connections")
    page.locator("#launch-residual").click()
    expect(page).to_have_url(re.compile(r"/experiments/\d+$"))
    expect(page.locator("h1")).to_contain_text("skip connections")
    status = page.locator("#experiment-status")
    # The page polls until both runs have trained (about half a minute on two cores).
    expect(status).to_have_attribute("data-status", "succeeded", timeout=300_000)
    # The curves are on show once the last poll has swapped in and settled, without a reload
    # (htmx's settling used to hide them and reset the canvas to 300×150).
    for chart in ("#compare-accuracy-chart", "#compare-loss-chart"):
        expect(page.locator(chart)).to_be_visible()
        size = page.locator(chart).bounding_box()
        assert size is not None and size["height"] > 200, size
    finding = page.locator(".finding")
    expect(finding).to_contain_text("Stem gradient norm, plain vs residual: epoch 1:")
    expect(finding).not_to_contain_text("No finding yet")
    # The comparison: one row per run with its figures, the differing field shown, the
    # same fields folded away, overlaid curves drawn.
    rows = page.locator("table.compare-metrics tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_contain_text("plain")
    expect(rows.nth(1).locator("th")).to_contain_text("residual")
    expect(page.locator("table.compare-config tr.differs th")).to_have_text(["residual"])
    expect(page.locator("details.compare-same")).not_to_have_attribute("open", "")
    points = page.evaluate(
        "Chart.getChart(document.getElementById('compare-accuracy-chart'))"
        ".data.datasets.map(d => d.data.length)"
    )
    assert points == [3, 3]
    assert axe_violations(page) == []
    # Each run's page says which experiment it belongs to.
    found = re.search(r"/experiments/\d+$", page.url)
    assert found is not None
    rows.nth(0).locator("th a").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.locator(".run-experiment a")).to_have_attribute("href", found.group(0))
    # Back on the question, the latest result is shown inline.
    page.goto("/questions/residual-connections")
    expect(page.locator("#preset-residual .experiment-latest")).to_contain_text("succeeded")
    assert axe_violations(page) == []


def test_watching_an_experiment_breaks_no_content_security_rule(
    browser: Browser, server_url: str
) -> None:
    """With the CSP enforced (the other tests bypass it to inject axe-core), the polls that
    swap the charts in apply no inline style."""
    context = browser.new_context(base_url=server_url)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto("/questions/batch-normalization")
    page.locator("#launch-batchnorm").click()
    expect(page).to_have_url(re.compile(r"/experiments/\d+$"))
    status = page.locator("#experiment-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=300_000)
    expect(page.locator("#compare-accuracy-chart")).to_be_visible()
    context.close()
    assert refused == [], refused
