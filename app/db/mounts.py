"""SQLite in WAL mode needs every process on one host (shared memory, POSIX locks): refuse a
database on a network or FUSE filesystem at start, with a clear error, rather than corrupt it
later. The filesystem is the mount holding the database's directory in /proc/self/mountinfo
(Linux; elsewhere nothing is checked).
"""

from __future__ import annotations

import re
from pathlib import Path

from app.errors import DatabaseLocationError

MOUNTINFO = Path("/proc/self/mountinfo")
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gfs2",
        "ocfs2",
        "9p",
        "davfs",
        "fuse",
    }
)
_ESCAPE = re.compile(r"\\([0-7]{3})")


def is_network_filesystem(fstype: str) -> bool:
    """NFS, SMB and friends, and every FUSE filesystem (sshfs, s3fs, ...), except `fuseblk`
    (a local disk driven through FUSE, e.g. NTFS)."""
    base = fstype.partition(".")[0]
    return base in NETWORK_FILESYSTEMS


def filesystem_of(path: Path, mountinfo: str) -> tuple[str, str] | None:
    """(mount point, filesystem type) of the mount holding `path` (absolute), or None."""
    best: tuple[str, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        mount_point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
        fstype = fields[fields.index("-", 6) + 1]
        inside = path == Path(mount_point) or Path(mount_point) in path.parents
        if inside and (best is None or len(mount_point) >= len(best[0])):
            best = (mount_point, fstype)
    return best


def check_local(database: Path, mountinfo: str | None = None) -> None:
    """Raise DatabaseLocationError when `database` lies on a network or FUSE filesystem
    (`mountinfo`: the text of /proc/self/mountinfo, read when not given)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            return
    found = filesystem_of(database.parent, mountinfo)
    if found is not None and is_network_filesystem(found[1]):
        mount_point, fstype = found
        raise DatabaseLocationError(
            f"{database} is on a {fstype} filesystem (mounted at {mount_point}); SQLite's "
            "WAL mode needs a local disk (every process on one host): put the database on "
            "a local filesystem"
        )
