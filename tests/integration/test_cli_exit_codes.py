"""The CLI's expected failures: one line on stderr, the documented exit code, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from entrypoints.cli import Exit, main

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("which", ["--port", "--h2c-port"])
def test_the_emulator_on_a_busy_port_fails_at_once(
    which: str, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = {"--port": free_port(), "--h2c-port": free_port(), which: taken_port}
    argv = ["emulator", "--port", str(ports["--port"]), "--h2c-port", str(ports["--h2c-port"])]

    assert main(argv) == Exit.ENVIRONMENT

    assert f"port {taken_port} on 127.0.0.1 is in use" in one_line(capsys.readouterr().err)


def test_a_setting_that_cannot_be_read_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAX_LINE_BYTES", "lots")

    assert main(["process-scored-files", "s3://b/scored/c.1.txt", "--quiet"]) == Exit.ENVIRONMENT

    line = one_line(capsys.readouterr().err)
    assert "configuration" in line and "MAX_LINE_BYTES" in line


def test_an_endpoint_that_refuses_connections_is_a_failure_to_re_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "LOG_LEVEL": "CRITICAL",
    }.items():
        monkeypatch.setenv(name, value)

    code = main(["process-scored-files", "s3://b/scored/c.1.txt", "--quiet", "--sequential"])

    assert code == Exit.FAILED
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
