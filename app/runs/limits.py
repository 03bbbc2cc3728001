"""Per-user limits on runs, from the settings. Every refusal names the limit and its setting.

- RUN_MAX_QUEUED: runs of one user queued or running at once → `QueueFull` (a 429).
- RUN_MAX_QUEUED_GUESTS: runs of all guests together queued or running at once → `QueueFull`
  (a 429): guest identities are free, so caps per guest alone bound nothing.
- RUN_MAX_EPOCHS, RUN_MAX_IMAGE_SIZE, and RUN_MAX_IMAGES where the image count is known from
  the config alone (shapes draws exactly images_per_class × classes) → InvalidInput naming the
  field (a 422). Other data sets are counted once loaded: the worker stops a run whose data
  set is larger (app.runs.execute) and it fails with the same message.
- RUN_MAX_SECONDS: enforced while the run trains (app.runs.execute).
- EXPERIMENT_MAX_LIVE: experiments of one user with runs queued or running at once, and
  EXPERIMENT_MAX_LIVE_GUESTS, of all guests together → InvalidInput naming `preset` (a 422).
  An experiment counts as one, whatever the number of runs it queues.

- At login or registration a guest's work moves into the account only within the account's
  DATASET_QUOTA_COUNT, DATASET_QUOTA_BYTES, RUN_MAX_QUEUED and EXPERIMENT_MAX_LIVE
  (`merge_refusal`, a 409 naming the setting).

The counts come from the repos inside a write transaction that holds app.repos.locks' lock,
so two launches at once cannot both pass a cap.
"""

from __future__ import annotations

from app.repos.guest_work import Holdings
from app.settings import Settings
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig

SHAPE_CLASSES = 10  # the procedural shapes set has ten classes (num_classes 0 = all)


class QueueFull(Exception):
    """The user already has RUN_MAX_QUEUED runs queued or running."""

    def __init__(self, live: int, limit: int, message: str | None = None) -> None:
        super().__init__(
            message
            or f"runs: you have {live} runs queued or running, the most allowed at once "
            f"(RUN_MAX_QUEUED = {limit}); wait for one to end or cancel one"
        )


def shapes_images(config: RunConfig) -> int | None:
    """Images (train + validation) a config will load, where the config alone tells."""
    if config.dataset != "shapes":
        return None
    return config.images_per_class * shape_classes(config)


def shape_classes(config: RunConfig) -> int:
    """How many shape classes a config trains on (num_classes 0 = all from first_class on)."""
    return config.num_classes or SHAPE_CLASSES - config.first_class


def check_run_limits(config: RunConfig, settings: Settings) -> None:
    """InvalidInput naming the field and the limit if one run of `config` is over a limit."""
    if config.epochs > settings.run_max_epochs:
        raise InvalidInput(
            "epochs",
            f"at most {settings.run_max_epochs} per run here (RUN_MAX_EPOCHS), got {config.epochs}",
        )
    if config.image_size > settings.run_max_image_size:
        raise InvalidInput(
            "image_size",
            f"at most {settings.run_max_image_size} px here (RUN_MAX_IMAGE_SIZE), "
            f"got {config.image_size}",
        )
    images = shapes_images(config)
    if images is not None and images > settings.run_max_images:
        raise InvalidInput(
            "images_per_class",
            f"{config.images_per_class} per class × {shape_classes(config)} "
            f"classes is {images} images, more than the limit of {settings.run_max_images} "
            "per run (RUN_MAX_IMAGES)",
        )


def check_queue(live: int, settings: Settings) -> None:
    """QueueFull if a user with `live` queued or running runs may not add another."""
    if live >= settings.run_max_queued:
        raise QueueFull(live, settings.run_max_queued)


def check_guest_queue(live_guests: int, new_runs: int, settings: Settings) -> None:
    """QueueFull if guests together, with `live_guests` queued or running, may not add
    `new_runs` more (RUN_MAX_QUEUED_GUESTS)."""
    limit = settings.run_max_queued_guests
    if live_guests + new_runs > limit:
        raise QueueFull(
            live_guests,
            limit,
            f"runs: guests have {live_guests} runs queued or running together, the most "
            f"allowed at once (RUN_MAX_QUEUED_GUESTS = {limit}); register or log in to queue "
            "yours, or try again when some have ended",
        )


def check_experiments_live(live: int, settings: Settings) -> None:
    """InvalidInput naming `preset` if a user with `live` experiments still training may not
    launch another (EXPERIMENT_MAX_LIVE)."""
    limit = settings.experiment_max_live
    if live >= limit:
        raise InvalidInput(
            "preset",
            f"you have {live} experiment{'s' if live != 1 else ''} still training and at "
            f"most {limit} may be at once (EXPERIMENT_MAX_LIVE): "
            "wait for it to end or cancel its runs",
        )


def check_guest_experiments(live_guests: int, settings: Settings) -> None:
    """InvalidInput naming `preset` if guests together, with `live_guests` experiments still
    training, may not launch another (EXPERIMENT_MAX_LIVE_GUESTS)."""
    limit = settings.experiment_max_live_guests
    if live_guests >= limit:
        raise InvalidInput(
            "preset",
            f"guests have {live_guests} experiments training and at most {limit} may be at "
            "once (EXPERIMENT_MAX_LIVE_GUESTS): register or log in, or wait for one to end",
        )


def merge_refusal(guest: Holdings, account: Holdings, settings: Settings) -> str | None:
    """Why moving `guest`'s work into `account` would break a cap (the message names the
    setting), or None when it fits. A cap the guest adds nothing to is never the reason."""
    caps = (
        (
            len(guest.dataset_names),
            len(guest.dataset_names) + len(account.dataset_names),
            settings.dataset_quota_count,
            "DATASET_QUOTA_COUNT",
            "{} data sets",
            "Delete some first",
        ),
        (
            guest.dataset_bytes if guest.dataset_names else 0,
            guest.dataset_bytes + account.dataset_bytes,
            settings.dataset_quota_bytes,
            "DATASET_QUOTA_BYTES",
            "{:,} bytes of data sets",
            "Delete some first",
        ),
        (
            guest.live_runs,
            guest.live_runs + account.live_runs,
            settings.run_max_queued,
            "RUN_MAX_QUEUED",
            "{} runs queued or running",
            "Cancel some, wait for them to end",
        ),
        (
            guest.live_experiments,
            guest.live_experiments + account.live_experiments,
            settings.experiment_max_live,
            "EXPERIMENT_MAX_LIVE",
            "{} experiments still training",
            "Wait for one to end",
        ),
    )
    for added, total, limit, setting, what, advice in caps:
        if added and total > limit:
            return (
                f"Moving this browser's guest work would give the account {what.format(total)}, "
                f"more than the {limit:,} allowed ({setting}). {advice}, or go on without "
                "moving the guest's work."
            )
    return None
