"""`--jobs N`: (seed, method) pairs shared out among processes give the
numbers of a single process (`kerazoo/recipes/jobs.py`)."""

import contextlib
import json
import os

import pytest

from kerazoo.recipes.jobs import JobBoard
from kerazoo.recipes.results import MethodResult


def test_a_pair_is_claimed_once_and_its_result_reads_back_exactly(tmp_path):
    board = JobBoard(tmp_path / "jobs")
    board.reset()
    assert board.claim((1, "bnm")) and not board.claim((1, "bnm")) and board.claim((0, "bnm"))
    rows = {"bnm": {"accuracy": 0.1 + 0.2, "forgetting": None}}
    board.post((1, "bnm"), MethodResult(rows, details={"curve": [1 / 3, 2 / 3]}))
    back = board.result((1, "bnm"))
    assert back.rows == rows and back.details == {"curve": [1 / 3, 2 / 3]} and back.model is None
    assert board.result((0, "bnm")) is None
    board.reset()
    assert board.claim((1, "bnm")), "a new invocation voids the claims of an interrupted one"


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(cli, git_toy, tmp_path):
    # GIT: the worker (which starts second) takes seed 1, and its GIT stage
    # runs on the translator the first process trained, loaded from file,
    # where one process runs it after seed 0's on the same translator object.
    toy = [*git_toy, "num_seeds=2", "methods=ce_drs_git", "exports=keras"]
    sets = [a for s in toy for a in ("--set", s)]
    one, two = tmp_path / "one", tmp_path / "two"
    for out, jobs in ((one, 1), (two, 2)):
        result = cli("kerazoo.recipes.git", *sets, "--out", out, "--jobs", jobs)
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = (json.loads((out / "metrics.json").read_text()) for out in (one, two))
    assert first["results"] == second["results"] and first["details"] == second["details"]
    assert "--jobs 2: 1 more process" in (two / "run.log").read_text()
    assert not (two / "jobs").exists() and (two / "model.keras").exists()


def test_jobs_must_be_a_positive_whole_number(cli, tmp_path):
    result = cli("kerazoo.recipes.baseline", "--jobs", "0", "--out", tmp_path / "run")
    assert result.returncode == 2 and "--jobs: expected auto or a whole number >= 1, got '0'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_never_more_processes_than_pairs():
    import tensorflow as tf

    from kerazoo.recipes import baseline
    from kerazoo.recipes.runner import number_of_jobs

    default = tf.distribute.get_strategy()
    assert number_of_jobs(5, default, baseline.RECIPE, baseline.RECIPE.config(num_seeds=1)) == 1
    assert number_of_jobs(5, default, baseline.RECIPE, baseline.RECIPE.config(num_seeds=3)) == 3


def test_other_processes_take_other_methods_while_the_shipped_one_trains_its_shared_stage():
    from kerazoo.recipes.runner import claim_order

    pairs = [(seed, method) for seed in (0, 1, 2) for method in ("ce_drs", "ce_drs_git", "oracle")]
    order = claim_order(pairs, (0, "ce_drs_git"))
    assert sorted(order) == sorted(pairs)
    assert order[0] == (0, "ce_drs_git")
    # GIT's translator is trained within the shipped pair; the seeds that
    # need it come after every pair that does not.
    assert order[-2:] == [(1, "ce_drs_git"), (2, "ce_drs_git")]
    assert order[1:7] == [(s, m) for s in (0, 1, 2) for m in ("ce_drs", "oracle")]


def test_a_run_without_the_shipped_method_does_not_train_it():
    # `--set methods=random --set exports=none` on AdCo trained AdCo's seed 0
    # as well (10 minutes on glyphs) and threw the result away.
    from kerazoo.recipes.runner import claim_order

    pairs = [(seed, "random") for seed in (0, 1, 2)]
    assert claim_order(pairs, (0, "adco")) == pairs


@pytest.mark.slow
def test_workers_end_when_their_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "kerazoo.recipes.baseline",
        "--set",
        "num_seeds=2",
        "--set",
        "epochs=200",
    ]
    parent = subprocess.Popen([*command, "--jobs", "2", "--out", str(out)])
    workers = []
    try:
        workers = _workers_started(parent, out)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 30
        while any(os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid) for pid in workers):
            assert time.time() < deadline, "a worker outlived its parent by 30 s"
            time.sleep(0.2)
    finally:
        _kill_all(parent, workers)


@pytest.mark.slow
def test_a_parent_stopped_by_sigint_stops_its_workers_before_it_exits(tmp_path):
    # A scheduler signals the parent's pid alone: its worker had trained on
    # for seconds after it, while the parent still held the run directory.
    import signal
    import subprocess
    import time

    from helpers import processes

    out = tmp_path / "run"
    command = ["-m", "kerazoo.recipes.baseline", "--set", "num_seeds=2", "--set", "epochs=5000"]
    parent = processes.Process([*command, "--jobs", "2", "--out", out])
    workers = []
    try:
        workers = _workers_started(parent, out)
        time.sleep(2)  # the worker is past its start-up
        for _ in range(12):
            # Again if Python dropped it: raised inside a finalizer (TensorFlow's
            # AtomicFunction.__del__), a KeyboardInterrupt is only printed.
            parent.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                parent.wait(timeout=5)
                break
        # Its output when it ended otherwise (exit status 1 once in a loaded suite run).
        assert parent.returncode == 130, parent.communicate()[1][-3000:]
        assert all("zombie" in _state(pid) for pid in workers), "a worker outlived its parent"
    finally:
        _kill_all(parent, workers)


def _workers_started(parent, out, seconds=300):
    """The pids of the `--worker` processes on run `out`, once one has started."""
    import subprocess
    import time

    deadline = time.time() + seconds
    while True:
        assert time.time() < deadline and parent.poll() is None
        found = subprocess.run(["pgrep", "-f", "--", f"--out {out} --worker"], capture_output=True, text=True)
        if found.stdout.split():
            return [int(pid) for pid in found.stdout.split()]
        time.sleep(0.1)


def _kill_all(parent, workers):
    import signal

    parent.kill()
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _state(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(line for line in f if line.startswith("State:")).lower()
    except (OSError, StopIteration):
        return "zombie"


def test_a_worker_whose_run_was_refused_and_removed_ends_quietly(cli, tmp_path):
    # The parent starts its workers once the data are prepared; a pair can
    # still be refused after that (a batch larger than the data), and the
    # parent then removes the empty run directory before a worker opens it.
    result = cli("kerazoo.recipes.baseline", "--worker", "--out", tmp_path / "removed")
    assert result.returncode == 0 and "error" not in result.stderr, result.stderr


def test_a_jobs_run_resumed_in_one_process_ends_without_its_claims(cli, tmp_path):
    out = tmp_path / "run"
    sets = ["--set", "epochs=1", "--set", "exports=keras"]
    assert cli("kerazoo.recipes.baseline", *sets, "--out", out, "--jobs", "1").returncode == 0
    # As a --jobs 2 run killed mid-way leaves it, then resumed with --jobs 1.
    (out / "metrics.json").unlink()
    (out / "jobs").mkdir()
    (out / "jobs" / "0-erm.claim").write_text("")
    result = cli("kerazoo.recipes.baseline", *sets, "--out", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "metrics.json").exists() and not (out / "jobs").exists()
