"""The whole-program examples of docs/tasks.md run as written (each in a fresh directory,
as a user would run it) and print what their comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PROGRAMS = [
    b for b in BLOCK.findall((ROOT / "docs" / "tasks.md").read_text()) if "asyncio.run(" in b
]


def test_the_examples_are_found() -> None:
    assert len(PROGRAMS) >= 6


@pytest.mark.parametrize("program", PROGRAMS, ids=[f"example{i}" for i in range(len(PROGRAMS))])
def test_an_example_runs(program: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    for expected in _promised(program):
        assert expected in done.stdout, (expected, done.stdout)


def _promised(program: str) -> list[str]:
    """What a `print(...)  # shown` line promises: the comment's text up to a colon or an
    ellipsis (the rest explains, or stands for an id)."""
    shown = re.findall(r"print\(.*\)\s+# (.+)", program)
    return [re.split(r": |…|\.\.\.", text)[0].strip() for text in shown]
