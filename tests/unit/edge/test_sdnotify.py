"""sd_notify over a real unix datagram socket, as systemd would receive it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.sdnotify import SdNotifier, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5.0)
    try:
        yield s, path
    finally:
        s.close()


def test_ready_status_watchdog_stopping_reach_the_socket(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = SdNotifier()
    assert n.enabled
    assert n.ready("model m, 1 device")
    assert sock.recv(4096) == b"READY=1\nSTATUS=model m, 1 device"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.status("line one\nline   two")
    assert sock.recv(4096) == b"STATUS=line one line two"
    assert n.stopping("draining")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"
    assert n.sent == 4
    n.close()


def test_abstract_namespace_address() -> None:
    name = f"edge-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5.0)
    try:
        n = SdNotifier("@" + name)
        assert n.ready()
        assert s.recv(100) == b"READY=1"
        n.close()
    finally:
        s.close()


def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = SdNotifier()
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False and n.sent == 0


def test_a_vanished_socket_is_counted_not_raised(tmp_path: Path) -> None:
    n = SdNotifier(str(tmp_path / "gone.sock"))
    assert n.enabled
    assert n.watchdog() is False
    assert n.failures == 1
    n.close()


def test_relative_address_is_ignored() -> None:
    assert not SdNotifier("relative/sock").enabled


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None
