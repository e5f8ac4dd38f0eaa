"""``edge-daemon``: the hub runtime's command line.

    edge-daemon [run] --device {ble,serial,sim,replay} [options]   decide (the default command)
    edge-daemon scan                                              list nearby BLE wearables
    edge-daemon calibrate --device ... [--resident NAME]          (re)set a resident's baseline
    edge-daemon history [--wearer W] [--since 24h] [--json]       what the database holds, in words
    edge-daemon status [--json]                                   the running daemon, live
    edge-daemon label --wearer W --from T1 --to T2 --state S      confirm what a wearer felt
    edge-daemon label --alert ID --yes|--no                       answer a stress alert
    edge-daemon personalize [--wearer W]                          fit wearers' own heads
    edge-daemon check-config FILE                                 validate a config, start nothing
    edge-daemon install-service [--root DIR]                      the systemd service (as root)

Every option is also a key of the ``--config`` TOML file (``--port`` is ``serial.port``;
the others have the same name with ``_`` for ``-``); the command line wins. Exit status:
0 done, 1 the daemon could not start, failed, lost a record, or (a finite run) never got
data from its source (one line says why: :mod:`edge.exit_status`), 2 a usage or
configuration error.

The CLI owns the process, so it owns the signals: SIGTERM or SIGINT asks the daemon to stop
(drain, flush); a second one stops waiting for the drain.
"""

# ruff: noqa: T201 - a command line prints its results and errors (library code logs)
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from core.errors import ConfigError, WearableEdgeError
from edge.config import BACKENDS, DEVICES, PRECISIONS, DaemonConfig, apply_overrides, load_config
from edge.sources.options import SIM_KINDS

if TYPE_CHECKING:
    from edge.daemon import Daemon

__all__ = ["CLI_TO_CONFIG", "build_parser", "main"]

log = logging.getLogger("edge.cli")

# argparse dest -> dotted config key (the TOML spelling of every option)
CLI_TO_CONFIG: Final = {
    "device": "device",
    "bundle": "bundle",
    "db": "db",
    "no_db": "sinks.sqlite",
    "json": "json",
    "jsonl": "sinks.jsonl_path",
    "duration": "duration",
    "speed": "speed",
    "backend": "backend",
    "precision": "precision",
    "threads": "threads",
    "log_level": "log_level",
    "port": "serial.port",
    "baud": "serial.baud",
    "ble_device": "ble.devices",
    "file": "replay.file",
    "recording": "sim.recording",
    "sim_devices": "sim.devices",
    "sim_days": "sim.days",
    "sim_kind": "sim.kind",
    "record_raw": "record_raw",
    "resident": "resident",
    "state_dir": "state_dir",
    "status": "health.status_line",
    "health_interval": "health.interval_s",
    "summary_json": "summary_json",
    "mqtt": "mqtt.url",
    "trusted_key": "trusted_keys",
    "allow_unsigned": "allow_unsigned",
    "fleet": "fleet.url",
    "fleet_ca": "fleet.root_certificates",
}
# where the systemd unit keeps its state (StateDirectory=wearable-edge): `history` and
# `status` look there when the user's own state directory has nothing
SERVICE_STATE_DIR: Final = Path("/var/lib/wearable-edge")
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

