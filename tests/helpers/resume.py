"""Kill-and-resume: a real process, SIGKILL mid-run, then the same command again."""

import os
import signal
import subprocess
import sys
import time


def run_killed_then_resumed(args, ready, timeout=600, cwd=None):
    """Start `python ARGS...`, SIGKILL it once `ready()` is true, run the same
    command again to completion and return that completed process.

    ready: a callable polled every 20 ms (e.g. "the CSV log has 2 rows").
    Fails if the first process ends before it could be killed.
    """
    command = [sys.executable, *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    deadline = time.time() + timeout
    try:
        while not ready():
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "the run never reached the point to kill it"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def csv_rows(path):
    """Data rows of a CSV log (0 if it does not exist yet)."""
    if not path.exists():
        return 0
    return max(0, len(path.read_text().splitlines()) - 1)
