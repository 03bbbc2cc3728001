"""Uploads and sample photos (app.worker.images): checked before decoding, small after."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.worker.errors import InvalidInput
from app.worker.images import MAX_SIDE, PHOTO_NAMES, decode_upload, sample_photo

LIMIT = 10_000_000


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def big_bilevel_png(width: int, height: int) -> bytes:
    """A real, valid PNG of width×height pixels that compresses to a few hundred kilobytes."""
    return encode(Image.new("1", (width, height)), "PNG")


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP", "GIF"])
def test_each_allowed_format_decodes_to_rgb_at_most_512_px(format: str) -> None:
    data = encode(Image.new("RGB", (1200, 600), (200, 30, 30)), format)
    image = decode_upload(data, max_bytes=LIMIT)
    assert image.mode == "RGB"
    assert image.size == (MAX_SIDE, MAX_SIDE // 2)


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    image = decode_upload(buffer.getvalue(), max_bytes=LIMIT)
    red, _, blue = image.getpixel((20, 20))  # type: ignore[misc]
    assert red > 200 and blue < 50


def test_transparent_pixels_become_white_not_black() -> None:
    data = encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG")
    assert decode_upload(data, max_bytes=LIMIT).getpixel((5, 5)) == (255, 255, 255)


def test_a_small_image_keeps_its_size() -> None:
    data = encode(Image.new("RGB", (64, 48)), "PNG")
    assert decode_upload(data, max_bytes=LIMIT).size == (64, 48)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"just some words, saved as cat.png\n" * 20, "not a readable image"),
        (encode(Image.new("RGB", (300, 300)), "BMP"), "not a readable image"),
        (encode(Image.new("RGB", (300, 300), (9, 9, 9)), "PNG")[:200], "damaged or cut short"),
        (encode(Image.new("RGB", (300, 300)), "JPEG")[:-400], "damaged or cut short"),
    ],
    ids=["zero-bytes", "text-renamed-png", "bmp", "truncated-png", "truncated-jpeg"],
)
def test_unusable_files_are_refused_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_upload(data, max_bytes=LIMIT)
    assert raised.value.field == "image"
    assert message in raised.value.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_100_megapixel_image_is_refused_before_decoding() -> None:
    data = big_bilevel_png(10_000, 10_000)
    assert len(data) < LIMIT
    with pytest.raises(InvalidInput) as raised:
        decode_upload(data, max_bytes=LIMIT)
    assert "10000×10000 is 100 megapixels; the limit is 40" in raised.value.message


def test_a_file_over_the_cap_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_upload(b"\x89PNG" + b"\0" * 1_996, max_bytes=1_000)
    assert raised.value.message == "the file is 2.0 kB, over the 1.0 kB limit"


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_sample_photos_load_from_the_installed_packages(name: str) -> None:
    photo = sample_photo(name)
    assert photo.mode == "RGB" and max(photo.size) <= MAX_SIDE
    original = photo.tobytes()
    photo.paste((1, 2, 3), (0, 0, photo.width, photo.height))  # a copy: the cache is untouched
    assert sample_photo(name).tobytes() == original


def test_an_unknown_sample_photo_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as raised:
        sample_photo("mona-lisa")
    assert raised.value.field == "photo" and "astronaut" in raised.value.message
