"""Kill-and-resume: a real process, SIGKILL mid-run, then the same command again."""

import os
import signal
import time

from helpers import processes


def run_killed_then_resumed(args, *ready, timeout=600, cwd=None):
    """Start `python ARGS...` (a process of its own: `helpers.processes`)
    and SIGKILL it once `ready[0]()` is true; start the same command again
    and kill it at `ready[1]()`, and so on; then run the command to
    completion and return that completed process.

    ready: callables polled every 20 ms (e.g. "the CSV log has 2 rows"), one
    per kill, in the order the run reaches them. Several kill points in one
    chain share the uninterrupted run they are compared with.
    Fails if a process ends before it could be killed.
    """
    for point, is_ready in enumerate(ready):
        process = processes.Process(args, cwd=cwd)
        try:
            wait_until(is_ready, process, timeout, f"kill point {point}")
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    return processes.run(args, cwd=cwd, timeout=timeout)


def wait_until(is_ready, process, timeout=600, what="the point waited for"):
    """Poll `is_ready()` every 20 ms until true; fail if `process` ends or
    `timeout` seconds pass first."""
    deadline = time.time() + timeout
    while not is_ready():
        assert process.poll() is None, f"the run ended before {what} was reached"
        assert time.time() < deadline, f"the run never reached {what}"
        time.sleep(0.02)


def csv_rows(path):
    """Data rows of a CSV log (0 if it does not exist yet)."""
    if not path.exists():
        return 0
    return max(0, len(path.read_text().splitlines()) - 1)


def assert_same_shipped_weights(a, b):
    """The `model.keras` files of run directories `a` and `b` hold exactly
    the same weights."""
    import keras
    import numpy as np

    import kerazoo.models  # noqa: F401  (registers the classes model.keras names)

    weights = [keras.saving.load_model(out / "model.keras").get_weights() for out in (a, b)]
    assert len(weights[0]) == len(weights[1])
    for x, y in zip(*weights):
        np.testing.assert_array_equal(x, y)


def leftover_files(out):
    """Hidden or temporary files under the run directory `out` (an atomic
    write that was cut leaves one of these)."""
    return [p.name for p in out.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]
