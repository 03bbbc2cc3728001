"""Uploading a photo to the pooling and augmentation demos: bad files are 422, the server lives on."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings

CAP = 300_000  # bytes; a small UPLOAD_MAX_BYTES keeps the over-the-cap upload quick to build
DEMOS = ["/demos/pooling", "/demos/augmentation"]


@pytest.fixture
def small_cap_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(DATA_DIR=tmp_path / "data", SECRET_KEY="test", UPLOAD_MAX_BYTES=CAP)
    with TestClient(create_app(settings)) as client:
        yield client


def png(size: tuple[int, int] = (300, 200), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 90 if mode != "RGB" else (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: TestClient, path: str, name: str, data: bytes, **fields: str):  # type: ignore[no-untyped-def]
    files = {"image": (name, data, "application/octet-stream")}
    return client.post(path, files=files, data={"views": "2", "size": "64", **fields})


def error_text(response) -> str:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser").select_one(".demo-error").text


@pytest.mark.parametrize("path", DEMOS)
def test_a_good_upload_is_used_and_not_kept(
    small_cap_client: TestClient, path: str, tmp_path: Path
) -> None:
    response = upload(small_cap_client, path, "mine.png", png())
    assert response.status_code == 200, error_text(response)
    page = BeautifulSoup(response.text, "html.parser")
    assert page.select_one(".demo-result img") is not None
    assert "your photo" in page.text.lower()
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file() and p.name != "secret_key"]
    assert not [p for p in stored if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".gif")]


def _hundred_megapixels() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # valid, ~100 kB
    return buffer.getvalue()


BAD_UPLOADS = [
    ("corrupt.png", png()[:120], "damaged or cut short"),
    ("notes.png", b"These are my notes, not a picture.\n" * 30, "not a readable image"),
    ("empty.png", b"", "the file is empty"),
    ("huge.png", None, "100 megapixels; the limit is 40"),
    ("big.png", b"\x89PNG\r\n\x1a\n" + bytes(CAP + 10), "over the 300.0 kB limit"),
    ("way-too-big.png", b"\x89PNG\r\n\x1a\n" + bytes(3 * CAP), "over the 300.0 kB limit"),
]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("path", DEMOS)
@pytest.mark.parametrize(
    ("name", "data", "message"), BAD_UPLOADS, ids=[row[0] for row in BAD_UPLOADS]
)
def test_bad_uploads_are_422_with_a_clear_message_and_the_server_carries_on(
    small_cap_client: TestClient, path: str, name: str, data: bytes | None, message: str
) -> None:
    body = _hundred_megapixels() if data is None else data
    response = upload(small_cap_client, path, name, body)
    assert response.status_code == 422
    assert error_text(response).startswith("Your own photo:") and message in error_text(response)
    htmx = small_cap_client.post(
        path, files={"image": (name, body, "image/png")}, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 422 and "<html" not in htmx.text
    assert small_cap_client.get("/healthz").status_code == 200
    assert upload(small_cap_client, path, "fine.png", png()).status_code == 200


@pytest.mark.parametrize("path", DEMOS)
def test_a_form_post_without_a_file_uses_the_sample_photo(
    small_cap_client: TestClient, path: str
) -> None:
    response = small_cap_client.post(
        path, files={"image": ("", b"", "application/octet-stream")}, data={"views": "1"}
    )
    assert response.status_code == 200
    assert "your photo" not in response.text.lower()


def test_the_upload_keeps_the_settings_of_the_form(small_cap_client: TestClient) -> None:
    response = upload(small_cap_client, "/demos/pooling", "mine.png", png((64, 64)), kernel="4")
    page = BeautifulSoup(response.text, "html.parser")
    assert "Kernel 4×4, stride 4" in page.select_one(".demo-summary").text


def _mean_of_data_uri(src: str) -> np.ndarray:
    data = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), float).mean(axis=(0, 1))


def test_a_16_bit_ramp_uploaded_to_either_demo_is_mid_grey_not_white(
    small_cap_client: TestClient,
) -> None:
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # 0 … 65535 once each
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    expected = float(np.rint(ramp / 257.0).mean())  # 127.5: 65535 is white
    response = upload(small_cap_client, "/demos/pooling", "ramp16.png", buffer.getvalue())
    assert response.status_code == 200, error_text(response)
    src = BeautifulSoup(response.text, "html.parser").select_one(".pool-photo img")["src"]
    assert _mean_of_data_uri(src) == pytest.approx([expected] * 3, abs=1.5)  # JPEG-encoded
    gallery = upload(
        small_cap_client, "/demos/augmentation", "ramp16.png", buffer.getvalue(),
        crop="false", flip="0", brightness="0", contrast="0", saturation="0", hue="0",
        size="256",
    )  # fmt: skip
    assert gallery.status_code == 200, error_text(gallery)
    first = BeautifulSoup(gallery.text, "html.parser").select_one(".gallery img")["src"]
    assert _mean_of_data_uri(first) == pytest.approx([expected] * 3, abs=1.5)


@pytest.mark.parametrize("path", DEMOS)
def test_the_picker_names_the_uploaded_photo(small_cap_client: TestClient, path: str) -> None:
    response = upload(small_cap_client, path, "C:\\photos\\my cat.png", png())
    picker = BeautifulSoup(response.text, "html.parser").select_one("select[name=photo]")
    chosen = picker.select_one("option[selected]")
    assert chosen.text == "Your photo: my cat.png" and chosen["value"] == "upload"
    assert len(picker.select("option[selected]")) == 1


@pytest.mark.parametrize("path", DEMOS)
def test_asking_for_the_upload_without_sending_it_says_it_is_not_kept(
    small_cap_client: TestClient, path: str
) -> None:
    response = small_cap_client.get(path, params={"photo": "upload"})
    assert response.status_code == 422
    assert error_text(response).startswith("Photo: your photo is not kept on the server")
