"""Parallel processes of one run (`--jobs N`): the (seed, method) pairs of
a recipe are independent, so N processes can take them in turn.

A model too small to keep two cores busy leaves one idle; `--jobs 2` runs
a second process beside the first. Each pair starts from its seed's random
state (`Run.reseed`) and its stages are named after it, so a pair computes
the same numbers in whichever process runs it: the run's tables are those
of `--jobs 1`.

The board lives in the run directory while the run is unfinished:

    jobs/<seed>-<method>.claim   taken by one process (created exclusively)
    jobs/<seed>-<method>.json    its rows and details once it finished
    jobs/<stage>.lock            held while a process trains or loads a stage

A stage two pairs share (GIT's translator, its CE warm-up shared by two
methods) is trained by the first process that locks it; the other waits and
loads the finished weights.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import filelock

from kerazoo.atomic import write_text
from kerazoo.recipes.results import MethodResult

# The environment variable that gives a worker its parent's pid.
PARENT_PID = "KERAZOO_JOBS_PARENT_PID"


class JobBoard:
    """Claims, results and stage locks of the (seed, method) pairs of one run.

    Args:
        path: the board's directory (`<run>/jobs`).

    Example:

    ```python
    import tempfile
    from kerazoo.recipes.jobs import JobBoard
    from kerazoo.recipes.results import MethodResult

    board = JobBoard(tempfile.mkdtemp() + "/jobs")
    board.reset()
    assert board.claim((0, "erm")) and not board.claim((0, "erm"))
    board.post((0, "erm"), MethodResult({"erm": {"test_accuracy": 0.9}}))
    print(board.result((0, "erm")).rows)
    ```
    """

    def __init__(self, path):
        self.path = Path(path)

    def reset(self):
        """An empty board: claims of an earlier, interrupted invocation are void
        (its finished stages are in `checkpoints/` and load again)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def _file(self, pair, suffix):
        seed, method = pair
        return self.path / f"{seed}-{method}{suffix}"

    def claim(self, pair):
        """True for the one process that claims `pair` first."""
        try:
            os.close(os.open(self._file(pair, ".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def post(self, pair, result):
        """Publish a finished pair's rows and details (JSON keeps every float exactly)."""
        write_text(self._file(pair, ".json"), json.dumps({"rows": result.rows, "details": result.details}))

    def result(self, pair):
        """The `MethodResult` (without its model) another process posted, or None."""
        path = self._file(pair, ".json")
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        return MethodResult(saved["rows"], details=saved["details"])

    def stage_lock(self, stage):
        """A lock held while one process trains or loads `stage`."""
        return filelock.FileLock(str(self.path / f"{stage}.lock"))


def start_workers(recipe, args, path, count):
    """Start `count` more processes of the same command line on run `path`;
    they inherit the console and take pairs until none is left."""
    command = [sys.executable, "-m", f"kerazoo.recipes.{recipe}", "--out", str(path), "--worker"]
    command += [a for f in args.config for a in ("--config", f)]
    command += [a for s in args.set for a in ("--set", s)]
    command += ["--strategy", args.strategy] + (["--verbose"] if args.verbose else [])
    env = {**os.environ, PARENT_PID: str(os.getpid())}
    return [subprocess.Popen(command, env=env) for _ in range(count)]


@contextlib.contextmanager
def stop_workers_on_error(workers, seconds=10):
    """Stop `workers` (SIGTERM, as a kill: they resume from their backups)
    and wait for them when the block is left by an exception (Ctrl-C or a
    scheduler's SIGINT sent to this process alone): they trained on for
    seconds after it, and its run directory must be free once it exits."""
    try:
        yield
    except BaseException:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(seconds)
        raise


def exit_with_parent(poll_seconds=1.0):
    """In a worker: end this process soon after the process that started it
    dies (killed, or stopped by an error), instead of training on alone.
    Whatever it was training resumes from its backup when the run is
    re-run. A dead parent's children are re-parented, so the parent pid
    changes: a daemon thread polls it against the pid `start_workers`
    passed (the parent may die before this process gets here)."""
    parent = int(os.environ.get(PARENT_PID, os.getppid()))

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
