"""Bad inputs and what the user sees: one row of docs/bad_inputs.md per
trigger below, and one test per row.

Each trigger makes the mistake for real (a layer called on the wrong rank, a
tampered zoo file, a typo in a TOML given to the command line) and returns
the message the user sees: `Type: message` for an exception, the `error:`
line for a command. The docs table is generated from these triggers
(`python tests/test_bad_inputs.py` rewrites it), so the two cannot drift
apart: each row's test compares its message with the table's. Paths under the test's temporary folder read `<tmp>`.
"""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from helpers import processes

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad_inputs.md"
ROWS = {}  # id -> (where, bad input, trigger(tmp) -> message)


def row(row_id, where, bad_input):
    def register(trigger):
        ROWS[row_id] = (where, bad_input, trigger)
        return trigger

    return register


def _raised(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001  (the message is the point)
        return f"{type(error).__name__}: {error}"
    raise AssertionError("no error was raised")


def _command(*args, cwd=None, env=None):
    done = processes.run(
        ["-m", *args], timeout=300, cwd=cwd, env=None if env is None else {**os.environ, **env}
    )
    # Every command's refusal: exit status 2 and one error line, no traceback.
    assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines, done.stderr
    return lines[-1]


def _refused_without_a_run_directory(tmp, module, *args):
    """The `error:` line of `python -m module args --out tmp/run`, which must
    leave no run directory behind."""
    message = _command(module, *args, "--out", tmp / "run")
    assert not (tmp / "run").exists()
    return message


def _convnet(**kwargs):
    from kerazoo import backbones

    return backbones.get("convnet", width=8, **kwargs)


def _images(n=4, size=8, value=0.5, dtype="float32"):
    return np.full((n, size, size, 1), value, dtype)


def _zoo_copy(tmp, name="digits_baseline"):
    """A zoo root in `tmp` holding a copy of model `name` (and the manifest)."""
    manifest = json.loads((ROOT / "saved_models" / "manifest.json").read_text())
    entry = manifest["models"][name]
    for relative in entry["files"]:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, tmp / relative)
    (tmp / "saved_models" / "manifest.json").write_text(
        json.dumps({**manifest, "models": {name: entry}}, indent=2)
    )
    return tmp


# Layers, losses and models -------------------------------------------------


@row("batchformer-rank", "`kerazoo.layers.BatchFormer`", "a rank-3 tensor (4, 8, 16)")
def _(tmp):
    from kerazoo.layers import BatchFormer

    return _raised(lambda: BatchFormer(num_heads=2)(np.zeros((4, 8, 16), "float32"), training=True))


@row("bnm-logits", "`kerazoo.losses.bnm_loss`", "logits instead of probabilities")
def _(tmp):
    from kerazoo.losses import bnm_loss

    logits = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    return _raised(lambda: bnm_loss(logits))


@row("bnm-rank", "`kerazoo.losses.fbnm_loss`", "a (2, 3, 4) tensor")
def _(tmp):
    from kerazoo.losses import fbnm_loss

    return _raised(lambda: fbnm_loss(np.full((2, 3, 4), 0.25, "float32")))


@row("bnm-normalization", "`kerazoo.losses.bnm_loss`", "`normalization='mean'`")
def _(tmp):
    from kerazoo.losses import bnm_loss

    return _raised(lambda: bnm_loss(np.full((4, 2), 0.5, "float32"), normalization="mean"))


@row("negative-bank-empty", "`kerazoo.layers.NegativeBank`", "a bank of size 0")
def _(tmp):
    from kerazoo.layers import NegativeBank

    return _raised(lambda: NegativeBank(0, 8))


@row("git-augment-counts", "`kerazoo.layers.GITAugment`", "a negative class count")
def _(tmp):
    import keras

    from kerazoo.layers import GITAugment

    return _raised(lambda: GITAugment(keras.layers.Identity(), [10, -5], threshold=20))


@row("git-augment-rule", "`kerazoo.layers.GITAugment`", "an unknown rule")
def _(tmp):
    import keras

    from kerazoo.layers import GITAugment

    return _raised(lambda: GITAugment(keras.layers.Identity(), [10, 5], threshold=20, rule="always"))


