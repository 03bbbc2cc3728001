"""app.worker is the compute side: it imports torch, torchvision, numpy, PIL and the stdlib only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from app.settings import ROOT

ALLOWED = {"torch", "torchvision", "numpy", "PIL", "app"} | set(sys.stdlib_module_names)
WORKER_FILES = sorted((ROOT / "app" / "worker").glob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("app.") and not node.module.startswith("app.worker"):
                roots.add(node.module)  # the worker never reaches back into the web side
            else:
                roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", WORKER_FILES, ids=lambda path: path.name)
def test_worker_module_imports_only_compute_packages(path: Path) -> None:
    assert imported_roots(path) <= ALLOWED, imported_roots(path) - ALLOWED
