"""A Lambda execution environment in a child process, for tests of the stream handler as Lambda
runs it: the handler module imported once (module-level code runs then, as in a cold start),
then invoked event by event, one JSON event per line on stdin, one JSON answer per line out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SANDBOX = """
import json, sys
from entrypoints import lambda_handlers  # the cold start: module-level code runs now
print(json.dumps({"imported": True}), flush=True)
for line in sys.stdin:
    print(json.dumps(lambda_handlers.stream_worker_handler(json.loads(line), None)), flush=True)
"""


class Sandbox:
    """One Lambda execution environment: imported once, then invoked event by event."""

    def __init__(self, env: dict[str, str]) -> None:
        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [sys.executable, "-c", SANDBOX],
            cwd=root,
            env={**env, "PYTHONPATH": str(root)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.started = self._answer()

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the sandbox died (exit {self.process.wait()})"
        return json.loads(line)

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(event).encode() + b"\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
