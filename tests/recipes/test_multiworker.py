"""`--strategy multiworker`: a recipe on two worker processes over loopback
ports, as on two hosts (one TF_CONFIG each, the same command): the chief
writes the run, the other worker nothing the user sees, the two train like
one process, a worker killed mid-run resumes with the others, and GIT's
stages train on a cluster."""

import csv
import json
import os
import shutil
import signal
import time

import keras
import numpy as np
import pytest

from helpers import multiworker, processes
from helpers.recipes import GIT_TOY_TRANSLATOR
from helpers.resume import assert_same_shipped_weights
from helpers.shared import shared_directory
from kerazoo.recipes import cluster

RECIPE = "kerazoo.recipes.baseline"
# A small rate: the workers' sums round differently from one process's, and
# training amplifies that (largest weight difference, two workers against one
# process, measured: at a rate of 0.001, 2e-7 after one epoch and 9e-4 after
# three; at 0.0001, 1e-6 after two, 1e-5 after three, 5e-5 after four).
SETS = ["epochs=2", "learning_rate=0.0001", "synchronized_bn=true"]


def _command(out, *sets, recipe=RECIPE, base=SETS):
    settings = [arg for s in (*base, *sets) for arg in ("--set", s)]
    return ["-m", recipe, "--strategy", "multiworker", *settings, "--out", str(out)]


def _workers(out, *sets, **command):
    # TF_CONFIG in the environment, as a cluster manager sets it per host.
    return multiworker.start_workers(_command(out, *sets, **command), env={})


def _weights(out):
    import kerazoo.models  # noqa: F401  (registers the classes model.keras names)

    return keras.saving.load_model(out / "model.keras").get_weights()


