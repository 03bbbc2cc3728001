"""Training runs in a real server with its worker process, each figure beside a baseline
measured in the same run:

- submit → first progress event, with the worker warm (torch imported, the data cached):
  the time from `POST /api/runs` until `GET /api/runs/{id}` shows a step, beside the
  engine's own time from `run()` to its first step (metrics.json's `to_first_step_s`);
  the difference is what the queue, the database and the worker loop add (aim: < 1 s);
- the question page's latency while a run trains, beside the same load on an idle server
  (aim: p99 ≤ 2×);
- the run page's self-polling fragment with 20 viewers while the run trains: as the page
  polls (each viewer once a second), and flat out, beside `/healthz` under the same load.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx

from app.runs.files import run_dir
from app.settings import Settings
from app.worker.training.outputs import METRICS
from benchmarks.load import (
    LoadResult,
    _read_response,
    get_request,
    load,
    load_requests,
    report,
    running_server,
)

WORKER = {"RUN_WORKERS": "1", "RUN_MAX_EPOCHS": "1000"}  # the long run outlasts the loads
SUBMITS = 5
VIEWERS = 20
SECONDS = 5.0
# A short run: the first step comes after the data (cached) and the model are ready.
SHORT = {
    "dataset": "shapes",
    "image_size": 16,
    "images_per_class": 20,
    "num_classes": 4,
    "epochs": 1,
    "batch_size": 16,
    "width": 8,
}
# A run that trains for longer than the loads below (it is cancelled afterwards).
LONG = {**SHORT, "epochs": 400, "images_per_class": 100, "num_classes": 10, "batch_size": 32}


def _wait(client: httpx.Client, run_id: int, done, timeout: float = 300, pause: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/runs/{run_id}").json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} stuck: {body['status']} {body['error']}")
        time.sleep(pause)


def _ended(body: dict) -> bool:
    return body["status"] not in ("queued", "running")


def _stepped(body: dict) -> bool:
    if _ended(body) and body["status"] != "succeeded":
        raise RuntimeError(f"run {body['id']} {body['status']}: {body['error']}")
    return body["progress"]["step"] >= 1


def _first_progress(client: httpx.Client, data_dir: Path) -> tuple[list[float], list[float]]:
    """(submit → first step seen over HTTP, the engine's own time to its first step), in s."""
    seen, engine = [], []
    for _ in range(SUBMITS):
        began = time.perf_counter()
        run_id = client.post("/api/runs", json=SHORT).json()["id"]
        _wait(client, run_id, _stepped)
        seen.append(time.perf_counter() - began)
        body = _wait(client, run_id, _ended, pause=0.1)
        metrics = (run_dir(Settings(DATA_DIR=data_dir), run_id) / METRICS).read_text()
        engine.append(json.loads(metrics)["timing"]["to_first_step_s"])
        assert body["status"] == "succeeded"
    return seen, engine


def _fragment_request(host: str, run_id: int, cookie: str) -> bytes:
    return (
        f"GET /runs/{run_id} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
        f"HX-Request: true\r\nCookie: {cookie}\r\n\r\n"
    ).encode()


async def _viewer(host, port, request, offset, seconds, latencies, counts) -> None:
    """One browser on the run page: a poll every second (htmx's `load delay:1s`)."""
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(offset)
    began = time.perf_counter()
    try:
        while time.perf_counter() - began < seconds:
            start = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append((time.perf_counter() - start) * 1000)
            counts["errors" if status >= 400 else "ok"] += 1
            await asyncio.sleep(1.0)  # the fragment asks again a second after it arrived
    finally:
        writer.close()


def paced_polls(base_url: str, request: bytes, viewers: int, seconds: float) -> LoadResult:
    """`viewers` pages polling as browsers do, their first polls spread over a second."""
    url = httpx.URL(base_url)
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _viewer(url.host, url.port, request, n / viewers, seconds, latencies, counts)
                for n in range(viewers)
            )
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(run())
    return LoadResult("paced polls", counts["ok"], counts["errors"], elapsed, tuple(latencies))


def main(data_dir: Path) -> None:
    with (
        running_server(data_dir, WORKER) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        warm = client.post("/api/runs", json=SHORT).json()["id"]  # imports torch, caches data
        _wait(client, warm, _ended, pause=0.2)
        seen, engine = _first_progress(client, data_dir)

        question = "/questions/pooling"
        idle = load(base_url, question, concurrency=10, seconds=SECONDS)
        long_id = client.post("/api/runs", json=LONG).json()["id"]
        _wait(client, long_id, lambda b: b["status"] == "running" and b["progress"]["step"] > 0)
        busy = load(base_url, question, concurrency=10, seconds=SECONDS)

        host = httpx.URL(base_url).host
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        fragment = _fragment_request(host, long_id, cookie)
        paced = paced_polls(base_url, fragment, VIEWERS, 2 * SECONDS)
        polls = load_requests(base_url, "run page poll", [fragment] * VIEWERS, seconds=SECONDS)
        health = load_requests(
            base_url, "/healthz", [get_request(host, "/healthz")] * VIEWERS, seconds=SECONDS
        )
        still = client.get(f"/api/runs/{long_id}").json()
        client.delete(f"/api/runs/{long_id}")
        _wait(client, long_id, _ended, pause=0.2)

    overhead = [s - e for s, e in zip(seen, engine, strict=True)]
    print(f"\nTraining runs: a real server and its worker process (SQLite, {SUBMITS} submits)")
    print(
        f"submit → first progress seen over HTTP: median {statistics.median(seen):.3f} s, "
        f"max {max(seen):.3f} s (aim < 1 s)"
    )
    print(
        f"  the engine's own time to its first step: median {statistics.median(engine):.3f} s; "
        f"queue + database + worker loop: median {statistics.median(overhead):.3f} s"
    )
    print(report(f"GET {question}, idle", idle))
    print(report(f"GET {question}, run training", busy))
    print(
        f"question page while a run trains / idle: p50 {busy.p50 / idle.p50:.1f}x, "
        f"p99 {busy.p99 / idle.p99:.1f}x (aim p99 ≤ 2x); errors {busy.errors}"
    )
    print(report(f"run page, {VIEWERS} viewers at 1 poll/s", paced))
    print(report(f"run page poll, {VIEWERS} flat out", polls))
    print(report(f"/healthz, {VIEWERS} clients", health))
    print(
        f"run page poll / healthz: rate {polls.rate / health.rate:.2f}x, "
        f"p99 {polls.p99 / health.p99:.1f}x; the run was still {still['status']} "
        f"(epoch {still['progress']['epoch']})"
    )
