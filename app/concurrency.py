"""How many of one expensive kind of work run at once, per event loop.

A `LoopLimiter` hands each running event loop (the server has one; each test client another)
its own `anyio.CapacityLimiter` of `size` slots, so the work beyond them waits in the event
loop, not in a worker thread: thumbnails decoded (app.datasets.thumbnails) and run pages
rendered (app.runs.page_cache) at once stay bounded and the shared thread pool stays free for
every other route.
"""

from __future__ import annotations

import asyncio
import weakref

import anyio


class LoopLimiter:
    """`size` slots per event loop (anyio's CapacityLimiter belongs to the loop it runs in)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._limiters: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anyio.CapacityLimiter
        ] = weakref.WeakKeyDictionary()

    def __call__(self) -> anyio.CapacityLimiter:
        """This event loop's limiter (made on first use)."""
        loop = asyncio.get_running_loop()
        found = self._limiters.get(loop)
        if found is None:
            found = self._limiters[loop] = anyio.CapacityLimiter(self.size)
        return found
