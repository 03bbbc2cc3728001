"""Nothing is lost: concurrent clients and a killed server, against a real `cvprep serve`."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy

from benchmarks.load import serving

CLIENTS, ANSWERS = 20, 10
ITEMS = ["pool-max-gradient", "pool-gap-card"]


def _count_reviews(url: str) -> int:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM review_log").scalar_one()
    engine.dispose()
    return count


def _one_learner(base_url: str, learner: int) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for n in range(ANSWERS):
            item = ITEMS[(learner + n) % 2]  # a choice item and a recall card, alternating
            answer = 0 if item == "pool-max-gradient" else "good"
            response = client.post("/api/quiz/answers", json={"item_id": item, "answer": answer})
            statuses.append(response.status_code)
    return statuses


def test_twenty_concurrent_clients_store_exactly_two_hundred_reviews(
    database_url: str, tmp_path: Path
) -> None:
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "SECRET_KEY": "k"}
    with serving(env) as (_, base_url), ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda n: _one_learner(base_url, n), range(CLIENTS)))
    assert [s for statuses in results for s in statuses] == [200] * (CLIENTS * ANSWERS)
    assert _count_reviews(database_url) == CLIENTS * ANSWERS


def test_a_killed_server_loses_no_answer(database_url: str, tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": database_url}
    cookies = httpx.Cookies()
    with serving(env) as (process, base_url):
        with httpx.Client(base_url=base_url, cookies=cookies) as client:
            first = client.post(
                "/api/quiz/answers", json={"item_id": "pool-max-gradient", "answer": 0}
            )
            assert first.status_code == 200
            cookies = client.cookies
        os.kill(process.pid, signal.SIGKILL)  # no shutdown, no flush: as in a crash
        process.wait(timeout=10)
    with serving(env) as (_, base_url), httpx.Client(base_url=base_url, cookies=cookies) as client:
        second = client.post(
            "/api/quiz/answers", json={"item_id": "pool-gap-card", "answer": "easy"}
        )
        assert second.status_code == 200
        progress = client.get("/api/progress").json()
    assert sum(q["reviews"] for q in progress["questions"]) == 2
    assert _count_reviews(database_url) == 2
