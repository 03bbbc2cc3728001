"""The results part of an ended run's page, rendered once per web process.

An ended run's metrics no longer change, but its page is the heaviest the site serves (the
metrics column alone is hundreds of KB for a run of many classes): read, parsed and
rendered on every view, 20 viewers kept both cores busy and every other route waiting. So
the rendered results are kept here, keyed by (run id, status, end time), at most
`RESULTS_PAGES` of them (least recently used dropped), and a view that finds them loads the
row without its metrics. Ownership is checked on every request before anything is served.
Run pages are rendered at most HEAVY_PAGES at a time (`limiter`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections import OrderedDict
from datetime import datetime

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import defer
from sqlmodel import col, select

from app.db import read_session
from app.models import Run, User
from app.models.runs import END_STATUSES

RESULTS_PAGES = 64
# Run pages rendered at once per web process (one per two cores): more viewers wait in the
# event loop instead of 20 threads taking turns with the interpreter lock, which made every
# other route wait its turn too.
HEAVY_PAGES = max(1, (os.cpu_count() or 2) // 2)

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def limiter() -> anyio.CapacityLimiter:
    """This event loop's limiter of HEAVY_PAGES run pages rendered at once."""
    loop = asyncio.get_running_loop()
    found = _limiters.get(loop)
    if found is None:
        found = _limiters[loop] = anyio.CapacityLimiter(HEAVY_PAGES)
    return found


Key = tuple[int, str, datetime | None]


class ResultsCache:
    """Rendered results HTML by Key, least recently used dropped past `size` (thread-safe)."""

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


def ended_key(engine: Engine, *, run_id: int, owner: User | None) -> tuple[bool, Key | None]:
    """(owned, key): whether `owner` owns run `run_id`, and its cache key once it has ended
    (None while it is live). Reads three small columns."""
    if owner is None or owner.id is None:
        return False, None
    with read_session(engine) as session:
        row = session.exec(
            select(Run.owner_id, Run.status, Run.finished_at).where(col(Run.id) == run_id)
        ).first()
    if row is None or row[0] != owner.id:
        return False, None
    status, finished = row[1], row[2]
    return True, ((run_id, status, finished) if status in END_STATUSES else None)


def run_without_metrics(engine: Engine, *, run_id: int) -> Run | None:
    """The run's row with an empty `metrics` (not read: the cached results stand for it)."""
    with read_session(engine) as session:
        lazy = defer(Run.metrics)  # type: ignore[arg-type]
        run = session.exec(select(Run).options(lazy).where(col(Run.id) == run_id)).first()
        if run is not None:
            session.expunge(run)
            run.metrics = {}
    return run
