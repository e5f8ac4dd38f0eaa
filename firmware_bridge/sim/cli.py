"""``wearable-sim``: play a recording as a wearable over a pty or TCP (see ``--help``)."""
# ruff: noqa: T201  - a CLI talks to its user with print (library code logs)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

from core.errors import WearableEdgeError
from firmware_bridge.sim.transports import PtyLink, serve_tcp
from firmware_bridge.sim.wearable import Faults, SimulatedWearable

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  wearable-sim                                  # 30 min synthetic wrist data on a new pty
  wearable-sim --speed 10 --loop                # 10x real time, forever
  wearable-sim --recording S2.pkl --speed 60    # a WESAD subject (wrist signals), with labels
  wearable-sim --transport tcp --port 7000 --drop 0.02 --flip 0.01
  wearable-sim --kind hr --speed 10             # a stock heart-rate strap: RR intervals,
                                                # heart rate and contact only
  edge-daemon --device serial:/dev/pts/5        # then point the hub at the printed path

The pty path is printed on the first line of output; open it with any serial program
(pyserial, picocom) at any baud rate - a pty ignores it. Frames are COBS + CRC-16 as
documented in firmware_bridge/PROTOCOL.md.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wearable-sim",
        description="Simulate a wrist wearable speaking the wearable-edge protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("what to play")
    src.add_argument("--recording", metavar="PATH",
                     help="WESAD S<n>.pkl or our .npz (default: synthetic wrist data)")
    src.add_argument("--synthetic-minutes", type=float, default=30.0, metavar="MIN",
                     help="length of the synthetic recording (default 30)")
    src.add_argument("--wrist-only", action="store_true",
                     help="play only the wrist signals of a recording that also has chest ones")
    src.add_argument("--seed", type=int, default=0, help="seed for synthetic data and faults")
    src.add_argument("--kind", choices=("wrist", "hr"), default="wrist",
                     help="wrist: the project's wrist service (default); hr: pose as a stock "
                          "heart-rate strap, sending only RR intervals (the recording's beats, "
                          "or beats simulated from its labels), heart rate and contact")
    play = p.add_argument_group("how to play")
    play.add_argument("--speed", type=float, default=1.0,
                      help="times real time (default 1; 'inf' = as fast as possible)")
    play.add_argument("--loop", action="store_true", help="start over at the end, forever")
    play.add_argument("--duration", type=float, metavar="S", help="stop after S recording seconds")
    play.add_argument("--device-id", default="sim-0", help="device id sent in HELLO")
    play.add_argument("--packet-s", type=float, default=0.25, help="seconds per SAMPLES packet")
    out = p.add_argument_group("transport")
    out.add_argument("--transport", choices=("pty", "tcp"), default="pty",
                     help="pty (prints the device path) or tcp (prints host:port)")
    out.add_argument("--host", default="127.0.0.1", help="tcp: address to listen on")
    out.add_argument("--port", type=int, default=0, help="tcp: port (0 = any free port)")
    f = p.add_argument_group("faults (all off by default)")
    f.add_argument("--drop", type=float, default=0.0, help="probability a packet is lost")
    f.add_argument("--duplicate", type=float, default=0.0, help="probability a packet is repeated")
    f.add_argument("--reorder", type=float, default=0.0, help="probability a packet is late")
    f.add_argument("--flip", type=float, default=0.0, help="probability a frame has a bad byte")
    f.add_argument("--stall-at", type=float, action="append", default=[], metavar="S",
                   help="stall the link at recording second S (repeatable)")
    f.add_argument("--stall-s", type=float, default=2.0, help="stall length (default 2 s)")
    f.add_argument("--disconnect-at", type=float, action="append", default=[], metavar="S",
                   help="drop the link at recording second S (repeatable)")
    f.add_argument("--disconnect-s", type=float, default=3.0, help="disconnect length (default 3 s)")
    f.add_argument("--drift-ppm", type=float, default=0.0, help="device clock rate error")
    f.add_argument("--jump-at", type=float, metavar="S", help="device clock jumps at second S...")
    f.add_argument("--jump-us", type=int, default=0, help="...by this many microseconds")
    f.add_argument("--battery-low-at", type=float, metavar="S", help="battery falls to 5%% at S")
    f.add_argument("--contact-lost-at", type=float, metavar="S", help="skin contact lost at S")
    f.add_argument("--contact-lost-s", type=float, default=30.0, help="contact loss length")
    return p  # fmt: skip


def _load(args: argparse.Namespace) -> Any:
    if args.recording:
        from core.recording import load_recording  # the hub's loader: numpy only

        rec = load_recording(args.recording)
        return rec.wrist_only() if args.wrist_only else rec
    from firmware_bridge.sim.synthetic import synthetic_recording

    return synthetic_recording(args.synthetic_minutes * 60.0, seed=args.seed)


async def _run(args: argparse.Namespace, wearable: SimulatedWearable) -> dict[str, int]:
    if args.transport == "tcp":
        stats = await serve_tcp(
            wearable, args.host, args.port,
            on_ready=lambda h, p: print(f"listening on tcp://{h}:{p}", flush=True),
        )  # fmt: skip
        return dict(stats)
    async with PtyLink() as link:
        print(link.path, flush=True)
        await link.play(wearable)
        return dict(link.stats)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        faults = Faults(
            seed=args.seed, drop=args.drop, duplicate=args.duplicate, reorder=args.reorder,
            flip=args.flip, stall_at_s=tuple(args.stall_at), stall_s=args.stall_s,
            disconnect_at_s=tuple(args.disconnect_at), disconnect_s=args.disconnect_s,
            clock_drift_ppm=args.drift_ppm, clock_jump_at_s=args.jump_at,
            clock_jump_us=args.jump_us, battery_low_at_s=args.battery_low_at,
            contact_lost_at_s=args.contact_lost_at, contact_lost_s=args.contact_lost_s,
        )  # fmt: skip
        recording = _load(args)
        plays: dict[str, Any] = {}
        if args.kind == "hr":
            from firmware_bridge.sim.rr import with_beats

            recording = with_beats(recording, seed=args.seed)
            plays = {"modalities": (), "beats": ("rr",)}
        wearable = SimulatedWearable(
            recording, device_id=args.device_id, speed=args.speed, faults=faults,
            loop_forever=args.loop, duration_s=args.duration, packet_s=args.packet_s, **plays,
        )  # fmt: skip
    except (WearableEdgeError, OSError) as e:
        print(f"wearable-sim: {e}", file=sys.stderr)
        return 2
    sensors = ", ".join(f"{s.kind}@{s.rate_hz:g}Hz" for s in wearable.hello.sensors)
    print(f"playing {wearable.duration_s:.0f} s ({sensors}) at {args.speed:g}x", file=sys.stderr)
    link_stats: dict[str, int] = {}
    with contextlib.suppress(KeyboardInterrupt):
        link_stats = asyncio.run(_run(args, wearable))
    summary = {**dict(wearable.stats), **{f"link_{k}": v for k, v in link_stats.items()}}
    print("done: " + ", ".join(f"{k}={v}" for k, v in sorted(summary.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
