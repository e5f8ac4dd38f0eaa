"""A process's open sockets by family, read from /proc (Linux), for the no-network checks.

Shared by the privacy test and the BLE fault test: the daemon must hold only AF_UNIX sockets
(the asyncio self-pipe, D-Bus, sd_notify), never an inet, netlink or packet one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_INET_TABLES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    return inodes


def socket_families(pid: int, *, attempts: int = 3) -> dict[str, int]:
    """The families of ``pid``'s open sockets, by looking their inodes up in /proc/net.

    A socket opened or closed between listing the fds and reading the tables is looked up
    again (``attempts``); one that is gone by then is not counted."""
    found: dict[str, int] = {}
    inodes = _socket_inodes(pid)
    for _ in range(attempts):
        inodes = _lookup(pid, inodes, found)
        if not inodes:
            break
        inodes &= _socket_inodes(pid)  # still open?
    if inodes:
        found["unknown"] = len(inodes)
    return found


def _lookup(pid: int, inodes: set[str], found: dict[str, int]) -> set[str]:
    """Count the ``inodes`` found in the socket tables into ``found``; the rest."""
    inodes = set(inodes)
    for table in (*_INET_TABLES, "unix", "netlink", "packet"):
        try:
            text = Path(f"/proc/{pid}/net/{table}").read_text()
        except OSError:
            continue
        header, *rows = text.splitlines()
        col = header.split().index("Inode") if "Inode" in header.split() else None
        for row in rows:
            parts = row.split()
            if table in _INET_TABLES:
                ino = parts[9]
            elif col is not None and col < len(parts):
                ino = parts[col]
            else:
                ino = parts[-2] if table == "unix" else parts[-1]
            if ino in inodes:
                found[table] = found.get(table, 0) + 1
                inodes.discard(ino)
    return inodes
