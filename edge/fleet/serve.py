"""``edge-fleet serve``: a care home's coordinator in one command, on Flower's deployment runtime.

What it does, in order (each Flower process's output goes to a log file in ``--out``):

1. checks everything it was given (TLS files, the certificate's names, the bundle's head,
   the federation's settings) and says in one line what is wrong;
2. starts Flower's SuperLink (``flower-superlink``) with TLS on ``--host:--port``; the hubs'
   SuperNodes connect there (``edge-fleet join`` or ``edge-daemon --fleet``);
3. starts one run of the Flower App whose ServerApp is :mod:`edge.fleet.coordinator` and
   whose ClientApp is :mod:`edge.fleet.client` (``flwr run`` against the SuperLink's Control
   API, over the same TLS), which waits for ``--hubs`` hubs and runs the rounds;
4. once the rounds are done, the coordinator's app writes the new shared head as a signed
   head update for the hubs (``--out/head-update``: :mod:`edge.updates`' format, signed
   like a bundle) and sends it to every hub, which puts it in its update folder for its
   daemon to verify and take (:mod:`edge.fleet.delivery`); with ``--no-sign`` it is written
   unsigned and not sent;
5. stops the SuperLink. SIGTERM or SIGINT stops it all early; the exit status is then 1,
   as it is when a round failed.

The Flower App itself is only a ``pyproject.toml`` naming our two apps (both installed with
this package on the coordinator and on every hub), written to a temporary folder, with the
run's settings as its run config (the signing key's path among them); Flower's own state
(FLWR_HOME) lives there too. This is a host command.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.fleet.deploy import DeployError, check_files, flower_env, flower_exe

__all__ = ["ServeResult", "add_serve_arguments", "app_pyproject", "serve"]

DEFAULT_PORT: Final = 9092  # Flower's Fleet API port of old: what operators open in a firewall
LINK_START_S: Final = 120.0  # a SuperLink on a busy machine takes seconds to listen
CONNECTION: Final = "coordinator"  # the name of the Control API connection in FLWR_HOME


class ServeError(DeployError):
    """A coordinator's input refused before anything starts."""


