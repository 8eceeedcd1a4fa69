"""What benches measure of the processes they start: CPU time, and a port for a server."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port free now (for a server the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settle(pid: int | None, cores: float = 0.1, timeout: float = 15.0) -> float:
    """Wait until a process (the broker) uses under ``cores`` over half a second, at most
    ``timeout`` seconds; returns the seconds waited. On two vCPUs a process's CPU per event rises
    by up to a third while a busy neighbour shares the core, so a measured phase starts once the
    broker has finished what the previous phase left it (log flushes, its JIT, its GC)."""
    began = time.monotonic()
    if pid is None:
        return 0.0
    while time.monotonic() - began < timeout:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if not cpu_seconds(pid) - before >= cores * 0.5:  # (NaN without /proc: no wait)
            break
    return time.monotonic() - began