_EPILOG = """\
examples:
  edge-daemon --device sim --duration 45 --speed 60       the demo: 45 min of a simulated
                                                          wearable in 45 s, live states
  edge-daemon --device serial --port /dev/ttyUSB0         a wearable on a USB-serial adapter
  edge-daemon --device ble --ble-device AA:BB:CC:DD:EE:FF a BLE wearable (see: edge-daemon scan)
  edge-daemon --device replay --file S2.pkl --speed 100   replay a WESAD subject, compare with
                                                          its labels
  edge-daemon --device sim --mqtt mqtt://127.0.0.1       publish to a local broker; Home
                                                          Assistant finds the wearers itself
  edge-daemon --config /etc/wearable-edge/edge-daemon.toml
  edge-daemon status                                      what the running daemon sees now
  edge-daemon history --since 7d --wearer anna            a week of anna's states and alerts

Only derived states (state, class probabilities, events) are stored or printed; raw sensor
samples never leave the hub and are written only to --record-raw, if you ask for it.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``--threads abc`` is a line naming the flag and where
    help is, not a usage dump of every option."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (`{self.prog} --help` lists the "
                              "options)\n")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source")
    src.add_argument("--device", type=_device_arg, metavar="{ble,serial,sim,replay}",
                     help="where data comes from (default: sim, a simulated wearable); "
                          "serial:PATH is short for --device serial --port PATH")
    src.add_argument("--port", help="serial port for --device serial (default /dev/ttyUSB0)")
    src.add_argument("--baud", type=int, help="serial baud rate (default 115200)")
    src.add_argument("--ble-device", action="append", metavar="ADDR|NAME",
                     help="BLE wearable address or advertised name (repeat for several; "
                          "default: any wearable offering our service or Heart Rate)")
    src.add_argument("--file", help="for --device replay: a WESAD S*.pkl, a .npz recording or "
                                    "a frame file made with --record-raw")
    src.add_argument("--recording", help="for --device sim: the recording the simulator plays "
                                         "(default: the demo recording)")
    src.add_argument("--sim-devices", type=int, metavar="N",
                     help="for --device sim: how many simulated wearables (default 1)")
    src.add_argument("--sim-days", type=float, metavar="N",
                     help="for --device sim: instead of the recording, N days and nights of a "
                          "simulated resident (wrist movement and light; nights fragment from "
                          "day 10) for the daily activity report; try --speed 100000")
    src.add_argument("--sim-kind", choices=SIM_KINDS,
                     help="for --device sim: wrist (the full wrist service, default), hr (a "
                          "stock heart-rate strap: RR intervals, heart rate, contact) or "
                          "mixed (one of each in turn)")
    src.add_argument("--speed", type=float, metavar="X",
                     help="sim/replay: play X times faster than real time (default 1)")
    src.add_argument("--duration", type=float, metavar="SECONDS",
                     help="stop after this many seconds of wall time (default: run until the "
                          "source ends or SIGTERM)")
    src.add_argument("--resident", metavar="NAME",
                     help="resident id for a single wearable (default: the device's own id)")

    model = p.add_argument_group("model")
    model.add_argument("--bundle", metavar="DIR", action="append",
                       help="model bundle directory or .tar; repeat for one per kind of "
                            "wearable, each device gets the one that fits what it offers "
                            "(default: the bundled wrist and heart-rate demo models)")
    model.add_argument("--backend", choices=BACKENDS,
                       help="inference runtime; auto measures the bundle's formats at start "
                            "and picks the fastest (default auto)")
    model.add_argument("--precision", choices=PRECISIONS,
                       help="model precision (default auto: as measured / recommended)")
    model.add_argument("--threads", type=int, metavar="N", help="engine threads (default 1)")
    model.add_argument("--trusted-key", action="append", metavar="FILE",
                       help="an Ed25519 public key (PEM) trusted to sign bundles, beside "
                            "/etc/wearable-edge/trusted-keys/*.pem, your own export key and "
                            "the demo key (repeat for several)")
    model.add_argument("--allow-unsigned", action="store_const", const=True, default=None,
                       help="development only: run a bundle that carries no signature "
                            "(logged as a warning); a bad signature is still refused")

    out = p.add_argument_group("output")
    out.add_argument("--db", metavar="PATH",
                     help="SQLite database (default $STATE_DIRECTORY or ~/.local/state/"
                          "wearable-edge/edge.db)")
    out.add_argument("--no-db", action="store_const", const=False, default=None,
                     help="do not write the SQLite database")
    out.add_argument("--json", action="store_const", const=True, default=None,
                     help="one JSON line per decision and event on stdout")
    out.add_argument("--jsonl", metavar="FILE", help="also append JSON lines to FILE")
    out.add_argument("--record-raw", metavar="FILE",
                     help="write every raw frame received to FILE (local; off by default)")
    out.add_argument("--state-dir", metavar="DIR",
                     help="database and per-resident baselines (default $STATE_DIRECTORY or "
                          "~/.local/state/wearable-edge)")
    out.add_argument("--status", choices=("auto", "on", "off"),
                     help="live status line (default auto: when stdout is a terminal)")
    out.add_argument("--health-interval", type=float, metavar="SECONDS",
                     help="health line in the log this often (default 60)")
    out.add_argument("--summary-json", metavar="FILE",
                     help="also write the end-of-run summary to FILE as JSON")
    out.add_argument("--mqtt", metavar="URL",
                     help="publish derived states and alerts to this MQTT broker, with Home "
                          "Assistant discovery: mqtt://[user@]host[:port], mqtts:// for TLS; "
                          "the password comes only from [mqtt] password_file or password_env "
                          "in the --config file, never from the command line")
    fl = p.add_argument_group("federation (edge-fleet serve on the coordinator)")
    fl.add_argument("--fleet", metavar="URL",
                    help="join a care home's federation: https://HOST:PORT of the coordinator "
                         "(http:// without TLS, test networks only); only trained model "
                         "updates leave the hub (needs wearable-edge[fleet])")
    fl.add_argument("--fleet-ca", metavar="FILE",
                    help="the CA certificate (PEM) that signed the coordinator's")


def _device_arg(value: str) -> str:
    kind = value.split(":", 1)[0]
    if kind not in DEVICES or (":" in value and kind != "serial"):
        raise argparse.ArgumentTypeError(
            f"invalid device {value!r} (choose from {', '.join(DEVICES)}, or serial:PATH)"
        )
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml",
                   help="configuration file; every option can be set there")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="log verbosity (default info)")
    p.add_argument("-v", "--verbose", action="store_true", help="same as --log-level debug")


def build_parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="edge-daemon",
        description="wearable-edge hub daemon: reads wearables (BLE, serial, simulated or "
                    "replayed), classifies baseline / stress / amusement on the hub, and stores "
                    "only derived states. `edge-daemon --device sim` runs the demo; "
                    "`edge-daemon run --help` lists every option.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    sub = top.add_subparsers(dest="command", metavar="{run,scan,calibrate,history,status,"
                                                     "label,personalize,check-config,"
                                                     "install-service}")
    run = sub.add_parser("run", help="read, decide, store (the default command)",
                         description="Run the hub pipeline until the source ends, --duration "
                                     "passes, or SIGTERM/SIGINT (which drain and flush).",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    _add_common(run)
    _add_run_options(run)

    scan = sub.add_parser("scan", help="list nearby BLE wearables and what they offer",
                          description="Listen for BLE advertisements and list the devices, "
                                      "their signal strength and the profiles they offer.")
    _add_common(scan)
    scan.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                      help="how long to listen (default 5)")
    scan.add_argument("--all", action="store_true",
                      help="also list devices the daemon cannot read")
    scan.add_argument("--adapter", help="Bluetooth adapter, e.g. hci0 (default: BlueZ's)")

    cal = sub.add_parser("calibrate", help="record a resident's baseline now",
                         description="Read the wearable for the model's calibration period "
                                     "(the resident at rest), store the baseline on the hub "
                                     "(replacing any earlier one) and exit.")
    _add_common(cal)
    _add_run_options(cal)
    _add_reader_commands(sub)
    from edge.personal.cli import add_commands

    add_commands(sub, _add_common)
    _add_install_commands(sub)
    return top


def _add_install_commands(sub: Any) -> None:
    """``check-config`` and ``install-service``: set a hub up; they run no daemon."""
    chk = sub.add_parser(
        "check-config", help="validate a configuration file without starting",
        description="Load FILE as the daemon would (unknown keys get a did-you-mean) and "
                    "verify the bundles it names; start nothing. Exit 0 when it is good.")
    chk.add_argument("file", type=Path, metavar="FILE")
    inst = sub.add_parser(
        "install-service", help="install the systemd service (as root)",
        description="Write the systemd unit, a system user (wearable-edge, in the dialout "
                    "and bluetooth groups), /etc/wearable-edge/edge-daemon.toml from the "
                    "shipped example (an existing one is kept) and the state directory "
                    "/var/lib/wearable-edge; then create the user and reload systemd. With "
                    "--root DIR, write the files under DIR only (an image, a test).")
    inst.add_argument("--root", type=Path, metavar="DIR",
                      help="write under DIR instead of / and change nothing on this system")
    inst.add_argument("--trusted-key", type=Path, metavar="FILE",
                      help="public key to pin for bundles (default: your export key, "
                           "~/.config/wearable-edge/bundle-signing.pub.pem, if there is one)")


def _add_reader_commands(sub: Any) -> None:
    """``history`` and ``status``: read what a daemon stored or is doing; they run none."""
    hist = sub.add_parser(
        "history", help="states, episodes and alerts from the database, in words",
        description="Print what the hub's database holds for each wearer: time in each "
                    "state, episodes, alerts and events, in the hub's local time. Reads only: "
                    "safe while the daemon runs.")
    _add_common(hist)
    hist.add_argument("--wearer", metavar="NAME", help="only this wearer (resident id)")
    hist.add_argument("--since", default="24h", metavar="DURATION",
                      help="how far back: 30m, 24h, 7d, ... or `all` (default 24h)")
    hist.add_argument("--json", dest="as_json", action="store_true",
                      help="the same as JSON (episodes, time in state, events)")
    hist.add_argument("--db", metavar="PATH", help="the database (default STATE_DIR/edge.db)")
    hist.add_argument("--state-dir", metavar="DIR",
                      help="the daemon's state directory (default as the daemon's; the "
                           "service's /var/lib/wearable-edge when yours has none)")

    status = sub.add_parser(
        "status", help="the running daemon now: wearers, last decisions, alerts, health",
        description="Read the status file the running daemon rewrites every few seconds "
                    "(STATE_DIR/status.json) and say what it shows, or that the daemon "
                    "stopped or stopped responding. Exit status 0 when it runs, 1 when not.")
    _add_common(status)
    status.add_argument("--json", dest="as_json", action="store_true",
                        help="the status file's content, with its age and verdict")
    status.add_argument("--state-dir", metavar="DIR",
                        help="the daemon's state directory (default as the daemon's; the "
                             "service's /var/lib/wearable-edge when yours has none)")


def _argv_with_command(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    if not args or args[0] not in ("run", "scan", "calibrate", "history", "status", "label",
                                   "personalize", "check-config", "install-service", "-h",
                                   "--help"):
        args.insert(0, "run")  # `edge-daemon --device sim` means `edge-daemon run --device sim`
    if args[0] == "label":
        from edge.personal.cli import glue_times

        args = glue_times(args)
    return args


def _config_from_args(args: argparse.Namespace) -> DaemonConfig:
    """The configuration file, then the flags; a ConfigError names what the user typed:
    the flag (``--duration``), or the key and the file it is in."""
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise _SaidError(f"{args.config}: {e}", key=e.key) from e
    try:
        return _apply_flags(cfg, args)
    except ConfigError as e:
        flag = next((d for d, k in CLI_TO_CONFIG.items() if k == e.key
                     and getattr(args, d, None) is not None), None)
        if flag is None:
            raise
        raise _SaidError(f"--{flag.replace('_', '-')}: {_reason(e)}", key=e.key) from e


class _SaidError(ConfigError):
    """A ConfigError worded as the user met it: the flag they typed, or the file and key."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message, key=key)
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


