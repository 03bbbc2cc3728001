"""The Celery application of the scale-out backend, shared by the web process (which only
sends run ids) and `cvprep worker` (which trains them).

A message carries nothing but a run id; the `run` row is the truth about the run, so a lost,
repeated or late message can never train a run twice (see `app.runs.celery_tasks`, which
registers the run task on `celery`, the worker's app). Nothing here imports torch: the worker's main process forks its pool children, and CUDA must first be
initialised in a child, never in the parent (a forked child cannot use a CUDA context it
inherited).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.settings import Settings

TASK_NAME = "cvprep.run"
CONNECT_TIMEOUT_S = 2.0  # the web's publish and health ping give up on Redis after this
# Extra time on top of RUN_MAX_SECONDS before Redis hands an unacknowledged run to another
# worker: data loading, the final evaluation and writing the outputs come after the limit.
VISIBILITY_MARGIN_S = 1800
CHILD_READY_TIMEOUT_S = 120.0  # a forked pool child may take this long to import torch


def visibility_timeout(settings: Settings) -> int:
    """Seconds Redis waits for the acknowledgement of a delivered run before delivering it
    again: longer than the longest run may last (RUN_MAX_SECONDS plus a margin)."""
    return settings.run_max_seconds + VISIBILITY_MARGIN_S


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for few, long, expensive jobs (each with the reason it is set)."""
    transport = {
        # Redis re-delivers a message not acknowledged within this time (Celery's "Redis
        # caveats"). With late acknowledgement a run that trains longer than the default hour
        # would be handed to a second worker while the first still trains it.
        "visibility_timeout": visibility_timeout(settings),
        # A launch while Redis is down fails within seconds instead of hanging the request.
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
    }
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        # The web process publishes once and reports a failure at once: no retry loop that
        # would keep a user's request waiting while Redis is down.
        "broker_connection_retry": False,
        "broker_connection_timeout": CONNECT_TIMEOUT_S,
        "task_publish_retry": False,
        # A worker started before Redis is up keeps trying (compose starts them together).
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # No result backend: outcomes, progress and errors are written into the run's row.
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": settings.celery_queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        # Acknowledge a run only once it has ended: a worker machine that dies mid-run leaves
        # its message in Redis, so the run is never silently dropped (the row then decides
        # what the re-delivery does; it never trains a run that already ended).
        "task_acks_late": True,
        # A pool child killed mid-run (out of memory, SIGKILL) sends its message back to the
        # queue instead of acknowledging it; the Celery docs warn this can loop, which the row
        # prevents: attempts are counted and an ended run is skipped.
        "task_reject_on_worker_lost": True,
        # Reserve one run at a time per process: a worker busy for an hour must not sit on
        # further runs that an idle worker could take (Celery's guide for long tasks).
        "worker_prefetch_multiplier": 1,
        # A fresh child process for every run: no memory, CUDA context or allocator state of
        # one run leaks into the next, and a crash takes one run down, not the pool.
        "worker_max_tasks_per_child": 1,
        # A fresh child imports torch before it reports ready (so the next run starts warm);
        # on a busy machine that takes longer than Celery's 4 s default, after which the
        # child would be killed and forked again, over and over.
        "worker_proc_alive_timeout": CHILD_READY_TIMEOUT_S,
        # Task events on, so `celery events` or Flower show runs as they are sent, start and end.
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "task_track_started": True,
        # Runs are handed out as they come; the fair share is the task's (per-user cap).
        "worker_disable_rate_limits": True,
        "worker_hijack_root_logger": False,
        "broker_channel_error_retry": False,
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from `settings`, for sending run ids (the web process): a
    message names its task by TASK_NAME, so a sender needs no task registered."""
    app = Celery("cvprep", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


# The worker's app: `app.runs.celery_tasks` registers the run task on it when imported, and
# its `configure(settings, …)` fills in the settings before `cvprep worker` starts it.
celery = Celery("cvprep", set_as_current=False)
