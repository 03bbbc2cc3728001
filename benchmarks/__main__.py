"""Run every benchmark: `python -m benchmarks` (or `make bench`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import (
    capacity,
    ceiling,
    datasets,
    demos,
    experiments,
    logins,
    pages,
    practice,
    runs,
    scaleout,
    training,
)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        pages.main(Path(tmp) / "pages")
        demos.main(Path(tmp) / "demos")
        practice.main(Path(tmp) / "practice")
        logins.main(Path(tmp) / "logins")
        training.main(Path(tmp) / "training")
        ceiling.main(Path(tmp) / "ceiling")
        runs.main(Path(tmp) / "runs")
        scaleout.main(Path(tmp) / "scaleout")
        datasets.main(Path(tmp) / "datasets")
        experiments.main(Path(tmp) / "experiments")
        capacity.main(Path(tmp) / "capacity")


if __name__ == "__main__":
    main()
