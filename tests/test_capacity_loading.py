"""Loading a data set honours the run's stop (a cancel, RUN_MAX_SECONDS) between decodes, and
decodes with as many threads as the run may use (RUN_THREADS through torch's thread count)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.db import write_session
from app.models.common import utcnow
from app.repos import runs as run_rows
from app.runs.execute import execute_run
from app.worker.training import RunConfig, run
from app.worker.training.data import load_data

CONFIG = {"dataset": "folder", "folder": "pets", "epochs": 1, "image_size": 16, "width": 8}


def make_folder(data_dir: Path, per_class: int, side: int = 64) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        target = data_dir / "datasets" / "pets" / name
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(target / f"{i}.png")


class Recorder:
    """A should_stop that says yes from its `after`-th question on, and notes who asked."""

    def __init__(self, after: int | None = None) -> None:
        self.after, self.asked, self.threads = after, 0, set()
        self.lock = threading.Lock()

    def __call__(self) -> bool:
        with self.lock:
            self.asked += 1
            self.threads.add(threading.get_ident())
            return self.after is not None and self.asked >= self.after


def test_a_stop_while_decoding_ends_the_run_cancelled_with_nothing_cached(tmp_path: Path) -> None:
    make_folder(tmp_path, 40)
    stop = Recorder(after=5)
    result = run(
        RunConfig.from_dict(CONFIG),
        lambda event: None,
        stop,
        out_dir=tmp_path / "out",
        data_dir=tmp_path,
        num_threads=1,
    )
    assert result.status == "cancelled"
    assert result.metrics["stopped"] == "while loading the data"
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.iterdir() if p.name.startswith("folder")]


def test_decoding_uses_the_runs_threads(tmp_path: Path) -> None:
    make_folder(tmp_path, 12)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            seen = Recorder()
            config = RunConfig.from_dict({**CONFIG, "image_size": 8 + threads})  # no cache hit
            load_data(config, tmp_path, torch.device("cpu"), should_stop=seen)
            assert seen.asked == 24 and len(seen.threads) <= threads
    finally:
        torch.set_num_threads(before)


def test_a_run_out_of_time_while_decoding_ends_cancelled_naming_the_limit(
    db_client: TestClient,
) -> None:
    settings = db_client.app.state.settings.model_copy(update={"run_max_seconds": 1})
    make_folder(settings.data_dir, 150, side=400)  # far more than a second of decoding
    run_id = db_client.post("/api/runs", json=CONFIG).json()["id"]
    engine = db_client.app.state.engine
    with write_session(engine) as session:
        assert run_rows.claim(session, run_id=run_id, worker_id="test:1", now=utcnow())
    status = execute_run(
        run_id, engine=engine, settings=settings, worker_id="test:1", num_threads=1
    )
    assert status == "cancelled"
    body = db_client.get(f"/api/runs/{run_id}").json()
    assert "RUN_MAX_SECONDS" in (body["error"] or ""), body["error"]
    assert not [p for p in (settings.data_dir / "cache").glob("folder-*")]
