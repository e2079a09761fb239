from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from domain.backoff import Backoff, no_wait
from entrypoints.kcl_cli import (
    AlreadySupervised,
    DaemonSupervisor,
    WorkerLock,
    daemon_config,
    daemon_environment,
    default_lock_path,
    exit_reason,
    register,
    write_properties,
)
from entrypoints.settings import Settings


def _properties(path: Path) -> dict[str, str]:
    pairs = [line.split(" = ", 1) for line in path.read_text().splitlines() if " = " in line]
    return {key: value for key, value in pairs}


def test_local_properties_point_at_the_emulator_and_are_tuned(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
            "INPUT_STREAM": "prd2011-dev1-vf1-input-stream",
        }
    )
    config = daemon_config(
        "save_campaign_data", settings, kinesis_endpoint="http://127.0.0.1:4567", worker_id="w1"
    )
    values = _properties(write_properties(config, tmp_path))
    assert values["streamName"] == "prd2011-dev1-vf1-input-stream"
    assert values["applicationName"] == "campaign-workers-save_campaign_data"
    assert values["kinesisEndpoint"] == "http://127.0.0.1:4567"  # the h2c door
    assert values["dynamoDBEndpoint"] == "http://127.0.0.1:4566"
    assert values["retrievalMode"] == "POLLING"
    assert values["metricsLevel"] == "NONE"
    assert values["initialPositionInStream"] == "TRIM_HORIZON"
    assert values["workerId"] == "w1"
    assert int(values["shutdownGraceMillis"]) > 0
    assert int(values["failoverTimeMillis"]) <= 5000
    assert values["executableName"].split()[1:] == [
        "-m",
        "entrypoints.kcl_main",
        "save_campaign_data",
        "--stream",
        "prd2011-dev1-vf1-input-stream",
    ]
    assert (tmp_path / "logback.xml").read_text().count("System.err") == 1


def test_against_aws_no_endpoints_and_no_local_tuning(tmp_path: Path) -> None:
    config = daemon_config("save_selection", Settings.from_env({"AWS_REGION": "eu-west-1"}))
    values = _properties(write_properties(config, tmp_path))
    assert values["streamName"] == "save-selection-stream"
    assert values["regionName"] == "eu-west-1"
    assert "kinesisEndpoint" not in values and "dynamoDBEndpoint" not in values
    assert "retrievalMode" not in values and "failoverTimeMillis" not in values


def test_the_daemon_environment_lets_children_import_the_project() -> None:
    env = daemon_environment(Settings.from_env({"AWS_ENDPOINT_URL": "http://localhost:4566"}), {})
    root = str(Path(__file__).resolve().parents[2])
    assert env["PYTHONPATH"].split(":")[0] == root
    assert env["AWS_ACCESS_KEY_ID"]  # the SDK's default chain wants some for the emulator


def _script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "fake_daemon.py"
    script.write_text(body)
    return [sys.executable, str(script)]


def test_a_daemon_that_exits_1_is_restarted_until_it_exits_cleanly(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    command = _script(
        tmp_path,
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "sys.exit(0 if n == 3 else 1)\n",
    )
    supervisor = DaemonSupervisor(command, restart_backoff=no_wait())
    assert supervisor.run() == 0
    assert supervisor.exit_codes == [1, 1, 0]
    assert supervisor.starts == 3


def test_restarts_back_off_and_do_not_give_up_by_themselves(tmp_path: Path) -> None:
    """Twelve failures in a row (five used to end supervision) are restarted, each wait
    longer than the last up to the cap; only a configured give-up stops it."""
    waits: list[float] = []
    clock = [0.0]
    counter = tmp_path / "runs"
    command = _script(
        tmp_path,
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "sys.exit(0 if n == 13 else 1)\n",
    )
    backoff = Backoff(base_seconds=1.0, cap_seconds=60.0, retries=10**6, random=lambda: 1.0)

    def record(_stopping: threading.Event, seconds: float) -> bool:
        waits.append(seconds)
        return False

    supervisor = DaemonSupervisor(
        command, restart_backoff=backoff, clock=lambda: clock[0], wait_or_stop=record
    )
    assert supervisor.run() == 0
    assert supervisor.starts == 13
    assert waits[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert set(waits[7:]) == {60.0}

    given_up = DaemonSupervisor(
        _script(tmp_path, "import sys; sys.exit(1)\n"),
        restart_backoff=no_wait(),
        give_up_after_seconds=0.0,
    )
    assert given_up.run() == 1
    assert given_up.starts == 1


def test_each_restart_says_why_the_daemon_ended() -> None:
    assert exit_reason(-9) == "the JVM was killed by SIGKILL"
    assert "record processor died" in exit_reason(1)
    assert "JVM failure" in exit_reason(2)


def test_a_second_supervisor_with_the_same_worker_id_refuses_to_start(tmp_path: Path) -> None:
    path = default_lock_path("app", "worker@host")
    lock = WorkerLock(tmp_path / path.name)
    with lock:
        second = DaemonSupervisor(
            _script(tmp_path, "raise SystemExit('must never start')\n"),
            lock=WorkerLock(tmp_path / path.name),
        )
        with pytest.raises(AlreadySupervised, match=rf"pid {os.getpid()}\b"):
            second.run()
        assert second.starts == 0
    # Released: the next one may start.
    after = DaemonSupervisor(
        _script(tmp_path, "import sys; sys.exit(0)\n"), lock=WorkerLock(tmp_path / path.name)
    )
    assert after.run() == 0


def test_the_daemon_dies_with_its_supervisor_even_under_sigkill(tmp_path: Path) -> None:
    """A SIGKILLed `kcl run` used to leave its JVM running beside the next one."""
    child_pid = tmp_path / "child.pid"
    daemon = _script(
        tmp_path,
        "import os, pathlib, time\n"
        f"pathlib.Path({str(child_pid)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(300)\n",
    )
    supervisor_main = tmp_path / "supervise.py"
    supervisor_main.write_text(
        "import sys\n"
        "from entrypoints.kcl.supervisor import DaemonSupervisor\n"
        f"DaemonSupervisor({daemon!r}).run()\n"
    )
    root = Path(__file__).resolve().parents[2]
    supervisor = subprocess.Popen([sys.executable, str(supervisor_main)], cwd=root)
    try:
        deadline = time.monotonic() + 60
        while not child_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(child_pid.read_text())
        assert os.getpgid(pid) == pid, "the daemon has its own process group"
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists() or _state(pid) == "Z", "the daemon outlived it"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_stop_sends_sigterm_and_does_not_restart(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    command = _script(
        tmp_path,
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        f"pathlib.Path({str(ready)!r}).write_text('up')\n"
        "time.sleep(60)\n",
    )
    supervisor = DaemonSupervisor(command, restart_backoff=no_wait())
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(supervisor.run()))
    runner.start()
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.stop(timeout=20) == 143
    runner.join(20)
    assert result == [143]
    assert supervisor.starts == 1


def test_the_cli_registers_kcl_properties_and_run() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kcl", "properties", "save_campaign_data", "--worker-id", "w9"])
    assert args.worker == "save_campaign_data" and args.worker_id == "w9"
    args = parser.parse_args(["kcl", "run", "save_selection", "--give-up-after", "3600"])
    assert args.give_up_after == 3600 and callable(args.run)
