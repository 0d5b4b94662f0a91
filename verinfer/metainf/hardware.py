"""The machine's CPU facts (from /proc/cpuinfo) and the hardware class a profile is chosen for."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: SIMD features that change which kernels are fast (and, for int8, which instructions exist).
FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    """What the selector knows about the CPU."""

    model: str
    machine: str
    flags: frozenset[str]
    logical_cpus: int
    cache_kb: int

    @property
    def hardware_class(self) -> str:
        """`<machine>-<widest SIMD>[-vnni][-amx]`: the class a publisher's profile is measured for."""
        if self.machine not in ("x86_64", "AMD64"):
            return self.machine
        simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in self.flags), "baseline")
        parts = ["x86_64", simd.replace("_", "")]
        if {"avx512_vnni", "avx_vnni"} & self.flags:
            parts.append("vnni")
        if "amx_int8" in self.flags:
            parts.append("amx")
        return "-".join(parts)


def parse_cpuinfo(text: str, machine: str | None = None) -> CpuInfo:
    """CpuInfo from /proc/cpuinfo text (first processor block; flags as a set)."""
    model, cache_kb, count = "unknown", 0, 0
    flags: frozenset[str] = frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            count += 1
        elif key == "model name" and model == "unknown":
            model = value
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        elif key == "cache size" and not cache_kb:
            cache_kb = int(value.split()[0]) if value.split() and value.split()[0].isdigit() else 0
    return CpuInfo(model, machine or platform.machine(), flags, count or (os.cpu_count() or 1), cache_kb)


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CpuInfo (unknown flags if /proc/cpuinfo cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text)
