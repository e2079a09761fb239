"""adapters/process_liveness.ProcLiveness against real processes on this machine's /proc: dead only
when a process of this host, boot and pid namespace is gone (or its pid now names a process
started at another time); anything else is not provably dead."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.process_liveness import ProcLiveness, start_time
from domain.models import ProcessIdentity

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")

# The child says who it is, as a holder writes it into a lease, then waits to be killed.
CHILD = """
import dataclasses, json, sys
from adapters.process_liveness import ProcLiveness
print(json.dumps(dataclasses.asdict(ProcLiveness().identity())), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[bytes], ProcessIdentity]]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        identity = ProcessIdentity(**json.loads(process.stdout.readline()))
        yield process, identity
    finally:
        process.kill()
        process.wait()


def test_this_process_is_alive() -> None:
    liveness = ProcLiveness()
    me = liveness.identity()
    assert me is not None and liveness.provably_dead(me) is False


def test_a_child_killed_with_sigkill_is_dead_once_reaped(
    child: tuple[subprocess.Popen[bytes], ProcessIdentity],
) -> None:
    process, identity = child
    liveness = ProcLiveness()
    assert identity.pid == process.pid
    assert liveness.provably_dead(identity) is False  # running
    process.kill()
    # Killed but not yet reaped (a zombie) it still has its /proc entry: not proven dead yet.
    assert liveness.provably_dead(identity) is False
    process.wait()
    assert liveness.provably_dead(identity) is True


def test_a_pid_now_naming_a_process_started_at_another_time_is_the_holder_dead() -> None:
    liveness = ProcLiveness()
    me = liveness.identity()
    assert me is not None
    # This process has the pid; the holder had it before (reused): another start time.
    assert liveness.provably_dead(replace(me, start_time=me.start_time + 1)) is True
    assert liveness.provably_dead(replace(me, start_time=me.start_time - 1)) is True


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"host": "another-host"},
        {"boot_id": "00000000-0000-0000-0000-000000000000"},  # rebooted since, or another VM
        {"pid_namespace": 1},  # another container: its pids are not ours
    ],
    ids=["host", "boot", "namespace"],
)
def test_a_dead_holder_of_another_host_boot_or_namespace_is_not_proven_dead(
    child: tuple[subprocess.Popen[bytes], ProcessIdentity], elsewhere: dict[str, object]
) -> None:
    process, identity = child
    process.kill()
    process.wait()
    liveness = ProcLiveness()
    assert liveness.provably_dead(identity) is True  # the same identity here: dead
    assert liveness.provably_dead(replace(identity, **elsewhere)) is False  # type: ignore[arg-type]


def test_without_a_readable_proc_nothing_is_proven_dead(tmp_path: Path) -> None:
    me = ProcLiveness().identity()
    assert me is not None
    unreadable = ProcLiveness(tmp_path / "no-proc")  # not Linux, or /proc not mounted
    assert unreadable.identity() is None
    assert unreadable.provably_dead(replace(me, pid=2**22 + 1)) is False


def test_a_proc_of_another_pid_namespace_tells_nothing(tmp_path: Path) -> None:
    """A /proc whose `self` is not this process (mounted from another namespace) is not used."""
    real = Path("/proc")
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text(
        (real / "sys/kernel/random/boot_id").read_text()
    )
    (tmp_path / "self/ns").mkdir(parents=True)
    (tmp_path / "self/ns/pid").symlink_to(real / "self/ns/pid")
    (tmp_path / "self/stat").write_text("1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0\n")
    assert ProcLiveness(tmp_path).identity() is None


def test_the_start_time_is_field_22_whatever_the_command_name_holds() -> None:
    rest = " ".join(str(n) for n in range(3, 30))  # field k holds k
    assert start_time(f"4242 (python) {rest}") == 22
    assert start_time(f"4242 (a ) (b 7) {rest}") == 22
    assert start_time("4242 (python) S 1 2") is None
    assert start_time("garbage") is None


@given(st.text())
def test_a_stat_line_that_does_not_parse_gives_no_start_time_instead_of_an_error(line: str) -> None:
    found = start_time(line)
    assert found is None or found >= 0


def test_the_identity_is_what_a_lease_records() -> None:
    me = ProcLiveness().identity()
    assert me is not None
    assert set(dataclasses.asdict(me)) == {"host", "boot_id", "pid_namespace", "pid", "start_time"}
    assert me.start_time > 0 and me.pid_namespace > 0 and len(me.boot_id) == 36
