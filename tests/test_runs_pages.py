"""The run pages: the New-run form (groups, defaults, help links, inline messages, YAML and
command, prefills), the list, and one run while queued and once finished (charts, tables)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.cli_train import load_config
from app.content import QuestionBank
from app.experiments.presets import PRESETS
from app.runs.choices import BASIC, HINTS
from app.runs.form import GROUPS, HIDDEN, form_specs, read_form
from app.runs.prefill import from_preset
from app.settings import ROOT
from app.worker.training import RunConfig
from tests.test_runs_api import TINY, train_now
from tests.web import csrf, soup


def form_data(page: BeautifulSoup) -> dict[str, str]:
    """What the browser would send for the form as rendered."""
    data: dict[str, str] = {}
    form = page.select_one("#run-form")
    for element in form.select("input, select"):
        name = element.get("name")
        if not name:
            continue
        if element.name == "select":
            chosen = element.select_one("option[selected]") or element.select_one("option")
            data[name] = chosen["value"]
        elif element.get("type") == "checkbox":
            if element.has_attr("checked"):
                data[name] = element["value"]
        else:
            data[name] = element.get("value", "")
    return data


def form_config(data: dict[str, str]) -> dict:
    """The config a rendered form stands for (a checkbox is true when it would be sent)."""
    _, values, errors = read_form(data)
    assert not errors
    values.pop("dataset_id", None)
    return RunConfig.from_dict(values).to_dict()


@pytest.fixture
def finished(client: TestClient) -> int:
    run_id = client.post("/api/runs", json={**TINY, "epochs": 2}).json()["id"]
    train_now(client, run_id)
    return run_id


def test_the_form_has_every_engine_field_in_its_group_with_its_default(client: TestClient) -> None:
    page = soup(client.get("/runs/new"))
    legends = [legend.text for legend in page.select("#run-form legend")]
    assert legends == ["The run"] + [heading for _, heading in GROUPS]
    # The fields most runs change come first, before "Start the run"; the rest are folded.
    first = page.select("#group-basic .run-field")
    assert [f["id"].removeprefix("field-") for f in first] == list(BASIC)
    assert page.select_one("#group-basic ~ .actions #start-run") is not None
    assert not page.select("#more-settings #field-epochs")
    assert page.select_one("#more-settings")["class"] == ["more-settings"]
    assert not page.select_one("#more-settings").has_attr("open")
    # A plain label, with the engine's name beside it.
    label = page.select_one("#field-lr label")
    assert label.text.split() == ["Learning", "rate", "lr"] and label.code.text == "lr"
    for spec in RunConfig.fields():
        if spec.name in HIDDEN:  # the data set choice stands for folder and dataset_id
            assert page.select_one(f"#field-{spec.name}") is None
            continue
        field = page.select_one(f"#field-{spec.name}")
        assert field is not None, spec.name
        control = field.select_one(f"[name={spec.name}]")
        if spec.type == "bool":
            assert control.has_attr("checked") == spec.default
        elif control.name == "select":
            assert control.select_one("option[selected]")["value"] == str(spec.default)
        elif spec.default is not None:
            assert (
                RunConfig.from_dict({spec.name: control["value"]}).to_dict()[spec.name]
                == spec.default
            )
        assert HINTS.get(spec.name, spec.help) in field.select_one(".hint").text


def test_every_help_link_points_at_a_section_of_an_answer(
    client: TestClient, bank: QuestionBank
) -> None:
    page = soup(client.get("/runs/new"))
    links = page.select("#run-form .hint a")
    assert len(links) == len(form_specs()) - len(HIDDEN)
    for link in {a["href"] for a in links}:
        path, anchor = link.split("#")
        slug = path.removeprefix("/questions/").split("?")[0]
        question = bank.get(slug)
        assert question is not None, link
        assert f'id="{anchor}"' in question.answer_html, link


def test_questions_with_an_experiment_link_to_a_prefilled_form(
    client: TestClient, bank: QuestionBank
) -> None:
    linked = set()
    for question in bank:
        hrefs = [
            a["href"]
            for a in soup(client.get(f"/questions/{question.slug}")).select(
                "a[href^='/runs/new?experiment=']"
            )
        ]
        assert hrefs == [f"/runs/new?experiment={name}" for name in question.meta.experiments]
        if hrefs:
            linked.add(question.number)
    assert {3, 5, 6, 7, 9, 11, 12} <= linked
    for name in PRESETS:  # one registry: the form opens one arm of the preset's design
        found = from_preset(name)
        assert found is not None
        config, note = found
        page = soup(client.get(f"/runs/new?experiment={name}"))
        assert form_config(form_data(page)) == RunConfig.from_dict(config).to_dict()
        assert note in page.select_one(".banner").text
        assert not page.select(".field-error:not(:empty)"), name  # never opens in error
    assert client.get("/runs/new?experiment=nope").status_code == 404


def test_a_bad_value_is_shown_beside_its_field_as_the_form_changes(client: TestClient) -> None:
    data = form_data(soup(client.get("/runs/new")))
    data.update(epochs="many", warmup_epochs="0.5", lr="１e-3")
    response = client.get("/runs/new", params=data, headers={"HX-Request": "true"})
    fragment = soup(response)
    # The check answers with the preview and, out of band, every field's message: the inputs
    # are not in it, so what a person is typing is never replaced.
    assert fragment.select_one("#run-config-preview") and not fragment.select("input, select, h1")
    message = fragment.select_one("#error-epochs")
    assert message["hx-swap-oob"] == "true"
    assert message.text.startswith("epochs: 'many' is not a whole number")
    assert fragment.select_one("#error-lr").text == ""  # full-width digits are digits
    assert len(fragment.select(".field-error[hx-swap-oob]")) == len(form_specs()) - len(HIDDEN)
    summary = fragment.select_one("#run-form-errors[hx-swap-oob]")
    assert "epochs: 'many' is not a whole number" in summary.text
    assert fragment.select_one("#config-yaml") is None
    # The same check as a whole page (no JavaScript: the "Check" button) marks the field.
    page = soup(client.get("/runs/new", params=data))
    field = page.select_one("#field-epochs")
    assert "invalid" in field["class"] and field.select_one("input")["aria-invalid"] == "true"
    assert "epochs" in field.select_one("input")["aria-describedby"]


def test_the_engines_message_for_a_combination_is_shown_beside_the_field(
    client: TestClient,
) -> None:
    data = form_data(soup(client.get("/runs/new")))
    data.update(epochs="1", warmup_epochs="3")
    field = soup(client.get("/runs/new", params=data)).select_one("#field-warmup_epochs")
    assert (
        field.select_one(".field-error").text == "warmup_epochs: must be at most epochs (1), got 3"
    )


def test_the_config_is_shown_as_yaml_and_a_command_that_trains_it(
    client: TestClient, tmp_path: Path
) -> None:
    data = form_data(soup(client.get("/runs/new")))
    data.update(epochs="3", lr="0.01", residual="true", image_size="24")
    page = soup(client.get("/runs/new", params=data))
    shown = yaml.safe_load(page.select_one("#config-yaml").text)
    assert shown == {"image_size": 24, "residual": True, "lr": 0.01, "epochs": 3}
    command = page.select_one("#config-command").text
    assert command.startswith("cat > run.yaml <<'YAML'\n") and command.endswith(
        "\nYAML\ncvprep train run.yaml"
    )
    written = tmp_path / "run.yaml"
    written.write_text(command.split("\n", 1)[1].rsplit("\nYAML\n", 1)[0] + "\n")
    assert load_config(written, []) == RunConfig.from_dict(shown)


def test_the_form_starts_a_run_and_redirects_to_it(client: TestClient) -> None:
    data = form_data(soup(client.get("/runs/new")))
    data.update(
        epochs="2", image_size="16", images_per_class="10", csrf_token=csrf(client, "/runs/new")
    )
    response = client.post("/runs", data=data, follow_redirects=False)
    assert response.status_code == 303
    run_id = int(response.headers["location"].rsplit("/", 1)[1])
    body = client.get(f"/api/runs/{run_id}").json()
    assert (
        body["config"]
        == RunConfig.from_dict({"epochs": 2, "image_size": 16, "images_per_class": 10}).to_dict()
    )
    page = soup(client.get(f"/runs/{run_id}"))
    status = page.select_one("#run-status")
    assert status["data-status"] == "queued"
    assert status["hx-trigger"] == "load delay:1s" and status["hx-get"] == f"/runs/{run_id}"
    assert "Position 1 in the queue" in status.text
    assert page.select_one("progress#run-progress")
    assert page.select_one("noscript meta[http-equiv=refresh]")
    fragment = client.get(f"/runs/{run_id}", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="run-status"')
    assert fragment.headers["vary"] == "HX-Request"


def test_a_refused_form_keeps_what_was_typed_and_says_why(client: TestClient) -> None:
    data = form_data(soup(client.get("/runs/new")))
    data.update(epochs="999", csrf_token=csrf(client, "/runs/new"))
    response = client.post("/runs", data=data)
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#input-epochs")["value"] == "999"
    assert page.select_one("#field-epochs .field-error").text == (
        "epochs: at most 50 per run here (RUN_MAX_EPOCHS), got 999"
    )
    assert client.get("/api/runs").json() == []


def test_a_finished_run_shows_every_result(client: TestClient, finished: int) -> None:
    run = client.get(f"/api/runs/{finished}").json()
    metrics = run["metrics"]
    page = soup(client.get(f"/runs/{finished}"))
    status = page.select_one("#run-status")
    assert status["data-status"] == "succeeded" and not status.has_attr("hx-trigger")

    def spec(chart_id: str) -> dict:
        return json.loads(page.select_one(f"#{chart_id}-figure")["data-chart"])

    confusion = spec("confusion")
    assert confusion["cells"] == metrics["confusion_matrix"]
    assert confusion["x"]["labels"] == metrics["classes"]
    table = page.select("#confusion-figure tbody tr")
    assert [[int(td.text) for td in tr.select("td")] for tr in table] == metrics["confusion_matrix"]
    assert spec("loss")["series"][0]["points"] == run_curve(client, finished)
    assert [p[1] for p in spec("accuracy")["series"][1]["points"]] == [
        h["val_accuracy"] for h in run["history"]
    ]
    assert len(spec("roc")["series"]) == len(metrics["roc_auc"]["curves"]) + 1
    assert spec("reliability")["series"][0]["values"] == metrics["reliability"]["accuracy"]
    assert {s["label"] for s in spec("grad-norms")["series"]} == set(
        run["history"][0]["grad_norms"]
    )
    per_class = page.select("#per-class-heading ~ div tbody tr")
    assert [tr.th.text for tr in per_class] == metrics["classes"]
    downloads = {a.text for a in page.select("#downloads-heading ~ ul a")}
    assert downloads == {"checkpoint.pt", "metrics.json", "predictions.npz", "config.yaml"}
    for img in page.select(".mistakes img"):
        assert client.get(img["src"]).headers["content-type"] == "image/png"
    assert len(page.select(".mistakes img")) == len(metrics["misclassified"])
    assert page.select_one(f"a[href='/runs/new?from={finished}&mode=finetune']")
    assert page.select_one("dd") is not None and "cpu" in page.text
    runtime = metrics["runtime"]  # which precision ran, and why
    assert f"{runtime['precision']} ({runtime['precision_reason']})" in " ".join(page.text.split())


def test_a_run_that_ended_early_shows_why_and_what_there_is(client: TestClient) -> None:
    cancelled = client.post("/api/runs", json=TINY).json()["id"]
    client.delete(f"/api/runs/{cancelled}")
    page = soup(client.get(f"/runs/{cancelled}"))
    assert page.select_one("#run-status")["data-status"] == "cancelled"
    assert "No files" in page.text and not page.select_one("#summary-heading")
    failed = client.post("/api/runs", json={**TINY, "dataset": "digits", "num_classes": 0}).json()[
        "id"
    ]
    from app.db import write_session
    from app.models.common import utcnow
    from app.repos import runs as run_rows
    from app.runs.execute import execute_run

    engine, settings = client.app.state.engine, client.app.state.settings
    settings.run_max_images = 10  # digits has more: the run fails once its data is loaded
    with write_session(engine) as session:
        run_rows.claim(session, run_id=failed, worker_id="t:1", now=utcnow())
    assert execute_run(failed, engine=engine, settings=settings, worker_id="t:1") == "failed"
    page = soup(client.get(f"/runs/{failed}"))
    assert "RUN_MAX_IMAGES" in page.select_one(".run-error").text
    assert page.select_one(f"a[href='/runs/new?from={failed}&mode=again']")


def test_a_run_starts_with_an_empty_folder(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    stale = client.app.state.settings.runs_dir / str(run_id)
    (stale / "misclassified").mkdir(parents=True)
    (stale / "misclassified" / "31.png").write_bytes(b"old")
    (stale / "checkpoint.pt").write_bytes(b"old")
    train_now(client, run_id)
    assert not (stale / "misclassified" / "31.png").exists()
    assert (stale / "checkpoint.pt").read_bytes() != b"old"


def run_curve(client: TestClient, run_id: int) -> list:
    from app.db import read_session
    from app.repos import runs as run_rows

    with read_session(client.app.state.engine) as session:
        run = run_rows.run_by_id(session, run_id=run_id)
    assert run is not None
    return run.curve


def test_a_confusion_cell_opens_the_images_behind_it(client: TestClient, finished: int) -> None:
    metrics = client.get(f"/api/runs/{finished}").json()["metrics"]
    classes = metrics["classes"]
    for t, row in enumerate(metrics["confusion_matrix"]):
        for p, count in enumerate(row):
            page = soup(client.get(f"/runs/{finished}/confusion?true={t}&predicted={p}"))
            heading = page.select_one("#cell-heading").text
            assert heading.startswith(f"True {classes[t]}, predicted {classes[p]}: {count} image")
            expected = [
                m["image"]
                for m in metrics["misclassified"]
                if (m["true"], m["predicted"]) == (classes[t], classes[p])
            ]
            shown = [img["src"].split("/files/")[1] for img in page.select(".mistakes img")]
            assert shown == expected
            if t == p:
                assert "keeps images only of mistakes" in page.text
    assert client.get(f"/runs/{finished}/confusion?true=9&predicted=0").status_code == 422


def test_run_again_and_fine_tune_prefill_the_form(client: TestClient, finished: int) -> None:
    run = client.get(f"/api/runs/{finished}").json()
    again = form_data(soup(client.get(f"/runs/new?from={finished}&mode=again")))
    assert form_config(again) == run["config"]
    tune = form_data(soup(client.get(f"/runs/new?from={finished}&mode=finetune")))
    assert tune["init"] == f"run:{finished}"
    assert float(tune["lr"]) == pytest.approx(run["config"]["lr"] / 10)


def test_the_list_shows_runs_newest_first(client: TestClient, finished: int) -> None:
    newer = client.post("/api/runs", json=TINY).json()["id"]
    page = soup(client.get("/runs"))
    rows = page.select("table.run-list tbody tr")
    assert [tr.th.text.strip() for tr in rows] == [f"Run\u00a0{newer}", f"Run\u00a0{finished}"]
    cells = [td.text.strip() for td in rows[1].select("td")]
    best = max(h["val_accuracy"] for h in client.get(f"/api/runs/{finished}").json()["history"])
    assert cells[:4] == ["succeeded", "shapes", "smallcnn", f"{100 * best:.1f}\u00a0%"]
    assert page.select_one("#run-list")["hx-trigger"] == "load delay:2s"  # a run is live
    assert page.select_one("nav a[href='/runs'][aria-current=page]")


RUN_TEMPLATES = [
    *sorted((ROOT / "templates" / "pages").glob("run*.html")),
    *sorted((ROOT / "templates" / "partials").glob("_run_*.html")),
    *sorted((ROOT / "templates" / "partials").glob("_chart*.html")),
]


@pytest.mark.parametrize("path", RUN_TEMPLATES, ids=lambda path: path.name)
def test_each_run_template_starts_with_its_context_comment(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert re.match(r"^\{#-? context: .+ -?#\}$", first), first


def test_a_prefilled_form_says_at_once_what_this_server_lacks(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    page = soup(client.get("/runs/new?model=resnet18&init=imagenet"))
    message = page.select_one("#field-init .field-error").text
    assert message.startswith("init: ImageNet weights for resnet18 are not in the torch cache")
    assert "cvprep weights fetch resnet18" in message


def test_choices_this_server_cannot_run_are_offered_disabled_with_the_reason(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    page = soup(client.get("/runs/new"))
    imagenet = page.select_one("#input-init option[value=imagenet]")
    assert imagenet.has_attr("disabled")
    assert (
        "ImageNet weights (not in this server's torch cache)" in page.select_one("#help-init").text
    )
    # The settings' DATA_DIR has no CIFAR-10 files.
    cifar = page.select_one("#input-dataset option[value=cifar10]")
    assert cifar.has_attr("disabled") and "(not here)" in cifar.text
    assert "CIFAR-10 (its files are not on this server)" in page.select_one("#help-dataset").text
    cuda = page.select_one("#input-device option[value=cuda]")
    assert cuda.has_attr("disabled") == (not torch.cuda.is_available())
    # The hints state this server's limits, not only the engine's.
    settings = client.app.state.settings
    assert f"1 to {settings.run_max_epochs} here" in page.select_one("#help-epochs").text
    assert f"8 to {settings.run_max_image_size} here" in page.select_one("#help-image_size").text


def test_check_without_javascript_posts_so_the_token_stays_out_of_the_address(
    client: TestClient,
) -> None:
    page = soup(client.get("/runs/new"))
    check = page.find("button", string="Check and show the config")
    assert check["formmethod"] == "post" and check["formaction"] == "/runs/new"
    data = form_data(page)
    data["epochs"] = "many"
    assert (
        client.post(
            "/runs/new", data={k: v for k, v in data.items() if k != "csrf_token"}
        ).status_code
        == 403
    )
    answer = soup(client.post("/runs/new", data=data))
    assert answer.select_one("#error-epochs").text.startswith("epochs: 'many'")
    assert answer.select_one("#run-form")  # the whole form again, as typed
