"""`python ARGS...` as a real process that starts with TensorFlow imported.

An end-to-end test runs a recipe or a CLI in its own process, and kills
some of them. A fresh interpreter spends ~8 CPU-seconds importing
TensorFlow, Keras and tensorflow-datasets before the first line of the
recipe runs, and the suite starts about 80 of them. Here each test
process is forked from a server (`multiprocessing`'s "forkserver" start
method) that imported those modules once: the child is a real process
(its own pid, its own TensorFlow runtime, created after the fork; SIGKILL
kills it), which runs the module or script as `__main__` with the given
arguments, environment and working directory, and exits as the
interpreter would (exit handlers run, `SystemExit` codes kept, an uncaught
exception printed to stderr with exit code 1).

Tests of what happens *before* TensorFlow is imported (import order,
start-up lines on the terminal, early errors, an installed wheel) start a
fresh interpreter with `subprocess` instead, and so do tests that change a
variable TensorFlow reads when imported (`TF_ENABLE_ONEDNN_OPTS`,
`TF_CPP_MIN_LOG_LEVEL`): a child has the server's.
"""

import atexit
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile

import kerazoo._cli

# kerazoo first: it sets TF_ENABLE_ONEDNN_OPTS before TensorFlow reads it,
# as `python -m kerazoo.…` does (imported the other way round, the kernels
# and so the numbers differ).
PRELOAD = [
    "kerazoo",
    "tensorflow",
    "keras",
    "tensorflow_datasets",
    "kerazoo.recipes.runner",
    "kerazoo.models",
]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def _main(args, environment, cwd, stdout, stderr):
    """The child: become `python ARGS...` (`-m MODULE`, `-c CODE` or a
    script's path, then its arguments)."""
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    # Ctrl-C as in a terminal: a suite started in the background by a
    # non-interactive shell (CI) inherits SIGINT ignored, and so would this child.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # kerazoo quiets TensorFlow's start-up lines when imported by a program
    # run as `python -m kerazoo…`, which it tells from sys.orig_argv; the
    # server imported it before this child had its arguments.
    sys.orig_argv = [sys.executable, *args]
    kerazoo._cli.setup()
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(args)
            runpy.run_path(args[0], run_name="__main__")
    finally:
        # multiprocessing ends a child with os._exit, which skips them.
        atexit._run_exitfuncs()


class Process:
    """A running `python ARGS...` (the subset of `subprocess.Popen` the
    tests use). Output goes to files; `communicate` reads them."""

    def __init__(self, args, env=None, cwd=None):
        self.args = [str(a) for a in args]
        self._directory = tempfile.TemporaryDirectory(prefix="kerazoo-process-")
        self._stdout = os.path.join(self._directory.name, "stdout")
        self._stderr = os.path.join(self._directory.name, "stderr")
        environment = dict(os.environ if env is None else env)
        self._process = _context.Process(
            target=_main,
            args=(self.args, environment, str(cwd or os.getcwd()), self._stdout, self._stderr),
        )
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self):
        return self._process.exitcode

    def poll(self):
        return self._process.exitcode

    def send_signal(self, signal):
        os.kill(self.pid, signal)

    def kill(self):
        if self._process.exitcode is None:
            self._process.kill()

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def communicate(self, timeout=None):
        """Wait for the end; return (stdout, stderr) as text."""
        self.wait(timeout)
        outputs = []
        for path in (self._stdout, self._stderr):
            with open(path, errors="replace") as f:
                outputs.append(f.read())
        self._directory.cleanup()
        return tuple(outputs)


def run(args, env=None, cwd=None, timeout=900):
    """Run `python ARGS...` to its end; a `subprocess.CompletedProcess` with
    text output. Killed (and `subprocess.TimeoutExpired` raised) after
    `timeout` seconds."""
    process = Process(args, env=env, cwd=cwd)
    try:
        stdout, stderr = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
