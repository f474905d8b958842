"""kerazoo.recipes.cluster outside a cluster (the process is the chief), and the workers' scratch directories."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from helpers.replicas import two_cpu_strategy
from kerazoo.recipes import cluster


@pytest.mark.parametrize(
    "strategy", [tf.distribute.get_strategy, two_cpu_strategy], ids=["default", "mirrored"]
)
def test_outside_a_cluster_the_only_process_is_the_chief_and_writes_out(strategy, tmp_path):
    strategy = strategy()
    assert cluster.task(strategy) is None
    assert cluster.is_chief(strategy)
    assert cluster.run_directory("baseline", tmp_path / "run", strategy) == tmp_path / "run"
    assert cluster.run_directory("baseline", None, strategy) is None  # the default, named after the time
    rows = cluster.gather_from_workers(strategy, [3, 2, 0])
    assert rows.dtype == np.int64 and rows.tolist() == [[3, 2, 0]]  # this process's one row
    cluster.check_every_worker_has(strategy, 7, "the backups differ")  # no other worker to differ


def test_a_workers_scratch_directory_is_named_after_out_and_its_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scratch = cluster.scratch_directory("baseline", "runs/a", "worker", 1)
    assert scratch.parent == Path(tempfile.gettempdir()) / "kerazoo-workers"  # out of --out
    assert scratch.name.startswith("baseline-") and scratch.name.endswith("-worker1")
    # A restarted worker finds it again, however --out was spelt.
    assert cluster.scratch_directory("baseline", os.path.abspath("runs/a"), "worker", 1) == scratch
    others = {
        cluster.scratch_directory("baseline", "runs/b", "worker", 1),
        cluster.scratch_directory("baseline", "runs/a", "worker", 2),
        cluster.scratch_directory("lucir", "runs/a", "worker", 1),
    }
    assert scratch not in others and len(others) == 3
