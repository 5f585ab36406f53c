"""The container image: there is no Docker engine here, so the Dockerfile is read for what
makes it safe (a non-root user, a pinned uv, the installed entry point, no demo tasks unless
asked for) and the command it runs is run for real, from the venv, without a network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_loopback_port

DOCKERFILE = ROOT / "Dockerfile"
OFFLINE_BOOT = Path(__file__).with_name("offline_boot.py")
IMAGE_ENTRY_POINT = "/srv/litetask/.venv/bin/litetask"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, rest = line.partition(" ")
            rows.append((name.upper(), rest.strip()))
    return rows


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [rest.split(":")[0] for name, rest in instructions() if name == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1] not in {"root", "0"}


def test_the_image_pins_uv() -> None:
    installs = [rest for name, rest in instructions() if name == "RUN" and "uv" in rest]
    assert any(re.search(r"\buv==\d+\.\d+\.\d+\b", rest) for rest in installs), installs


def test_the_image_names_no_task_modules() -> None:
    settings = " ".join(rest for name, rest in instructions() if name in {"ENV", "ARG"})
    assert "LITETASK_TASK_MODULES" not in settings and "LITETASK_DEMO" not in settings


def task_types(url: str) -> set[str]:
    response = httpx.get(url + "/task-types")
    assert response.status_code == 200, response.text
    return {entry["name"] for entry in response.json()["task_types"]}


@pytest.mark.parametrize(("demo", "expected"), [("", set()), ("1", {"demo.add", "demo.echo"})])
def test_demo_tasks_load_only_when_asked_for(tmp_path: Path, demo: str, expected: set[str]) -> None:
    server = ServerProcess(tmp_path / "litetask.db", free_loopback_port(), LITETASK_DEMO=demo)
    try:
        server.wait_ready()
        names = task_types(server.url)
    finally:
        server.close()
    assert expected <= names and (expected or not any(n.startswith("demo.") for n in names))


def test_the_demo_flag_loads_the_demo_tasks(tmp_path: Path) -> None:
    port = free_loopback_port()
    server = ServerProcess(tmp_path / "litetask.db", port, "--demo", LITETASK_DEMO="")
    try:
        server.wait_ready()
        assert "demo.add" in task_types(server.url)
    finally:
        server.close()


def image_command() -> list[str]:
    cmds = [rest for name, rest in instructions() if name in {"CMD", "ENTRYPOINT"}]
    assert len(cmds) == 1
    command: list[str] = json.loads(cmds[0])  # exec form: SIGTERM reaches the server itself
    return command


def test_the_image_starts_the_installed_entry_point() -> None:
    command = image_command()
    assert command[:2] == [IMAGE_ENTRY_POINT, "serve"]
    assert "uv" not in command


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_the_image_command_boots_from_the_venv_without_a_network(tmp_path: Path) -> None:
    """The image's command, with this venv's entry point for the image's, run in a network
    namespace that has only loopback: nothing is fetched at start, the service answers and
    stops cleanly on SIGTERM."""
    entry_point = Path(sys.executable).with_name("litetask")
    assert entry_point.exists(), "the project is not installed in this venv"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr!r}")
    command = [str(entry_point), *image_command()[1:]]
    done = subprocess.run(
        ["unshare", "-rn", sys.executable, str(OFFLINE_BOOT), *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(tmp_path),
            "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'litetask.db'}",
            "LITETASK_API_TOKEN": "t" * 32,
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "health 200" in done.stdout and "exit 0" in done.stdout, done.stdout


def test_no_doc_suggests_a_guessable_token() -> None:
    """Wherever the docs and deployment files set LITETASK_API_TOKEN, the value comes from
    `litetask token` (or is left to the reader as `...`), never a literal like `change-me`."""
    files = [ROOT / "README.md", ROOT / "fly.toml", DOCKERFILE, *(ROOT / "docs").glob("*.md")]
    literal = re.compile(r"LITETASK_API_TOKEN=(?![\"']?\$\(|\.\.\.|…|`|\)| |$)(\S+)")
    found = [
        f"{path.name}: {match.group(0)}"
        for path in files
        for match in literal.finditer(path.read_text())
    ]
    assert found == []
