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
