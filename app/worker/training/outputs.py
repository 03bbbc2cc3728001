"""A run's files in its folder, besides checkpoint.pt.

- `config.yaml`: the run's RunConfig (YAML via PyYAML when installed; otherwise JSON, which
  is also valid YAML, so the GPU boxes need no PyYAML);
- `metrics.json`: every figure (see engine.py); non-finite numbers become null, so the file
  is strict JSON;
- `predictions.npz`: `y_true` (N,) int64, `y_prob` (N, K) float32, `classes` (K,) str, the last
  validation pass (loads with `np.load(path)`, no pickle);
- `misclassified/<n>.png`: up to `max_misclassified` validation images the model got wrong,
  the most confident first, at the size it saw them (Pillow, which torchvision itself needs);
  metrics.json lists them with the index into the validation split, the true and predicted
  class and the confidence.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

CONFIG = "config.yaml"
METRICS = "metrics.json"
PREDICTIONS = "predictions.npz"
MISCLASSIFIED = "misclassified"


def run_folder(runs_dir: Path, run_id: int | str) -> Path:
    """runs_dir/<id>: the folder of the run with this id (the server's DATA_DIR/runs/<id>),
    where init "run:<id>" finds its checkpoint."""
    return runs_dir / str(run_id)


def _atomic_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_config(out_dir: Path, config: dict[str, Any]) -> None:
    """config.yaml, fields in declaration order."""
    try:
        import yaml
    except ImportError:
        text = json.dumps(config, indent=2) + "\n"
    else:
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    _atomic_text(out_dir / CONFIG, text)


def finite(value: Any) -> Any:
    """The value with every NaN/±inf float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, strict JSON (non-finite numbers as null), replaced atomically."""
    _atomic_text(out_dir / METRICS, json.dumps(finite(metrics), indent=1, allow_nan=False) + "\n")


def write_predictions(
    out_dir: Path, y_true: np.ndarray, y_prob: np.ndarray, classes: list[str]
) -> None:
    """predictions.npz: y_true (N,) int64, y_prob (N, K) float32, classes (K,) str."""
    temporary = out_dir / f".{PREDICTIONS}.tmp.npz"
    np.savez_compressed(
        temporary,
        y_true=np.asarray(y_true, dtype=np.int64),
        y_prob=np.asarray(y_prob, dtype=np.float32),
        classes=np.asarray(classes, dtype=str),
    )
    os.replace(temporary, out_dir / PREDICTIONS)


def write_misclassified(
    out_dir: Path,
    images: torch.Tensor,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    classes: list[str],
    limit: int,
) -> list[dict[str, Any]]:
    """PNG files of the most confident mistakes; returns their list for metrics.json.

    `images` are the validation images, (N, 3, S, S) uint8, in the order of y_true/y_prob.
    """
    from PIL import Image

    folder = out_dir / MISCLASSIFIED
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    predicted = y_prob.argmax(axis=1)
    confidence = y_prob.max(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    listed = []
    for n, index in enumerate(wrong):
        name = f"{MISCLASSIFIED}/{n}.png"
        pixels = images[int(index)].detach().cpu().permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(out_dir / name)
        listed.append(
            {
                "index": int(index),
                "true": classes[int(y_true[index])],
                "predicted": classes[int(predicted[index])],
                "confidence": float(confidence[index]),
                "image": name,
            }
        )
    return listed