def _reason(e: ConfigError) -> str:
    return str(e).removeprefix(f"config key {e.key!r}: ")


def _apply_flags(cfg: DaemonConfig, args: argparse.Namespace) -> DaemonConfig:
    overrides: dict[str, Any] = {}
    for dest, key in CLI_TO_CONFIG.items():
        if hasattr(args, dest):
            overrides[key] = getattr(args, dest)
    if getattr(args, "verbose", False):
        overrides["log_level"] = "debug"
    if overrides.get("trusted_keys"):  # --trusted-key adds to the config file's keys
        overrides["trusted_keys"] = [*cfg.trusted_keys, *overrides["trusted_keys"]]
    bundles = overrides.get("bundle")
    if isinstance(bundles, list):  # --bundle A --bundle B: the first, then the others
        overrides["bundle"] = bundles[0]
        if len(bundles) > 1:
            overrides["bundles"] = bundles[1:]
    device = overrides.get("device")
    if device is not None and device.startswith("serial:"):
        overrides["device"], overrides["serial.port"] = "serial", device.split(":", 1)[1]
    return apply_overrides(cfg, overrides)


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` owner-only (0600), like every file the daemon creates: the
    summary counts a resident's states."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        f.write(text)


def _stop_on_signals(daemon: Daemon) -> Callable[[], None]:
    """SIGTERM/SIGINT on the running loop: the first asks ``daemon`` to stop (drain, flush),
    a later one stops waiting for the drain; SIGHUP reloads models (``daemon.reload``).
    Returns the function that removes them."""
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        if received > 1:
            log.warning("second %s: not waiting for the drain any longer", sig.name)
            daemon.hurry()
            return
        daemon.request_stop(f"{sig.name} received")

    stop_signals = (signal.SIGTERM, signal.SIGINT)
    for sig in stop_signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
    # SIGHUP: a bundle replaced by hand, the update folder, new personal heads (edge.updates)
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, daemon.reload)

    def remove() -> None:
        for sig in (*stop_signals, getattr(signal, "SIGHUP", signal.SIGTERM)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    return remove


async def _serve(daemon: Daemon) -> dict[str, Any]:
    remove_handlers = _stop_on_signals(daemon)
    fleet = None
    if daemon.cfg.fleet.enabled:  # the hub's SuperNode, a child the daemon supervises
        from edge.fleet.member import FleetMember
        from edge.personal.runtime import update_folder

        fleet = FleetMember(daemon.cfg.fleet, db_path=daemon.cfg.db_path,
                            state_dir=daemon.cfg.state_path, bundle=daemon.bundle,
                            update_dir=update_folder(daemon.cfg))
        fleet.start()
        daemon.fleet = fleet
    try:
        return await daemon.run()
    finally:
        if fleet is not None:
            await fleet.stop()
        remove_handlers()


def _demo_state(cfg: DaemonConfig, *, calibrate: bool) -> tuple[DaemonConfig, Any]:
    """The demo (``--device sim`` with no state directory, database or $STATE_DIRECTORY)
    keeps its state in a temporary folder, removed at exit: a second demo must not start
    from the first one's baseline and print other decisions. ``(cfg, the folder or None)``."""
    import tempfile

    if (calibrate or cfg.device != "sim" or cfg.state_dir or cfg.db
            or os.environ.get("STATE_DIRECTORY")):
        return cfg, None
    tmp = tempfile.TemporaryDirectory(prefix="wearable-edge-demo-")
    return apply_overrides(cfg, {"state_dir": tmp.name}), tmp


def _run(cfg: DaemonConfig, *, calibrate: bool) -> int:
    cfg, tmp = _demo_state(cfg, calibrate=calibrate)
    try:
        return _run_daemon(cfg, calibrate=calibrate, demo_state=tmp is not None)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run_daemon(cfg: DaemonConfig, *, calibrate: bool, demo_state: bool = False) -> int:
    from edge.daemon import open_daemon
    from edge.health import summary_json
    from edge.ui import StatusLine, format_summary, setup_logging

    status_on = StatusLine.wanted(cfg.health.status_line, json_on_stdout=cfg.json)
    status = StatusLine(enabled=status_on)
    setup_logging(cfg.log_level, status.console if status_on else None)
    if demo_state:
        log.info("demo state in %s (removed at exit; --state-dir DIR keeps it)", cfg.state_dir)
    try:
        if cfg.fleet.enabled:
            from edge.fleet.member import check_fleet_ready

            check_fleet_ready(cfg.fleet, database=cfg.sinks.sqlite)
        daemon = open_daemon(cfg, status=status if status_on else None, calibrate=calibrate)
    except WearableEdgeError as e:
        print(f"edge-daemon: cannot start: {e}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, ConfigError) else EXIT_FAILED
    except OSError as e:
        print(f"edge-daemon: cannot start: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:
        summary = asyncio.run(_serve(daemon))
    except WearableEdgeError as e:
        print(f"edge-daemon: failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    failure = _verdict(daemon, summary, cfg)
    text = format_summary(summary)
    if demo_state:
        text += "\n  (the demo's state folder is removed at exit; --state-dir DIR keeps it)"
    if status_on:
        status.print(text)
    else:
        print(text, file=sys.stderr if cfg.json else sys.stdout, flush=True)
    if cfg.summary_json:
        _write_private(cfg.summary_json, summary_json(summary))
    if failure is not None:
        print(f"edge-daemon: {failure}", file=sys.stderr)
        return EXIT_FAILED
    if calibrate:
        done = summary.get("events", {}).get("calibrated", 0)
        if not done:
            print("edge-daemon: no baseline was recorded (not enough usable data)",
                  file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


def _verdict(daemon: Daemon, summary: dict[str, Any], cfg: DaemonConfig) -> str | None:
    """Why the run must not exit 0 (:mod:`edge.exit_status`), or None."""
    from edge.exit_status import run_failure
    from edge.source_hints import why_no_data

    finite = cfg.duration > 0 or not daemon.source.live
    waiting = "" if summary.get("samples") else (daemon.waiting_for or why_no_data(daemon.source))
    return run_failure(summary, finite=finite, waiting_for=waiting)


def _scan(args: argparse.Namespace, cfg: DaemonConfig) -> int:
    from edge.ui import format_scan_results, setup_logging

    setup_logging(cfg.log_level)
    try:
        from edge.sources.ble import scan
    except ImportError as e:
        print(f"edge-daemon: BLE support is not installed ({e})", file=sys.stderr)
        return EXIT_FAILED
    try:
        results = asyncio.run(scan(args.timeout, service_uuids=cfg.ble.service_uuids,
                                   adapter=args.adapter or cfg.ble.adapter or None,
                                   supported_only=not args.all))
    except WearableEdgeError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(format_scan_results(results))
    return EXIT_OK


def _state_file(cfg: DaemonConfig, args: argparse.Namespace, name: str) -> Path:
    """``name`` in the daemon's state directory; when none was given (flag, config file,
    $STATE_DIRECTORY) and the user's own has no such file, the systemd service's."""
    path = cfg.db_path if name == "edge.db" else cfg.state_path / name
    given = (getattr(args, "state_dir", None) or getattr(args, "db", None) or cfg.state_dir
             or cfg.db or os.environ.get("STATE_DIRECTORY"))
    service = SERVICE_STATE_DIR / name
    if not given and not path.exists() and service.exists():
        return service
    return path


def _history(args: argparse.Namespace, cfg: DaemonConfig) -> int:
    import json

    from edge.history import HistoryError, history_json, history_lines, parse_since

    try:
        since = None if args.since.strip().lower() == "all" else parse_since(args.since)
        db = _state_file(cfg, args, "edge.db")
        if args.as_json:
            print(json.dumps(history_json(db, args.wearer, since), indent=1))
        else:
            print("\n".join(history_lines(db, args.wearer, since)))
    except HistoryError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _status(args: argparse.Namespace, cfg: DaemonConfig) -> int:
    import json

    from edge.status_file import STATUS_FILE, StatusError, read_status, status_lines

    try:
        report = read_status(_state_file(cfg, args, STATUS_FILE))
    except StatusError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.as_json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print("\n".join(status_lines(report)))
    return EXIT_OK if report.running else EXIT_FAILED


def _check_config(args: argparse.Namespace) -> int:
    from edge.install import check_config

    try:
        lines = check_config(args.file)
    except WearableEdgeError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(lines))
    return EXIT_OK


def _install_service(args: argparse.Namespace) -> int:
    import shutil

    from edge.install import install_service
    from edge.signing import HOST_PUBLIC_NAME, host_key_dir

    exe = Path(shutil.which("edge-daemon") or Path(sys.executable).parent / "edge-daemon")
    key = args.trusted_key or host_key_dir() / HOST_PUBLIC_NAME
    try:
        plan = install_service(args.root, executable=exe.absolute(), export_key=key)
    except WearableEdgeError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_FAILED
    print("\n".join(plan.done))
    for w in plan.warnings:
        print(f"edge-daemon: warning: {w}", file=sys.stderr)
    if args.root is None:
        print("next: edit /etc/wearable-edge/edge-daemon.toml, check it with `edge-daemon "
              "check-config /etc/wearable-edge/edge-daemon.toml`, then `sudo systemctl enable "
              "--now edge-daemon` and `journalctl -u edge-daemon -f`")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_argv_with_command(sys.argv[1:] if argv is None else argv))
    if args.command == "check-config":
        return _check_config(args)
    if args.command == "install-service":
        return _install_service(args)
    try:
        cfg = _config_from_args(args)
    except ConfigError as e:
        print(f"edge-daemon: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "scan":
        return _scan(args, cfg)
    if args.command == "history":
        return _history(args, cfg)
    if args.command == "status":
        return _status(args, cfg)
    if args.command in ("label", "personalize"):
        from edge.personal.cli import run_command

        return run_command(args, cfg)
    return _run(cfg, calibrate=args.command == "calibrate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
