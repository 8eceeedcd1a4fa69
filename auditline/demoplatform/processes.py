"""The Kafka demo's processes: ``auditline worker``, ``sink`` and ``alerts tail`` as children.

Each child is ``python -m auditline.cli ...`` with the demo's environment. Its standard error
goes to its log file; its standard output is read line by line into the same file, watched for
its ready line and, for the alert service, forwarded to the demo's output. Every failure names
the log to read. ``stop`` sends SIGTERM and waits (SIGKILL only past the wait).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from auditline.errors import UnavailableError

STOP_WAIT_S = 30.0


class Child:
    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        ready: str | None = None,
        forward: Callable[[str], None] | None = None,
    ) -> None:
        self.name, self.log, self.ready_line = name, log, ready
        self.forward = forward
        self.ready = threading.Event()
        self.started = time.monotonic()
        with log.open("ab") as errors:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "auditline.cli", *args], cwd=cwd, env=dict(env),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
            )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name=f"demo-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.popen.stdout
        assert stdout is not None
        with self.log.open("a", encoding="utf-8") as log:
            for raw in stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if self.ready_line is not None and line.startswith(self.ready_line):
                    self.ready.set()
                if self.forward is not None:
                    self.forward(line)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the start to the ready line; an ``UnavailableError`` if the child exits
        first or ``timeout`` passes."""
        deadline = self.started + timeout
        while not self.ready.wait(0.2):
            self.check()
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"the {self.name} was not ready within {timeout:.0f} s: see {self.log}"
                )
        return time.monotonic() - self.started

    def check(self) -> None:
        """An ``UnavailableError`` naming the log if the child has exited."""
        code = self.popen.poll()
        if code is not None:
            raise UnavailableError(f"the {self.name} exited with code {code}: see {self.log}")

    def stop(self) -> int:
        """SIGTERM, then wait for the child and for the last of its output; its exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(5)
        return self.popen.returncode


class Lines:
    """Lines from several threads to one output, whole lines only; ``to`` redirects them (to a
    live display while it runs)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.to: Callable[[str], None] | None = None
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.count += 1
            if self.to is not None:
                self.to(line)
            else:
                self.out.write(line + "\n")
                self.out.flush()
