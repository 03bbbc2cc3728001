"""Typed dependencies for route functions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.content import QuestionBank
from app.runs.backend import JobBackend
from app.settings import Settings

# Trivial dependencies are `async def` so FastAPI calls them inline instead of in a thread.


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_bank(request: Request) -> QuestionBank:
    return request.app.state.bank


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BankDep = Annotated[QuestionBank, Depends(get_bank)]


async def get_jobs(request: Request) -> JobBackend:
    return request.app.state.jobs


JobsDep = Annotated[JobBackend, Depends(get_jobs)]
