"""Another route's latency while the server does its heaviest allowed work, each figure
beside its idle baseline measured in the same run:

    PYTHONPATH=. python3 -m benchmarks.capacity [--seconds S]

- idle: `/healthz` from 2 keep-alive connections (the baseline);
- heaviest upload: the same while one client uploads, again and again, the heaviest zip the
  default caps admit in pixels (images of DATASET_MAX_PIXELS each, as many as the pixel
  budget allows, palette PNGs of a few KB: the cheapest bytes for the most decoding);
- largest run page: the same while 20 clients view, flat out, the page of a run with the
  most classes a data set may have (DATASET_MAX_CLASSES; the engine's report of a noisy
  classifier). A run page is its owner's only, so the 20 are one user's browsers: the
  server keeps the rendered page and serves that user RUN_PAGE_RATE pages a second, the
  rest waiting their turn (the views' own latency, printed below, shows the wait). The
  viewers run in another process, so the loop that times `/healthz` times nothing else.

Reported: p50/p99 of `/healthz` in each case and p99 against the idle one. Aim: ≤ 2×.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy
from PIL import Image

from app.settings import Settings
from benchmarks.load import LoadResult, _client, get_request, load_requests, running_server

AIM = 2.0
PROBES = 2
VIEWERS = 20


def heavy_zip(pixels: int, images: int) -> bytes:
    """`images` palette PNGs of about `pixels` pixels each (one colour: a few KB), 2 classes."""
    side = int(pixels**0.5)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(images):
            png = io.BytesIO()
            Image.new("P", (side, side), color=i % 7).save(png, format="PNG", optimize=True)
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", png.getvalue())
    return out.getvalue()


async def _probe_with(base_url: str, extra: list[tuple[bytes, list[float]]], seconds: float):
    url = httpx.URL(base_url)
    probe: list[float] = []
    counts = {"ok": 0, "errors": 0}
    other = {"ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    health = get_request(url.host, "/healthz")
    await asyncio.gather(
        *(_client(url.host, url.port, health, deadline, probe, counts) for _ in range(PROBES)),
        *(_client(url.host, url.port, req, deadline, lat, other) for req, lat in extra),
    )
    return LoadResult(
        "/healthz", counts["ok"], counts["errors"], time.perf_counter() - start, tuple(probe)
    )


def probe(base_url: str, seconds: float, extra: list[tuple[bytes, list[float]]] | None = None):
    return asyncio.run(_probe_with(base_url, extra or [], seconds))


def _csrf(client: httpx.Client) -> str:
    page = client.get("/datasets").text
    marker = 'name="csrf_token" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def uploading(base_url: str, data: bytes, stop: threading.Event, statuses: list[int]) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        token = _csrf(client)
        while not stop.is_set():
            response = client.post(
                "/api/datasets",
                files={"file": ("heavy.zip", data, "application/zip")},
                headers={"X-CSRF-Token": token},
            )
            statuses.append(response.status_code)
            token = response.headers.get("X-CSRF-Token", token)
            if response.status_code == 201:
                client.delete(
                    f"/api/datasets/{response.json()['id']}", headers={"X-CSRF-Token": token}
                )


def big_run(base_url: str, data_dir: Path, classes: int) -> tuple[int, str]:
    """A finished run of `classes` classes owned by a new guest: (run id, its cookie)."""
    from app.worker.training.metrics import classification_report

    with httpx.Client(base_url=base_url) as client:
        body = {"dataset": "shapes", "image_size": 16, "images_per_class": 12, "epochs": 1}
        run_id = client.post("/api/runs", json=body).json()["id"]
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(classes), 5)
    logits = rng.normal(size=(len(y_true), classes))
    logits[np.arange(len(y_true)), y_true] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = [f"class-{i:04d}" for i in range(classes)]
    report = classification_report(y_true, probs, names)
    report["val_accuracy"] = report.pop("accuracy")
    metrics = {**report, "classes": names}
    engine = sqlalchemy.create_engine(Settings(DATA_DIR=data_dir).sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "UPDATE run SET status = 'succeeded', metrics = :metrics, "
                "started_at = CURRENT_TIMESTAMP, finished_at = CURRENT_TIMESTAMP WHERE id = :id"
            ),
            {"metrics": json.dumps(metrics), "id": run_id},
        )
    engine.dispose()
    return run_id, cookie


def line(label: str, result: LoadResult, idle: LoadResult | None = None) -> str:
    text = f"  {label:<44} p50 {result.p50:7.2f} ms   p99 {result.p99:7.2f} ms   errors {result.errors}"
    if idle is not None:
        ratio = result.p99 / max(idle.p99, 1e-3)
        text += f"   p99 ×{ratio:.2f} ({'within' if ratio <= AIM else 'OVER'} the aim ≤ {AIM}×)"
    return text


def main(work_dir: Path, seconds: float = 5.0) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    defaults = Settings(DATA_DIR=work_dir)
    per_image = defaults.dataset_max_pixels
    budget = defaults.dataset_max_total_pixels
    images = max(1, min(64, budget // per_image))
    classes = defaults.dataset_max_classes
    data = heavy_zip(per_image, images)
    print(
        f"\nCapacity: /healthz while the server does its heaviest allowed work ({seconds:.0f} s each)"
    )
    with running_server(work_dir / "data", {"RUN_WORKERS": "0"}) as base_url:
        idle = probe(base_url, seconds)
        print(line("idle", idle))
        stop, statuses = threading.Event(), []
        worker = threading.Thread(target=uploading, args=(base_url, data, stop, statuses))
        worker.start()
        time.sleep(0.5)
        during = probe(base_url, seconds)
        stop.set()
        worker.join()
        label = f"uploading {images} × {per_image / 1e6:.0f} MP PNGs ({len(data):,} B)"
        print(line(label, during, idle))
        print(f"    upload answers: {sorted(set(statuses))} × {len(statuses)}")
        run_id, cookie = big_run(base_url, work_dir / "data", classes)
        host = httpx.URL(base_url).host
        page = (
            f"GET /runs/{run_id} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        size = len(httpx.get(f"{base_url}/runs/{run_id}", headers={"Cookie": cookie}).content)
        # The viewers are another process's, so the probes' loop times only the probes.
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as viewers:
            viewers.submit(time.sleep, 0).result()  # started before the clock runs
            views = viewers.submit(
                load_requests, base_url, "run page", [page] * VIEWERS, seconds=seconds + 1.0
            )
            time.sleep(1.0)  # past the viewers' warm-up
            viewed = probe(base_url, seconds)
            views_result = views.result()
        label = f"{VIEWERS} viewing a {classes}-class run ({size:,} B)"
        print(line(label, viewed, idle))
        print(
            f"    run page: {views_result.requests} views, p50 {views_result.p50:.1f} ms, "
            f"errors {views_result.errors}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        main(Path(tmp), args.seconds)