@dataclass(frozen=True)
class ServeResult:
    code: int  # 0 done, 1 failed or stopped
    message: str  # one line for the operator
    results: dict[str, Any] | None


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bundle",
        type=Path,
        required=True,
        help="the bundle the hubs run: its head is where the federation starts, and the "
        "update is written for it",
    )
    p.add_argument(
        "--hubs", type=int, required=True, help="hubs every round waits for and trains on"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="folder for results.json, the update and logs"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it holds files")
    p.add_argument(
        "--host",
        default="0.0.0.0",
        help="address the SuperLink listens on (default 0.0.0.0: every interface)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port hubs connect to (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--round-timeout",
        type=float,
        default=600.0,
        help="seconds a round waits for the hubs' replies (default 600)",
    )
    g = p.add_argument_group("TLS (Flower's): hubs verify the coordinator with the CA")
    g.add_argument("--ssl-ca-certfile", type=Path, help="the CA certificate hubs are given")
    g.add_argument(
        "--ssl-certfile",
        type=Path,
        help="this coordinator's certificate, signed by the CA; it must name 127.0.0.1 as well "
        "as the name hubs use (Flower's own processes connect through loopback)",
    )
    g.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key")
    g.add_argument("--insecure", action="store_true", help="no TLS: only on a private test network")
    s = p.add_argument_group("signing the head update")
    s.add_argument(
        "--sign-key",
        type=Path,
        help="Ed25519 private key (PEM); default this host's key (edge-export's, "
        "~/.config/wearable-edge/bundle-signing.pem); hubs trust its public half",
    )
    s.add_argument(
        "--no-sign",
        action="store_true",
        help="write the update unsigned, and do not send it to the hubs (they would refuse "
        "it unless they allow unsigned updates)",
    )


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def app_pyproject(config: dict[str, Any]) -> str:
    """The Flower App: our two apps by import path, ``config`` as its run config."""
    lines = [
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        'name = "edge-fleet"',
        'version = "1.0.0"',
        'description = "wearable-edge: a care home\'s hubs fine-tune the shared head"',
        'license = "Apache-2.0"',
        "dependencies = []  # the apps are installed with wearable-edge[fleet] on every machine",
        "",
        "[tool.flwr.app]",
        'publisher = "wearable-edge"',
        "",
        "[tool.flwr.app.components]",
        'serverapp = "edge.fleet.coordinator:app"',
        'clientapp = "edge.fleet.client:app"',
        "",
        "[tool.flwr.app.config]",
        *(f"{k} = {_toml(v)}" for k, v in config.items()),
    ]
    return "\n".join(lines) + "\n"


def _tls_files(args: argparse.Namespace) -> tuple[Path, Path, Path] | None:
    if args.insecure:
        return None
    named = {
        "--ssl-ca-certfile": args.ssl_ca_certfile,
        "--ssl-certfile": args.ssl_certfile,
        "--ssl-keyfile": args.ssl_keyfile,
    }
    missing = [k for k, v in named.items() if v is None]
    if missing:
        raise ServeError(f"TLS needs {', '.join(missing)} (or --insecure on a test network)")
    check_files(named)
    _check_loopback_name(args.ssl_certfile)
    return args.ssl_ca_certfile, args.ssl_certfile, args.ssl_keyfile


def _check_loopback_name(cert: Path) -> None:
    """Flower's helpers reach the SuperLink at 127.0.0.1 over the same TLS: a certificate
    without that name fails only once the run starts, in a log. ``cryptography`` reads it
    when installed (it is, on a host)."""
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - the host install has it
        return
    try:
        c = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except ValueError as e:
        raise ServeError(f"--ssl-certfile {cert}: not a PEM certificate ({e})") from e
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    ips = san.get_values_for_type(x509.IPAddress) if san is not None else []
    if ipaddress.ip_address("127.0.0.1") not in ips:
        raise ServeError(
            f"--ssl-certfile {cert}: its names must include IP 127.0.0.1 (Flower's own processes "
            "connect through loopback); add it to the certificate's subjectAltName"
        )


def _initial_head(bundle_path: Path, into: Path) -> tuple[Any, Path]:
    from edge.bundle import load_bundle
    from edge.personal.service import shared_head

    bundle = load_bundle(bundle_path)
    head = shared_head(bundle)
    if head is None:
        raise ServeError(
            f"--bundle {bundle_path}: no embedding output and no head.npz: re-export it "
            "(edge-export) so the hubs' heads can be trained"
        )
    path = into / "initial_head.npz"
    head.save(path)
    return bundle, path


def _sign_key(args: argparse.Namespace) -> Path | None:
    if args.no_sign:
        return None
    if args.sign_key is not None:
        check_files({"--sign-key": args.sign_key})
        return Path(args.sign_key)
    from export.signing import host_signing_key

    return host_signing_key()[0]


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _write_flower_home(home: Path, address: str, ca: Path | None) -> None:
    home.mkdir(parents=True)
    tls = f"root-certificates = {_toml(str(ca.resolve()))}" if ca is not None else "insecure = true"
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f"[superlink.{CONNECTION}]\naddress = {_toml(address)}\n{tls}\n"
    )


