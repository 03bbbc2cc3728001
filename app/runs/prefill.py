"""What the New-run form starts from: defaults, one arm of a preset, or an earlier run.

The presets (`app.experiments.presets.PRESETS`) are the one registry of the experiments; the
form offers one arm of a preset's design to try and change by hand.
"""

from __future__ import annotations

from typing import Any

from app.experiments.presets import PRESETS, PRETRAIN, Cell
from app.models import Run


def from_preset(name: str) -> tuple[dict[str, Any], str] | None:
    """One run of a preset's design, to try in the form: (config, note); None for no preset.

    The first arm that trains on its own (not one that starts from the experiment's own
    pretraining run, which only the experiment makes), at seed 0, default size.
    """
    preset = PRESETS.get(name)
    if preset is None:
        return None
    arm = next(a for a in preset.arms if not a.once and a.changes.get("init") != PRETRAIN)
    config = preset.config(Cell(arm.key, 0))
    arms = ", ".join(a.label for a in preset.arms_at("default"))
    note = (
        f"{preset.title}: the '{arm.label}' arm, one seed. The experiment runs every arm "
        f"({arms}) over {preset.sizes['default'].seeds} seeds and reads a verdict from them: "
        f"launch it from the question's page."
    )
    return config, note


def run_again(run: Run) -> dict[str, Any]:
    """The run's own config."""
    return dict(run.config)


def fine_tune_from(run: Run) -> dict[str, Any]:
    """Start from the run's weights (init run:<id>) with a tenth of its learning rate and no
    warm-up: the usual recipe for continuing from trained weights."""
    config = dict(run.config)
    config.update(
        init=f"run:{run.id}",
        lr=float(config.get("lr", 3e-3)) / 10,
        warmup_epochs=0.0,
    )
    return config
