"""Answer submission (a graded, stored review) against /healthz, under the same load."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from benchmarks.load import load, load_requests, post_json_request, report, running_server

CLIENTS = 20
SECONDS = 5.0


def answer_body() -> bytes:
    return json.dumps({"item_id": "pool-max-gradient", "answer": 0}).encode()


def guest_cookie(base_url: str) -> str:
    """A learner of its own for each connection: the first answer creates the guest."""
    response = httpx.post(
        f"{base_url}/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "good"}
    )
    response.raise_for_status()
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


def main(data_dir: Path) -> None:
    with running_server(data_dir) as base_url:
        host = httpx.URL(base_url).host
        requests = [
            post_json_request(host, "/api/quiz/answers", answer_body(), guest_cookie(base_url))
            for _ in range(CLIENTS)
        ]
        health = load(base_url, "/healthz", concurrency=CLIENTS, seconds=SECONDS)
        answers = load_requests(base_url, "POST /api/quiz/answers", requests, seconds=SECONDS)
    print(f"\nPractice API, {CLIENTS} concurrent learners, SQLite (WAL), {SECONDS:.0f} s each")
    print(report("GET /healthz (baseline)", health))
    print(report("POST /api/quiz/answers", answers))
    print(f"answer submission / healthz rate ratio: {answers.rate / health.rate:.2f}")
