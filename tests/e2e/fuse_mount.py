"""Run a command with a FUSE filesystem mounted at a directory (argv: directory, command...).

Meant to run under `unshare -rm` (a user and mount namespace of its own, so no privilege
is needed and nothing outside sees the mount). The filesystem's daemon end is closed at
once: the mount is listed in /proc/self/mountinfo as `fuse`, and every file operation in it
fails with ENOTCONN, as a FUSE filesystem whose daemon died does (sshfs, s3fs, ...)."""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> None:
    directory, command = sys.argv[1], sys.argv[2:]
    os.makedirs(directory, exist_ok=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0"
    subprocess.run(
        ["mount", "-t", "fuse", "-o", options, "litetask-test", directory],
        pass_fds=[fd],
        check=True,
    )
    os.close(fd)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