def _read_results(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def run_federation(
    args: argparse.Namespace,
    opts: Any,
    out: Path,
    *,
    on_line: Callable[[str], None] = lambda s: None,
) -> ServeResult:
    """Steps 2–5 of the module docstring in ``out`` (made empty by the caller)."""
    from edge.fleet.coordinator import FINAL_HEAD, RESULTS, UPDATE_DIR, run_config
    from edge.fleet.processes import Child, on_stop_signals, wait_listening

    tls = _tls_files(args)
    if opts.dp == "local":
        # the hubs' app (edge.fleet.client:app) carries no local DP mod: the account would
        # claim noise no hub added
        raise ServeError("--dp local is not available in a deployment yet: use --dp central")
    # settings the deployed apps do not carry yet (coordinator.run_config): refused, not ignored
    for name, off in (("secagg", False), ("subspace", 0)):
        if getattr(opts, name, off) != off:
            raise ServeError(f"{name} is not available in a deployment yet")
    if args.hubs < 1:
        raise ServeError(f"--hubs: at least 1, got {args.hubs}")
    if not 0 < args.port < 65536:
        raise ServeError(f"--port: 1 to 65535, got {args.port}")
    sign_key = _sign_key(args)
    link_exe, flwr_exe = flower_exe("flower-superlink"), flower_exe("flwr")
    with tempfile.TemporaryDirectory(prefix="edge-fleet-serve-") as tmp_name:
        tmp = Path(tmp_name)
        _, initial = _initial_head(args.bundle, tmp)
        config = run_config(
            opts,
            hubs=args.hubs,
            initial_head=initial,
            out_dir=out,
            round_timeout=args.round_timeout,
            bundle=args.bundle,
            sign_key=sign_key,
        )
        (tmp / "app").mkdir()
        (tmp / "app" / "pyproject.toml").write_text(app_pyproject(config))
        local = _connect_host(args.host)
        address = f"[{local}]:{args.port}" if ":" in local else f"{local}:{args.port}"
        _write_flower_home(tmp / "home", address, None if tls is None else tls[0])
        env = flower_env(tmp / "home")
        tls_args = ["--insecure"]
        if tls is not None:
            tls_args = [
                "--ssl-ca-certfile",
                str(tls[0].resolve()),
                "--ssl-certfile",
                str(tls[1].resolve()),
                "--ssl-keyfile",
                str(tls[2].resolve()),
            ]
        stopped: list[str] = []
        link = Child(
            "the SuperLink",
            [
                link_exe,
                *tls_args,
                "--host",
                args.host,
                "--port",
                str(args.port),
                # offline by design: the app's code is installed, nothing to fetch at run time
                "--disable-runtime-dependency-installation",
            ],
            env,
            out / "superlink.log",
        )
        run: Child | None = None

        def stop(sig: Any) -> None:
            stopped.append(sig.name)
            if run is not None and run.poll() is None:
                run.proc.terminate()

        try:
            with on_stop_signals(stop):
                wait_listening(local, args.port, link, LINK_START_S, lambda: bool(stopped))
                if not stopped:
                    on_line(
                        f"SuperLink listening on {args.host}:{args.port} "
                        f"({'no TLS' if tls is None else 'TLS'}); waiting for {args.hubs} hubs"
                    )
                    run = Child(
                        "flwr run",
                        [flwr_exe, "run", str(tmp / "app"), CONNECTION, "--stream"],
                        env,
                        out / "run.log",
                    )
                    _follow(run, out / RESULTS, on_line, lambda: bool(stopped))
        finally:
            if run is not None:
                run.stop()
            link.stop()
        results = _read_results(out / RESULTS)
        done = len(results["rounds"]) if results else 0
        if stopped:
            return ServeResult(
                1, f"stopped by {stopped[0]} after {done} of {opts.rounds} rounds", results
            )
        if not results or not results.get("finished") or not (out / FINAL_HEAD).is_file():
            return ServeResult(
                1,
                f"the federation stopped after {done} of {opts.rounds} rounds: "
                f"{out / 'run.log'} and {out / 'superlink.log'} say why",
                results,
            )
        update = results.get("head_update")
        if not update or not (out / UPDATE_DIR).is_dir():
            return ServeResult(1, f"no head update written: {out / 'run.log'} says why", results)
    return ServeResult(0, f"{done} rounds done; {_delivered(update)}", results)


def _delivered(update: dict[str, Any]) -> str:
    """What became of the head update, in one line for the operator."""
    path = update["path"]
    if not update.get("signed"):
        return f"unsigned head update (not sent to the hubs) in {path}"
    sent = update.get("delivery", {})
    errors = sent.get("errors", [])
    line = (
        f"head update in {path}, written into {sent.get('written', 0)} of "
        f"{sent.get('hubs', 0)} hubs' update folders"
    )
    return line + (f" ({'; '.join(errors)})" if errors else "")


def _follow(
    run: Any, results: Path, on_line: Callable[[str], None], stopped: Callable[[], bool]
) -> None:
    """Until ``flwr run`` ends: each round the coordinator writes, as one line."""
    seen = 0
    while run.poll() is None and not stopped():
        doc = _read_results(results)
        rounds = doc.get("rounds", []) if doc else []
        for r in rounds[seen:]:
            eps = "" if r.get("epsilon") is None else f", ε {r['epsilon']:.2f}"
            on_line(f"round {r['round']}: {len(r['hubs'])} hubs replied, {r['bytes_up']} B up{eps}")
        seen = max(seen, len(rounds))
        time.sleep(0.5)


def serve(
    args: argparse.Namespace,
    opts: Any,
    argv: list[str],
    *,
    on_line: Callable[[str], None] = lambda s: None,
) -> ServeResult:
    """The whole command in ``--out`` (refused when it holds files, unless --force)."""
    from core.outdir import fresh_output_dir

    _tls_files(args)  # refused before the output folder is touched
    with fresh_output_dir(args.out, force=args.force) as out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "command.txt").write_text(
            "edge-fleet " + " ".join(shlex.quote(a) for a in argv) + "\n"
        )
        return run_federation(args, opts, out, on_line=on_line)
