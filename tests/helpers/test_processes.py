"""A process from `helpers.processes` answers like `python ARGS...`: exit
codes, output, environment, working directory, one CPU device, and SIGKILL."""

import signal
import time

import pytest

from helpers import processes

PROGRAM = """
import os, sys
import tensorflow as tf
print(sys.argv[1:], os.environ.get("KERAZOO_PROBE"), os.getcwd(), len(tf.config.list_logical_devices("CPU")))
if sys.argv[1] == "raise":
    raise ValueError("raised")
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("argument", ["0", "2", "raise"])
def test_a_program_answers_as_in_a_fresh_interpreter(argument, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAZOO_PROBE", "seen")
    done = processes.run(["-c", PROGRAM, argument], cwd=tmp_path, timeout=120)
    # python's own exit codes: sys.exit's, and 1 for an uncaught exception.
    assert done.returncode == {"0": 0, "2": 2, "raise": 1}[argument]
    # The conftest's two logical CPUs are this process's, not the child's.
    assert done.stdout == f"['{argument}'] seen {tmp_path} 1\n"
    assert ("ValueError: raised" in done.stderr) == (argument == "raise")


def test_sigkill_ends_the_process():
    process = processes.Process(["-c", "import time; time.sleep(60)"])
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
