"""The reference pipeline (../shared/reference/ref_pipeline.py beside the repository, when
present): a small sketch of HTTP submit -> durable row -> executed no-op on stdlib sqlite3,
run (never copied) under the same Hypercorn as `litetask serve`, so bench/http.py can price
litetask's submit path against what the stack reaches when the database work is cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
APP = "ref_pipeline:app"


def reference_dir() -> Path | None:
    """Where ref_pipeline.py is, or None (the bench then skips its row, saying so)."""
    return REFERENCE if (REFERENCE / "ref_pipeline.py").is_file() else None


def start_reference(where: Path, directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Hypercorn (one worker, asyncio, no access log: as `litetask serve` runs it) serving
    the reference app on `directory`/ref.db with synchronous=FULL."""
    env = {
        **os.environ,
        "PYTHONPATH": str(where),
        "REF_DB": str(directory / "ref.db"),
        "REF_SYNC": "FULL",
    }
    command = [sys.executable, "-m", "hypercorn", APP, "-b", f"127.0.0.1:{port}"]
    return subprocess.Popen(command, env=env, cwd=directory, stderr=subprocess.DEVNULL)


def executed_of(body: bytes) -> int:
    """Tasks executed, from the reference's GET /stats body."""
    executed: int = json.loads(body)["executed"]
    return executed