def _history(out):
    with open(out / "logs" / "seed0.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """(run directory, [(returncode, stdout, stderr)] of both workers) of an
    uninterrupted two-worker run; both workers were given the same --out.
    Run once, shared by every xdist worker that takes one of these tests."""

    def run(path):
        done = multiworker.finish(_workers(path / "cluster" / "run"))
        (path / "workers.json").write_text(json.dumps(done))

    path = shared_directory(tmp_path_factory, "multiworker", run)
    return path / "cluster" / "run", [tuple(d) for d in json.loads((path / "workers.json").read_text())]


@pytest.mark.slow
def test_the_chief_writes_the_run_and_the_other_worker_nothing(two_workers):
    out, done = two_workers
    assert [code for code, _, _ in done] == [0, 0], [err[-3000:] for _, _, err in done]
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]
    assert {"metrics.json", "model.keras", "model.onnx", "model", "report.md"} <= {
        p.name for p in out.iterdir()
    }
    assert json.loads((out / "metrics.json").read_text())["replicas"] == 2
    # Both workers run a StepLoop's calls of several steps, as one process does.
    assert "seed0: 44 steps an epoch, at most 32 a call" in (out / "run.log").read_text()
    scratch = cluster.scratch_directory("baseline", out, "worker", 1)
    assert f"worker 1 of 2: the chief's --out holds this run; {scratch} removed" in done[1][1]
    assert not scratch.exists()


@pytest.mark.slow
def test_two_workers_train_like_one_process(two_workers, cli, tmp_path):
    out, _ = two_workers
    settings = [arg for s in (*SETS, "steps_per_execution=1") for arg in ("--set", s)]
    one = cli(RECIPE, "--strategy", "default", "--jobs", "1", *settings, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    for a, b in zip(_weights(out), _weights(tmp_path / "one"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(_history(out), _history(tmp_path / "one"), strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([float(a[k]) for k in a], [float(b[k]) for k in a], rtol=1e-5)


@pytest.mark.slow
def test_a_killed_worker_restarted_with_the_others_resumes_exactly(two_workers, tmp_path):
    out = tmp_path / "run"
    workers = _workers(out)
    backups = [
        out / "backup" / "seed0",
        cluster.scratch_directory("baseline", out, "worker", 1) / "backup" / "seed0",
    ]

    def epoch(backup):
        metadata = backup / "training_metadata.json"
        return json.loads(metadata.read_text() or "{}").get("epoch", 0) if metadata.exists() else 0

    # Killed once both workers hold the epoch-1 backup.
    deadline = time.monotonic() + 300
    while not all(epoch(backup) >= 1 for backup in backups):
        assert time.monotonic() < deadline and workers[0].poll() is None, "no backup of epoch 1"
        time.sleep(0.05)
    workers[1].send_signal(signal.SIGKILL)
    # The chief's next collective op finds its peer gone and fails.
    assert [code for code, _, _ in multiworker.finish(workers)] == [1, -signal.SIGKILL]
    assert not (out / "metrics.json").exists()

    # The other worker's backup lost (the state of a kill between the two
    # workers' saves, one epoch further apart): both resume from the stage's
    # start, the newest epoch both hold.
    shutil.rmtree(backups[1])
    resumed = multiworker.finish(_workers(out))
    assert [code for code, _, _ in resumed] == [0, 0], [err[-3000:] for _, _, err in resumed]
    assert "resuming the run" in resumed[0][1]
    assert (
        "seed0: resuming from epoch 0, the newest backup every worker holds (this worker's backup held "
        in (out / "run.log").read_text()
    )
    uninterrupted, _ = two_workers
    assert_same_shipped_weights(out, uninterrupted)
    assert _history(out) == _history(uninterrupted)
    metrics = [json.loads((d / "metrics.json").read_text())["results"] for d in (out, uninterrupted)]
    assert metrics[0] == metrics[1]


@pytest.mark.slow
def test_git_trains_on_two_workers(tmp_path):
    # GIT's own stages on a cluster: MUNIT's two updates a step (at a batch
    # of 2, one image a worker: its batch of 1 is refused there), then the
    # DRS epochs that translate a varying number of tail slots a batch.
    git_sets = [
        "num_seeds=1",
        "translator_epochs=1",
        "translator_batch_size=2",
        *GIT_TOY_TRANSLATOR,
        "epochs=2",
        "drs_epoch=1",
        "methods=ce_drs_git",
        "ekld_images=10",
        "ekld_transforms=10",
        "diagnostic_styles=2",
    ]
    out = tmp_path / "run"
    done = multiworker.finish(_workers(out, recipe="kerazoo.recipes.git", base=git_sets))
    assert [code for code, _, _ in done] == [0, 0], "\n".join(err[-2000:] for _, _, err in done)
    with open(out / "logs" / "translator.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1
    results = json.loads((out / "metrics.json").read_text())["results"]["ce_drs_git"]
    assert all(np.isfinite(values).all() for values in results.values())


@pytest.mark.slow
def test_workers_given_different_configs_are_refused_by_name_before_any_directory(tmp_path):
    # They would train apart without a word (or crash in a collective op
    # mid-run when their epochs differ).
    out = tmp_path / "run"
    workers = [
        processes.Process(_command(out, f"learning_rate={rate}"), env={**os.environ, "TF_CONFIG": config})
        for rate, config in zip((0.0001, 0.001), multiworker.cluster_configs(2))
    ]
    for returncode, _, stderr in multiworker.finish(workers, timeout=240):
        assert returncode == 2, stderr[-2000:]
        assert "the workers of this cluster were given different values of learning_rate" in stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_directory_the_chief_refuses_stops_every_worker_and_leaves_no_scratch_run(tmp_path):
    out = tmp_path / "run"
    out.write_text("mine")  # the chief refuses it; the other worker's scratch run is elsewhere
    (chief, *_), (other, *_) = done = multiworker.finish(_workers(out), timeout=240)
    assert (chief, other) == (2, 2), [stderr[-2000:] for _, _, stderr in done]
    assert "is a file, not a directory" in done[0][2]
    assert "another worker of this cluster refused its run directory" in done[1][2]
    assert not cluster.scratch_directory("baseline", out, "worker", 1).exists()
    assert out.read_text() == "mine"
