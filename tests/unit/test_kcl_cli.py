from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from entrypoints.kcl_cli import (
    DaemonSupervisor,
    daemon_config,
    daemon_environment,
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
    supervisor = DaemonSupervisor(command, restart_delay_seconds=0)
    assert supervisor.run() == 0
    assert supervisor.exit_codes == [1, 1, 0]
    assert supervisor.starts == 3


def test_restarts_are_bounded(tmp_path: Path) -> None:
    supervisor = DaemonSupervisor(
        _script(tmp_path, "import sys; sys.exit(1)\n"), max_restarts=2, restart_delay_seconds=0
    )
    assert supervisor.run() == 1
    assert supervisor.starts == 3


def test_stop_sends_sigterm_and_does_not_restart(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    command = _script(
        tmp_path,
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        f"pathlib.Path({str(ready)!r}).write_text('up')\n"
        "time.sleep(60)\n",
    )
    supervisor = DaemonSupervisor(command, restart_delay_seconds=0)
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
    args = parser.parse_args(["kcl", "run", "save_selection", "--max-restarts", "2"])
    assert args.max_restarts == 2 and callable(args.run)
