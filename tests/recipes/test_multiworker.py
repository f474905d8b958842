"""`--strategy multiworker` is refused with the reason, and the reason still
holds: Keras' own `Model.fit` fails under MultiWorkerMirroredStrategy on two
worker processes over loopback. When this test fails, Keras has fixed it:
lift the refusal and test two-worker recipe runs instead."""

import json
import socket
import subprocess
import sys

import pytest

from kerazoo.recipes.recipe import MULTIWORKER_UNSUPPORTED

WORKER = """
import json, os, sys
os.environ["TF_CONFIG"] = sys.argv[1]
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(16)
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
model.fit(data, epochs=1, verbose=0)
print("trained")
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_the_recipes_refuse_multiworker_with_the_reason(cli, tmp_path):
    done = cli("kerazoo.recipes.baseline", "--strategy", "multiworker", "--out", tmp_path / "run")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {MULTIWORKER_UNSUPPORTED}"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_keras_fit_still_fails_on_two_workers_over_loopback():
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode != 0 for worker in workers), outputs
    assert all("PerReplica" in stderr and "trained" not in stdout for stdout, stderr in outputs)
