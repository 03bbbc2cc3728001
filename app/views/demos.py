"""Demo pages and their JSON API (shape calculator, pooling, augmentation, architectures)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["demos"])
