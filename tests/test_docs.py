"""What the docs promise a newcomer, checked against the files and the code: every setting
is documented, the token is set as a secret, the threat model is linked, each webhook scheme
says what it protects against, the bounds table matches app/bounds.py, and the task
guarantees are in one table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import bounds
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def section(path: Path, heading: str) -> str:
    """The text under `heading` (a whole `## ...` line) up to the next heading of that level."""
    text = path.read_text()
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n")
    end = text.find("\n" + level + " ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_every_setting_is_documented() -> None:
    named = {
        name
        for path in (ROOT / "app").rglob("*.py")
        for name in re.findall(r"\bLITETASK_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text())
    }
    documented = (DOCS / "configuration.md").read_text()
    assert len(named) > 20
    assert sorted(n for n in named if n not in documented) == []


@pytest.mark.parametrize("path", ["Dockerfile", "fly.toml", "docs/deploy.md"])
def test_the_token_is_set_as_a_fly_secret(path: str) -> None:
    assert "fly secrets set LITETASK_API_TOKEN=" in (ROOT / path).read_text()


@pytest.mark.parametrize("path", ["README.md", "docs/deploy.md"])
def test_the_threat_model_is_linked(path: str) -> None:
    assert (DOCS / "security.md").stat().st_size > 2000
    assert re.search(r"\]\((docs/)?security\.md\)", (ROOT / path).read_text())


SECURITY_SETTINGS = [
    "LITETASK_API_TOKEN",
    "LITETASK_INSECURE_NO_AUTH",
    "LITETASK_TRUSTED_PROXIES",
    "LITETASK_ALLOWED_HOSTS",
    "LITETASK_WEBHOOKS",
    "LITETASK_WEBHOOK_REPLAY_WINDOW",
    "LITETASK_MAX_BODY_BYTES",
    "LITETASK_BODY_TIMEOUT",
    "LITETASK_READ_TIMEOUT",
    "LITETASK_SSE_MAX_STREAMS",
    "LITETASK_SSE_MAX_STREAMS_PER_CLIENT",
]


def test_the_threat_model_says_what_is_exposed_each_setting_and_how_to_deploy() -> None:
    text = (DOCS / "security.md").read_text()
    assert "\n## What is exposed\n" in text and "\n## Recommended deployment\n" in text
    assert [name for name in SECURITY_SETTINGS if name not in text] == []


def test_each_webhook_scheme_says_what_it_protects_against() -> None:
    schemes = section(DOCS / "webhooks.md", "## Schemes, and what each protects against")
    bullets = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^- \*\*(\w+)\*\*.*?(?=^- |\Z)", schemes, re.M | re.S)
    }
    assert set(bullets) == {"standard", "github", "stripe", "none"}
    for name, text in bullets.items():
        assert "*Protects" in text, name
    assert "*Does not\n  protect*" in bullets["github"] or "*Does not protect*" in bullets["github"]
    assert "LITETASK_WEBHOOK_REPLAY_WINDOW" in bullets["github"]


def test_the_bounds_table_matches_the_code() -> None:
    table = section(DOCS / "api.md", "### Bounds")
    rows = {
        cells[0]: cells[1]
        for line in table.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 2
    }
    depth = f"{bounds.MAX_DEPTH} levels deep"
    assert (
        depth in rows["`args`"] and f"{bounds.MAX_ARGUMENTS_BYTES // 2**20} MiB" in rows["`args`"]
    )
    assert depth in rows["`kwargs` / `params`"]
    assert f"{bounds.MAX_ARGUMENTS_BYTES // 2**20} MiB" in rows["`kwargs` / `params`"]
    assert f"{bounds.MAX_METADATA_BYTES // 1024} KiB" in rows["`metadata`"]
    assert f"{bounds.PRIORITY_MIN} to {bounds.PRIORITY_MAX}" in rows["`priority`"]
    assert f"1 to {bounds.MAX_ATTEMPTS_LIMIT}" in rows["`max_attempts`"]
    assert f"{int(bounds.MAX_SECONDS)}" in rows["`delay`"]
    assert f"1-{bounds.MAX_TASK_ID_LENGTH} characters" in rows["`task_id`"]
    assert f"{bounds.LATEST:%Y-%m-%dT%H:%M:%SZ}" in rows["`run_at`"]
    batch = rows["tasks per batch (`POST /tasks/batch`, `add_tasks`)"]
    assert f"1 to {bounds.MAX_BATCH_TASKS}" in batch
    assert f"{bounds.MAX_BATCH_BYTES // 2**20} MiB" in batch


def test_the_task_guarantees_are_in_one_table() -> None:
    guarantees = section(DOCS / "tasks.md", "## Guarantees, and what survives what")
    header = "| guarantee | how it holds | its limits |"
    assert guarantees.count(header) == 1
    table = guarantees[guarantees.index(header) :].split("\n\n", 1)[0].splitlines()
    for promise in ("terminal state", "at-least-once", "exactly-once", "two attempts", "bounded"):
        assert any(promise in row for row in table[2:]), promise