@row("git-classifier-counts", "`kerazoo.models.GITClassifier`", "class counts of the wrong length")
def _(tmp):
    import keras

    from kerazoo.layers import GITAugment
    from kerazoo.models import GITClassifier

    augment = GITAugment(keras.layers.Identity(), [10, 5], threshold=20)
    return _raised(lambda: GITClassifier(_convnet(), 3, augment=augment))


@row("munit-one-batch", "`kerazoo.models.MUNIT`", "`domains=2` given one batch, not a pair from two loaders")
def _(tmp):
    from kerazoo.models import MUNIT, MUNITGenerator

    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8)
    munit = MUNIT(generator, disc_dim=4, disc_layers=2, domains=2)
    return _raised(lambda: munit.compute_losses(_images(), training=True))


@row("balanced-softmax-counts", "`kerazoo.losses.balanced_softmax_loss`", "2 class counts for 3 classes")
def _(tmp):
    from kerazoo.losses import balanced_softmax_loss

    return _raised(lambda: balanced_softmax_loss(np.array([0, 1]), np.zeros((2, 3), "float32"), [10, 5]))


@row(
    "labels-out-of-range",
    "`kerazoo.models.Classifier.fit`",
    "a label 5 for 3 classes (TensorFlow's graph error; the line that names it)",
)
def _(tmp):
    from kerazoo.models import Classifier

    model = Classifier(_convnet(), 3)
    model.compile(optimizer="sgd")
    message = _raised(lambda: model.fit(_images(), np.array([0, 1, 5, 2]), verbose=0))
    return (
        next(line for line in message.splitlines() if "assertion failed" in line)
        .split("[Condition")[0]
        .strip()
    )


@row("fit-class-weight", "`kerazoo.models.Classifier.fit`", "`class_weight={0: 5.0, 1: 1.0, 2: 1.0}`")
def _(tmp):
    from kerazoo.models import Classifier

    model = Classifier(_convnet(), 3)
    model.compile(optimizer="sgd")
    weights = {0: 5.0, 1: 1.0, 2: 1.0}
    return _raised(lambda: model.fit(_images(), np.array([0, 1, 2, 0]), class_weight=weights, verbose=0))


@row(
    "loss-scale-inside-weight-decay",
    "`kerazoo.optimizers.CoupledWeightDecay`",
    "a wrapped optimizer with Keras' `loss_scale_factor`",
)
def _(tmp):
    import keras

    from kerazoo.optimizers import CoupledWeightDecay

    return _raised(lambda: CoupledWeightDecay(keras.optimizers.SGD(0.1, loss_scale_factor=128.0), 5e-4))


@row("subclassed-backbone", "`kerazoo.models.LUCIRClassifier`", "a subclassed `keras.Model` as the backbone")
def _(tmp):
    import keras

    from kerazoo.layers import CosineLinear
    from kerazoo.models import LUCIRClassifier

    class Pooled(keras.Model):
        def __init__(self):
            super().__init__(name="pooled")
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, images):
            return self.pool(images)

    return _raised(lambda: LUCIRClassifier(Pooled(), CosineLinear(10)))


@row("adco-one-view", "`kerazoo.models.AdCo.fit`", "one batch of images instead of two views")
def _(tmp):
    import keras

    from kerazoo.models import AdCo
    from kerazoo.optimizers import GradientAscent

    model = AdCo(_convnet(), bank_size=8, dim=4)
    model.compile(keras.optimizers.SGD(0.1), GradientAscent(keras.optimizers.SGD(0.1)))
    return _raised(lambda: model.fit(_images(), verbose=0))


@row("adco-shuffle-groups", "`kerazoo.models.AdCo.fit`", "`shuffle_groups=4` for batches of 6 views")
def _(tmp):
    import keras
    import tensorflow as tf

    from kerazoo.models import AdCo
    from kerazoo.optimizers import GradientAscent

    model = AdCo(_convnet(), bank_size=8, dim=4, shuffle_groups=4)
    model.compile(keras.optimizers.SGD(0.1), GradientAscent(keras.optimizers.SGD(0.1)))
    views = tf.data.Dataset.from_tensor_slices((_images(12), _images(12))).batch(6, drop_remainder=True)
    return _raised(lambda: model.fit(views, verbose=0))


