"""The whole check, as the README's second command runs it: lint, format, types, tests.

uv run --frozen python -m tests [pytest arguments...]
"""

from __future__ import annotations

import subprocess
import sys

CHECKS = [
    ["ruff", "check", "app", "tests", "bench", "migrations"],
    ["ruff", "format", "--check", "app", "tests", "bench", "migrations"],
    ["mypy"],
]


def main(pytest_args: list[str]) -> int:
    for check in CHECKS:
        print("$", " ".join(check), flush=True)
        if subprocess.call(check) != 0:
            return 1
    command = [sys.executable, "-m", "pytest", *pytest_args]
    print("$", " ".join(command[1:]), flush=True)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
