"""app.worker is the compute side: it imports torch, torchvision, numpy, PIL and the stdlib only.

The training engine (app/worker/training/) is stricter at import time: torch, torchvision and
numpy only, so a GPU machine can run it with just those installed; Pillow, PyYAML and
scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import ROOT

STDLIB = set(sys.stdlib_module_names)
ALLOWED = {"torch", "torchvision", "numpy", "PIL", "app"} | STDLIB
TRAINING_TOP = {"torch", "torchvision", "numpy", "app"} | STDLIB
LAZY = {"PIL", "sklearn", "yaml"}  # only inside functions
WORKER = ROOT / "app" / "worker"
WORKER_FILES = sorted(WORKER.rglob("*.py"))


def _root(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if node.module and node.level == 0:
        if node.module.startswith("app.") and not node.module.startswith("app.worker"):
            return {node.module}  # the worker never reaches back into the web side
        return {node.module.split(".")[0]}
    return set()


def imported_roots(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    roots: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            roots |= _root(node)
    return roots


@pytest.mark.parametrize("path", WORKER_FILES, ids=lambda path: str(path.relative_to(WORKER)))
def test_worker_module_imports_only_compute_packages(path: Path) -> None:
    training = "training" in path.relative_to(WORKER).parts
    allowed = ALLOWED | LAZY if training else ALLOWED
    assert imported_roots(path) <= allowed, imported_roots(path) - allowed
    if training:
        top = imported_roots(path, top_level_only=True)
        assert top <= TRAINING_TOP, top - TRAINING_TOP


BLOCKER = """
import sys
# None in sys.modules makes `import x` fail and find_spec("x") return None: as if absent.
for name in ("sklearn", "yaml", "fastapi", "starlette", "pydantic", "pydantic_settings",
             "sqlmodel", "sqlalchemy", "jinja2", "rich", "scipy", "skimage"):
    sys.modules[name] = None
from pathlib import Path
from app.worker.training import RunConfig, run
config = RunConfig.from_dict({"num_classes": 2, "images_per_class": 12, "image_size": 8,
                              "width": 4, "batch_size": 8, "epochs": 1})
out = Path(sys.argv[1])
result = run(config, lambda e: None, lambda: False, out_dir=out, data_dir=out / "data")
assert result.status == "succeeded", result.error
print((out / "config.yaml").read_text().strip()[:1])
"""


def test_the_engine_runs_with_only_torch_torchvision_numpy_and_pillow(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{"  # config.yaml written as JSON, which is valid YAML
    assert (tmp_path / "metrics.json").is_file()