@row("adco-queue-smaller-than-batch", "`kerazoo.models.AdCo.fit`", "a MoCo queue of 4 keys for batches of 6")
def _(tmp):
    import keras
    import tensorflow as tf

    from kerazoo.models import AdCo

    model = AdCo(_convnet(), bank_size=4, dim=4, mode="queue")
    model.compile(keras.optimizers.SGD(0.1))
    views = tf.data.Dataset.from_tensor_slices((_images(12), _images(12))).batch(6, drop_remainder=True)
    return _raised(lambda: model.fit(views, verbose=0))


@row("predict-nan", "`Classifier.predict`", "an image holding NaN")
def _(tmp):
    from kerazoo.models import Classifier

    return _raised(lambda: Classifier(_convnet(), 3).predict(_images(value=np.nan), verbose=0))


@row("predict-uint8", "`Classifier.predict`", "uint8 pixels 0..255")
def _(tmp):
    from kerazoo.models import Classifier

    return _raised(lambda: Classifier(_convnet(), 3).predict(_images(value=7, dtype="uint8"), verbose=0))


@row("predict-shape", "`Classifier.predict`", "9x8 images for an 8x8 model")
def _(tmp):
    from kerazoo.models import Classifier

    model = Classifier(_convnet(input_shape=(8, 8, 1)), 3)
    return _raised(lambda: model.predict(np.zeros((2, 9, 8, 1), "float32"), verbose=0))


@row("backbone-unknown", "`kerazoo.backbones.get`", "an unregistered name")
def _(tmp):
    from kerazoo import backbones

    return _raised(lambda: backbones.get("vgg16"))


# Data ------------------------------------------------------------------------


@row("protocol-nuisance", "`kerazoo.data.make_protocol`", "an unknown modifier `digits-blur`")
def _(tmp):
    from kerazoo.data import make_protocol

    return _raised(lambda: make_protocol("digits-blur"))


@row("dataset-missing", "`kerazoo.data.load_arrays`", "CIFAR-100 not prepared in `data_dir`")
def _(tmp):
    from kerazoo.data.datasets import load_arrays

    return _raised(lambda: load_arrays("cifar100", "train", str(tmp)))


@row("npz-pickle", "`dataset=arrays`", "an `.npz` holding Python objects")
def _(tmp):
    from kerazoo.data import make_protocol

    path = tmp / "mine.npz"
    x, y = np.zeros((4, 8, 8, 1), "uint8"), np.array([0, 1, 0, 1])
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, class_names=np.array([{"a": 0}, "b"], object))
    return _raised(lambda: make_protocol("arrays", data_dir=str(path)))


@row("npz-float", "`dataset=arrays`", "float images in [0, 1] instead of uint8 pixels")
def _(tmp):
    from kerazoo.data import make_protocol

    path = tmp / "mine.npz"
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 0, 1])
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    return _raised(lambda: make_protocol("arrays", data_dir=str(path)))


@row("npz-labels", "`dataset=arrays`", "a label -1 in `y_train`")
def _(tmp):
    from kerazoo.data import make_protocol

    path = tmp / "mine.npz"
    x, y = np.zeros((4, 8, 8, 1), "uint8"), np.array([0, 1, -1, 1])
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=np.array([0, 1, 0, 1]))
    return _raised(lambda: make_protocol("arrays", data_dir=str(path)))


@row("npz-npy", "`dataset=arrays`", "an `.npy` file (one array, `np.save`)")
def _(tmp):
    from kerazoo.data import make_protocol

    np.save(tmp / "mine.npy", np.zeros((4, 8, 8, 1), "uint8"))
    return _raised(lambda: make_protocol("arrays", data_dir=str(tmp / "mine.npy")))


@row(
    "lt-small-classes",
    "`python -m kerazoo.recipes.baseline`",
    "`dataset=imagefolder-lt` with 3 images a class",
)
def _(tmp):
    from helpers.image_folders import write_image_folders

    write_image_folders(tmp / "images", domains=(), per_class=3, size=12)
    sets = ["--set", "dataset=imagefolder-lt", "--set", f"data_dir={tmp / 'images'}"]
    return _refused_without_a_run_directory(tmp, "kerazoo.recipes.baseline", *sets)


