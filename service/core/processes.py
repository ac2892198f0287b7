"""Which processes of this host are alive: what a dead one left (files, jobs) can be cleaned up at once.

Names written into shared places (a media volume, the job database) carry
the host as well as the process id, so a process only ever judges its own
host's processes: a pid says nothing about another machine.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket

HOST = socket.gethostname()
HOST_TAG = hashlib.sha256(HOST.encode()).hexdigest()[:8]  # the host in a file name: no dashes or dots to parse around


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (this process included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def worker_identity() -> str:
    """``HOST:PID:TOKEN``: who holds a job's lease (the token tells apart two stores of one process)."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_on_this_host(identity: str) -> bool:
    """Whether a ``worker_identity`` names a process of this host that no longer runs."""
    host, pid, _ = identity.rsplit(":", 2)
    return host == HOST and pid.isdigit() and not process_alive(int(pid))
