"""A run from the browser: fill the form, watch it train, read the results (real Chromium,
a real `cvprep serve` with its worker process)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from benchmarks.load import serving
from tests.browser import _broken_resource, axe_violations

pytestmark = pytest.mark.browser

LOSS_POINTS = (
    "Chart.getChart(document.getElementById('loss-chart'))?.data.datasets[0].data.length ?? 0"
)
PROGRESS = "document.querySelector('#run-progress')?.value ?? -1"


@pytest.fixture(scope="module")
def trainer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser-runs")
    env = {"DATA_DIR": str(data), "DATABASE_URL": "", "RUN_WORKERS": "1"}
    with serving(env) as (_, base_url):
        yield base_url


@pytest.fixture
def run_page(browser: Browser, trainer_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=trainer_url, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response", lambda r: errors.append(problem) if (problem := _broken_resource(r)) else None
    )
    yield page
    context.close()
    assert errors == [], errors


def test_fill_the_form_watch_the_run_and_read_the_confusion_matrix(run_page: Page) -> None:
    page = run_page
    page.goto("/runs/new")
    for name, value in {
        "image_size": "16",
        "images_per_class": "60",
        "num_classes": "4",
        "width": "8",
        "epochs": "20",
        "batch_size": "2",
    }.items():
        page.locator(f"#input-{name}").fill(value)
    page.locator("#input-epochs").press("Tab")
    # The form checks itself as it changes: the YAML follows what was typed, and a bad value
    # gets its message beside the field while every typed value stays as it was.
    expect(page.locator("#config-yaml")).to_contain_text("epochs: 20")
    page.locator("#input-lr").fill("fast")
    page.locator("#input-lr").press("Tab")
    expect(page.locator("#error-lr")).to_contain_text("lr: 'fast' is not a number")
    expect(page.locator("#input-lr")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#config-yaml")).to_have_count(0)
    page.locator("#input-lr").fill("0.003")
    page.locator("#input-lr").press("Tab")
    expect(page.locator("#error-lr")).to_have_text("")
    expect(page.locator("#input-images_per_class")).to_have_value("60")
    expect(page.locator("#config-yaml")).to_contain_text("batch_size: 2")
    page.get_by_role("button", name="Start the run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))

    # The progress bar moves and the loss curve grows while the page polls: sampled here until
    # the run ends, every distinct (progress, points) the page showed while it was running.
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + 240
    while page.locator("#run-status").get_attribute("data-status") in ("queued", "running"):
        assert time.monotonic() < deadline, "the run did not end"
        sample = (page.evaluate(PROGRESS), page.evaluate(LOSS_POINTS))
        if sample[0] > 0 and (not seen or sample != seen[-1]):
            seen.append(sample)
        time.sleep(0.2)
    progress = [p for p, _ in seen]
    points = [n for _, n in seen]
    assert len(set(progress)) >= 2 and progress == sorted(progress), seen
    assert len(set(points)) >= 2 and points == sorted(points), seen

    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "succeeded", timeout=240_000
    )
    # The confusion matrix: one cell per (true, predicted) pair, drawn as a heat map.
    cells = page.evaluate(
        "Chart.getChart(document.getElementById('confusion-chart')).data.datasets[0].data.length"
    )
    assert cells == 16
    figure = page.locator("#confusion-figure")
    figure.locator("summary").click()
    figure.locator("tbody tr").first.locator("td a").nth(1).click()
    expect(page.locator("#cell-heading")).to_contain_text("True circle, predicted square")
    assert axe_violations(page) == []


def test_the_progress_page_draws_its_charts(run_page: Page) -> None:
    run_page.goto("/progress")  # a new learner is told how to start: no empty charts
    expect(run_page.locator(".empty-state")).to_be_visible()
    expect(run_page.locator(".chart-box")).to_have_count(0)
    items = run_page.request.get("/api/quiz/items", params={"question": "pooling"}).json()
    item = next(i for i in items if i["kind"] == "choice")
    answered = run_page.request.post(
        "/api/quiz/answers", data={"item_id": item["id"], "answer": 0, "seed": item.get("seed")}
    )
    assert answered.ok, answered.text()
    run_page.goto("/progress")
    expect(run_page.locator(".chart-box.drawn")).to_have_count(2)  # due forecast, calendar
    expect(run_page.locator("#forecast-figure details")).not_to_have_attribute("open", "")
