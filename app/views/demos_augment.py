"""The augmentation gallery: a seeded transforms.v2 pipeline on a sample photo or an upload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos.augment_form import AUGMENT_DEFAULTS, AUGMENT_LABELS, MIX_TITLES, augment_spec_from
from app.demos.forms import FormValues
from app.demos.present import code_html
from app.demos.runner import run_demo
from app.demos.uploads import PhotoForm, chosen_photo, photo_context, read_photo_form
from app.messages import on_screen
from app.web import render
from app.worker.augment import augment
from app.worker.errors import InvalidInput
from app.worker.images import PHOTO_NAMES, SAMPLE_PHOTOS, sample_photo

router = APIRouter(tags=["demos"])


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
        spec = augment_spec_from(form)
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
