"""Every bench in bench/ still runs: each at a tiny size, as its own process, the way its
docstring says to run it. The figures mean nothing here (bench/ is where performance
targets live, run on demand); the point is that no bench rots between the runs that
measure. A bench that needs PostgreSQL skips without its binaries, as the tests do."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_server import find_binaries, missing_reason

ROOT = Path(__file__).resolve().parents[1]
PG = pytest.mark.skipif(find_binaries() is None, reason=missing_reason())

# bench -> (its command line at a tiny size, after `python`; a line it prints when done)
BENCHES = {
    "backlog-postgresql": (
        "-m bench.backlog --backend postgresql --backlog 3000 --small 200 --claims 5 --take 3",
        "postgresql ratio backlog/small",
    ),
    "backlog-sqlite": (
        "-m bench.backlog --backend sqlite --backlog 3000 --small 200 --claims 5 --take 3",
        "sqlite ratio backlog/small",
    ),
    "scaling": (
        "-m bench.scaling --tasks 40 --processes 1 2 --pool-size 1",
        "PostgreSQL, 2 process(es)",
    ),
    "claims": ("-m bench.claims --scheduled 300 --claims 20 --tasks 50", "ratio scheduled/empty"),
    "counts": ("-m bench.counts --rows 2000 --requests 5 --rounds 1", "x"),
    "stats": ("-m bench.stats --rows 2000 --reads 5", "x"),
    "throughput": (
        "-m bench.throughput --tasks 40 --concurrent-tasks 100 --rounds 1 --seconds 10",
        "x",
    ),
    "cache": ("bench/cache.py --seconds 0.02", "x"),
}
NEEDS_POSTGRES = {"backlog-postgresql", "scaling"}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=PG) if n in NEEDS_POSTGRES else n for n in BENCHES]
)
def test_the_bench_runs_at_a_tiny_size(name: str) -> None:
    command, finished = BENCHES[name]
    done = subprocess.run(
        [sys.executable, *shlex.split(command)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert finished in done.stdout, done.stdout
