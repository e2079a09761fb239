"""The ProcessLiveness port (domain/ports.py) on Linux's /proc: who this process is, and whether a
lease's holder is provably dead, so a re-run on the same machine takes over the lease of a run
killed with kill -9 at once instead of after its term (domain/lease.py).

"Dead" only when the holder's host, boot id (/proc/sys/kernel/random/boot_id) and pid namespace
(the inode of /proc/self/ns/pid) are this process's, and no process has its pid, or the one that
has it started at another time (field 22 of /proc/<pid>/stat, clock ticks since boot: the pid was
reused). A pid means nothing across hosts, boots or namespaces (another Lambda sandbox, another
container), so there, and whenever /proc cannot be read, the answer is "not provably dead" and the
lease keeps its term. A zombie (killed, not yet reaped by its parent) still has its /proc entry
and counts as alive until reaped.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from domain.models import ProcessIdentity

START_TIME_FIELD = 22  # /proc/<pid>/stat, proc(5): starttime, clock ticks after boot


def start_time(stat: str) -> int | None:
    """Field 22 of a /proc/<pid>/stat line, or None when it does not parse. The command name
    (field 2) is in parentheses and may hold spaces and parentheses: count after the last ')'."""
    _, paren, rest = stat.rpartition(")")
    fields = rest.split()
    at = START_TIME_FIELD - 3  # `rest` starts at field 3 (the state)
    if not paren or len(fields) <= at or not fields[at].isdigit():
        return None
    return int(fields[at])


class ProcLiveness:
    """ProcessLiveness over `proc` (/proc; a test may point it elsewhere)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc

    def identity(self) -> ProcessIdentity | None:
        """This process's identity, read afresh (a forked child is another process), or None
        where /proc cannot tell (not Linux, /proc not mounted or of another pid namespace)."""
        return self._identity_of(os.getpid())

    def provably_dead(self, holder: ProcessIdentity) -> bool:
        here = self.identity()
        if here is None:
            return False
        where = (holder.host, holder.boot_id, holder.pid_namespace)
        if where != (here.host, here.boot_id, here.pid_namespace):
            return False  # its pid means another process here, or nothing
        try:
            stat = (self.proc / str(holder.pid) / "stat").read_text()
        except FileNotFoundError:
            return True  # no process with that pid in this namespace
        except OSError:
            return False
        started = start_time(stat)
        return started is not None and started != holder.start_time  # None: unsure

    def _identity_of(self, pid: int) -> ProcessIdentity | None:
        try:
            boot_id = (self.proc / "sys/kernel/random/boot_id").read_text().strip()
            namespace = os.stat(self.proc / "self/ns/pid").st_ino
            stat = (self.proc / "self/stat").read_text()
        except OSError:
            return None
        # /proc/self/stat names this process only when /proc is of its pid namespace: otherwise
        # the pids read there are another namespace's, and nothing could be proven.
        if not boot_id or not stat.startswith(f"{pid} ("):
            return None
        started = start_time(stat)
        if started is None:
            return None
        return ProcessIdentity(socket.gethostname(), boot_id, namespace, pid, started)
