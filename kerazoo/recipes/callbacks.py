"""The Keras callbacks of a resumable training stage (`Run.fit`): divergence
stop, per-epoch test metrics, progress within long epochs, the CSV history,
TensorBoard and the periodic backup."""

import contextlib
import json
import math
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

import kerazoo
from kerazoo._keras_internals import (
    backed_up_epochs,
    backup_files,
    restored_epoch,
    tensorboard_writers,
    with_learning_rates,
)
from kerazoo.atomic import atomic_path, write_text
from kerazoo.recipes import cluster
from kerazoo.recipes.recipe import RunDirError, TrainingDiverged
from kerazoo.zoo import sha256


class StopOnDivergence(keras.callbacks.Callback):
    """Raise `TrainingDiverged` at the end of an epoch whose mean training
    loss, or any other number the model logs, is NaN or infinite, so that no
    model is written from diverged weights. The other numbers matter where
    the loss does not see every update: MUNIT's discriminator (`disc_adv`),
    whose NaN reaches the generator's loss an epoch later. (Per epoch:
    reading the logs after every batch would synchronise each step and cost
    ~15 % on small models.)"""

    def __init__(self, stage, hint):
        super().__init__()
        self.stage = stage
        self.hint = hint

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        # The loss first: the message names the number the hint is about.
        for name in sorted(logs, key=lambda k: k != "loss"):
            value = float(logs[name])
            if not math.isfinite(value):
                what = "training loss" if name == "loss" else f"training metric '{name}'"
                raise TrainingDiverged(
                    f"stage '{self.stage}': the {what} became {value} in epoch "
                    f"{epoch + 1}. {self.hint} No model was written; re-run with a corrected "
                    "config and --overwrite (or another --out)."
                )