@row("imagefolder-empty", "`dataset=imagefolder`", "a folder with no class folders")
def _(tmp):
    from kerazoo.data import make_protocol

    (tmp / "images").mkdir()
    return _raised(lambda: make_protocol("imagefolder", data_dir=str(tmp / "images")))


# Configs and the command line ------------------------------------------------


@row("config-unknown-key", "`python -m kerazoo.recipes.lucir`", "`--set lr=0.1`")
def _(tmp):
    return _command("kerazoo.recipes.lucir", "--set", "lr=0.1", "--out", tmp / "run")


@row("config-type", "`python -m kerazoo.recipes.lucir`", "`--set epochs=ten`")
def _(tmp):
    return _command("kerazoo.recipes.lucir", "--set", "epochs=ten", "--out", tmp / "run")


@row("config-range", "`python -m kerazoo.recipes.batchformer`", "`--set epochs=0`")
def _(tmp):
    return _command("kerazoo.recipes.batchformer", "--set", "epochs=0", "--out", tmp / "run")


@row("config-choice", "`python -m kerazoo.recipes.bnm`", "`--set backbone=vgg`")
def _(tmp):
    return _command("kerazoo.recipes.bnm", "--set", "backbone=vgg", "--out", tmp / "run")


@row("toml-typo", "`python -m kerazoo.recipes.git --config`", "a TOML with `epoch = 3` (for `epochs`)")
def _(tmp):
    (tmp / "mine.toml").write_text("epoch = 3\n")
    return _command("kerazoo.recipes.git", "--config", tmp / "mine.toml", "--out", tmp / "run")


@row("toml-missing", "`python -m kerazoo.recipes.git --config`", "a TOML file that does not exist")
def _(tmp):
    return _command("kerazoo.recipes.git", "--config", tmp / "nope.toml", "--out", tmp / "run")


@row("toml-directory", "`python -m kerazoo.recipes.git --config`", "a directory")
def _(tmp):
    return _command("kerazoo.recipes.git", "--config", tmp, "--out", tmp / "run")


@row("toml-not-text", "`python -m kerazoo.recipes.git --config`", "a file saved as UTF-16")
def _(tmp):
    (tmp / "mine.toml").write_text("epochs = 3\n", encoding="utf-16")
    return _command("kerazoo.recipes.git", "--config", tmp / "mine.toml", "--out", tmp / "run")


@row("shift-dataset", "`python -m kerazoo.recipes.bnm`", "`--set shift=fonts` on digits")
def _(tmp):
    return _command("kerazoo.recipes.bnm", "--set", "shift=fonts", "--out", tmp / "run")


@row("translator-missing", "`python -m kerazoo.recipes.git`", "`--set translator=mine.keras`, no such file")
def _(tmp):
    return _command("kerazoo.recipes.git", "--set", "translator=mine.keras", "--out", tmp / "run", cwd=tmp)


@row(
    "translator-directory",
    "`python -m kerazoo.recipes.git`",
    "`--set translator=RUN_DIR`, a GIT run's folder",
)
def _(tmp):
    (tmp / "git-run").mkdir()
    (tmp / "git-run" / "translator.keras").write_bytes(b"")
    return _command("kerazoo.recipes.git", "--set", "translator=git-run/", "--out", tmp / "run", cwd=tmp)


@row(
    "translator-not-a-translator",
    "`python -m kerazoo.recipes.git`",
    "`--set translator=` a classifier's .keras",
)
def _(tmp):
    shutil.copyfile(ROOT / "saved_models" / "digits_baseline" / "digits_baseline.keras", tmp / "mine.keras")
    return _command("kerazoo.recipes.git", "--set", "translator=mine.keras", "--out", tmp / "run", cwd=tmp)


@row(
    "translator-size",
    "`python -m kerazoo.recipes.git`",
    "`--set translator=glyphs_git` (28×28) on 16×16 digits",
)
def _(tmp):
    # Refused before any classifier trains.
    return _refused_without_a_run_directory(tmp, "kerazoo.recipes.git", "--set", "translator=glyphs_git")


@row(
    "phase-smaller-than-batch", "`python -m kerazoo.recipes.lucir`", "`--set dataset=digits-lt` (a long tail)"
)
def _(tmp):
    return _refused_without_a_run_directory(tmp, "kerazoo.recipes.lucir", "--set", "dataset=digits-lt")


