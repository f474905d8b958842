"""Two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy,
against one process on the same global batches.

`CASES` builds each model the test trains; run as a script, this file is
one worker: `python multiworker.py DIRECTORY TF_CONFIG`. Workers are
processes of their own, forked with TensorFlow imported (`helpers.processes`).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

from helpers import processes

EPOCHS = 2
GLOBAL_BATCH = 16


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_configs(workers=2):
    """One TF_CONFIG per worker of a cluster on free loopback ports."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def start_workers(args, workers=2, env=None):
    """Start `python ARGS... TF_CONFIG` once per worker of a loopback cluster
    (or with TF_CONFIG in the environment when `env` is given)."""
    started = []
    for config in cluster_configs(workers):
        if env is None:
            command, environment = [*args, config], None
        else:
            command, environment = args, {**os.environ, **env, "TF_CONFIG": config}
        started.append(processes.Process(command, env=environment))
    return started


def finish(workers, timeout=300):
    """Wait for every worker; kill all if one hangs (a collective op waits
    for its peers forever). Returns [(returncode, stdout, stderr)]."""
    try:
        for worker in workers:
            worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
    outputs = [worker.communicate() for worker in workers]
    return [(worker.returncode, out, err) for worker, (out, err) in zip(workers, outputs)]


def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2 * GLOBAL_BATCH, 8, 8, 1)).astype("float32")
    y = (np.arange(2 * GLOBAL_BATCH) % 5).astype("int32")
    target = rng.uniform(size=x.shape).astype("float32") + 0.5
    return x, y, target


def _classifier():
    import keras

    from kerazoo import backbones
    from kerazoo.models import Classifier
    from kerazoo.optimizers import CoupledWeightDecay

    model = Classifier(backbones.get("convnet", input_shape=(8, 8, 1), width=8, synchronized=True), 5)
    optimizer = CoupledWeightDecay(keras.optimizers.SGD(0.1, momentum=0.9), 5e-2)
    model.compile(optimizer=optimizer, metrics=["accuracy"])
    return model


def _bnm():
    import keras

    from kerazoo import backbones
    from kerazoo.models import DomainAdapter

    backbone = backbones.get("convnet", input_shape=(8, 8, 1), width=8, synchronized=True)
    model = DomainAdapter(backbone, 5, method="bnm", weight=5.0, scope="global")
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return model


def _batchformer():
    import keras

    from kerazoo import backbones
    from kerazoo.layers import BatchFormer
    from kerazoo.models import BatchFormerClassifier

    model = BatchFormerClassifier(
        backbones.get("convnet", input_shape=(8, 8, 1), width=8, synchronized=True),
        5,
        BatchFormer(dropout=0.0, scope="global"),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return model


def _adco():
    import keras

    from kerazoo import backbones
    from kerazoo.models import AdCo
    from kerazoo.optimizers import GradientAscent

    backbone = backbones.get("convnet", input_shape=(8, 8, 1), width=8, synchronized=True)
    model = AdCo(backbone, bank_size=32, dim=4, hidden_dim=8, key_momentum=0.9, scope="global")
    model.compile(
        keras.optimizers.SGD(0.1, momentum=0.9),
        GradientAscent(keras.optimizers.SGD(3.0, momentum=0.9), weight_decay=1e-4),
    )
    return model


# name -> (compiled model builder, dataset of global batches).
CASES = {
    "classifier": (_classifier, lambda x, y, t: ((x, y),)),
    "bnm_global": (_bnm, lambda x, y, t: (((x, y), t),)),
    "batchformer_global": (_batchformer, lambda x, y, t: ((x, y),)),
    # Two views; the weights include the bank (ascended) and the EMA key encoder.
    "adco_global": (_adco, lambda x, y, t: ((x, x + 0.1 * (t - 0.5)),)),
}


def dataset(name):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(*CASES[name][1](*_data())).batch(
        GLOBAL_BATCH, drop_remainder=True
    )


def build(name, weights=None):
    """The compiled, built model of case `name`, with `weights` if given."""
    model = CASES[name][0]()
    model(_data()[0][:1])
    if weights is not None:
        model.set_weights(weights)
    return model


def train(name, weights, strategy):
    """Train case `name` from `weights` under `strategy`; return
    (weights, history)."""
    with strategy.scope():
        model = build(name, weights)
    history = model.fit(dataset(name), epochs=EPOCHS, verbose=0, shuffle=False)
    return model.get_weights(), {k: [float(v) for v in vs] for k, vs in history.history.items()}


def save_weights(path, weights):
    import numpy as np

    np.savez(path, *weights)


def load_weights(path):
    import numpy as np

    with np.load(path, allow_pickle=False) as stored:
        return [stored[f"arr_{i}"] for i in range(len(stored.files))]


def main(directory, tf_config):
    """Train every case from `directory/initial/` and write the results to
    `directory/worker<index>/`."""
    os.environ["TF_CONFIG"] = tf_config
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    directory = pathlib.Path(directory)
    out = directory / f"worker{json.loads(tf_config)['task']['index']}"
    out.mkdir()
    for name in CASES:
        weights, history = train(name, load_weights(directory / "initial" / f"{name}.npz"), strategy)
        save_weights(out / f"{name}.npz", weights)
        (out / f"{name}.json").write_text(json.dumps(history))


def overflow(directory, tf_config):
    """One step of a Dense classifier computing in float16 in which only
    worker 1's gradients overflow (its images are 3,000 where worker 0's
    are 1); writes this worker's weights and loss scale to
    `directory/worker<index>.npz`."""
    os.environ["TF_CONFIG"] = tf_config
    import keras
    import numpy as np
    import tensorflow as tf

    from kerazoo.models import Classifier

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = json.loads(tf_config)["task"]["index"]
    x = np.full((4, 4), 3000.0 if index == 1 else 1.0, "float32")
    # Each worker reads its own batch: no sharding of one dataset.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    batches = tf.data.Dataset.from_tensors((x, np.array([0, 1, 2, 0]))).with_options(options)
    keras.config.set_dtype_policy("mixed_float16")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = Classifier(keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)]), num_classes=3)
        model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(batches, epochs=1, verbose=0)
    scale = model.optimizer
    np.savez(
        pathlib.Path(directory) / f"worker{index}.npz",
        *model.get_weights(),
        scale=np.asarray(scale.dynamic_scale),
        finite_steps=np.asarray(scale.step_counter),
    )


if __name__ == "__main__":
    if sys.argv[1] == "--overflow":
        overflow(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
