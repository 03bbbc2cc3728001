"""Every preset at its default size, one after another, trained as the local worker trains.

For each: the wall time from launch to the last run's end, the seeds, each arm's validation
accuracy (mean ± sample sd over the seeds) and the verdict. The runs go through the app's own
path (`launch_experiment`, then claim and `execute_run` oldest first with the local worker's
thread count), in one process, on one SQLite database and DATA_DIR, so a data set is decoded
once and cached as on a server. The aim: every preset within 3 minutes on a quiet 2-core CPU.

    python -m benchmarks.experiments [NAME ...] [--size default|full]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from app.db import make_engine, read_session, write_session
from app.experiments.launch import describe, launch_experiment
from app.experiments.presets import PRESETS
from app.migrate import upgrade
from app.models.common import utcnow
from app.repos import experiments as experiment_rows
from app.repos import runs as run_rows
from app.repos import users
from app.runs.execute import execute_run
from app.runs.local_worker import thread_count
from app.settings import Settings

BUDGET_S = 180.0  # a whole preset at its default size on a quiet 2-core CPU
WORKER = "bench:experiments"


class _Queue:
    """Takes the launched ids; the bench trains them itself, oldest first, as a worker does."""

    name = "bench"

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, run_id: int) -> None: ...

    def cancel(self, run_id: int) -> None: ...

    def health(self) -> dict:
        return {"backend": "bench", "ok": True}


def run_preset(name: str, settings: Settings, size: str = "default") -> dict:
    """Launch and train one preset; its description (verdict included) and wall time, s."""
    engine = make_engine(settings.database_url)
    with write_session(engine) as session:
        user = users.create_guest(session)
        session.commit()
        session.refresh(user)
    began = time.perf_counter()
    experiment = launch_experiment(
        PRESETS[name], owner=user, engine=engine, settings=settings, backend=_Queue(), size=size
    )
    threads = thread_count(settings)
    while True:
        with write_session(engine) as session:
            run_id = run_rows.claim_next(session, worker_id=WORKER, now=utcnow())
        if run_id is None:
            break
        execute_run(run_id, engine=engine, settings=settings, worker_id=WORKER, num_threads=threads)
    wall = time.perf_counter() - began
    with read_session(engine) as session:
        row = experiment_rows.get_experiment(
            session, experiment_id=experiment.id or 0, owner_id=user.id or 0
        )
        assert row is not None
        runs = experiment_rows.runs_in_order(session, experiment=row)
        described = describe(row, PRESETS[name], runs, settings.runs_dir)
    engine.dispose()
    return {**described, "wall_s": wall}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}"


def report(described: dict) -> str:
    """One preset's lines of the table: time, seeds, arms (mean ± sd), verdict."""
    within = "yes" if described["wall_s"] <= BUDGET_S else "NO"
    lines = [
        f"## {described['preset']}: {described['wall_s']:.0f} s wall "
        f"(within {BUDGET_S:.0f} s: {within}), {described['seeds']} seeds, "
        f"{len(described['runs'])} runs",
    ]
    for arm in described["arms"]:
        spread = "" if arm["spread"] is None else f" ± {arm['spread'] * 100:.1f}"
        seeds = ", ".join(_pct(v) for v in arm["val_accuracy"])
        lines.append(f"  {arm['label']:<38} {_pct(arm['mean'])}{spread} %  (per seed: {seeds})")
    finding = described["finding"]
    lines.append(f"  verdict: {finding['summary']}")
    lines += [f"    {line}" for line in finding["evidence"]]
    lines += [f"    note: {line}" for line in finding["notes"]]
    return "\n".join(lines)


def main(tmp: Path, names: list[str] | None = None, size: str = "default") -> list[dict]:
    """Run the presets (all by default) and print each one's table as it ends."""
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'cvprep.sqlite3'}"
    upgrade(url)
    settings = Settings(DATA_DIR=tmp / "data", DATABASE_URL=url, SECRET_KEY="bench")
    print(f"# Experiments at size '{size}', {thread_count(settings)} training thread(s)")
    results = []
    for name in names or list(PRESETS):
        described = run_preset(name, settings, size)
        print(report(described), flush=True)
        results.append(described)
    print("\n| preset | seeds | runs | wall | verdict |\n|---|---|---|---|---|")
    for d in results:
        print(
            f"| {d['preset']} | {d['seeds']} | {len(d['runs'])} | {d['wall_s']:.0f} s | "
            f"{d['finding']['outcome']} |"
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *PRESETS], default=[])
    parser.add_argument("--size", default="default", choices=("default", "full"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as folder:
        main(Path(folder), args.names or None, args.size)
