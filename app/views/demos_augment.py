"""The augmentation gallery: a seeded transforms.v2 pipeline on a sample photo or an upload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos.forms import FormValues
from app.demos.present import code_html
from app.demos.runner import run_demo
from app.demos.uploads import PhotoForm, chosen_photo, photo_context, read_photo_form
from app.messages import on_screen
from app.web import render
from app.worker.augment import MIX_KINDS, AugmentSpec, augment
from app.worker.errors import InvalidInput
from app.worker.images import PHOTO_NAMES, SAMPLE_PHOTOS, sample_photo

router = APIRouter(tags=["demos"])

_DEFAULT = AugmentSpec()
AUGMENT_DEFAULTS = {
    "photo": "astronaut",
    "seed": str(_DEFAULT.seed),
    "views": str(_DEFAULT.views),
    "size": str(_DEFAULT.size),
    "crop": "true",
    "scale_min": f"{_DEFAULT.scale_min:g}",
    "scale_max": f"{_DEFAULT.scale_max:g}",
    "flip": f"{_DEFAULT.flip:g}",
    "brightness": f"{_DEFAULT.brightness:g}",
    "contrast": f"{_DEFAULT.contrast:g}",
    "saturation": f"{_DEFAULT.saturation:g}",
    "hue": f"{_DEFAULT.hue:g}",
    "randaugment": "false",
    "num_ops": str(_DEFAULT.num_ops),
    "magnitude": str(_DEFAULT.magnitude),
    "mix": "none",
    "alpha": f"{_DEFAULT.alpha:g}",
}
AUGMENT_LABELS = {
    "photo": "Photo",
    "seed": "Seed",
    "views": "Views",
    "size": "Size (px)",
    "crop": "RandomResizedCrop (off: resize and centre crop)",
    "scale_min": "Scale from",
    "scale_max": "Scale to",
    "flip": "Flip probability",
    "brightness": "Brightness",
    "contrast": "Contrast",
    "saturation": "Saturation",
    "hue": "Hue",
    "randaugment": "RandAugment",
    "num_ops": "N (operations)",
    "magnitude": "M (magnitude, 0–30)",
    "mix": "Batch mixing",
    "alpha": "α (λ ~ Beta(α, α))",
    "image": "Your own photo",
}
MIX_TITLES = {"none": "none", "mixup": "MixUp (blend)", "cutmix": "CutMix (paste a box)"}


def spec_from(form: FormValues) -> AugmentSpec:
    return AugmentSpec(
        seed=form.integer("seed"),
        views=form.integer("views"),
        size=form.integer("size"),
        crop=form.flag("crop"),
        scale_min=form.number("scale_min"),
        scale_max=form.number("scale_max"),
        flip=form.number("flip"),
        brightness=form.number("brightness"),
        contrast=form.number("contrast"),
        saturation=form.number("saturation"),
        hue=form.number("hue"),
        randaugment=form.flag("randaugment"),
        num_ops=form.integer("num_ops"),
        magnitude=form.integer("magnitude"),
        mix=form.choice("mix", MIX_KINDS),  # type: ignore[arg-type]
        alpha=form.number("alpha"),
    ).validate()


def _photos(first: str, first_image: Any) -> list[tuple[str, Any]]:
    """The chosen photo first, then the other samples (the batch partners when mixing)."""
    others = [(name, sample_photo(name)) for name in PHOTO_NAMES if name != first]
    return [(first, first_image), *others]


async def _gallery_response(request: Request, sent: PhotoForm) -> HTMLResponse:
    form = FormValues(sent.fields, AUGMENT_DEFAULTS)
    context = photo_context(request, sent, form.values) | {
        "photos": SAMPLE_PHOTOS,
        "mix_titles": MIX_TITLES,
        "labels": AUGMENT_LABELS,
        "gallery": None,
    }
    status = 200
    try:
        if sent.error is not None:
            raise sent.error
        spec = spec_from(form)
        name, image = await chosen_photo(request, form.text("photo"), sent.upload)
        photos = await run_demo(request, _photos, name, image)
        gallery = await run_demo(request, augment, photos, spec)
        context |= {"gallery": gallery, "code": code_html(gallery.code)}
    except InvalidInput as error:
        context["error"], status = on_screen(error, AUGMENT_LABELS), 422
    return render(
        request,
        "pages/demos_augmentation.html",
        context,
        fragment="partials/_demo_augment_result.html",
        status_code=status,
    )


@router.get("/demos/augmentation", response_class=HTMLResponse, include_in_schema=False)
async def augmentation_page(request: Request) -> HTMLResponse:
    return await _gallery_response(request, PhotoForm(request.query_params))


@router.post("/demos/augmentation", response_class=HTMLResponse, include_in_schema=False)
async def augmentation_upload(request: Request) -> HTMLResponse:
    """The gallery on an uploaded photo (multipart form; the image is not kept)."""
    return await _gallery_response(request, await read_photo_form(request))
