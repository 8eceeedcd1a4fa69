"""Who owns an embedded store: its endpoint file, the engine's lock, and this process's serving.

The process that opens a ``chdb://PATH`` store owns it (chDB locks ``PATH/status`` with flock and
writes ``PID: n`` into it). While it owns the store it serves live queries (``endpoint.py``) and
advertises them in ``PATH/endpoint.json``: port, pid and a bearer token, mode 0600 so only the
owner's user (and root) can read the token. The owner removes the file when it closes the store;
a file whose pid is dead or whose endpoint does not answer is stale: ignored, then replaced by
the next owner.

chDB hosts one engine per process and shares it among the process's clients, so ownership is per
process: a second ``connect()`` in the owner opens the engine directly and shares the endpoint.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .endpoint import EndpointServer, EngineError

logger = logging.getLogger(__name__)

ENDPOINT_FILE = "endpoint.json"


@dataclass(frozen=True)
class Owner:
    """The live query endpoint of the process that owns a store."""

    pid: int
    port: int
    token: str


def advertised(path: str) -> Owner | None:
    """The endpoint another live process serves for the store at ``path``, if it answers."""
    try:
        data = json.loads(Path(path, ENDPOINT_FILE).read_text())
        owner = Owner(int(data["pid"]), int(data["port"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owner.pid == os.getpid() or not _alive(owner.pid) or not _answers(owner.port):
        return None
    return owner


def lock_holder(path: str) -> int | None:
    """The pid of another process holding the engine's lock on ``path`` (0: unknown), else None."""
    status = Path(path, "status")
    try:
        found = re.search(r"PID: (\d+)", status.read_text())
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    pid = int(found.group(1)) if found else 0
    try:
        if pid == os.getpid() or (pid and not _alive(pid)):
            return None  # ours, or left behind by a crash
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)  # nobody held it: the pid was reused
        return None
    except BlockingIOError:
        return pid
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().read() == b"Ok.\n"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@dataclass
class _Serving:
    server: EndpointServer
    users: int = 0


_lock = threading.Lock()
_serving: dict[str, _Serving] = {}  # per process, as chDB's engine is


def owned_here(path: str) -> bool:
    with _lock:
        return path in _serving


def serve(path: str) -> Callable[[], None]:
    """Serve live queries on the store at ``path`` (opened here); call the result on close.

    Serving is a service to other processes: when it cannot start, the owner logs a warning and
    goes on without it.
    """
    with _lock:
        serving = _serving.get(path)
        if serving is None:
            server = _start(path)
            if server is None:
                return lambda: None
            serving = _serving[path] = _Serving(server)
        serving.users += 1
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            _release(path)

    return release


def _start(path: str) -> EndpointServer | None:
    try:
        server = EndpointServer(path)
    except (OSError, EngineError) as exc:
        logger.warning("the store at %s does not serve live queries: %s", path, exc)
        return None
    try:
        server.start()
        _write(path, Owner(os.getpid(), server.port, server.token))
    except OSError as exc:
        server.stop()
        logger.warning("the store at %s does not serve live queries: %s", path, exc)
        return None
    return server


def _release(path: str) -> None:
    with _lock:
        serving = _serving[path]
        serving.users -= 1
        if serving.users:
            return
        del _serving[path]
        target = Path(path, ENDPOINT_FILE)
        try:  # first, so that no reader finds a closing endpoint
            if json.loads(target.read_text()).get("port") == serving.server.port:
                target.unlink()
        except (OSError, ValueError):
            pass
        serving.server.stop()


def _write(path: str, owner: Owner) -> None:
    target = Path(path, ENDPOINT_FILE)
    staged = target.with_name(f".{ENDPOINT_FILE}.{owner.pid}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"pid": owner.pid, "port": owner.port, "token": owner.token}, out)
    os.replace(staged, target)
