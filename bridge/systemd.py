"""systemd's readiness protocol (``Type=notify``), spoken directly over ``$NOTIFY_SOCKET``.

The protocol is one datagram per state change on a Unix socket systemd names in the
environment; no library is needed for it.  The bridge says ``READY=1`` once connected to the
broker, ``RELOADING=1`` (then ``READY=1``) around a SIGHUP reload and ``STOPPING=1`` on its way
out.  Without ``$NOTIFY_SOCKET`` (not started by systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import time

_LOGGER = logging.getLogger(__name__)


def notify(*states: str) -> bool:
    """Send ``states`` (``"READY=1"``...) to systemd; whether a socket was there to hear it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as err:
        _LOGGER.warning("could not notify systemd (%s): %s", address.lstrip("\0"), err)
        return False
    return True


def reloading() -> bool:
    """``RELOADING=1`` with the monotonic time systemd 253+ asks for."""
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={now_us}")
