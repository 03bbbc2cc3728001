"""Demo pages over HTTP: full pages without JavaScript, fragments for htmx, errors inline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from app.content import QuestionBank
from app.demos.augment_form import AUGMENT_LABELS
from app.demos.pooling_form import POOLING_LABELS
from app.demos.present import short_count
from app.demos.shape_forms import LAYER_LABELS
from app.main import create_app
from app.settings import ROOT, Settings
from app.worker.stack import KNOWN_OPS
from tests.web import soup


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (the demos keep no state between requests), not one per test."""
    app_settings = Settings(DATA_DIR=tmp_path_factory.mktemp("data"), SECRET_KEY="test-secret-key")
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


HX = {"HX-Request": "true"}

PAGES = {
    "/demos/shapes": "#layer-result",
    "/demos/shapes/stack": "#stack-result",
    "/demos/shapes/model": "#model-result",
    "/demos/pooling": "#pooling-result",
    "/demos/augmentation": "#augment-result",
    "/demos/architectures": "table.architectures",
}


def assert_no_inline_script_or_style(html: str) -> None:
    page = soup(html)
    assert all(script.get("src") for script in page.find_all("script"))
    assert not page.find_all("style")
    assert not page.find_all(style=True)


def test_demos_index_lists_every_demo_and_the_nav_links_to_it(client: TestClient) -> None:
    page = soup(client.get("/demos/").text)
    links = {a["href"] for a in page.select(".demo-card h2 a")}
    assert set(PAGES) <= links
    assert page.select_one('.site-nav a[href="/demos/"][aria-current="page"]')
    assert page.select_one('.demo-card a[href="/questions/convolutional-layers"]')


@pytest.mark.parametrize(("path", "result"), list(PAGES.items()))
def test_each_demo_page_renders_a_result_without_javascript(
    client: TestClient, path: str, result: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    page = soup(response.text)
    assert page.select_one("h1")
    assert page.select_one(result) is not None
    assert not page.select(".demo-error")
    assert_no_inline_script_or_style(response.text)


@pytest.mark.parametrize("path", list(PAGES))
def test_htmx_requests_get_only_the_result_fragment(client: TestClient, path: str) -> None:
    response = client.get(path, headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text and "<h1" not in response.text
    assert_no_inline_script_or_style(response.text)


def test_layer_form_values_come_back_in_the_result(client: TestClient) -> None:
    query = {
        "kind": "conv2d",
        "in_channels": "32",
        "height": "56",
        "width": "56",
        "out_channels": "64",
        "kernel_size": "3",
        "stride": "",
        "padding": "same",
        "dilation": "1",
        "groups": "32",
        "bias": ["false", "true"],
    }
    page = soup(client.get("/demos/shapes?" + urlencode(query, doseq=True)).text)
    figures = {
        dt.text: dd.text
        for dt, dd in zip(page.select(".figures dt"), page.select(".figures dd"), strict=True)
    }
    assert figures["Output (C × H × W)"] == "64 × 56 × 56"
    assert figures["Parameters"].startswith("640")  # 64·1·3·3 + 64
    assert page.select_one("#bias[checked]") is not None
    assert 'padding="same"' in page.select_one(".demo-code").text
    assert "Standard vs depthwise separable" in page.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"groups": "5"}, "groups"),
        ({"kernel_size": "abc"}, "kernel_size"),
        ({"padding": "same", "stride": "2"}, "stride"),
        ({"height": "2", "padding": "0"}, "kernel_size"),
        ({"in_channels": "-1"}, "in_channels"),
        ({"kind": "conv3d"}, "kind"),
        ({"bias": "maybe"}, "bias"),
    ],
)
def test_bad_layer_input_is_422_with_the_message_inline(
    client: TestClient, query: dict, field: str
) -> None:
    page_response = client.get("/demos/shapes?" + urlencode(query))
    assert page_response.status_code == 422
    page = soup(page_response.text)
    label = LAYER_LABELS[field]  # the label on screen, not the field's name
    assert page.select_one(".demo-error").text.startswith(f"{label}:")
    assert page.select_one("form.demo-form")  # the form stays, with what was typed
    fragment = client.get("/demos/shapes?" + urlencode(query), headers=HX)
    assert fragment.status_code == 422
    error = soup(fragment.text).select_one('.demo-error[role="alert"]')
    assert error.text.startswith(f"{label}:")
    assert error["data-field"] == field  # what the page script marks


