"""Architecture facts (Q4): torchvision's counts and metadata beside the papers' figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from app.demos.architectures import ArchitectureRow, architecture_rows
from app.web import render


async def _compute_at_startup(app: FastAPI) -> list[ArchitectureRow]:
    # Building a dozen models on the meta device takes about a second; not on the event loop.
    rows = await anyio.to_thread.run_sync(architecture_rows, app.state.bank)
    app.state.architecture_rows = rows
    return rows


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await _compute_at_startup(app)
    yield


router = APIRouter(tags=["demos"], lifespan=lifespan)


async def rows_for(request: Request) -> list[ArchitectureRow]:
    rows = getattr(request.app.state, "architecture_rows", None)
    return rows if rows is not None else await _compute_at_startup(request.app)


class ArchitectureBody(BaseModel):
    model: str
    year: str
    builder: str | None
    weights: str | None
    params: int | None
    top1: float | None
    top5: float | None
    gflops: float | None
    paper_top1: str

    @classmethod
    def of(cls, row: ArchitectureRow) -> ArchitectureBody:
        facts = row.facts
        return cls(
            model=row.model,
            year=row.year,
            builder=facts.builder if facts else None,
            weights=facts.weights if facts else None,
            params=facts.params if facts else None,
            top1=facts.top1 if facts else None,
            top5=facts.top5 if facts else None,
            gflops=facts.gflops if facts else None,
            paper_top1=row.paper_top1,
        )


@router.get("/api/architectures", response_model=list[ArchitectureBody])
async def list_architecture_facts(request: Request) -> list[ArchitectureBody]:
    """The classic architectures: parameters counted from torchvision's definitions, top-1 and
    GFLOPS from its weight metadata (offline), and the paper's top-1 from question 4."""
    return [ArchitectureBody.of(row) for row in await rows_for(request)]


@router.get("/demos/architectures", response_class=HTMLResponse, include_in_schema=False)
async def architectures_page(request: Request) -> HTMLResponse:
    context = {"rows": await rows_for(request)}
    return render(
        request,
        "pages/demos_architectures.html",
        context,
        fragment="partials/_demo_architectures_table.html",
    )
