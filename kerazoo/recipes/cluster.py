"""Which worker of a `--strategy multiworker` cluster writes the run directory.

Every worker runs the same command (`TF_CONFIG` says which task it is) and
trains in lockstep with the others. The chief (the `chief` task, else worker
0) writes `--out`: logs, checkpoints, backups, report, metrics and exports.
Every other worker keeps the same files in a scratch directory of its own,
which the user never sees: out of `--out`, named after it (so a restarted
worker finds its backups again and resumes with the others), and deleted
when the run finishes. The other workers do write them all, exports
included: every worker must make the same calls in the same order, since
training, predictions and restores run collective ops that wait for all.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerazoo._keras_internals import reduces_across_workers
from kerazoo.recipes.config import ConfigError, to_dict
from kerazoo.recipes.recipe import RunDirError


def task(strategy):
    """(task type, task index) of this process in its cluster, or None
    outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or not resolver.cluster_spec().as_dict():
        return None
    return resolver.task_type, int(resolver.task_id or 0)


def describe(strategy):
    """'worker 1 of 2' (this task in its cluster)."""
    task_type, index = task(strategy)
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return f"{task_type} {index} of {sum(len(addresses) for addresses in jobs.values())}"


def is_chief(strategy):
    """Whether this process writes the run directory: the `chief` task of
    the cluster, else `worker` 0 (TensorFlow's own rule), or the only process."""
    this = task(strategy)
    if this is None:
        return True
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return this == ("chief", 0) if "chief" in jobs else this == ("worker", 0)


def run_directory(recipe, out, strategy):
    """The run directory this process writes: `out` (None: the default) for
    the chief or the only process; for another worker,
    `<temp dir>/kerazoo-workers/<recipe>-<hash of out>-<task><index>`.
    `out` must be given in a cluster (`Recipe.main` checks it): the default
    is named after the time, so a restarted worker would not find its own.
    """
    if is_chief(strategy):
        return out
    return scratch_directory(recipe, out, *task(strategy))


def scratch_directory(recipe, out, task_type, index):
    """The scratch run directory of task (`task_type`, `index`) of a cluster
    run of `recipe` whose chief writes `out`."""
    digest = hashlib.sha256(os.path.abspath(out).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "kerazoo-workers" / f"{recipe}-{digest}-{task_type}{index}"


def gather_from_workers(strategy, values):
    """Every replica's `values` (a list of integers of the same length on
    every worker) as an array with one row per replica; outside a cluster,
    this process's one row. Every worker must call it at the same point: it
    is a collective op."""
    if not reduces_across_workers(strategy):
        return np.array([values], "int64")
    per_replica = strategy.run(lambda: tf.constant([values], "int64"))
    return strategy.gather(per_replica, axis=0).numpy()


def check_every_worker_has(strategy, value, mismatch):
    """Raise `RunDirError(mismatch + ...)` on every worker of a cluster
    unless all hold the same integer `value` (no-op outside a cluster).
    Every worker must call it at the same point: it is a collective op."""
    if len(set(gather_from_workers(strategy, [int(value)])[:, 0])) > 1:
        raise RunDirError(
            f"{mismatch}: the workers cannot resume together. Start the run again on every worker "
            "with --overwrite."
        )


def wait_for_every_worker(strategy):
    """Return once every worker of a cluster has called it (at once outside
    a cluster). Every worker must call it at the same point: it is a
    collective op, which fails when a worker has died."""
    gather_from_workers(strategy, [0])


def check_every_worker_opened(strategy, error):
    """Raise `error` (this worker's refusal of its run directory, or None)
    here, and a `RunDirError` on every other worker of a cluster, when any
    worker refused: the others would otherwise create their scratch run and
    wait for it in their first collective op. Every worker must call it at
    the same point: it is a collective op."""
    refused = gather_from_workers(strategy, [int(error is not None)])[:, 0]
    if error is not None:
        raise error
    if refused.any():
        raise RunDirError(
            "another worker of this cluster refused its run directory (its own error says why), "
            "so this one stops too; fix that and start every worker again."
        )


def check_same_config(strategy, recipe, config):
    """Raise `ConfigError` on every worker of a cluster whose workers were
    given different recipes or configs (no-op outside a cluster): they would
    train apart without a word, or crash in a collective op mid-run.
    `data_dir` may differ (a path on each host). Every worker must call it
    at the same point: it is a collective op."""
    fields = {key: value for key, value in to_dict(config).items() if key != "data_dir"}
    keys = sorted(fields)
    # Compare the key lists first: the second gather needs as many values on every worker.
    if len(set(gather_from_workers(strategy, [_digest([recipe, keys])])[:, 0])) > 1:
        raise ConfigError(
            "the workers of this cluster run different recipes (or kerazoo versions): give every "
            'worker the same command (docs/recipes.md, "Several machines").'
        )
    values = gather_from_workers(strategy, [_digest(fields[key]) for key in keys])
    differ = [key for column, key in enumerate(keys) if len(set(values[:, column])) > 1]
    if differ:
        raise ConfigError(
            f"the workers of this cluster were given different values of {', '.join(differ)}: give "
            'every worker the same command (docs/recipes.md, "Several machines").'
        )


def _digest(value):
    """A 56-bit integer hash of a JSON-able value (an int64 in a collective)."""
    text = json.dumps(value, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:7], "big")
