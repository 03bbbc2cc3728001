"""Disk held under bounds: each user's runs under RUN_QUOTA_BYTES, the decode cache under
DATA_CACHE_MAX_BYTES (least recently used entries go first). Real runs, trained in-process
as a worker would; bytes measured on disk. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.worker.training.data import cache
from tests.test_runs_api import TINY, train_now


def bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def entries(folder: Path) -> list[str]:
    return (
        sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if folder.exists()
        else []
    )


@pytest.fixture
def make(database_url: str, tmp_path: Path) -> Iterator:
    clients: list[TestClient] = []

    def build(**values: object) -> TestClient:
        settings = Settings(
            DATA_DIR=tmp_path / "data", DATABASE_URL=database_url, SECRET_KEY="k", **values
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def test_a_users_runs_are_held_to_their_disk_quota(make) -> None:
    client = make(RUN_QUOTA_BYTES=10_000)
    first = client.post("/api/runs", json=TINY).json()["id"]
    train_now(client, first)
    used = bytes_under(client.app.state.settings.runs_dir / str(first))
    assert used >= 10_000  # a checkpoint alone passes this small quota
    refused = client.post("/api/runs", json=TINY)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "RUN_QUOTA_BYTES" in detail and f"{used:,} bytes" in detail
    with TestClient(client.app) as other:  # another user is not held by this one's files
        assert other.post("/api/runs", json=TINY).status_code == 202
    assert client.delete(f"/api/runs/{first}?purge=true").status_code == 204
    assert client.post("/api/runs", json=TINY).status_code == 202


def test_the_decode_cache_stays_under_its_cap_oldest_entry_first(make) -> None:
    client = make()
    cache_dir = client.app.state.settings.data_dir / "cache"
    sizes = []
    for size in (16, 20, 24):  # each image size is a new cache entry
        run_id = client.post("/api/runs", json={**TINY, "image_size": size}).json()["id"]
        train_now(client, run_id)
        sizes.append(bytes_under(cache_dir) - sum(sizes))
    assert len(entries(cache_dir)) == 3
    # Re-using the 16 px entry makes it the most recently used.
    old = sorted(cache_dir.iterdir(), key=lambda p: p.stat().st_mtime)
    for offset, path in enumerate(old):
        os.utime(path, (time.time() - 100 + offset, time.time() - 100 + offset))
    first_entry = old[0].name
    cap = sizes[0] + sizes[2] + 1  # room for two entries: the 20 px one must go
    capped = make(DATA_CACHE_MAX_BYTES=cap)
    run_id = capped.post("/api/runs", json={**TINY, "image_size": 16}).json()["id"]
    train_now(capped, run_id)
    assert bytes_under(cache_dir) <= cap
    kept = entries(cache_dir)
    assert first_entry in kept and len(kept) == 2
    assert old[1].name not in kept  # the least recently used went


def test_evict_removes_stale_staging_and_leaves_a_small_cache_alone(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    (cache_dir / "shapes-abc").mkdir(parents=True)
    (cache_dir / "shapes-abc" / "images.npy").write_bytes(b"x" * 100)
    staging = cache_dir / ".shapes-def-tmp"
    staging.mkdir()
    (staging / "images.npy").write_bytes(b"y" * 100)
    old = time.time() - 2 * cache.STALE_STAGING_S
    os.utime(staging, (old, old))
    assert cache.evict(cache_dir, 1_000) == [staging.name]
    assert entries(cache_dir) == ["shapes-abc"]
