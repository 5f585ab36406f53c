"""A database on a network or FUSE filesystem is refused at start (SQLite's WAL needs every
process on one host); the mount holding a path is found in /proc/self/mountinfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import AsyncTaskWorker, DatabaseLocationError
from app.db.mounts import MOUNTINFO, check_local, filesystem_of, is_network_filesystem

# The format of /proc/self/mountinfo (proc(5)); an octal escape in a mount point.
MOUNTINFO_TEXT = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /srv/shared rw,relatime shared:20 - nfs4 nas:/export rw,vers=4.2
41 40 0:36 / /srv/shared/local\\040disk rw shared:21 - ext4 /dev/vdb1 rw
42 22 0:37 / /home/me/remote rw,nosuid - fuse.sshfs me@host:/data rw
43 22 0:38 / /mnt/ntfs rw - fuseblk /dev/sdb1 rw
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/lib/litetask", ("/", "ext4")),
        ("/srv/shared/queue", ("/srv/shared", "nfs4")),
        ("/srv/shared/local disk/queue", ("/srv/shared/local disk", "ext4")),
        ("/srv/sharedness", ("/", "ext4")),
        ("/home/me/remote/db", ("/home/me/remote", "fuse.sshfs")),
    ],
)
def test_the_mount_holding_a_path(path: str, expected: tuple[str, str]) -> None:
    assert filesystem_of(Path(path), MOUNTINFO_TEXT) == expected


@pytest.mark.parametrize("fstype", ["nfs4", "cifs", "smb3", "fuse.sshfs", "fuse", "9p"])
def test_network_and_fuse_filesystems_are_refused(fstype: str) -> None:
    assert is_network_filesystem(fstype)


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "tmpfs", "fuseblk"])
def test_local_filesystems_are_fine(fstype: str) -> None:
    assert not is_network_filesystem(fstype)


async def test_a_local_database_starts(tmp_path: Path) -> None:
    if not MOUNTINFO.exists():
        pytest.skip("no /proc/self/mountinfo here")
    found = filesystem_of(tmp_path, MOUNTINFO.read_text())
    assert found is not None and not is_network_filesystem(found[1])
    async with AsyncTaskWorker(f"sqlite+aiosqlite:///{tmp_path / 'local.db'}") as worker:
        assert worker.running


@pytest.mark.parametrize("where", ["/srv/shared/litetask.db", "/home/me/remote/db/x.db"])
def test_a_database_on_a_network_filesystem_is_refused(where: str) -> None:
    with pytest.raises(DatabaseLocationError, match="needs a local disk") as raised:
        check_local(Path(where), MOUNTINFO_TEXT)
    assert where in str(raised.value)


def test_a_local_disk_inside_a_network_mount_is_fine() -> None:
    check_local(Path("/srv/shared/local disk/litetask.db"), MOUNTINFO_TEXT)
