"""Images in and out: the bundled sample photos, checked uploads, PNG/JPEG data URIs.

Sample photos are the ones scikit-image and scikit-learn ship inside their packages; they are
read as files (found without importing either package, which would cost seconds) and cached.
Uploads are decoded only after the checks: size, format, pixel count (Pillow's
decompression-bomb guard, with a tighter limit of our own), then the first frame is
downscaled to at most 512 px and kept in memory for the one request.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.worker.errors import InvalidInput

MAX_SIDE = 512
# Decoding a 40-megapixel image takes ~160 MB; anything larger is refused before decoding.
MAX_PIXELS = 40_000_000
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    title: str
    package: str
    path: str  # inside the package


SAMPLE_PHOTOS: dict[str, SamplePhoto] = {
    photo.name: photo
    for photo in (
        SamplePhoto("astronaut", "Astronaut (scikit-image)", "skimage", "data/astronaut.png"),
        SamplePhoto("coffee", "Cup of coffee (scikit-image)", "skimage", "data/coffee.png"),
        SamplePhoto("chelsea", "Chelsea the cat (scikit-image)", "skimage", "data/chelsea.png"),
        SamplePhoto("rocket", "Rocket launch (scikit-image)", "skimage", "data/rocket.jpg"),
        SamplePhoto(
            "china", "Summer Palace, China (scikit-learn)", "sklearn", "datasets/images/china.jpg"
        ),
        SamplePhoto("flower", "Flower (scikit-learn)", "sklearn", "datasets/images/flower.jpg"),
    )
}
PHOTO_NAMES: tuple[str, ...] = tuple(SAMPLE_PHOTOS)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def check_photo(name: str, field: str = "photo") -> str:
    if name not in SAMPLE_PHOTOS:
        raise InvalidInput(field, f"unknown photo {name!r}; choose one of {', '.join(PHOTO_NAMES)}")
    return name


@cache
def _sample(name: str) -> Image.Image:
    photo = SAMPLE_PHOTOS[name]
    with Image.open(_package_file(photo.package, photo.path)) as image:
        return _fit(to_rgb(image), MAX_SIDE)


def sample_photo(name: str) -> Image.Image:
    """A bundled photo as RGB, longest side at most 512 px (a fresh copy each call)."""
    return _sample(check_photo(name)).copy()


def _fit(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def human_bytes(count: int) -> str:
    """12.3 MB, 4.5 kB or 300 bytes (decimal units, as UPLOAD_MAX_BYTES is written)."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1_000:
        return f"{count / 1_000:.1f} kB"
    return f"{count} bytes"


def decode_upload(data: bytes, *, max_bytes: int) -> Image.Image:
    """A checked upload as RGB, longest side at most 512 px. Raises InvalidInput("image", …)."""
    if not data:
        raise InvalidInput("image", "the file is empty")
    if len(data) > max_bytes:
        raise InvalidInput(
            "image",
            f"the file is {human_bytes(len(data))}, over the {human_bytes(max_bytes)} limit",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError:
        raise InvalidInput("image", "the image has too many pixels to decode safely") from None
    except (UnidentifiedImageError, OSError, ValueError):
        allowed = ", ".join(FORMATS.values())
        raise InvalidInput("image", f"not a readable image; upload a {allowed} file") from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise InvalidInput(
                "image",
                f"{height} high × {width} wide is {width * height / 1e6:.0f} megapixels; "
                f"the limit is {MAX_PIXELS // 1_000_000}",
            )
        try:
            image.seek(0)  # the first frame of an animated GIF or WebP
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG decodes at a reduced scale: faster
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = to_rgb(upright)
        except (OSError, ValueError, SyntaxError, EOFError):
            raise InvalidInput(
                "image", "the file is damaged or cut short; it cannot be decoded"
            ) from None
    return _fit(rgb, MAX_SIDE)


# Modes whose samples are wider than 8 bits, and the value that maps to white (255).
# Pillow decodes a 16-bit greyscale PNG as "I;16" (older versions as "I"); its 16-bit RGB and
# RGBA PNGs already arrive as 8-bit RGB/RGBA (the high byte of each sample).
_WIDE_MODES: dict[str, float] = {
    "I;16": 65535.0,
    "I;16L": 65535.0,
    "I;16B": 65535.0,
    "I;16N": 65535.0,
    "I": 65535.0,
    "F": 1.0,
}


def _eight_bit(image: Image.Image) -> Image.Image:
    """A one-band image with samples wider than 8 bits, scaled (not clipped) to mode "L".

    `I;16*` and `I` span 0…65535 (white is 65535, so 32768 becomes 128); `F` spans 0…1 when all
    its values lie there, else it is read like `I`. Pillow's own `convert("L")` clips instead:
    a 0…65535 ramp would come out almost all white.
    """
    samples = np.asarray(image, dtype=np.float64)
    white = _WIDE_MODES[image.mode]
    if image.mode == "F" and not (np.nanmin(samples) >= 0.0 and np.nanmax(samples) <= 1.0):
        white = _WIDE_MODES["I"]
    scaled = np.nan_to_num(samples * (255.0 / white), nan=0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _transparency_mask(image: Image.Image) -> Image.Image | None:
    """Opacity as an "L" image (255 opaque), or None when every pixel is opaque.

    Covers an alpha band (RGBA, LA, PA, premultiplied RGBa/La), a palette with transparent
    entries, and a `tRNS` colour key in an RGB, L or 16-bit greyscale PNG (the pixels equal to
    the key are transparent; for 16-bit images the key is compared before any scaling).
    """
    if not image.has_transparency_data:
        return None
    key = image.info.get("transparency")
    if image.mode in _WIDE_MODES and isinstance(key, int):
        opaque = np.asarray(image) != key
        return Image.fromarray(opaque.astype(np.uint8) * 255, mode="L")
    return image.convert("RGBA").getchannel("A")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any decoded image as 8-bit RGB on a white background.

    Samples wider than 8 bits are scaled to 0…255 (see `_eight_bit`); anything transparent,
    whether through an alpha band, a palette or a colour key, is composited on white (it would
    otherwise turn black, or keep the key's colour). Raises ValueError for a mode Pillow cannot
    convert to RGB.
    """
    if image.mode in ("RGBa", "La"):  # premultiplied alpha: undone first (Pillow's only path)
        image = image.convert("RGBA" if image.mode == "RGBa" else "LA")
    mask = _transparency_mask(image)
    base = _eight_bit(image) if image.mode in _WIDE_MODES else image
    rgb = base.convert("RGB")
    if mask is None:
        return rgb
    background = Image.new("RGB", rgb.size, (255, 255, 255))
    background.paste(rgb, mask=mask)
    return background


def data_uri(image: Image.Image, *, format: str = "PNG", quality: int = 85) -> str:
    """`data:image/...;base64,...` for an <img src> (the CSP allows data: images)."""
    buffer = io.BytesIO()
    if format == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        mime = "image/jpeg"
    else:
        image.save(buffer, format="PNG", optimize=False)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
