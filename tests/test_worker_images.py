"""Uploads and sample photos (app.worker.images): checked before decoding, small after."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.worker.errors import InvalidInput
from app.worker.images import MAX_SIDE, PHOTO_NAMES, decode_upload, sample_photo, to_rgb

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
    assert "10000 high × 10000 wide is 100 megapixels; the limit is 40" in raised.value.message


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


# --- samples wider than 8 bits, and transparency without an alpha band ------------------------


def png16(samples: np.ndarray, colour_type: int, trns: bytes | None = None) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot save 16-bit RGB): IHDR, tRNS?, IDAT, IEND."""
    height, width = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    if trns is not None:
        parts.append(chunk(b"tRNS", trns))
    return b"".join([*parts, chunk(b"IDAT", zlib.compress(rows)), chunk(b"IEND", b"")])


def ramp16() -> np.ndarray:
    """Every 16-bit value once: a 256×256 ramp from 0 (black) to 65535 (white)."""
    return np.arange(65536, dtype=np.uint16).reshape(256, 256)


def grey(image: Image.Image) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    assert image.mode == "RGB"
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    return array[..., 0]


def test_a_16_bit_greyscale_ramp_is_scaled_not_clipped() -> None:
    ramp = ramp16()
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"  # what Pillow hands us
    decoded = grey(decode_upload(data, max_bytes=LIMIT))
    expected = np.rint(ramp / 257.0)  # 65535 is white: 255 = 65535 / 257
    assert decoded.mean() == pytest.approx(expected.mean())
    assert decoded.mean() == pytest.approx(127.5, abs=0.01)
    assert (decoded == expected).all()


@pytest.mark.parametrize("mode", ["I", "I;16B", "F"])
def test_every_wide_mode_is_scaled_to_8_bits(mode: str) -> None:
    ramp = ramp16().astype(np.float64)
    if mode == "F":
        image = Image.fromarray((ramp / 65535.0).astype(np.float32), mode="F")
    else:
        image = Image.fromarray(ramp.astype(np.int32), mode="I").convert(mode)
    assert image.mode == mode
    expected = np.rint(ramp / 257.0)
    assert np.abs(grey(to_rgb(image)) - expected).max() <= 1


def test_a_16_bit_rgb_png_keeps_its_colours() -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(0, 65536, size=(40, 50, 3))
    decoded = np.asarray(decode_upload(png16(samples, colour_type=2), max_bytes=LIMIT), float)
    assert np.abs(decoded - samples / 257.0).max() <= 1


def bordered(inside: tuple[int, int, int] = (200, 60, 30)) -> Image.Image:
    """A 40×30 picture: a 5 px black border around a coloured middle."""
    image = Image.new("RGB", (40, 30), (0, 0, 0))
    image.paste(inside, (5, 5, 35, 25))
    return image


def border_and_middle(image: Image.Image) -> tuple[set, tuple]:
    array = np.asarray(image)
    border = np.concatenate([array[:5].reshape(-1, 3), array[-5:].reshape(-1, 3)])
    return {tuple(int(v) for v in pixel) for pixel in border}, tuple(int(v) for v in array[15, 20])


def test_an_rgb_colour_key_makes_the_border_white() -> None:
    data = encode(bordered(), "PNG", transparency=(0, 0, 0))
    opened = Image.open(io.BytesIO(data))
    assert opened.mode == "RGB" and opened.has_transparency_data  # a tRNS key, no alpha band
    border, middle = border_and_middle(decode_upload(data, max_bytes=LIMIT))
    assert border == {(255, 255, 255)}
    assert middle == (200, 60, 30)


def test_the_palette_version_of_the_same_picture_decodes_the_same() -> None:
    palette = bordered().quantize(colors=4)
    black = palette.getpixel((0, 0))
    keyed = encode(bordered(), "PNG", transparency=(0, 0, 0))
    paletted = encode(palette, "PNG", transparency=black)
    assert Image.open(io.BytesIO(paletted)).mode == "P"
    from_key = np.asarray(decode_upload(keyed, max_bytes=LIMIT))
    from_palette = np.asarray(decode_upload(paletted, max_bytes=LIMIT))
    assert (from_key == from_palette).all()
    assert border_and_middle(Image.fromarray(from_palette))[0] == {(255, 255, 255)}


def test_a_greyscale_colour_key_is_honoured_at_8_and_16_bits() -> None:
    picture = np.full((30, 40), 90, dtype=np.uint8)
    picture[:5] = 0
    data = encode(Image.fromarray(picture), "PNG", transparency=0)
    decoded = grey(decode_upload(data, max_bytes=LIMIT))
    assert (decoded[:5] == 255).all() and (decoded[5:] == 90).all()

    wide = picture.astype(np.uint16) * 257
    wide[:5] = 1  # the key is compared as 16 bits: 1 and 0 would both scale to 0
    data16 = png16(wide, colour_type=0, trns=struct.pack(">H", 1))
    decoded16 = grey(decode_upload(data16, max_bytes=LIMIT))
    assert (decoded16[:5] == 255).all() and (decoded16[5:] == 90).all()


MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "I;16", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_with_transparency_data_composites_on_white(mode: str) -> None:
    image = Image.new(mode, (6, 4))
    if not image.has_transparency_data and mode in ("1", "L", "P", "RGB", "I", "I;16"):
        # A colour key equal to the (zero) fill: every pixel is transparent.
        image.info["transparency"] = (0, 0, 0) if mode == "RGB" else 0
    if not image.has_transparency_data:
        assert to_rgb(image).mode == "RGB"  # nothing to composite (CMYK, YCbCr, F)
        return
    result = to_rgb(image)
    assert result.mode == "RGB"
    assert (np.asarray(result) == 255).all(), mode
