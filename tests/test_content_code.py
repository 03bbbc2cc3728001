"""Every Python block in an answer compiles; the self-contained ones run on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.content import load_questions
from app.settings import ROOT

BLOCKS = [
    pytest.param(block, id=f"{question.slug}:{block.line}")
    for question in load_questions(ROOT / "questions")
    for block in question.code
    if block.lang == "python"
]


def test_answers_carry_runnable_code() -> None:
    runnable = [param.values[0] for param in BLOCKS if param.values[0].runnable]
    assert len(runnable) >= 12


@pytest.mark.parametrize("block", BLOCKS)
def test_python_block_compiles(block) -> None:
    compile(block.source, f"<block line {block.line}>", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("block", [p for p in BLOCKS if p.values[0].runnable])
def test_runnable_block_runs_on_cpu(block, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block.source)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
