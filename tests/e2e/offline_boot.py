"""Run inside a fresh network namespace (`unshare -rn`): bring loopback up, start the command
given, wait until GET /health answers on its --port, send SIGTERM, and print what happened.

    python offline_boot.py COMMAND...
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            status: int = response.status
            return status
    except (urllib.error.URLError, OSError):
        return None


def main(command: list[str]) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    port = int(command[command.index("--port") + 1])
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 40
        while (status := health(port)) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"no answer; server exit {server.poll()}")
                return 1
            time.sleep(0.1)
        print(f"health {status}")
        server.send_signal(signal.SIGTERM)
        print(f"exit {server.wait(30)}")
        return 0
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
