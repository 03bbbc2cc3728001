"""Every setting in one place, read from the environment first (then `.env`)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Everything the app writes lives here: the SQLite file, the secret key, uploads, runs.
    data_dir: Path = Field(default=Path("var"), validation_alias="DATA_DIR")
    # SQLAlchemy URL; empty means a SQLite file inside DATA_DIR.
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    # Signs cookies; empty means generate once and keep it in DATA_DIR/secret_key.
    secret_key_value: str = Field(default="", validation_alias="SECRET_KEY", repr=False)
    # The question files (Markdown with YAML front matter).
    questions_dir: Path = Field(default=ROOT / "questions", validation_alias="QUESTIONS_DIR")
    # Largest accepted upload, in bytes.
    upload_max_bytes: int = Field(default=10_000_000, validation_alias="UPLOAD_MAX_BYTES", gt=0)
    # Mark the session cookie Secure (HTTPS only). Unset: Secure whenever the request came over
    # HTTPS (directly, or through a trusted proxy's X-Forwarded-Proto); true/false force it.
    cookie_secure: bool | None = Field(default=None, validation_alias="COOKIE_SECURE")
    # A session ends after this many days without a request …
    session_idle_days: float = Field(default=30, validation_alias="SESSION_IDLE_DAYS", gt=0)
    # … and this many days after login, however active (then log in again).
    session_max_days: float = Field(default=180, validation_alias="SESSION_MAX_DAYS", gt=0)
    # Failed logins allowed per username in LOGIN_WINDOW_MINUTES before a 429.
    login_max_failures: int = Field(default=5, validation_alias="LOGIN_MAX_FAILURES", ge=1)
    # Failed logins allowed from one client address (any usernames) in the same window.
    login_max_failures_per_address: int = Field(
        default=30, validation_alias="LOGIN_MAX_FAILURES_PER_ADDRESS", ge=1
    )
    login_window_minutes: int = Field(default=15, validation_alias="LOGIN_WINDOW_MINUTES", ge=1)
    # Guest accounts one client address may create per GUEST_WINDOW_MINUTES (a visitor's first
    # saved action makes one; more is a 429), counted per web process.
    guest_max_per_address: int = Field(default=10, validation_alias="GUEST_MAX_PER_ADDRESS", ge=1)
    guest_window_minutes: int = Field(default=10, validation_alias="GUEST_WINDOW_MINUTES", ge=1)
    # A guest with no session live for this many hours (its browser gone, or logged in to an
    # account without moving its work) and no run queued or running is deleted with its data
    # sets, runs and experiments (files too): when the server starts, hourly, and by
    # `cvprep sweep-guests`.
    guest_retention_hours: float = Field(
        default=24, validation_alias="GUEST_RETENTION_HOURS", ge=0, le=100_000
    )
    # Run pages (and a live run's page polls) served per second to one user, per web process;
    # a second's worth may come at once, more wait their turn (a 429 past RUN_PAGE_MAX_WAIT
    # seconds of waiting), so one user's tabs or script cannot keep the server busy. A live
    # run's page polls once a second: five tabs are served at their own pace.
    run_page_rate: float = Field(default=5, validation_alias="RUN_PAGE_RATE", gt=0, le=10_000)
    # Seconds a run page may wait for its turn under RUN_PAGE_RATE before the answer is a 429.
    run_page_max_wait: float = Field(default=10, validation_alias="RUN_PAGE_MAX_WAIT", ge=0, le=300)
    # Seconds a write waits for SQLite's one write lock before the request gets a 503 with
    # Retry-After (the server is overloaded, not broken).
    database_busy_timeout: float = Field(
        default=10, validation_alias="DATABASE_BUSY_TIMEOUT", gt=0, le=300
    )
    # Threads that run demo computations off the event loop.
    demo_threads: int = Field(default=2, validation_alias="DEMO_THREADS", ge=1, le=64)

    # --- training runs ---
    # Runs trained at a time by this server: one worker process each, started with the server
    # (multiprocessing "spawn"; the web process never trains). 0 starts none: runs wait in the
    # queue (a server that only serves pages, or a test that does not train).
    run_workers: int = Field(default=1, validation_alias="RUN_WORKERS", ge=0, le=64)
    # torch threads per worker; 0 shares all cores but one among the workers, so the web
    # process keeps a core to answer requests while a run trains.
    run_threads: int = Field(default=0, validation_alias="RUN_THREADS", ge=0, le=256)
    # Per user: runs queued or running at once (more is a 429 naming the limit).
    run_max_queued: int = Field(default=8, validation_alias="RUN_MAX_QUEUED", ge=1)
    # Experiments with runs still queued or running, per user (one counts whatever its runs).
    experiment_max_live: int = Field(default=1, validation_alias="EXPERIMENT_MAX_LIVE", ge=1)
    # All guests together (identities are free: one client with many guest cookies meets it).
    experiment_max_live_guests: int = Field(
        default=2, validation_alias="EXPERIMENT_MAX_LIVE_GUESTS", ge=1
    )
    # The size "Run it" launches: default (minutes on a laptop CPU), full (a GPU), test (tiny).
    experiment_size: Literal["default", "full", "test"] = Field(
        default="default", validation_alias="EXPERIMENT_SIZE"
    )
    # All guests together: runs queued or running at once (identities are free, so one client
    # with many guest cookies meets this cap; registered users meet only their own).
    run_max_queued_guests: int = Field(default=8, validation_alias="RUN_MAX_QUEUED_GUESTS", ge=1)
    # Per run: most epochs, images (train + validation) and image side in px (more is a 422).
    run_max_epochs: int = Field(default=50, validation_alias="RUN_MAX_EPOCHS", ge=1)
    run_max_images: int = Field(default=60_000, validation_alias="RUN_MAX_IMAGES", ge=2)
    run_max_image_size: int = Field(default=224, validation_alias="RUN_MAX_IMAGE_SIZE", ge=8)
    # Per run: most memory a worker may need, in MiB, estimated before the run is queued (the
    # data set decoded, the model and its optimiser, one batch's activations); more is a 422
    # naming the estimate.
    run_max_memory_mb: int = Field(default=4096, validation_alias="RUN_MAX_MEMORY_MB", ge=256)
    # Per user: bytes their runs' files may keep on disk (checkpoints above all); at it, a new
    # run is a 422 naming the setting until some are deleted.
    run_quota_bytes: int = Field(default=2_000_000_000, validation_alias="RUN_QUOTA_BYTES", gt=0)
    # All runs together: bytes the decoded-data cache (DATA_DIR/cache) may keep; past it the
    # least recently used entries are removed when a run ends.
    data_cache_max_bytes: int = Field(
        default=2_000_000_000, validation_alias="DATA_CACHE_MAX_BYTES", gt=0
    )
    # Per run: seconds of training before it is stopped (what it learnt so far is kept).
    run_max_seconds: int = Field(default=3600, validation_alias="RUN_MAX_SECONDS", ge=1)
    # A running run whose worker wrote no heartbeat for this many seconds is marked
    # interrupted (its worker died where no one saw it, e.g. in a server that was killed).
    run_heartbeat_timeout: float = Field(default=30, validation_alias="RUN_HEARTBEAT_TIMEOUT", gt=1)

    # --- scale-out: runs on Celery workers over Redis ---
    # Who trains runs: "local" (worker processes of this server) or "celery" (`cvprep worker`
    # processes on any machine, fed through Redis; DATABASE_URL should then be PostgreSQL).
    jobs_backend: Literal["local", "celery"] = Field(
        default="local", validation_alias="JOBS_BACKEND"
    )
    # The Celery broker (JOBS_BACKEND=celery): a Redis URL, database number included.
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
        pattern=r"^(redis|rediss|unix)://\S+$",
    )
    # The Celery queue runs are sent to and workers read (one name per deployment).
    celery_queue: str = Field(
        default="cvprep-runs", validation_alias="CELERY_QUEUE", min_length=1, max_length=100
    )
    # Fair share (both backends): runs of one user training at once; a further run of theirs
    # waits while other users' runs take the free workers.
    run_max_running_per_user: int = Field(
        default=1, validation_alias="RUN_MAX_RUNNING_PER_USER", ge=1
    )
    # Times a run may be started by Celery workers: a run whose worker process died is
    # started again from scratch until this many attempts, then ends `failed` with the reason
    # (1: a dead worker's run ends `interrupted`, as with the local backend).
    run_max_attempts: int = Field(default=1, validation_alias="RUN_MAX_ATTEMPTS", ge=1, le=10)

    # --- uploaded data sets (a zip of class folders) ---
    # Largest zip accepted, in bytes (more is a 413, refused while it arrives).
    dataset_max_upload_bytes: int = Field(
        default=200_000_000, validation_alias="DATASET_MAX_UPLOAD_BYTES", gt=0
    )
    # Most entries (files and folders) one archive may list.
    dataset_max_files: int = Field(default=20_000, validation_alias="DATASET_MAX_FILES", ge=1)
    # Most bytes one archive may expand to, counted as they are written.
    dataset_max_extracted_bytes: int = Field(
        default=1_000_000_000, validation_alias="DATASET_MAX_EXTRACTED_BYTES", gt=0
    )
    # Most bytes one entry may expand to per compressed byte (a zip bomb's tell).
    dataset_max_ratio: float = Field(default=200, validation_alias="DATASET_MAX_RATIO", ge=1)
    # Most pixels (width × height) of one image in an upload.
    dataset_max_pixels: int = Field(
        default=40_000_000, validation_alias="DATASET_MAX_PIXELS", ge=64
    )
    # Most class folders one archive may hold (a run's metrics, page and model head grow with
    # them); counted from the names before anything is read.
    dataset_max_classes: int = Field(default=200, validation_alias="DATASET_MAX_CLASSES", ge=2)
    # Most pixels of all the images of one archive together, counted from each image's header
    # before it is decoded (a few KB of PNG can hold 40 MP).
    dataset_max_total_pixels: int = Field(
        default=2_000_000_000, validation_alias="DATASET_MAX_TOTAL_PIXELS", ge=64
    )
    # Seconds one archive's images may take to decode in full (the check that each is a
    # whole image), counted while they decode, not while they wait their turn; past it the
    # upload is a 413. An honest 200 MB upload decodes in seconds on a laptop; this bounds
    # the slowest archives the other caps admit (dozens of 40 MP images).
    dataset_max_decode_seconds: float = Field(
        default=60, validation_alias="DATASET_MAX_DECODE_SECONDS", gt=0, le=3600
    )
    # Per user: data sets kept at once, and their bytes on disk together.
    dataset_quota_count: int = Field(default=10, validation_alias="DATASET_QUOTA_COUNT", ge=1)
    dataset_quota_bytes: int = Field(
        default=2_000_000_000, validation_alias="DATASET_QUOTA_BYTES", gt=0
    )

    @property
    def runs_dir(self) -> Path:
        """DATA_DIR/runs: one folder per run, named by its id."""
        return self.data_dir / "runs"

    @property
    def uploads_dir(self) -> Path:
        """DATA_DIR/datasets/uploads: one folder per user, one sub-folder per data set."""
        return self.data_dir / "datasets" / "uploads"

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cvprep.sqlite3').resolve()}"

    @cached_property
    def secret_key(self) -> str:
        """SECRET_KEY, or a key generated on first use and kept in DATA_DIR."""
        if self.secret_key_value:
            return self.secret_key_value
        path = self.data_dir / "secret_key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: when two processes start together, exactly one writes the key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def get_settings() -> Settings:
    return Settings()