def test_the_invalid_field_is_marked_for_screen_readers(client: TestClient) -> None:
    page = soup(client.get("/demos/shapes?groups=5").text)
    field = page.select_one("#groups")
    assert field["aria-invalid"] == "true" and field["aria-describedby"] == "demo-error"
    assert page.select_one("#demo-error")


def test_model_page_with_an_unknown_architecture_is_422_listing_the_known(
    client: TestClient,
) -> None:
    response = client.get("/demos/shapes/model?arch=resnet51", headers=HX)
    assert response.status_code == 422
    assert "unknown architecture 'resnet51'; known: alexnet" in soup(response.text).text


def test_model_page_table_rows_add_up_to_the_totals(client: TestClient) -> None:
    page = soup(
        client.get("/demos/shapes/model?arch=resnet18&height=128&width=128&trainable=head").text
    )
    rows = page.select(".summary-table tbody tr")
    params = sum(int(row.select("td")[4].text.replace(",", "")) for row in rows)
    assert params == 11_689_512
    trainable = sum(int(row.select("td")[6].text.replace(",", "")) for row in rows)
    assert trainable == 513_000
    assert "requires_grad_(False)" in page.select_one(".demo-code").text


def test_stack_page_error_points_at_the_line(client: TestClient) -> None:
    response = client.get("/demos/shapes/stack?" + urlencode({"layers": "conv 8\nwarp 3"}))
    assert response.status_code == 422
    error = soup(response.text).select_one(".demo-error")
    assert error.text == "Layers: line 2 (warp 3): unknown layer 'warp'; known: " + ", ".join(
        KNOWN_OPS
    )
    assert error.select_one("code").text == "warp 3"  # shown as code, no raw backticks
    layers = soup(response.text).select_one("#layers")
    assert layers["aria-invalid"] == "true"
    assert error["id"] in layers["aria-describedby"].split()


def test_pooling_page_traces_the_chosen_output_cell(client: TestClient) -> None:
    page = soup(client.get("/demos/pooling?kernel=2&cell=1,1").text)
    max_method = page.select_one('.pool-method[data-method="max"]')
    read = [td["data-cell"] for td in max_method.select(".input-grid td.read")]
    assert read == ["2,2", "2,3", "3,2", "3,3"]
    assert [td["data-cell"] for td in max_method.select(".grad-grid td.nonzero")] == ["2,2"]
    traced = max_method.select_one(".output-grid td.traced")
    assert traced["data-out"] == "1,1" and traced["data-reads"] == "2,2 2,3 3,2 3,3"
    assert len(page.select(".pool-photo img")) == 7  # input, three outputs, three gradient maps


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kernel": "0"}, "kernel"),
        ({"grid": "1 2\n3"}, "grid"),
        ({"cell": "x"}, "cell"),
        ({"photo": "mona-lisa"}, "photo"),
        ({"conv_weights": "sharpen"}, "conv_weights"),
    ],
)
def test_bad_pooling_input_is_422_inline(client: TestClient, query: dict, field: str) -> None:
    response = client.get("/demos/pooling?" + urlencode(query), headers=HX)
    assert response.status_code == 422
    error = soup(response.text).select_one(".demo-error")
    assert error.text.startswith(f"{POOLING_LABELS[field]}:") and error["data-field"] == field


def test_augmentation_url_holds_the_whole_state(client: TestClient) -> None:
    query = urlencode(
        {
            "photo": "chelsea",
            "seed": "11",
            "views": "3",
            "size": "64",
            "randaugment": "true",
            "mix": "cutmix",
        }
    )
    first = soup(client.get("/demos/augmentation?" + query).text)
    again = soup(client.get("/demos/augmentation?" + query, headers=HX).text)
    images = [img["src"] for img in first.select(".gallery img")]
    assert len(images) == 3 and images == [img["src"] for img in again.select(".gallery img")]
    assert first.select_one(".share-link")["href"] == "/demos/augmentation?" + query
    captions = [figure.text.split() for figure in first.select(".gallery figcaption")]
    assert all("+" in caption for caption in captions)  # mixed labels shown
    assert "v2.CutMix(alpha=1.0, num_classes=6)" in first.select_one(".demo-code").text
    other = soup(client.get("/demos/augmentation?" + query.replace("seed=11", "seed=12")).text)
    assert [img["src"] for img in other.select(".gallery img")] != images


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"seed": "-1"}, "seed"),
        ({"views": "99"}, "views"),
        ({"flip": "x"}, "flip"),
        ({"mix": "blend"}, "mix"),
        ({"scale_min": "0.9", "scale_max": "0.2"}, "scale_min"),
    ],
)
def test_bad_augmentation_input_is_422_inline(client: TestClient, query: dict, field: str) -> None:
    response = client.get("/demos/augmentation?" + urlencode(query))
    assert response.status_code == 422
    error = soup(response.text).select_one(".demo-error")
    assert error.text.startswith(f"{AUGMENT_LABELS[field]}:") and error["data-field"] == field


