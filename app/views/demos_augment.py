"""The augmentation gallery: a seeded transforms.v2 pipeline on a sample photo or an upload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import ImmutableMultiDict

from app.demos.augment_form import AUGMENT_DEFAULTS, AUGMENT_LABELS, MIX_TITLES, augment_spec_from
from app.demos.forms import FormValues, MultiValues
from app.demos.messages import on_screen
from app.demos.present import code_html, placement
from app.demos.runner import run_demo
from app.demos.uploads import Upload, check_no_lost_upload, read_form_with_upload
from app.web import render
from app.worker.augment import augment
from app.worker.errors import InvalidInput
from app.worker.images import PHOTO_NAMES, SAMPLE_PHOTOS, decode_upload, sample_photo

router = APIRouter(tags=["demos"])

UPLOAD_NAME = "your photo"


def _photos(first: str, first_image: Any) -> list[tuple[str, Any]]:
    """The chosen photo first, then the other samples (the batch partners when mixing)."""
    others = [(name, sample_photo(name)) for name in PHOTO_NAMES if name != first]
    return [(first, first_image), *others]


async def _gallery_response(
    request: Request, source: MultiValues, upload: Upload | None, upload_error: InvalidInput | None
) -> HTMLResponse:
    form = FormValues(source, AUGMENT_DEFAULTS)
    context: dict[str, Any] = {
        "form": form.values,
        "photos": SAMPLE_PHOTOS,
        "mix_titles": MIX_TITLES,
        "labels": AUGMENT_LABELS,
        "gallery": None,
        "error": None,
        "uploaded": upload is not None,
        "upload_name": upload.name if upload else None,
        **placement(request),
    }
    status = 200
    try:
        if upload_error is not None:
            raise upload_error
        spec = augment_spec_from(form)
        if upload is not None:
            max_bytes = request.app.state.settings.upload_max_bytes
            image = await run_demo(request, decode_upload, upload.data, max_bytes=max_bytes)
            name = UPLOAD_NAME
        else:
            name = check_no_lost_upload(form.text("photo"))
            image = await run_demo(request, sample_photo, name)
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
    return await _gallery_response(request, request.query_params, None, None)


@router.post("/demos/augmentation", response_class=HTMLResponse, include_in_schema=False)
async def augmentation_upload(request: Request) -> HTMLResponse:
    """The gallery on an uploaded photo (multipart form; the image is not kept)."""
    max_bytes = request.app.state.settings.upload_max_bytes
    try:
        fields, upload = await read_form_with_upload(request, max_bytes=max_bytes)
    except InvalidInput as error:
        return await _gallery_response(request, ImmutableMultiDict(), None, error)
    return await _gallery_response(request, fields, upload, None)
