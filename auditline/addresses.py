"""Where auditline's servers listen, and who may call them (pure): the one port type of every
command-line ``--port`` and the one loopback test of bind addresses and ``Host`` headers."""

from __future__ import annotations

import argparse
import ipaddress


def port(text: str) -> int:
    """A ``--port`` value (an argparse ``type``): 0 to 65535, 0 for any free port."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535; 0: any free one)")
    return int(text)


def is_loopback(host: str) -> bool:
    """Whether a host (a name or an address) is this machine only: ``localhost`` or a loopback
    address. Another name may resolve to any address, so it is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host of an HTTP ``Host`` header, without its port (``[::1]:8765`` → ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", maxsplit=1)[0]
    return header.split(":", maxsplit=1)[0]