def test_architecture_table_sets_papers_beside_torchvision(
    client: TestClient, bank: QuestionBank
) -> None:
    page = soup(client.get("/demos/architectures").text)
    rows = page.select("table.architectures tbody tr")
    assert len(rows) >= 8
    builders = {row.select_one("code").text for row in rows if row.select_one("code")}
    assert {"alexnet", "resnet50", "vgg16"} <= builders
    if bank.get("architecture-evolution") is not None:
        assert any(re.fullmatch(r"\d+(\.\d+)?", row.select("td")[5].text.strip()) for row in rows)


QUESTION_DEMOS = {
    "convolutional-layers": "form[hx-get='/demos/shapes']",
    "pooling": "form[hx-get='/demos/pooling']",
    "data-augmentation": "form[hx-get='/demos/augmentation']",
    "architecture-evolution": "[hx-get='/demos/architectures']",
}


@pytest.mark.parametrize(("slug", "selector"), list(QUESTION_DEMOS.items()))
def test_questions_embed_their_demos_with_a_plain_form_fallback(
    client: TestClient, bank: QuestionBank, slug: str, selector: str
) -> None:
    if bank.get(slug) is None:
        pytest.skip(f"question {slug} is not written yet")
    response = client.get(f"/questions/{slug}")
    page = soup(response.text)
    section = page.select_one(".question-demos")
    assert section is not None and section.select_one(selector) is not None
    for form in section.select("form"):
        assert form.get("action", "").startswith("/demos/")  # works without JavaScript
        assert form.get("hx-push-url") is None  # the question stays the page's address
    ids = [tag["id"] for tag in page.select("[id]")]
    assert len(ids) == len(set(ids))
    assert_no_inline_script_or_style(response.text)


def test_every_question_that_lists_a_shape_calculator_gets_its_preset(
    client: TestClient, bank: QuestionBank
) -> None:
    for question in bank:
        if "shape-calculator" in question.meta.demos:
            page = soup(client.get(f"/questions/{question.slug}").text)
            assert page.select_one("#q-kernel_size") is not None


def test_every_inline_demo_runs_the_same_way_and_is_linked_from_the_top(
    client: TestClient, bank: QuestionBank
) -> None:
    for question in bank:
        if not question.meta.demos:
            continue
        page = soup(client.get(f"/questions/{question.slug}").text)
        results = page.select(".question-demos .demo-result")
        assert results, question.slug
        # Each fills itself in when it comes into view (none waits for a click, none runs
        # unseen at page load).
        assert {result["hx-trigger"] for result in results} == {"intersect once"}
        links = page.select(".try-it a")
        assert [link["href"] for link in links] == [f"#try-{name}" for name in question.meta.demos]
        for link in links:
            assert page.select_one(link["href"]) is not None
        # The "try it" line sits at the top, before the prompt.
        text = page.select_one("article").text
        assert text.index("Try it:") < text.index("The question")


DEMO_TEMPLATES = [
    *sorted((ROOT / "templates" / "pages").glob("demos*.html")),
    *sorted((ROOT / "templates" / "partials").glob("_demo_*.html")),
    ROOT / "templates" / "partials" / "_question_demos.html",
]