@row(
    "batch-larger-than-data", "`python -m kerazoo.recipes.batchformer`", "`--set batch_size=256` on digits-lt"
)
def _(tmp):
    sets = ["--set", "dataset=digits-lt", "--set", "batch_size=256"]
    return _refused_without_a_run_directory(tmp, "kerazoo.recipes.batchformer", *sets)


@row("labels-per-class", "`python -m kerazoo.recipes.bnm`", "`--set task=ssl --set labels_per_class=500`")
def _(tmp):
    sets = ["--set", "task=ssl", "--set", "labels_per_class=500"]
    return _refused_without_a_run_directory(tmp, "kerazoo.recipes.bnm", *sets)


@row("out-other-recipe", "`python -m kerazoo.recipes.bnm`", "`--out` holding a LUCIR run")
def _(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "config.json").write_text(json.dumps({"recipe": "lucir", "config": {}}))
    return _command("kerazoo.recipes.bnm", "--out", tmp / "run")


@row(
    "out-overwrite-folder",
    "`python -m kerazoo.recipes.baseline`",
    "`--out . --overwrite` in a folder of your files",
)
def _(tmp):
    (tmp / "notes.txt").write_text("mine")
    message = _command("kerazoo.recipes.baseline", "--out", ".", "--overwrite", cwd=tmp)
    assert (tmp / "notes.txt").read_text() == "mine"
    return message


@row(
    "out-overwrite-user-files",
    "`python -m kerazoo.recipes.baseline`",
    "`--overwrite` on a finished run you added a file to",
)
def _(tmp):
    import tensorflow as tf

    from kerazoo.recipes.baseline import BaselineConfig
    from kerazoo.recipes.config import resolve
    from kerazoo.recipes.runner import Run

    run = Run.open("baseline", resolve(BaselineConfig), tf.distribute.get_strategy(), out=tmp / "run")
    (run.path / "metrics.json").write_text("{}")
    (run.path / "my_analysis.txt").write_text("mine")
    run.directory.release()  # as if that run's process had ended
    message = _command("kerazoo.recipes.baseline", "--out", tmp / "run", "--overwrite")
    assert (run.path / "my_analysis.txt").read_text() == "mine"
    return message


@row("multiworker-no-out", "`python -m kerazoo.recipes.bnm`", "`--strategy multiworker` without `--out`")
def _(tmp):
    return _command("kerazoo.recipes.bnm", "--strategy", "multiworker", cwd=tmp)


@row(
    "multiworker-tf-config",
    "`python -m kerazoo.recipes.bnm --strategy multiworker`",
    "`TF_CONFIG` that is not JSON",
)
def _(tmp):
    return _multiworker_run(tmp, "worker 0")


def _multiworker_run(tmp, tf_config):
    """The error line of a BNM run on a cluster that TF_CONFIG describes."""
    return _command(
        "kerazoo.recipes.bnm", "--strategy", "multiworker", "--out", tmp / "run", env={"TF_CONFIG": tf_config}
    )


@row(
    "multiworker-task-index",
    "`python -m kerazoo.recipes.bnm --strategy multiworker`",
    "`TF_CONFIG` naming task 2 of a two-worker cluster",
)
def _(tmp):
    tf_config = {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 2},
    }
    return _multiworker_run(tmp, json.dumps(tf_config))


@row(
    "multiworker-task-list",
    "`python -m kerazoo.recipes.bnm --strategy multiworker`",
    "`TF_CONFIG` whose workers are one string, not a list",
)
def _(tmp):
    tf_config = {"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", "index": 0}}
    return _multiworker_run(tmp, json.dumps(tf_config))


@row(
    "multiworker-port-taken",
    "`python -m kerazoo.recipes.bnm --strategy multiworker`",
    "`TF_CONFIG` giving this worker a port another process listens on",
)
def _(tmp):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        tf_config = {"cluster": {"worker": [address]}, "task": {"type": "worker", "index": 0}}
        return _multiworker_run(tmp, json.dumps(tf_config)).replace(address, "127.0.0.1:<port>")


