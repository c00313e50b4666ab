"""Free ports on 127.0.0.1, for stacks, servers and receivers started side by side."""

from __future__ import annotations

import socket

_ports_given: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never one this process was given before:
    the kernel may hand the same free port to two quick calls (a stack's CRM
    and Rasa once got the same one)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def port_is_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
