"""The README's layout map matches the tree: every package of `app/` has its line, and every
path the map names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Layout")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _packages() -> list[str]:
    """Every folder under app/ that holds Python modules, as "app/x/" (migrations' versions
    folder included in app/migrations/)."""
    found = []
    for folder in sorted((ROOT / "app").rglob("*")):
        if not folder.is_dir() or folder.name == "__pycache__" or folder.name == "versions":
            continue
        if any(folder.glob("*.py")):
            found.append(folder.relative_to(ROOT).as_posix() + "/")
    return found


def test_every_package_of_app_has_a_line_in_the_readme_layout_map() -> None:
    section = _layout_section()
    missing = [package for package in _packages() if f"`{package}`" not in section]
    assert not missing, f"README.md's Layout lacks a line for {missing}"


def test_every_path_the_layout_map_names_exists() -> None:
    named = re.findall(
        r"`((?:app|templates|static|questions|tests|benchmarks)/[^`*]*)`", _layout_section()
    )
    assert named, "the Layout section names no paths"
    absent = [path for path in named if not (ROOT / path).exists()]
    assert not absent, f"README.md's Layout names paths that do not exist: {absent}"


def test_each_package_line_is_one_line_of_the_table() -> None:
    rows = [line for line in _layout_section().splitlines() if line.startswith("| `app/")]
    for package in _packages():
        owning = [row for row in rows if row.startswith(f"| `{package}`")]
        assert len(owning) == 1, f"{package}: expected one row of the map, found {len(owning)}"
