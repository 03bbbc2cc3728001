"""A run from the browser: fill the form, watch it train, read the results (real Chromium,
a real `cvprep serve` with its worker process)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from benchmarks.load import serving
from tests.browser import axe_violations, checked_page

pytestmark = pytest.mark.browser

LOSS_POINTS = (
    "Chart.getChart(document.getElementById('loss-chart'))?.data.datasets[0].data.length ?? 0"
)
PROGRESS = "document.querySelector('#run-progress')?.value ?? -1"
# Looks at the training curves in every animation frame (what the next paint shows) and keeps
# each frame where one of them is not on screen, has no size, or has no pixel drawn; counts
# the polls that swapped the status in meanwhile.
WATCH_CURVES = """() => {
  window.blankFrames = []; window.polls = 0;
  document.addEventListener('htmx:afterSettle', () => { window.polls += 1; });
  function look() {
    const canvases = [...document.querySelectorAll('#run-status .chart-grid canvas')];
    const blank = canvases.filter(c => {
      const box = c.getBoundingClientRect();
      if (!c.width || !c.height || !box.width || !box.height) return true;
      const alpha = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < alpha.length; i += 4 * 5) if (alpha[i]) return false;
      return true;
    }).map(c => c.id);
    if ((blank.length || !canvases.length) && window.blankFrames.length < 50)
      window.blankFrames.push({polls: window.polls, blank: blank, canvases: canvases.length});
    if (document.querySelector('#run-status[hx-get]')) requestAnimationFrame(look);
  }
  requestAnimationFrame(look);
}"""


@pytest.fixture(scope="module")
def trainer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser-runs")
    env = {"DATA_DIR": str(data), "DATABASE_URL": "", "RUN_WORKERS": "1"}
    with serving(env) as (_, base_url):
        yield base_url


@pytest.fixture
def run_page(browser: Browser, trainer_url: str) -> Iterator[Page]:
    with checked_page(browser, trainer_url) as opened:
        yield opened


def test_fill_the_form_watch_the_run_and_read_the_confusion_matrix(run_page: Page) -> None:
    page = run_page
    page.goto("/runs/new")
    page.locator("#more-settings summary").click()  # image size, width, ... are folded
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
    # Back from the live run finds the form as it was sent; Forward returns to the run.
    run_url = page.url
    page.go_back()
    expect(page.locator("#input-epochs")).to_have_value("20")
    expect(page.locator("#input-batch_size")).to_have_value("2")
    expect(page.locator("#input-images_per_class")).to_have_value("60")
    page.go_forward()
    expect(page).to_have_url(run_url)
    # While the page polls, the curves never blank: no frame paints them empty or removed.
    page.wait_for_function("Chart.getChart(document.getElementById('loss-chart'))")
    page.evaluate(WATCH_CURVES)
    loss_chart = "Chart.getChart(document.getElementById('loss-chart'))"
    page.evaluate(f"{loss_chart}.hide(0)")  # as a click on its legend entry does

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
    assert page.evaluate("window.polls") >= 2
    assert page.evaluate("window.blankFrames") == []
    assert page.evaluate(f"{loss_chart}.isDatasetVisible(0)") is False  # the polls kept it hidden

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
    # On a phone the wide tables scroll sideways, each a region the keyboard can reach.
    page.set_viewport_size({"width": 375, "height": 740})
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
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
    expect(run_page.locator(".chart-frame.drawn")).to_have_count(2)  # due forecast, calendar
    expect(run_page.locator("#forecast-figure details")).not_to_have_attribute("open", "")


def test_the_forms_first_screen_a_disabled_choice_and_its_reason(run_page: Page) -> None:
    page = run_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/runs/new")
    # The fields most runs change, then Start, within the first two screens of a phone.
    start = page.get_by_role("button", name="Start the run")
    box = start.bounding_box()
    assert box is not None and box["y"] + box["height"] < 2 * 740, box
    expect(page.locator("#more-settings")).not_to_have_attribute("open", "")
    expect(page.locator("#input-image_size")).to_be_hidden()
    expect(page.locator("#run-estimate")).to_contain_text("Estimated duration: about")
    # A few Tab presses from the data set reach Start.
    page.locator("#input-dataset").focus()
    presses = 0
    while page.evaluate("document.activeElement.id") != "start-run":
        page.keyboard.press("Tab")
        presses += 1
        assert presses <= 16, page.evaluate("document.activeElement.outerHTML")
    # CIFAR-10's files are not on this server: offered, disabled, the reason beside it.
    cifar = page.locator("#input-dataset option[value=cifar10]")
    expect(cifar).to_be_disabled()
    expect(page.locator("#help-dataset")).to_contain_text("its files are not on this server")
    # The estimate follows what is typed.
    before = page.locator("#run-estimate strong").inner_text()
    page.locator("#input-epochs").fill("10")
    page.locator("#input-epochs").press("Tab")
    expect(page.locator("#config-yaml")).to_contain_text("epochs: 10")
    expect(page.locator("#run-estimate")).to_contain_text("4,000 training images per epoch")
    expect(page.locator("#run-estimate strong")).not_to_have_text(before)
    assert axe_violations(page) == []


def test_compare_smoothing_log_scale_and_csv(run_page: Page) -> None:
    page = run_page
    ids = []
    for lr in (0.003, 0.01):
        body = {
            "image_size": 16,
            "images_per_class": 24,
            "num_classes": 3,
            "epochs": 4,
            "batch_size": 8,
            "width": 8,
            "lr": lr,
        }
        made = page.request.post("/api/runs", data=body)
        assert made.ok, made.text()
        ids.append(made.json()["id"])
    deadline = time.monotonic() + 240
    while any(page.request.get(f"/api/runs/{i}").json()["status"] != "succeeded" for i in ids):
        assert time.monotonic() < deadline, "the runs did not end"
        time.sleep(1)
    # One ticked run: the list says what Compare needs, the tick kept.
    page.goto("/runs")
    page.locator(f"#compare-{ids[0]}").check()
    page.get_by_role("button", name="Compare the ticked runs").click()
    expect(page.locator("#compare-problem")).to_contain_text("you ticked one run")
    expect(page.locator(f"#compare-{ids[0]}")).to_be_checked()
    page.set_viewport_size({"width": 375, "height": 740})
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator(f"#compare-{ids[1]}").check()
    page.get_by_role("button", name="Compare the ticked runs").click()
    expect(page).to_have_url(re.compile(r"/runs/compare\?"))
    expect(page.locator("#compare-controls")).to_be_visible()
    count = "Chart.getChart(document.getElementById('compare-loss-chart')).data.datasets.length"
    assert page.evaluate(count) == 2
    page.locator("#smoothing").fill("0.6")
    expect(page.locator("#smoothing-value")).to_have_text("0.60")
    assert page.evaluate(count) == 4  # each run smoothed, and its raw curve kept (faint)
    raw_first = page.evaluate(
        "Chart.getChart(document.getElementById('compare-loss-chart')).data.datasets"
        f".find(d => d.label === 'run {ids[0]} (raw)').data.map(p => p.y)"
    )
    page.locator("#loss-log").check()
    scale = "Chart.getChart(document.getElementById('compare-loss-chart')).options.scales.y.type"
    assert page.evaluate(scale) == "logarithmic"
    page.locator("#loss-log").uncheck()
    assert page.evaluate(scale) == "linear"
    # The CSV's numbers are metrics.json's.
    curves = page.request.get(page.locator("#curves-csv").get_attribute("href")).text()
    rows = list(csv.DictReader(io.StringIO(curves)))
    for run_id in ids:
        metrics = page.request.get(f"/api/runs/{run_id}/files/metrics.json").json()
        mine = [r for r in rows if r["run"] == str(run_id)]
        assert [float(r["val_loss"]) for r in mine] == [h["val_loss"] for h in metrics["history"]]
        if run_id == ids[0]:
            assert raw_first == [h["val_loss"] for h in metrics["history"]]
    page.set_viewport_size({"width": 375, "height": 740})
    assert axe_violations(page) == []
