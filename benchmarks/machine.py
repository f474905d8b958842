"""What a benchmark ran on: its numbers mean little without the machine."""

import os
import platform
import sys


def processor():
    """The CPU model as the kernel names it (e.g. "AMD EPYC"), or platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def vector_flags():
    """Which of the SIMD extensions oneDNN dispatches on this CPU has (from /proc/cpuinfo).

    Example:

    ```python
    from benchmarks.machine import vector_flags

    print(vector_flags())  # e.g. ['avx2', 'fma', 'avx512f', ...]
    ```
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in VECTOR_FLAGS if flag in flags]


def describe():
    """CPU model, core count, Python, TensorFlow and Keras versions, platform.

    Example:

    ```python
    from benchmarks.machine import describe

    print(describe()["processor"])
    ```
    """
    import keras
    import tensorflow as tf

    return {
        "processor": processor(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
    }