@row(
    "batch-size-replicas",
    "`python -m kerazoo.recipes.git` on two replicas (`--strategy multiworker`, two workers)",
    "`translator_batch_size = 1` (the default: MUNIT's batch)",
)
def _(tmp):
    import tensorflow as tf

    from kerazoo.recipes.config import resolve
    from kerazoo.recipes.git import GITConfig
    from kerazoo.recipes.runner import check_batch_sizes

    two_replicas = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return _raised(lambda: check_batch_sizes(resolve(GITConfig), two_replicas))


@row(
    "out-old-checkpoint",
    "`python -m kerazoo.recipes.baseline`",
    "`--out` holding an unfinished run whose checkpoint another model wrote (an older kerazoo's)",
)
def _(tmp):
    import keras
    import tensorflow as tf

    from kerazoo.recipes.baseline import BaselineConfig
    from kerazoo.recipes.config import resolve
    from kerazoo.recipes.runner import Run

    run = Run.open("baseline", resolve(BaselineConfig), tf.distribute.get_strategy(), out=tmp / "run")
    other = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    (run.path / "checkpoints").mkdir()
    other.save_weights(run.checkpoint_path("seed0"))
    run.directory.release()  # as if that run's process had ended
    return _command("kerazoo.recipes.baseline", "--out", tmp / "run")


# Export, runtimes and the zoo ------------------------------------------------


@row("export-missing", "`python -m kerazoo.export`", "a run directory that does not exist")
def _(tmp):
    return _command("kerazoo.export", tmp / "nope", "--out", tmp / "out")


@row("export-code", "`python -m kerazoo.export`", "a `.keras` file whose Lambda layer holds Python code")
def _(tmp):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(lambda x: 1.0 - x)])
    model.save(tmp / "code.keras")
    return _command("kerazoo.export", tmp / "code.keras", "--out", tmp / "out")


@row("export-other-folder", "`python -m kerazoo.export`", "a folder holding a `.keras` file of another name")
def _(tmp):
    (tmp / "models").mkdir()
    shutil.copy(ROOT / "saved_models" / "digits_baseline" / "digits_baseline.keras", tmp / "models")
    return _command("kerazoo.export", tmp / "models", "--out", tmp / "out")


@row("export-out-file", "`python -m kerazoo.export`", "`--out` naming an existing file")
def _(tmp):
    (tmp / "out.onnx").write_text("")
    return _command("kerazoo.export", ROOT / "saved_models" / "digits_baseline", "--out", tmp / "out.onnx")


@row(
    "export-softmax",
    "`kerazoo.export.export_onnx`",
    "a classifier ending in `Dense(3, activation='softmax')`",
)
def _(tmp):
    import keras

    from kerazoo.export import export_onnx

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(
        inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)), name="mine"
    )
    return _raised(lambda: export_onnx(model, tmp / "m.onnx"))


@row("export-translator", "`python -m kerazoo.export`", "a GIT translator (`translator.keras`)")
def _(tmp):
    translator = ROOT / "saved_models" / "digits_git" / "translator.keras"
    return _command("kerazoo.export", translator, "--out", tmp / "out")


@row("onnx-shape", "`OnnxClassifier.predict`", "16x16 images for the 8x8 digits model")
def _(tmp):
    from kerazoo.export import OnnxClassifier

    clf = OnnxClassifier(ROOT / "export" / "digits_baseline.onnx")
    return _raised(lambda: clf.predict(np.zeros((2, 16, 16, 1), "float32")))


@row("onnx-range", "`OnnxClassifier.predict`", "pixels 0..255 as float32")
def _(tmp):
    from kerazoo.export import OnnxClassifier

    clf = OnnxClassifier(ROOT / "export" / "digits_baseline.onnx")
    return _raised(lambda: clf.predict(np.full((2, 8, 8, 1), 255.0, "float32")))


@row("onnx-single-image", "`OnnxClassifier.predict`", "one (8, 8, 1) image without the batch axis")
def _(tmp):
    from kerazoo.export import OnnxClassifier

    clf = OnnxClassifier(ROOT / "export" / "digits_baseline.onnx")
    return _raised(lambda: clf.predict(np.zeros((8, 8, 1), "float32")))


