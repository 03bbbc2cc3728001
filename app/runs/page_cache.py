"""An ended run's page, rendered once per web process.

An ended run's metrics no longer change, but its page is the heaviest the site serves (the
metrics column alone is hundreds of KB for a run of many classes): read, parsed and
rendered on every view, 20 viewers kept both cores busy and every other route waiting. So
the page of an ended run is kept here twice over, each at most `RESULTS_PAGES` entries
(least recently used dropped):

- the whole page, with the browser's CSRF token cut out (`with_token` puts the viewer's
  back), keyed by everything it shows that may still change (`PageKey`: the run's status
  and end, its owner's data set names, the experiments it is part of, its files on disk)
  and by who views it (the name in the header, page or htmx fragment). A view that finds it
  reads a few small columns in one transaction and renders nothing;
- the results part alone, by the same `PageKey`, for a view that misses the whole page (a
  new session, a link with a query): the row is then loaded without its metrics.

Ownership is checked on every request before anything is served. Run pages are rendered at
most HEAVY_PAGES at a time (`limiter`), and served to one user at most RUN_PAGE_RATE a second
(`Pace`): a script or a wall of tabs polling one run waits its turn instead of taking the
whole process from everyone else.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import defer
from sqlmodel import col, select

from app.concurrency import LoopLimiter
from app.db import read_session
from app.models import Dataset, Experiment, Run, User
from app.models.runs import END_STATUSES
from app.runs.files import present_downloads
from app.settings import Settings

RESULTS_PAGES = 64
# Run pages rendered at once per web process (one per two cores): more viewers wait in the
# event loop instead of 20 threads taking turns with the interpreter lock, which made every
# other route wait its turn too.
HEAVY_PAGES = max(1, (os.cpu_count() or 2) // 2)

# This event loop's limiter of HEAVY_PAGES run pages rendered at once.
limiter = LoopLimiter(HEAVY_PAGES)


@dataclass(frozen=True)
class PageKey:
    """What an ended run's page shows that may still change after the run has ended."""

    run_id: int
    owner_id: int
    status: str
    finished_at: datetime | None
    # (folder, name) of each of the owner's data sets: the title and the YAML name the upload.
    datasets: tuple[tuple[str, str], ...]
    # (id, preset) of each of the owner's experiments that holds this run.
    experiments: tuple[tuple[int, str], ...]
    # The run's files on disk (the downloads offered, the checkpoint for fine-tuning).
    files: tuple[str, ...]


class Pace:
    """At most `rate` requests a second per key (a user), bursts of a second's worth: the
    generic cell rate algorithm (ITU-T I.371), one "theoretical arrival time" per key.

    `reserve` says how long a request must wait for its turn, and refuses (reserving nothing)
    when that is longer than `max_wait`. Thread-safe; keys whose turn has passed are
    dropped once more than `keep` are held."""

    def __init__(self, rate: float, max_wait: float, keep: int = 10_000) -> None:
        self.interval = 1.0 / rate
        self.burst = max(1, math.ceil(rate)) * self.interval
        self.max_wait = max_wait
        self.keep = keep
        self._due: dict[int, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: int, now: float | None = None) -> tuple[bool, float]:
        """(reserved, seconds): the wait before serving `key` (0: at once); not reserved when
        the wait would pass `max_wait`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = max(self._due.get(key, now), now)
            wait = max(0.0, due + self.interval - now - self.burst)
            if wait > self.max_wait:
                return False, wait
            self._due[key] = due + self.interval
            if len(self._due) > self.keep:
                self._due = {k: t for k, t in self._due.items() if t > now}
            return True, wait


Key = PageKey | tuple[PageKey, bool, str | None]


class ResultsCache:
    """Rendered HTML by key, least recently used dropped past `size` (thread-safe)."""

    def __init__(self, size: int = RESULTS_PAGES) -> None:
        self.size = size
        self._pages: OrderedDict[Key, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> str | None:
        with self._lock:
            html = self._pages.get(key)
            if html is not None:
                self._pages.move_to_end(key)
            return html

    def put(self, key: Key, html: str) -> None:
        with self._lock:
            self._pages[key] = html
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


def ended_key(
    engine: Engine, settings: Settings, *, run_id: int, owner: User | None
) -> tuple[bool, PageKey | None]:
    """(owned, key): whether `owner` owns run `run_id`, and its page's key once it has ended
    (None while it is live). Small columns read in one transaction, a few files looked up."""
    if owner is None or owner.id is None:
        return False, None
    with read_session(engine) as session:
        row = session.exec(
            select(Run.owner_id, Run.status, Run.finished_at).where(col(Run.id) == run_id)
        ).first()
        if row is None or row[0] != owner.id:
            return False, None
        status, finished = row[1], row[2]
        if status not in END_STATUSES:
            return True, None
        datasets = session.exec(
            select(Dataset.folder, Dataset.name)
            .where(col(Dataset.owner_id) == owner.id)
            .order_by(col(Dataset.id))
        ).all()
        groups = session.exec(
            select(Experiment.id, Experiment.preset, Experiment.run_ids)
            .where(col(Experiment.owner_id) == owner.id)
            .order_by(col(Experiment.id))
        ).all()
    files = tuple(item.name for item in present_downloads(settings, run_id))
    key = PageKey(
        run_id=run_id,
        owner_id=owner.id,
        status=status,
        finished_at=finished,
        datasets=tuple((folder, name) for folder, name in datasets),
        experiments=tuple(
            (int(group_id), preset)
            for group_id, preset, run_ids in groups
            if group_id is not None and run_id in [int(i) for i in run_ids]
        ),
        files=files,
    )
    return True, key


TOKEN_SLOT = "\x00csrf-token\x00"


def without_token(html: str, token: str) -> str:
    """The page with the viewer's CSRF token cut out (`with_token` puts one back)."""
    return html.replace(token, TOKEN_SLOT)


def with_token(html: str, token: str) -> str:
    """A kept page with this viewer's CSRF token in every form and htmx header."""
    return html.replace(TOKEN_SLOT, token)


def run_without_metrics(engine: Engine, *, run_id: int) -> Run | None:
    """The run's row with an empty `metrics` (not read: the cached results stand for it)."""
    with read_session(engine) as session:
        lazy = defer(Run.metrics)  # type: ignore[arg-type]
        run = session.exec(select(Run).options(lazy).where(col(Run.id) == run_id)).first()
        if run is not None:
            session.expunge(run)
            run.metrics = {}
    return run
