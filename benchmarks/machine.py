"""Describe the machine a benchmark ran on: CPU, cores, clock, ISA, OS, library versions.

Numbers without the machine are meaningless, so every ``bench.json`` carries this dict. It
also gives the results folder its name (:func:`machine_label`), so results of a laptop, this
CI box and a Raspberry Pi sit side by side under ``benchmarks/results/``.

Only the stdlib: this runs on a hub install (no torch, no onnx) as well as on the host.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

__all__ = [
    "ISA_FLAGS",
    "LIBRARIES",
    "cpu_model",
    "describe_machine",
    "isa_tier",
    "library_versions",
    "load_average",
    "machine_label",
    "same_machine",
]

# ISA features that decide which matmul kernels a runtime can use (x86 and Arm spellings):
# fma/avx2/avx512f for fp32, avx512_vnni/avx_vnni (x86) and asimddp/i8mm (Arm) for int8 dot
# products; a Pi 4 (Cortex-A72) has asimd but no asimddp, a Pi 5 (Cortex-A76) has asimddp.
ISA_FLAGS: Final = (
    "sse4_2", "fma", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
    "asimd", "asimddp", "i8mm", "sve", "fphp", "asimdhp",
)
# Distribution names whose versions change benchmark results.
LIBRARIES: Final = (
    "numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime", "torch", "onnx",
    "litert-torch", "matplotlib", "wearable-edge",
)
# Arm "CPU part" ids (from /proc/cpuinfo) of the cores a hub is likely to have.
ARM_PARTS: Final = {
    "0xd03": "Cortex-A53",  # Pi 3
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd08": "Cortex-A72",  # Pi 4
    "0xd0b": "Cortex-A76",  # Pi 5
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
}
_CMD_TIMEOUT_S: Final = 5.0  # lscpu/nproc answer in milliseconds; a hang must not stall a run


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor (empty off Linux)."""
    text = _read("/proc/cpuinfo") or ""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip().lower()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _lscpu() -> dict[str, str]:
    if shutil.which("lscpu") is None:
        return {}
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    info = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """A human name of the CPU: "AMD EPYC 7B13", "Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4)"."""
    board = (_read("/proc/device-tree/model") or "").strip("\x00 \n")
    cpus = _cpuinfo()
    first = cpus[0] if cpus else {}
    name = first.get("model name") or _lscpu().get("Model name", "")
    if not name or name.lower().startswith("arm"):
        part = next((c.get("cpu part") for c in cpus if c.get("cpu part")), None)
        if part:
            name = ARM_PARTS.get(part.lower(), f"Arm part {part}")
    name = name or platform.processor() or platform.machine()
    return f"{name} ({board})" if board else name


def _isa_flags() -> list[str]:
    cpus = _cpuinfo()
    raw = ""
    if cpus:
        raw = cpus[0].get("flags") or cpus[0].get("features") or ""
    present = set(raw.split())
    return [f for f in ISA_FLAGS if f in present]


def _clock_mhz() -> dict[str, float | None]:
    """Nominal max clock (cpufreq) and the current reading; None where the OS hides them.

    Virtual machines often expose no cpufreq; then /proc/cpuinfo's "cpu MHz" (the host's
    nominal clock, as the hypervisor reports it) is the best available figure.
    """
    def khz(path: str) -> float | None:
        text = _read(path)
        try:
            return float(text) / 1000.0 if text else None
        except ValueError:
            return None

    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    cur = khz(base + "scaling_cur_freq")
    max_mhz = khz(base + "cpuinfo_max_freq")
    cpuinfo_mhz = None
    cpus = _cpuinfo()
    if cpus and cpus[0].get("cpu mhz"):
        try:
            cpuinfo_mhz = float(cpus[0]["cpu mhz"])
        except ValueError:
            cpuinfo_mhz = None
    lscpu = _lscpu()
    if max_mhz is None and lscpu.get("CPU max MHz"):
        try:
            max_mhz = float(lscpu["CPU max MHz"])
        except ValueError:
            max_mhz = None
    governor = (_read(base + "scaling_governor") or "").strip() or None
    return {"max_mhz": max_mhz, "current_mhz": cur or cpuinfo_mhz, "governor": governor}  # type: ignore[dict-item]


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that change results (None = not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def load_average() -> tuple[float, float, float] | None:
    """1/5/15-minute load average: a busy machine makes every timing an upper bound."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def _os_name() -> str:
    text = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.MULTILINE)
    return m.group(1) if m else platform.platform()


def _memory_mb() -> float | None:
    text = _read("/proc/meminfo") or ""
    m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) / 1024 if m else None


def describe_machine() -> dict[str, Any]:
    """Everything a reader needs to compare these numbers with another machine's."""
    lscpu = _lscpu()
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = []
    return {
        "cpu_model": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(affinity) or os.cpu_count(),
        "threads_per_core": lscpu.get("Thread(s) per core"),
        "hypervisor": lscpu.get("Hypervisor vendor"),
        "clock": _clock_mhz(),
        "isa": _isa_flags(),
        "caches": {k: v for k, v in lscpu.items() if k.startswith(("L1d", "L2", "L3"))},
        "memory_mb": _memory_mb(),
        "os": _os_name(),
        "kernel": platform.release(),
        "libraries": library_versions(),
        "python_executable": sys.executable,
        "load_average": load_average(),
        "hostname": platform.node(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def isa_tier(isa: list[str] | tuple[str, ...]) -> str:
    """The best int8/fp32 kernel family ``isa`` allows, as a folder-name word: results of an
    AVX-512 VNNI server and of an AVX2-only one (same "AMD EPYC" name) must not share a
    folder, nor a Pi 4 (neon) and a Pi 5 (dotprod)."""
    have = set(isa)
    for flag, word in (("amx_int8", "amx"), ("avx512_vnni", "avx512vnni"),
                       ("avx_vnni", "avxvnni"), ("avx512f", "avx512"), ("avx2", "avx2"),
                       ("i8mm", "i8mm"), ("asimddp", "dotprod"), ("asimd", "neon")):
        if flag in have:
            return word
    return "baseline"


def machine_label(machine: dict[str, Any] | None = None) -> str:
    """Folder name of this machine's results: ``<arch>-<cpu slug>[-<isa tier>]-<N>cpu``.

    Built from the hardware, not the hostname (containers and CI get random hostnames), so
    two runs on the same kind of machine land in the same folder and a Pi's sit beside it;
    the ISA tier (:func:`isa_tier`) tells apart CPUs that share a marketing name.
    """
    m = machine or describe_machine()
    model = str(m.get("cpu_model", "cpu"))
    model = re.sub(r"\(R\)|\(TM\)|CPU|Processor|@.*$|\d+-Core|Rev [\d.]+", " ", model)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower())[:40].strip("-") or "cpu"
    tier = f"-{isa_tier(m['isa'])}" if m.get("isa") is not None else ""
    return f"{m.get('arch', platform.machine())}-{slug}{tier}-{m.get('logical_cpus') or 0}cpu"


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two machine descriptions are the same kind of machine (results comparable)."""
    keys = ("arch", "cpu_model", "logical_cpus")
    return all(a.get(k) == b.get(k) for k in keys) and sorted(a.get("isa") or []) == sorted(
        b.get("isa") or [])