@row("onnx-output", "`OnnxClassifier.predict`", "`output='features'`")
def _(tmp):
    from kerazoo.export import OnnxClassifier

    clf = OnnxClassifier(ROOT / "export" / "digits_baseline.onnx")
    return _raised(lambda: clf.predict(np.zeros((2, 8, 8, 1), "float32"), output="features"))


@row("features-runtime-nan", "`OnnxFeatureExtractor.predict`", "an image holding Inf")
def _(tmp):
    from kerazoo.export import OnnxFeatureExtractor

    root = _zoo_copy(tmp, "digits_adco")
    manifest = json.loads((root / "saved_models" / "manifest.json").read_text())
    extractor = OnnxFeatureExtractor(root / manifest["models"]["digits_adco"]["onnx"]["path"])
    images = np.zeros((2, 16, 16, 1), "float32")
    images[0, 0, 0, 0] = np.inf
    return _raised(lambda: extractor.predict(images))


@row("zoo-unknown", "`kerazoo.zoo.load`", "a model name with a typo")
def _(tmp):
    import kerazoo.zoo

    return _raised(lambda: kerazoo.zoo.load("digits_baselin", root=_zoo_copy(tmp)))


@row("zoo-format", "`kerazoo.zoo.load`", "`format='tflite'`")
def _(tmp):
    import kerazoo.zoo

    return _raised(lambda: kerazoo.zoo.load("digits_baseline", format="tflite", root=_zoo_copy(tmp)))


@row("zoo-tampered-onnx", "`kerazoo.zoo.load(..., 'onnx')`", "an ONNX file altered after publishing")
def _(tmp):
    import kerazoo.zoo

    root = _zoo_copy(tmp)
    with open(root / "export" / "digits_baseline.onnx", "ab") as file:
        file.write(b"\0")
    return _raised(lambda: kerazoo.zoo.load("digits_baseline", "onnx", root=root))


@row("zoo-tampered-savedmodel", "`kerazoo.zoo.load`", "a SavedModel's variables altered")
def _(tmp):
    import kerazoo.zoo

    root = _zoo_copy(tmp)
    variables = root / "saved_models" / "digits_baseline" / "model" / "variables" / "variables.index"
    variables.write_bytes(variables.read_bytes()[:-8])
    return _raised(lambda: kerazoo.zoo.load("digits_baseline", root=root))


@row("zoo-manifest", "`kerazoo.zoo.load`", "a manifest that is not JSON")
def _(tmp):
    import kerazoo.zoo

    root = _zoo_copy(tmp)
    (root / "saved_models" / "manifest.json").write_text("{ not json")
    return _raised(lambda: kerazoo.zoo.load("digits_baseline", root=root))


@row("zoo-publish-missing", "`python -m kerazoo.zoo publish`", "a run directory that does not exist")
def _(tmp):
    return _command("kerazoo.zoo", "publish", tmp / "runs" / "nope", "mine", "--root", tmp / "zoo")


@row(
    "zoo-publish-incomplete",
    "`python -m kerazoo.zoo publish`",
    "a run directory whose `model.onnx` was deleted",
)
def _(tmp):
    zoo = _zoo_copy(tmp / "zoo")
    entry = json.loads((zoo / "saved_models" / "manifest.json").read_text())["models"]["digits_baseline"]
    run = tmp / "run"
    shutil.copytree(zoo / "saved_models" / "digits_baseline", run)
    (run / "digits_baseline.keras").rename(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"recipe": "baseline", "config": entry["config"]}))
    model = {"onnx_parity_max_abs_diff": entry["onnx"]["parity_max_abs_diff"]}
    (run / "metrics.json").write_text(json.dumps({"model": model}))
    return _command("kerazoo.zoo", "publish", run, "digits_baseline", "--overwrite", "--root", zoo)


@row(
    "zoo-publish-taken", "`kerazoo.zoo.publish`", "a name whose folder holds files the manifest does not list"
)
def _(tmp):
    import kerazoo.zoo

    zoo = _zoo_copy(tmp / "zoo")
    (zoo / "saved_models" / "mine").mkdir()
    (zoo / "saved_models" / "mine" / "notes.txt").write_text("my notes")
    run = tmp / "run"
    shutil.copytree(zoo / "saved_models" / "digits_baseline", run)
    (run / "config.json").write_text(json.dumps({"recipe": "baseline"}))
    (run / "metrics.json").write_text(json.dumps({"model": {"onnx_parity_max_abs_diff": {}}}))
    (run / "digits_baseline.keras").rename(run / "model.keras")
    shutil.copy(zoo / "export" / "digits_baseline.onnx", run / "model.onnx")
    return _raised(lambda: kerazoo.zoo.publish(run, "mine", root=zoo))


