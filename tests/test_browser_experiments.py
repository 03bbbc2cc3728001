"""An experiment from the browser: launch it from its question's page, watch it, read its
comparison (real Chromium, a real `cvprep serve` with its worker process)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from benchmarks.load import serving
from tests.browser import axe_violations, checked_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser-experiments")
    env = {
        "DATA_DIR": str(data),
        "DATABASE_URL": "",
        "RUN_WORKERS": "1",
        "EXPERIMENT_SIZE": "test",  # every path of a preset, in seconds
        "EXPERIMENT_MAX_LIVE": "2",
    }
    with serving(env) as (_, base_url):
        yield base_url


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    with checked_page(browser, server_url) as opened:
        yield opened


def test_launch_from_the_question_and_read_the_verdict_and_its_evidence(page: Page) -> None:
    page.goto("/questions/residual-connections")
    button = page.locator("#launch-residual")
    expect(button).to_contain_text("9 runs: 3 seeds")
    button.click()
    expect(page).to_have_url(re.compile(r"/experiments/\d+$"))
    expect(page.locator("h1")).to_contain_text("degradation")
    status = page.locator("#experiment-status")
    # The page polls until every run has trained (seconds at the test size).
    expect(status).to_have_attribute("data-status", "succeeded", timeout=300_000)
    verdict = page.locator(".finding")
    expect(verdict).to_contain_text(re.compile(r"(Shown|Not shown|Inconclusive)\."))
    expect(verdict).not_to_contain_text("Pending")
    # The evidence the notice talks about: training loss and the gradient ratio on log scales,
    # drawn once the last poll has swapped in and settled, without a reload.
    for chart in ("#experiment-train-loss-chart", "#experiment-grad-chart"):
        expect(page.locator(chart)).to_be_visible()
        size = page.locator(chart).bounding_box()
        assert size is not None and size["height"] > 200, size
    scale = page.evaluate(
        "Chart.getChart(document.getElementById('experiment-grad-chart')).options.scales.y.type"
    )
    assert scale == "logarithmic"
    # Per-seed values, their mean and spread, for every arm.
    rows = page.locator("table.arms tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td")).to_have_count(5)  # 3 seeds, mean, spread
    assert axe_violations(page) == []
    # Each run's page says which experiment it belongs to.
    found = re.search(r"/experiments/\d+$", page.url)
    assert found is not None
    page.locator(".experiment-runs a").first.click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.locator(".run-experiment a")).to_have_attribute("href", found.group(0))
    # Back on the question, the latest verdict is shown inline; /experiments lists it.
    page.goto("/questions/residual-connections")
    expect(page.locator("#preset-residual .experiment-latest")).to_contain_text("succeeded")
    page.goto("/experiments")
    expect(page.locator("table.experiments-list a").first).to_have_attribute("href", found.group(0))
    page.set_viewport_size({"width": 375, "height": 800})
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
    expect(page.locator("#experiment-lr-chart")).to_be_visible()
    axis = page.evaluate(
        "Chart.getChart(document.getElementById('experiment-lr-chart')).options.scales.x.type"
    )
    assert axis == "logarithmic"  # accuracy against a log-spaced learning rate
    context.close()
    assert refused == [], refused


def _ended(page: Page, run_id: int) -> None:
    page.wait_for_function(
        f"fetch('/api/runs/{run_id}').then(r => r.json()).then(r => r.status !== 'queued'"
        " && r.status !== 'running')",
        polling=500,
        timeout=60_000,
    )


def test_delete_asks_first_and_the_question_falls_back_to_the_complete_experiment(
    browser: Browser, page: Page
) -> None:
    page.goto("/questions/pooling")  # a session of one's own
    made = []
    for _ in range(3):
        launched = page.request.post("/api/experiments", data={"preset": "pooling"})
        assert launched.ok, launched.text()
        made.append(launched.json())
        for run_id in made[-1]["runs"]:  # cancelled while queued (or stopped): they end
            page.request.delete(f"/api/runs/{run_id}")
    oldest, older, newer = made
    run_id = newer["runs"][0]
    _ended(page, run_id)
    # With JavaScript: the question opens in a dialog over the run's page.
    page.goto(f"/runs/{run_id}")
    opener = page.locator("#delete-run")
    opener.click()
    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}$"))
    expect(dialog.get_by_role("heading", name=f"Delete run {run_id}?")).to_be_visible()
    expect(dialog.locator(".confirm-depends")).to_contain_text(f"Experiment {newer['id']}")
    expect(dialog.locator("#keep-it")).to_be_focused()  # the choice that loses nothing
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    page.keyboard.press("Enter")  # the keyboard opens it again
    expect(dialog).to_be_visible()
    page.set_viewport_size({"width": 375, "height": 800})
    assert axe_violations(page) == []
    dialog.get_by_role("button", name="Delete it").click()
    expect(page).to_have_url(re.compile(r"/runs$"))
    page.goto("/questions/pooling")
    latest = page.locator("#preset-pooling .experiment-latest a")
    expect(latest).to_have_attribute("href", f"/experiments/{older['id']}")
    expect(page.locator("#preset-pooling")).to_contain_text(f"experiment {newer['id']}")
    # Without JavaScript: the link leads to the same question on its own page.
    context = browser.new_context(
        base_url=page.url.split("/questions")[0],
        java_script_enabled=False,
        storage_state=page.context.storage_state(),
    )
    plain = context.new_page()
    run_id = older["runs"][0]
    _ended(page, run_id)
    plain.goto(f"/runs/{run_id}")
    plain.locator("#delete-run").click()
    expect(plain).to_have_url(re.compile(rf"/runs/{run_id}/delete$"))
    expect(plain.locator(".confirm-depends")).to_contain_text(f"Experiment {older['id']}")
    plain.get_by_role("button", name="Delete it").click()
    expect(plain).to_have_url(re.compile(r"/runs$"))
    plain.goto("/questions/pooling")
    latest = plain.locator("#preset-pooling .experiment-latest a")
    expect(latest).to_have_attribute("href", f"/experiments/{oldest['id']}")
    context.close()


def test_a_refused_launch_stays_on_its_question_with_what_to_do(page: Page) -> None:
    page.goto("/questions/class-imbalance")
    live = []
    for preset in ("residual", "batchnorm"):  # EXPERIMENT_MAX_LIVE is 2 here
        launched = page.request.post("/api/experiments", data={"preset": preset})
        assert launched.ok, launched.text()
        live.append(launched.json())
    try:
        page.goto("/questions/class-imbalance")  # the page of a learner who has a session now
        page.locator("#launch-imbalance").click()
        expect(page).to_have_url(re.compile(r"/questions/class-imbalance\?refused="))
        message = page.locator("#preset-imbalance .launch-refused")
        expect(message).to_contain_text("EXPERIMENT_MAX_LIVE")
        expect(message.get_by_role("link", name="your runs")).to_have_attribute("href", "/runs")
        page.reload()  # the same page again, no resubmission
        expect(message).to_contain_text("EXPERIMENT_MAX_LIVE")
        page.set_viewport_size({"width": 375, "height": 800})
        assert axe_violations(page) == []
    finally:
        for experiment in live:
            for run_id in experiment["runs"]:
                page.request.delete(f"/api/runs/{run_id}")
