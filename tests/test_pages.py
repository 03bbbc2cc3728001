"""HTML pages over HTTP: home, search fragments, question pages, errors, headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.content import QuestionBank
from tests.web import soup

HX = {"HX-Request": "true"}


def test_home_lists_the_twelve_questions_with_tags_and_difficulty(
    client: TestClient, bank: QuestionBank
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = soup(response)
    cards = page.select("#question-list li.question-card")
    assert [card.h2.a["href"] for card in cards] == [f"/questions/{q.slug}" for q in bank]
    first = cards[0]
    assert first.select_one(".difficulty").text == bank.questions[0].difficulty
    assert [a.text for a in first.select(".tag")] == bank.questions[0].tags
    assert page.select_one("script[src='/static/vendor/htmx.min.js']") is not None


def test_search_returns_the_list_fragment_for_htmx_and_the_page_otherwise(
    client: TestClient,
) -> None:
    fragment = client.get("/", params={"q": "pool"}, headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="question-list"')
    assert "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    titles = [a.text for a in soup(fragment).select("li.question-card h2 a")]
    assert any("pool" in title.lower() for title in titles)

    full = client.get("/", params={"q": "pool"})
    assert "<html" in full.text
    assert "HX-Request" in full.headers["vary"]


def test_search_looks_inside_answer_text(client: TestClient, bank: QuestionBank) -> None:
    # A phrase that appears only in the body of the focal-loss answer, not its title.
    question = bank.get("class-imbalance")
    assert question is not None and "focal" not in question.title.lower()
    page = soup(client.get("/", params={"q": "focal loss"}, headers=HX))
    hrefs = [a["href"] for a in page.select("li.question-card h2 a")]
    assert "/questions/class-imbalance" in hrefs


def test_history_restore_gets_the_whole_page(client: TestClient) -> None:
    headers = {**HX, "HX-History-Restore-Request": "true"}
    assert "<html" in client.get("/", params={"q": "pool"}, headers=headers).text


def test_tag_filter_keeps_only_tagged_questions(client: TestClient, bank: QuestionBank) -> None:
    tag = bank.questions[0].tags[0]
    page = soup(client.get("/", params={"tag": tag}))
    hrefs = [a["href"] for a in page.select("li.question-card h2 a")]
    assert hrefs == [f"/questions/{q.slug}" for q in bank if tag in q.tags]
    assert page.select_one(f"#tag option[value='{tag}']").has_attr("selected")


def test_search_without_match_says_so(client: TestClient) -> None:
    page = soup(client.get("/", params={"q": "zebra-stripes-quantum"}))
    assert page.select("li.question-card") == []
    assert "No question matches" in page.select_one("li.empty").text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tag": "no-such-tag"}, "tag: unknown tag"),
        ({"q": "x" * 201}, "q: String should have at most 200 characters"),
    ],
)
def test_invalid_query_is_a_422_page_not_a_500(
    client: TestClient, params: dict, message: str
) -> None:
    response = client.get("/", params=params)
    assert response.status_code == 422
    assert message in soup(response).select_one("ul.errors").text


def test_search_text_is_escaped(client: TestClient) -> None:
    response = client.get("/", params={"q": "<script>alert(1)</script>"})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_question_page_has_prompt_draft_reveal_link_and_pager(
    client: TestClient, bank: QuestionBank
) -> None:
    question = bank.questions[1]
    page = soup(client.get(f"/questions/{question.slug}"))
    assert page.h1.text == question.title
    assert page.select_one(".prompt .prose").text.strip()
    assert page.select_one("label[for='draft']") is not None
    reveal = page.select_one("#answer-slot a")
    assert reveal["href"] == f"/questions/{question.slug}?reveal=true#answer"
    assert reveal["hx-get"] == f"/questions/{question.slug}?reveal=true"
    assert page.select_one("#answer") is None
    assert page.select_one("a[rel=prev]")["href"] == f"/questions/{bank.questions[0].slug}"
    assert page.select_one("a[rel=next]")["href"] == f"/questions/{bank.questions[2].slug}"


def test_first_and_last_questions_have_one_neighbour(
    client: TestClient, bank: QuestionBank
) -> None:
    first = soup(client.get(f"/questions/{bank.questions[0].slug}"))
    last = soup(client.get(f"/questions/{bank.questions[-1].slug}"))
    assert first.select_one("a[rel=prev]") is None and first.select_one("a[rel=next]")
    assert last.select_one("a[rel=next]") is None and last.select_one("a[rel=prev]")


def test_reveal_without_javascript_renders_the_whole_page_with_the_answer(
    client: TestClient, bank: QuestionBank
) -> None:
    question = bank.questions[0]
    page = soup(client.get(f"/questions/{question.slug}", params={"reveal": "true"}))
    assert page.h1.text == question.title
    answer = page.select_one("#answer .prose")
    assert answer is not None and answer.select("h3")


def test_revealed_answer_shows_the_answer_aloud_first_and_the_depth_one_click_away(
    client: TestClient, bank: QuestionBank
) -> None:
    for question in bank:
        page = soup(client.get(f"/questions/{question.slug}", params={"reveal": "true"}))
        answer = page.select_one("#answer")
        aloud = answer.select_one(".answer-aloud")
        assert (
            aloud.select_one("h3")
            .get_text(strip=True)
            .startswith("The answer you would give aloud")
        )
        depth = answer.select_one("details.answer-depth")
        # Closed by default, opened by its <summary> (a native control: keyboard, no JavaScript).
        assert depth is not None and not depth.has_attr("open"), question.slug
        assert depth.select_one("summary").get_text(strip=True)
        assert depth.select_one("#go-deeper") and depth.select_one("#common-follow-ups")
        assert aloud.sourceline < depth.sourceline
        assert not aloud.select("#go-deeper"), question.slug


def test_reveal_with_htmx_returns_only_the_answer(client: TestClient, bank: QuestionBank) -> None:
    question = bank.questions[0]
    response = client.get(f"/questions/{question.slug}", params={"reveal": "true"}, headers=HX)
    assert response.text.lstrip().startswith('<section id="answer"')
    assert "HX-Request" in response.headers["vary"]


def test_answers_render_tables_code_and_formulas(client: TestClient) -> None:
    page = soup(client.get("/questions/convolutional-layers", params={"reveal": "true"}))
    assert page.select(".prose .table-wrap table")
    assert page.select(".prose pre.code .highlight, .prose pre.highlight")
    assert page.select(".prose .formula")


def test_unknown_question_is_a_404_page(client: TestClient) -> None:
    response = client.get("/questions/no-such-question")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert soup(response).h1.text == "Not found"


def test_unknown_path_is_a_404_page(client: TestClient) -> None:
    assert client.get("/nothing/here").status_code == 404


def test_bad_reveal_value_is_a_422(client: TestClient, bank: QuestionBank) -> None:
    response = client.get(f"/questions/{bank.questions[0].slug}", params={"reveal": "banana"})
    assert response.status_code == 422
    assert "reveal" in soup(response).select_one("ul.errors").text


@pytest.mark.parametrize("path", ["/", "/questions/pooling", "/healthz", "/api/questions", "/nope"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(client: TestClient, bank: QuestionBank) -> None:
    for path in ["/", f"/questions/{bank.questions[0].slug}?reveal=true"]:
        page = soup(client.get(path))
        assert all(script.has_attr("src") for script in page.find_all("script"))
        assert page.find_all("style") == []
        assert page.select("[style]") == []


def test_static_htmx_and_highlight_css_are_served(client: TestClient) -> None:
    htmx = client.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text
    css = client.get("/assets/highlight.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "prefers-color-scheme: dark" in css.text


def test_api_docs_page_loads_swagger_from_our_origin(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    scripts = [s["src"] for s in soup(response).find_all("script")]
    assert all(src.startswith("/static/") for src in scripts)
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # The test app starts no run worker (RUN_WORKERS=0): runs could not start, and it says so.
    assert body["jobs"] == {
        "backend": "local",
        "ok": False,
        "workers": 0,
        "workers_alive": 0,
        "worker_restarts": 0,
    }


def test_a_page_served_from_the_shared_cache_carries_each_visitors_own_token(
    client: TestClient,
) -> None:
    from fastapi.testclient import TestClient as Browser

    tokens = []
    for _ in range(2):
        with Browser(client.app) as visitor:
            page = soup(visitor.get("/questions/pooling"))
            token = page.select_one("input[name=csrf_token]")["value"]
            assert token in page.body["hx-headers"]
            saved = visitor.post(
                "/questions/pooling/draft", data={"csrf_token": token, "draft": "x"}
            )
            assert saved.status_code == 200
            tokens.append(token)
    assert tokens[0] != tokens[1]
