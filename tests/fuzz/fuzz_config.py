"""atheris harness: the daemon's TOML configuration (``edge.config.load_config``).

The input is the file's bytes. Allowed outcomes: a validated ``DaemonConfig`` or
``ConfigError`` naming the key (``config`` for a file that is not TOML at all). ``tomllib``
is instrumented too, so coverage feedback steers the mutations into valid TOML.
"""

from __future__ import annotations

import sys

import atheris
from _common import main, scratch_dir

with atheris.instrument_imports(include=["core", "edge", "tomllib"]):
    from tests.fakes.inputs import exercise_config

PATH = scratch_dir("config") / "edge.toml"


def test_one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    exercise_config(PATH)


SEEDS = [
    b'device = "serial"\nspeed = 1.0\n[serial]\nport = "/dev/ttyACM0"\nbaud = 115200\n',
    b'device = "ble"\ntrusted_keys = ["/etc/wearable-edge/k.pem"]\n[ble]\n'
    b'devices = ["AA:BB:CC:DD:EE:FF"]\nmax_devices = 3\n[residents]\nwrist-01 = "room-4"\n',
    b'device = "sim"\nduration = 600.0\nspeed = 60.0\n[sim]\ndevices = 3\n'
    b'[sim.faults]\ndrop = 0.01\ndisconnect_at_s = [120.0, 300.0]\nclock_jump_us = 5000\n',
    b'device = "replay"\n[replay]\nfile = "S2.pkl"\n[decisions]\nema_alpha = 0.3\n'
    b'[inference]\nqueue_size = 64\n[sinks]\nmax_db_mb = 50.0\njsonl_path = "d.jsonl"\n'
    b'[calibration]\nenroll = false\n[health]\nstatus_line = "off"\n',
]


if __name__ == "__main__":
    main("config", test_one_input, SEEDS)
    sys.exit(0)
