"""A question page against /healthz, under the same concurrent load on one server."""

from __future__ import annotations

from pathlib import Path

from benchmarks.load import load, report, running_server

CONCURRENCY = 20
SECONDS = 5.0
TARGET_RATIO = 0.6


def main(data_dir: Path) -> None:
    with running_server(data_dir) as base_url:
        health = load(base_url, "/healthz", concurrency=CONCURRENCY, seconds=SECONDS)
        page = load(base_url, "/questions/pooling", concurrency=CONCURRENCY, seconds=SECONDS)
        revealed = load(
            base_url, "/questions/pooling?reveal=true", concurrency=CONCURRENCY, seconds=SECONDS
        )
    print(f"HTTP, {CONCURRENCY} concurrent keep-alive clients, {SECONDS:.0f} s each")
    print(report("GET /healthz (baseline)", health))
    print(report("GET /questions/pooling", page))
    print(report("GET /questions/pooling?reveal=true", revealed))
    ratio = page.rate / health.rate
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"question page / healthz rate ratio: {ratio:.2f} ({verdict} the {TARGET_RATIO}x aim)")
    print(f"revealed page / healthz rate ratio: {revealed.rate / health.rate:.2f}")
