"""Is the process that did some work still alive? And one-holder file locks.

A run killed by SIGKILL, the OOM killer or a reboot cannot say it died; whoever comes next has
to find out. A PID alone is not enough: after a reboot or enough time the same number belongs
to another process. On Linux we compare the process's start time (/proc/<pid>/stat) with the
time the PID was recorded: a process that started after the record is not the one recorded.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# A process recorded at time T must have started before T; allow for clock granularity
# (start times are in clock ticks, 10 ms) and for a record written a moment late.
_START_SLACK_S = 2.0


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), or None when it does not exist
    or this is not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    boot = _boot_time()
    if boot is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    start_ticks = int(fields[19])  # field 22 of the whole line
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, recorded_at: float | None = None) -> bool:
    """Whether the process `pid`, seen at `recorded_at` (epoch seconds), is still running.

    False when no such process exists, or when the PID now belongs to a process that started
    after `recorded_at` (the recorded one died and the number was reused, e.g. after a reboot).
    """
    if pid <= 0:
        return False
    if Path("/proc").is_dir():
        if not Path(f"/proc/{pid}").exists():
            return False
        if recorded_at is not None:
            started = process_start_time(pid)
            if started is not None and started > recorded_at + _START_SLACK_S:
                return False
        return not _is_zombie(pid)
    try:  # not Linux: existence only
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[0] == "Z"


class LockHeld(OSError):
    """The lock file is held by another process."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path = path
        self.holder = holder


@contextmanager
def exclusive_lock(path: Path, wait: bool = True) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if missing), released when the block ends
    or the process dies (the kernel drops flock locks of dead processes: nothing to clean up
    after a SIGKILL). With wait=False, raises LockHeld naming the holder's PID instead of
    waiting. The holder writes its PID and start time into the file for that message."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise LockHeld(path, f"PID {holder.split()[0]}" if holder else "another process") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
