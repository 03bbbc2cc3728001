"""Answer latency while ten clients log in, beside the same answers on an idle server.

Each login hashes a password (argon2id, ~0.1–0.2 s of CPU, 64 MiB). Before the hash moved
out of the database transaction, ten concurrent logins on SQLite pushed other learners'
answers from 4 ms to 1.3 s (they waited for the write lock); now they only share the CPU.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from benchmarks.load import load_requests, post_json_request, report, running_server
from benchmarks.practice import answer_body, guest_cookie

LOGIN_CLIENTS = 10
LEARNERS = 5
SECONDS = 5.0
PASSWORD = "correct horse battery"


def _token(client: httpx.Client, path: str) -> str:
    page = BeautifulSoup(client.get(path).text, "html.parser")
    return page.select_one("input[name=csrf_token]")["value"]


def _register(base_url: str, name: str) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        data = {"csrf_token": _token(client, "/register"), "username": name, "password": PASSWORD}
        assert client.post("/register", data=data).status_code == 303


def _log_in_until(base_url: str, name: str, stop: threading.Event) -> int:
    """Log in again and again until `stop`; returns how many logins succeeded."""
    done = 0
    with httpx.Client(base_url=base_url, timeout=60) as client:
        while not stop.is_set():
            data = {"csrf_token": _token(client, "/login"), "username": name, "password": PASSWORD}
            if client.post("/login", data=data).status_code in (200, 303):
                done += 1
    return done


def main(data_dir: Path) -> None:
    with running_server(data_dir) as base_url:
        for n in range(LOGIN_CLIENTS):
            _register(base_url, f"bench-{n}")
        host = httpx.URL(base_url).host
        requests = [
            post_json_request(host, "/api/quiz/answers", answer_body(), guest_cookie(base_url))
            for _ in range(LEARNERS)
        ]
        idle = load_requests(base_url, "answers, idle", requests, seconds=SECONDS)
        stop = threading.Event()
        with ThreadPoolExecutor(LOGIN_CLIENTS) as pool:
            logins = [
                pool.submit(_log_in_until, base_url, f"bench-{n}", stop)
                for n in range(LOGIN_CLIENTS)
            ]
            busy = load_requests(base_url, "answers, 10 logging in", requests, seconds=SECONDS)
            stop.set()
            login_count = sum(future.result() for future in logins)
    print(
        f"\nAnswers from {LEARNERS} learners while {LOGIN_CLIENTS} clients log in "
        f"(SQLite, {SECONDS:.0f} s each)"
    )
    print(report("POST /api/quiz/answers, idle", idle))
    print(report("POST /api/quiz/answers, logins", busy))
    print(f"logins completed meanwhile: {login_count} ({login_count / SECONDS:.1f}/s)")
    print(
        f"answer latency during logins / idle: p50 {busy.p50 / idle.p50:.1f}x, "
        f"p99 {busy.p99 / idle.p99:.1f}x; errors {busy.errors}"
    )