@pytest.mark.parametrize("path", DEMO_TEMPLATES, ids=lambda path: path.name)
def test_each_demo_template_starts_with_its_context_comment(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert re.match(r"^\{#-? context: .+ -?#\}$", first), first


def test_an_empty_number_field_gets_a_message_not_a_quoted_nothing(client: TestClient) -> None:
    response = client.get("/demos/pooling", params={"kernel": ""}, headers=HX)
    assert response.status_code == 422
    error = soup(response.text).select_one(".demo-error").text
    assert error == "Kernel (k×k): is empty or not a number; enter a whole number, e.g. 3"
    assert "''" not in error


def test_a_huge_dilation_is_reported_as_a_dilation_error(client: TestClient) -> None:
    response = client.get("/demos/shapes", params={"dilation": "100"})
    assert response.status_code == 422
    page = soup(response.text)
    # A 7×7 kernel with dilation 100 spans 601 rows; the 7 taps alone fit the padded input.
    assert page.select_one(".demo-error").text.startswith(
        "Dilation: with dilation 100 the 7-tap kernel spans 601 rows"
    )
    assert page.select_one("#dilation")["aria-invalid"] == "true"
    assert page.select_one("#kernel_size").get("aria-invalid") is None


def test_stack_text_over_the_limit_is_refused_not_cut(client: TestClient) -> None:
    text = "relu  # " + "x" * 4100  # one valid line: a silent cut would still build a table
    response = client.get("/demos/shapes/stack", params={"layers": text})
    assert response.status_code == 422
    page = soup(response.text)
    message = page.select_one(".demo-error").text
    assert message.startswith(f"Layers: is {len(text):,} characters long; the limit is 4,000")
    assert page.select_one("#layers").text == text  # shown again whole, to be shortened
    assert page.select_one(".summary-table") is None


def test_the_layer_form_shows_only_the_fields_of_its_kind(client: TestClient) -> None:
    page = soup(client.get("/demos/shapes", params={"kind": "linear", "out_channels": "10"}).text)
    for name in ("kernel_size", "stride", "padding", "dilation", "groups", "output_padding"):
        field = page.select_one(f"#{name}")
        assert field.has_attr("disabled") and field.find_parent(class_="field").has_attr("hidden")
    for name in ("in_channels", "out_channels"):
        assert not page.select_one(f"#{name}").has_attr("disabled")
    figures = {
        dt.text: dd.text
        for dt, dd in zip(page.select(".figures dt"), page.select(".figures dd"), strict=True)
    }
    assert figures["Output (features)"] == "10"


def test_number_fields_carry_their_limits_as_real_attributes(client: TestClient) -> None:
    html = client.get("/demos/augmentation").text
    assert "&#34;" not in html and "&quot;" not in html.split("<main", 1)[1]
    scale = soup(html).select_one("#scale_min")
    assert (scale["min"], scale["max"], scale["step"]) == ("0.01", "1", "0.01")
    kernel = soup(client.get("/demos/pooling").text).select_one("#kernel")
    assert (kernel["min"], kernel["max"], kernel["step"]) == ("1", "16", "1")


def test_huge_counts_are_written_in_words(client: TestClient) -> None:
    params = {"kind": "linear", "in_channels": "65536", "height": "16384", "width": "16384",
              "out_channels": "65536", "bias": "false"}  # fmt: skip
    page = soup(client.get("/demos/shapes", params=params).text)
    figure = {
        dt.text: dd.text
        for dt, dd in zip(page.select(".figures dt"), page.select(".figures dd"), strict=True)
    }
    weights = 65536 * 16384 * 16384 * 65536  # 2⁶⁰
    assert figure["Parameters"] == f"{weights:,} (1.15 quintillion)"
    assert " T)" not in page.text


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (999_999, "999,999"),
        (11_689_512, "11.7 million"),
        (4_089_184_256, "4.09 billion"),
        (999_999_999, "1 billion"),  # rounded up into the next word, not "1e+03 million"
        (2**60, "1.15 quintillion"),
        (3 * 10**24, "3.00 × 10²⁴"),
    ],
)
def test_short_counts_read_as_words(count: int, shown: str) -> None:
    assert short_count(count) == shown


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/demos/shapes", {"bias": "maybe"}, "bias"),
        ("/demos/shapes", {"kernel_size": "x"}, "kernel_size"),
        (
            "/demos/shapes",
            {"kind": "max_pool2d", "kernel_size": "2", "ceil_mode": "perhaps"},
            "ceil_mode",
        ),
        ("/demos/augmentation", {"crop": "sometimes"}, "crop"),
        ("/demos/augmentation", {"mix": "blend"}, "mix"),
        ("/demos/pooling", {"grid": "1 2\n3"}, "grid"),
        ("/demos/pooling", {"photo": "mona-lisa"}, "photo"),
        ("/demos/shapes/model", {"arch": "resnet51"}, "arch"),
    ],
)
def test_the_field_at_fault_is_marked_and_tied_to_the_message(
    client: TestClient, path: str, query: dict, field: str
) -> None:
    page = soup(client.get(path, params=query).text)
    error = page.select_one(".demo-error")
    control = page.select_one(f'[name="{field}"]:not([type="hidden"])')
    assert error["data-field"] == field
    assert control["aria-invalid"] == "true"
    assert error["id"] in control["aria-describedby"].split()
    assert len(page.select('[aria-invalid="true"]')) == 1  # only that one
