"""A small keep-alive HTTP/1.1 load generator on asyncio streams, and a server to aim it at.

Plain sockets rather than an HTTP client library keep the generator's own cost low, so the
figures say more about the server than about the client sharing its two cores.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    path: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        return self.percentile(99)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


def get_request(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()


def post_json_request(host: str, path: str, body: bytes, cookie: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    )
    return head.encode() + body


async def _client(host, port, request, deadline, latencies, counts) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append((time.perf_counter() - start) * 1000)
            counts["errors" if status >= 400 else "ok"] += 1
    finally:
        writer.close()


async def _run(base_url: str, label: str, requests: list[bytes], seconds: float) -> LoadResult:
    url = httpx.URL(base_url)
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_client(url.host, url.port, request, deadline, latencies, counts) for request in requests)
    )
    elapsed = time.perf_counter() - start
    return LoadResult(label, counts["ok"], counts["errors"], elapsed, tuple(latencies))


def load(base_url: str, path: str, *, concurrency: int = 20, seconds: float = 5.0) -> LoadResult:
    """GET `path` from `concurrency` keep-alive connections for `seconds`."""
    request = get_request(httpx.URL(base_url).host, path)
    return load_requests(base_url, path, [request] * concurrency, seconds=seconds)


def load_requests(
    base_url: str, label: str, requests: list[bytes], *, seconds: float = 5.0
) -> LoadResult:
    """One keep-alive connection per prepared request, each repeating it for `seconds`."""
    asyncio.run(_run(base_url, label, requests, 0.5))  # warm-up, not counted
    return asyncio.run(_run(base_url, label, requests, seconds))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """`cvprep serve` in its own process, as in production (one uvicorn worker), with `env`
    over this process's environment; stopped (unless the caller killed it) on exit.

    The tests use it too (a real server for concurrency and crash tests). Every simulated
    client comes from 127.0.0.1, so the per-address guest limit is lifted unless `env` or the
    environment sets it."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={"GUEST_MAX_PER_ADDRESS": "1000000", **os.environ, **env},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cvprep serve did not start")
            time.sleep(0.2)
        yield process, base_url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def running_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A server on a fresh data directory; yields its base URL."""
    with serving({"DATA_DIR": str(data_dir), **(extra_env or {})}) as (_, base_url):
        yield base_url


def report(label: str, result: LoadResult) -> str:
    return (
        f"{label:<34} {result.rate:9.0f} req/s   p50 {result.p50:7.2f} ms   "
        f"p99 {result.p99:7.2f} ms   errors {result.errors}"
    )
