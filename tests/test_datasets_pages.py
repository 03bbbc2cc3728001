"""The data set pages: upload without JavaScript, the preview (counts, skipped, thumbnails served
only to the owner), the "Train on this" link, delete."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.datasets_zips import files_under, image_bytes, make_zip
from tests.web import csrf, soup


def form_upload(client: TestClient, data: bytes, token: str | None = None, **fields: str):
    """What the page's form sends without JavaScript: the CSRF field, then the file."""
    form = {"csrf_token": token if token is not None else csrf(client, "/datasets"), **fields}
    return client.post(
        "/datasets",
        data=form,
        files={"file": ("pets.zip", data, "application/zip")},
        follow_redirects=False,
    )


def pets_zip() -> tuple[bytes, dict[str, list[bytes]]]:
    images = {
        "cat": [image_bytes(i, size=40) for i in range(8)],
        "dog": [image_bytes(50 + i, size=40) for i in range(2)],
    }
    entries = [(f"pets/{c}/{i}.png", b) for c, items in images.items() for i, b in enumerate(items)]
    entries += [(f"pets/cat/{TRICKY}", b"hello"), ("__MACOSX/pets/._cat", b"\x00")]
    return make_zip(entries), images


# A skipped file's name is the uploader's text: the page shows it as text, never as markup.
TRICKY = "<img src=x onerror=alert(1)>.jpg"


def test_the_list_page_has_an_upload_form_that_sends_the_token_first(db_client) -> None:
    page = soup(db_client.get("/datasets"))
    form = page.select_one("form.dataset-upload")
    assert form["enctype"] == "multipart/form-data" and form["action"] == "/datasets"
    names = [element.get("name") for element in form.select("input")]
    assert names.index("csrf_token") < names.index("file")
    assert page.select_one('nav a[href="/datasets"]')["aria-current"] == "page"


def test_upload_by_form_then_preview_then_train_link(db_client) -> None:
    data, images = pets_zip()
    response = form_upload(db_client, data, name="Pets")
    assert response.status_code == 303, response.text
    page_url = response.headers["location"]
    page = soup(db_client.get(page_url))
    assert page.select_one("h1").text == "Pets"
    counts = {
        row.select_one("th").text: int(row.select_one("td").text)
        for row in page.select(".dataset-classes tbody tr")
    }
    assert counts == {"cat": 8, "dog": 2}
    skipped = page.select_one("#skipped")
    assert "1 × not decodable as an image" in skipped.text
    assert "1 × hidden or system file" in skipped.text
    # Each skipped file is named by its path inside the zip, escaped, never a server path.
    named = [code.text for code in skipped.select(".skipped-files code")]
    assert named == [f"pets/cat/{TRICKY}", "__MACOSX/pets/._cat"]
    assert skipped.select("img") == [] and "&lt;img src=x" in str(skipped)
    assert str(db_client.app.state.settings.data_dir) not in skipped.text
    assert (
        "largest class has 8 images and the smallest 2" in page.select_one("#imbalance-note").text
    )
    dataset_id = int(page_url.rsplit("/", 1)[1])
    assert page.select_one("#train-link")["href"] == (f"/runs/new?dataset=upload:{dataset_id}")
    thumbs = page.select(".dataset-thumbs img")
    assert len(thumbs) == 6 + 2  # at most six per class
    # Each thumbnail is the kept image, centre-cropped and resized by Pillow to 96 px.
    first = db_client.get(thumbs[0]["src"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    shown = np.asarray(Image.open(io.BytesIO(first.content)))
    expected = np.asarray(
        Image.open(io.BytesIO(images["cat"][0])).resize((96, 96), Image.Resampling.BILINEAR)
    )
    assert shown.shape == (96, 96, 3)
    assert np.abs(shown.astype(int) - expected.astype(int)).mean() < 2
    assert db_client.get(f"/datasets/{dataset_id}/images/1/2").status_code == 404  # 2 dogs
    listing = soup(db_client.get("/datasets"))
    assert listing.select_one(f"#dataset-{dataset_id} a").text == "Pets"
    answer = db_client.get(f"/api/datasets/{dataset_id}").json()
    assert answer["skipped_names"] == {
        "not decodable as an image": [f"pets/cat/{TRICKY}"],
        "hidden or system file": ["__MACOSX/pets/._cat"],
    }


def test_a_refused_form_upload_shows_why_and_keeps_nothing(db_client) -> None:
    bad = make_zip([("only/0.png", image_bytes(1)), ("only/1.png", image_bytes(2))])
    response = form_upload(db_client, bad)
    assert response.status_code == 422
    message = soup(response).select_one("#upload-error").text
    assert message.startswith("file: found one class ('only')")
    assert files_under(db_client.app.state.settings.data_dir / "datasets") == set()


def test_a_form_upload_without_the_token_is_403_and_writes_nothing(db_client) -> None:
    data, _ = pets_zip()
    response = form_upload(db_client, data, token="not-the-token")
    assert response.status_code == 403
    assert files_under(db_client.app.state.settings.data_dir / "datasets") == set()


def test_another_users_pages_images_and_delete_are_404(db_client) -> None:
    data, _ = pets_zip()
    url = form_upload(db_client, data).headers["location"]
    with TestClient(db_client.app) as other:
        token = csrf(other, "/datasets")
        assert other.get(url).status_code == 404
        assert other.get(f"{url}/images/0/0").status_code == 404
        assert other.post(f"{url}/delete", data={"csrf_token": token}).status_code == 404
        assert "No data sets yet" in other.get("/datasets").text
    assert db_client.get(url).status_code == 200


def other_confirm_is_404(db_client: TestClient, url: str) -> bool:
    with TestClient(db_client.app) as other:
        return other.get(f"{url}/delete").status_code == 404


def test_delete_by_form_removes_the_files(db_client) -> None:
    data, _ = pets_zip()
    url = form_upload(db_client, data).headers["location"]
    root = db_client.app.state.settings.data_dir / "datasets" / "uploads"
    assert len(files_under(root)) == 10
    token = csrf(db_client, f"{url}/delete")  # the confirmation page holds the form
    assert other_confirm_is_404(db_client, url)
    response = db_client.post(f"{url}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/datasets"
    assert files_under(root) == set()
    assert db_client.get(url).status_code == 404
