"""Process-wide torch settings for the demos, applied once."""

from __future__ import annotations

import os
import threading

import torch

_lock = threading.Lock()
_configured: int | None = None


def configure_threads(demo_threads: int) -> int:
    """Split the cores among the demo threads: each torch op gets `cores // demo_threads`.

    torch's intra-op pool is process-wide, so this runs once per process (later calls keep the
    first setting) and returns the thread count in force.
    """
    global _configured
    with _lock:
        if _configured is None:
            _configured = max(1, (os.cpu_count() or 1) // max(1, demo_threads))
            torch.set_num_threads(_configured)
        return _configured
