"""A real MQTT broker for tests: Debian's ``mosquitto`` on a free loopback port, and a subscriber.

:class:`Mosquitto` writes a temporary config (optionally with users, TLS from
:func:`make_tls`, and persistence so that a persistent subscriber's session and its queued
QoS-1 messages survive a restart), starts the broker, and stops it (SIGTERM, which saves
the persistence file) or kills it. :class:`Collector` is a subscriber built on aiomqtt that
keeps every message it receives and reconnects by itself across broker restarts.

Tests that need the broker call :func:`require_mosquitto` first: without the binary they
fail with the install hint, never skip (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import getpass
import ipaddress
import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

__all__ = ["Collector", "Link", "Mosquitto", "Received", "TlsFiles", "free_port", "make_tls",
           "require_mosquitto", "until"]


def _binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()),
        None)


def require_mosquitto() -> str:
    """The broker binary's path. A missing broker fails the test, saying how to install it:
    the broker is a real part of these tests, and a skip would read as a pass."""
    path = _binary("mosquitto")
    if path is None:
        pytest.fail("Debian's mosquitto broker is not installed "
                    "(apt-get install mosquitto mosquitto-clients; .ci/run installs it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the self-signed CA certificate (what the client trusts)
    cert: Path  # the broker's certificate, signed by the CA, for 127.0.0.1 and localhost
    key: Path


def make_tls(root: Path) -> TlsFiles:
    """A throw-away CA and a broker certificate signed by it (``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    root.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wearable-edge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(root / "ca.pem", root / "broker.pem", root / "broker.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


class Mosquitto:
    """One broker process with its own directory, config, log and persistence file."""

    def __init__(self, root: Path, *, tls: TlsFiles | None = None,
                 users: dict[str, str] | None = None, port: int | None = None) -> None:
        self.binary = require_mosquitto()
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.users = users or {}
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "mosquitto.log"
        self.conf = root / "mosquitto.conf"
        self._write_config()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence true",
            f"persistence_location {self.root}/",
            # a persistent subscriber's queue must hold a whole outage's messages
            "max_queued_messages 100000",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            # run as the test's user (as root, mosquitto would switch to `mosquitto`, who
            # cannot read the temporary directory)
            f"user {getpass.getuser()}",
        ]
        if self.users:
            pw = self.root / "passwd"
            pw.write_text("")
            tool = _binary("mosquitto_passwd")
            if tool is None:
                pytest.fail("mosquitto_passwd (package mosquitto) is not installed")
            for user, password in self.users.items():
                subprocess.run([tool, "-b", str(pw), user, password], check=True,
                               capture_output=True, timeout=30)
            lines.append(f"password_file {pw}")
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.cert}",
                      f"keyfile {self.tls.key}"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, within_s: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {err}"
                                   f"{self.log_text()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {within_s} s")

    def stop(self) -> None:
        """SIGTERM: the broker saves its persistence file (sessions, queued messages)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Link:
    """A TCP relay to the broker that a test can hold and cut, losing what is in transit.

    ``hold()``: bytes from the client are read but not forwarded (messages in flight, never
    acknowledged). ``cut()``: every connection is aborted, held bytes are discarded, and new
    connections are refused until ``restore()``: a network failure, with the broker itself
    (and its other clients) unaffected.
    """

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.port = free_port()
        self.held_bytes = 0
        self._forward = asyncio.Event()
        self._forward.set()
        self._refuse = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def hold(self) -> None:
        self._forward.clear()

    def cut(self) -> None:
        self._refuse = True
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()
        self.held_bytes = 0
        self._forward.set()  # wakes the pumps, which find their connections gone

    def restore(self) -> None:
        self._refuse = False
        self._forward.set()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refuse:
            writer.transport.abort()
            return
        b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.broker.port)
        self._writers += [writer, b_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, held: bool) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    if held and not self._forward.is_set():
                        self.held_bytes += len(data)
                        await self._forward.wait()
                        if self._refuse:
                            return  # cut while held: these bytes are lost in transit
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, b_writer, True), pump(b_reader, writer, False))


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.payload)


class Collector:
    """An aiomqtt subscriber that keeps every message (QoS 1), reconnecting on its own.

    ``persistent``: a fixed client id and ``clean_session=False``, so messages published
    while it is disconnected (a broker restart) are queued for it by the broker.
    """

    def __init__(self, broker: Mosquitto, topic: str = "#", *, persistent: bool = False,
                 client_id: str = "test-collector", username: str | None = None,
                 password: str | None = None) -> None:
        self.broker = broker
        self.topic = topic
        self.persistent = persistent
        self.client_id = client_id
        self.username = username
        self.password = password
        self.messages: list[Received] = []
        self.subscriptions = 0
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _tls(self) -> ssl.SSLContext | None:
        if self.broker.tls is None:
            return None
        return ssl.create_default_context(cafile=str(self.broker.tls.ca))

    async def _run(self) -> None:
        import aiomqtt

        while True:
            try:
                async with aiomqtt.Client(
                        "127.0.0.1", self.broker.port, identifier=self.client_id,
                        clean_session=not self.persistent, username=self.username,
                        password=self.password, tls_context=self._tls(), keepalive=5,
                        timeout=5) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.subscriptions += 1
                    self._subscribed.set()
                    async for m in client.messages:
                        p = m.payload
                        data = p if isinstance(p, bytes) else str(p or "").encode()
                        self.messages.append(Received(str(m.topic), bytes(data), m.retain,
                                                      time.monotonic()))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(10):
            await self._subscribed.wait()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(self, what: str, predicate: Callable[[], bool],
                       within_s: float = 10.0) -> None:
        await until(f"{what} ({len(self.messages)} messages received so far)", predicate,
                    within_s)


async def until(what: str, predicate: Callable[[], bool], within_s: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {within_s} s: {what}")
        await asyncio.sleep(0.02)