@row("zoo-rebuild-elsewhere", "`kerazoo.zoo.rebuild`", "a model made in a directory this machine lacks")
def _(tmp):
    import kerazoo.zoo

    root = _zoo_copy(tmp)
    manifest = json.loads((root / "saved_models" / "manifest.json").read_text())
    manifest["models"]["digits_baseline"]["working_directory"] = "/home/someone/experiments"
    (root / "saved_models" / "manifest.json").write_text(json.dumps(manifest))
    return _raised(lambda: kerazoo.zoo.rebuild("digits_baseline", root=root))


@row("zoo-preprocess", "`kerazoo.zoo.preprocess`", "images already divided by 16")
def _(tmp):
    from sklearn.datasets import load_digits

    import kerazoo.zoo

    return _raised(lambda: kerazoo.zoo.preprocess("digits_baseline", load_digits().images[:4] / 16))


@row("keras-unknown-object", "`keras.saving.load_model`", "a `.keras` file naming a class nobody registered")
def _(tmp):
    import zipfile

    import keras

    source = ROOT / "saved_models" / "digits_baseline" / "digits_baseline.keras"
    target = tmp / "mine.keras"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"kerazoo>Classifier"', b'"mine>Classifier"')
            new.writestr(item, data)
    message = _raised(lambda: keras.saving.load_model(target))
    return message.split(" Full object config")[0]


# The table -------------------------------------------------------------------


def _messages(tmp_root):
    out = {}
    for row_id in ROWS:
        (tmp_root / row_id).mkdir()
        out[row_id] = _message(row_id, tmp_root / row_id)
    return out


def _table(messages):
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = [
        "| # | id | where | bad input | what the user sees |",
        "|---|---|---|---|---|",
    ]
    for number, (row_id, (where, bad_input, _)) in enumerate(ROWS.items(), 1):
        tick = "``" if "`" in messages[row_id] else "`"  # a code span that may hold backticks
        lines.append(
            f"| {number} | {row_id} | {where} | {bad_input} | {tick} {escape(messages[row_id])} {tick} |"
        )
    return "\n".join(lines)


HEADER = """# Bad inputs and the errors they give

Every row is a real mistake made by `tests/test_bad_inputs.py` (one test per
row), with the message the user sees: `Type: message` for an exception, the
`error:` line for a command (exit status 2). Paths under the test's
temporary folder read `<tmp>`. The table is generated from the tests
(`python tests/test_bad_inputs.py`), and each row's test fails when its
message differs from the table's.

"""


def _documented():
    """id -> message, from docs/bad_inputs.md's table."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.replace("\\|", "\0").split("|")[1:-1]]
        if len(cells) == 5 and cells[0].isdigit():
            rows[cells[1]] = cells[4].strip("`").strip().replace("\0", "|")
    return rows


def _message(row_id, tmp):
    return " ".join(ROWS[row_id][2](tmp).replace(str(tmp), "<tmp>").split())


def test_the_docs_table_lists_every_row_in_order():
    assert len(ROWS) >= 30
    assert list(_documented()) == list(ROWS), (
        "docs/bad_inputs.md is out of date: run `python tests/test_bad_inputs.py`"
    )


def test_the_readme_counts_the_rows():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"[docs/bad_inputs.md](docs/bad_inputs.md) | {len(ROWS)} mistakes" in readme


@pytest.mark.parametrize("row_id", list(ROWS))
def test_bad_input_gives_the_documented_message(row_id, tmp_path):
    assert _message(row_id, tmp_path) == _documented().get(row_id), (
        "docs/bad_inputs.md is out of date: run `python tests/test_bad_inputs.py`"
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        DOC.write_text(HEADER + _table(_messages(pathlib.Path(folder))) + "\n", encoding="utf-8")
    print(f"wrote {DOC}")