class EpochProgress(keras.callbacks.Callback):
    """Reports, every `seconds` within an epoch, how far it has got, its
    rate and when it should end: without a progress bar (a log file, a
    `--jobs` run) Keras prints nothing until an epoch ends, and one epoch of
    GIT's glyphs translator takes half an hour.

    Args:
        stage: the stage's name, for the messages.
        log: a function taking the message.
        seconds: the interval; no message for an epoch shorter than it.
    """

    def __init__(self, stage, log, seconds=60.0):
        super().__init__()
        self.stage, self.report, self.seconds = stage, log, seconds

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.started = self.reported = time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` is the epoch's first step of this call (steps_per_execution).
        now = time.monotonic()
        if batch and now - self.reported >= self.seconds:
            self.reported = now
            steps, rate = self.params["steps"], batch / (now - self.started)
            self.report(
                f"{self.stage}: epoch {self.epoch + 1}/{self.params['epochs']}, step {batch:,}/{steps:,} "
                f"({rate:.1f} steps/s; the epoch ends in about {_minutes((steps - batch) / rate)})"
            )


def _minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class EpochTestMetrics(keras.callbacks.Callback):
    """Adds the model's compiled metrics on `data` to each epoch's logs as
    `test_<name>` (so CSVLogger, TensorBoard and the progress line show
    them under their true name; Keras' `validation_data` would call them
    `val_<name>`)."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch, logs=None):
        # One batch a call: Keras' loop over several checks for the data's
        # end inside its graph, which fails across the workers of a cluster.
        per_call, self.model.steps_per_execution = self.model.steps_per_execution, 1
        try:
            scores = self.model.evaluate(self.data, verbose=0, return_dict=True)
        finally:
            self.model.steps_per_execution = per_call
        if logs is not None:
            logs.update({f"test_{name}": value for name, value in scores.items()})


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """`TensorBoard` that writes epoch scalars only, each epoch's in one
    write.

    Keras 3.15's own turns every log into a summary scalar after every
    batch even with `update_freq="epoch"`, with no writer to receive them:
    about 2 ms of Python a step, as much as a small model's whole step. At an
    epoch's end it writes each scalar with its own eager `tf.summary.scalar`,
    about 1 ms each: 5 % of a LUCIR digits run, whose epochs take tens of
    milliseconds. The same summaries (tags `epoch_<name>` and the learning
    rate, as scalar-plugin tensors at step `epoch`) go out in one
    `write_raw_pb` per writer. No histograms, embeddings or profiles.
    """

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = with_learning_rates(self, {k: v for k, v in logs.items() if not k.startswith("val_")})
        validation = {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")}
        for writer, scalars in zip(tensorboard_writers(self), (train, validation)):
            if scalars:
                with writer.as_default():
                    tf.summary.experimental.write_raw_pb(_scalars_summary(scalars), step=epoch)


def _scalars_summary(scalars):
    """A serialized `Summary` of float32 scalars tagged `epoch_<name>`, as
    `tf.summary.scalar` writes each."""
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    values = [
        summary_pb2.Summary.Value(
            tag=f"epoch_{name}", metadata=metadata, tensor=tf.make_tensor_proto(float(value), tf.float32)
        )
        for name, value in scalars.items()
    ]
    return summary_pb2.Summary(value=values).SerializeToString()


class HistoryLogger(keras.callbacks.CSVLogger):
    """`CSVLogger` with exactly the columns the epochs log: Keras' own adds
    a `val_<name>` column of NA for every metric when a fit has no
    validation data, which reads as if something had been validated."""

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted((logs or {}).keys())
        super().on_epoch_end(epoch, logs)


class PeriodicBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that saves at an epoch end only once `seconds` have
    passed since its last save, restores only a weights file and epoch that
    belong together, and keeps the CSV `history` in step with what it
    restores.

    Saving every epoch cost 28 % of the LUCIR digits run, whose epochs take
    a fraction of a second. Any backup resumes exactly, since an epoch's
    data depends only on (seed, epoch); a kill costs at most `seconds` of
    training to redo. The previous backup is kept (`double_checkpoint`): a
    kill while the weights file is being written leaves it unreadable, and
    the restore then falls back to the one before.

    Keras writes the weights, then the epoch (`training_metadata.json`): a
    kill between the two would restore new weights with the old epoch, and
    train that epoch twice. So each save then records the weights' sha256
    beside the epoch (an atomic rewrite), and a restore uses the newest pair
    whose record matches its weights.
    """

    def __init__(self, backup_dir, seconds, history, log=print):
        super().__init__(backup_dir, double_checkpoint=True)
        self.seconds = seconds
        self.history = Path(history)
        self.log = log

    def on_train_begin(self, logs=None):
        files = backup_files(self)
        _keep_a_matching_pair(*files)
        # Each worker of a cluster restores its own backup, and workers that
        # restored different epochs would train apart without an error. A kill
        # between two workers' saves leaves them an epoch apart; every worker
        # then resumes from the newest epoch all of them hold (the previous
        # backup, or the stage's start). Agreed before the restore, whose
        # collective ops only workers with a backup make.
        held = held_epochs(files)
        every = cluster.gather_from_workers(
            self.model.distribute_strategy, [*sorted(held, reverse=True), 0, 0][:3]
        )
        common = newest_common_epoch(every)
        newest = max(held)
        if common < newest:
            _roll_back(files, common)
            self.log(
                f"{Path(self.backup_dir).name}: resuming from epoch {common}, the newest backup every "
                f"worker holds (this worker's backup held epoch {newest})"
            )
        with weights_that_fit(files[0]):
            super().on_train_begin(logs)
        resumed = restored_epoch(self.model)
        if resumed:
            self.log(f"{Path(self.backup_dir).name}: resumed from its backup after epoch {resumed}")
        # After the restore (or its fallback) and before CSVLogger opens the file.
        _trim_history(self.history, Path(self.backup_dir))
        self._saved_at = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._saved_at >= self.seconds:
            super().on_epoch_end(epoch, logs)
            weights, metadata, _, _ = backup_files(self)
            record = json.loads(Path(metadata).read_text())
            write_text(metadata, json.dumps({**record, "weights_sha256": sha256(weights)}))
            self._saved_at = time.monotonic()


def _matches(weights, metadata):
    """Whether `metadata` is complete and belongs to `weights`: it records
    their sha256, or no sha256 at all (Keras wrote it after these weights,
    and the kill came before the sha256 was added; or an older kerazoo)."""
    try:
        record = json.loads(Path(metadata).read_text())
    except (OSError, ValueError):
        return False
    recorded = record.get("weights_sha256")
    return Path(weights).exists() and (recorded is None or recorded == sha256(weights))


def recorded_sha256(path):
    """Where a finished stage's checkpoint `path` has its sha256 recorded."""
    return Path(f"{path}.sha256")


@contextlib.contextmanager
def weights_that_fit(path):
    """Turns Keras' error for a weights file that does not fit the model
    (loaded inside the block) into a `RunDirError` that names the file and
    the way out; so too a file that cannot be read, or whose sha256 differs
    from the one recorded beside it (a finished stage's checkpoint, which
    would otherwise load damaged weights and give wrong results silently).

    A run directory's checkpoints and backups only fit the kerazoo that wrote
    them: Keras keys a `.weights.h5` file by layer names, which change when a
    layer does (the fused BatchNorm renamed every BatchNorm's weights), and
    Keras then says only "expected 4 variables, but received 0".
    """
    recorded = recorded_sha256(path)

    def damaged(why):
        return RunDirError(
            f"{path} is damaged ({why}): delete it to train that stage again when the run "
            "resumes, or pass --overwrite to start the run again."
        )

    if recorded.exists() and recorded.read_text().strip() != sha256(path):
        raise damaged(f"its sha256 is not the one recorded in {recorded.name}")
    try:
        yield
    except OSError as error:  # h5py: truncated or not HDF5
        raise damaged(f"unreadable: {str(error).splitlines()[0]}") from None
    except ValueError as error:
        # Keras' message: a summary line, then the first failing object's error.
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise RunDirError(
            f"{path} does not fit this run's model: it was most likely written by an older "
            f"kerazoo (this is {kerazoo.__version__}) whose layers were named differently. Start "
            "the run again: choose another --out, or pass --overwrite to discard this one. "
            f"(Keras: {lines[min(1, len(lines) - 1)]})"
        ) from error


def held_epochs(files):
    """The epochs a stage can resume from with the backup `files` (weights,
    metadata, previous weights, previous metadata): those of the current and
    previous pairs whose weights and epoch belong together, and 0 (its start).

    Example:

    ```python
    from kerazoo.recipes.callbacks import held_epochs

    print(held_epochs(["none.h5", "none.json", "none-prev.h5", "none-prev.json"]))  # {0}
    ```
    """
    weights, metadata, prev_weights, prev_metadata = files
    return {0} | {
        json.loads(Path(m).read_text())["epoch"]
        for w, m in ((weights, metadata), (prev_weights, prev_metadata))
        if Path(m).exists() and _matches(w, m)
    }


def newest_common_epoch(held_by_worker):
    """The newest epoch every worker's backup can resume from.

    Args:
        held_by_worker: one sequence of epochs per worker (`held_epochs`,
            padded with 0).

    Example:

    ```python
    from kerazoo.recipes.callbacks import newest_common_epoch

    # Killed after the chief saved epoch 3 and before the other worker did.
    print(newest_common_epoch([[3, 2, 0], [2, 1, 0]]))  # 2
    ```
    """
    return max(set.intersection(*({0, *map(int, held)} for held in held_by_worker)))


def _roll_back(files, epoch):
    """Make the backup pair of `epoch` (one of `held_epochs(files)`, below the
    newest) the current one; epoch 0 removes the backup."""
    weights, metadata, prev_weights, prev_metadata = files
    for path in (weights, metadata):
        Path(path).unlink(missing_ok=True)
    if epoch == 0:
        for path in (prev_weights, prev_metadata):
            Path(path).unlink(missing_ok=True)
        return
    for source, target in ((prev_weights, weights), (prev_metadata, metadata)):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)


def _keep_a_matching_pair(weights, metadata, prev_weights, prev_metadata):
    """Leave the newest backup whose weights and epoch belong together as the
    current one (the previous pair copied over it), or no backup at all."""
    if _matches(weights, metadata) or not (Path(weights).exists() or Path(metadata).exists()):
        return
    for path in (weights, metadata):
        Path(path).unlink(missing_ok=True)
    if _matches(prev_weights, prev_metadata):
        for source, target in ((prev_weights, weights), (prev_metadata, metadata)):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)


def _trim_history(csv_path, backup_dir):
    """Drop the CSV rows of epochs a resumed stage will train again (those
    after its last backup), so that the history has each epoch once."""
    if not csv_path.exists():
        return
    kept_epochs = backed_up_epochs(backup_dir)
    # newline="": CSVLogger ends its rows with \r\n, which a resumed file keeps.
    with open(csv_path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if not lines:  # killed in the first epoch: CSVLogger had opened the file, not written it
        return
    write_text(csv_path, "".join(lines[: 1 + kept_epochs]))
