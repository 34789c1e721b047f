"""What machine a benchmark ran on: absolute speeds mean little across CPUs, so every report says."""

from __future__ import annotations

import os
import platform
from pathlib import Path

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def cpu_description() -> str:
    """e.g. `Intel(R) Xeon(R) Processor, 2 cores, avx2 avx512f avx512_vnni amx_int8 amx_bf16`."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    present = " ".join(f for f in FLAGS if f in flags) or "no AVX2"
    return f"{model}, {os.cpu_count()} cores, {present}"
