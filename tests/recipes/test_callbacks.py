"""kerazoo.recipes.callbacks: the periodic backup and the history it keeps in
step; the divergence stop; progress within an epoch; TensorBoard's epoch
scalars."""

import json

import keras
import numpy as np
import pytest

from kerazoo.recipes import cluster
from kerazoo.recipes.callbacks import (
    EpochProgress,
    EpochTensorBoard,
    PeriodicBackup,
    StopOnDivergence,
    _trim_history,
    held_epochs,
    newest_common_epoch,
    recorded_sha256,
    weights_that_fit,
)
from kerazoo.recipes.recipe import RunDirError, TrainingDiverged
from kerazoo.zoo import sha256


@pytest.mark.parametrize("seconds, backed_up", [(0, [True, True, True]), (3600, [False, False, False])])
def test_periodic_backup_saves_only_once_its_interval_has_passed(tmp_path, seconds, backed_up):
    backup = PeriodicBackup(str(tmp_path / "backup"), seconds, tmp_path / "history.csv")
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append((tmp_path / "backup" / "latest.weights.h5").exists())
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0, callbacks=[backup, probe])
    assert seen == backed_up


def test_a_resumed_history_keeps_the_rows_up_to_the_backup(tmp_path):
    history = tmp_path / "stage.csv"
    history.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n3,0.7\n")
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    _trim_history(history, backup)
    assert history.read_text() == "epoch,loss\n0,1.0\n1,0.9\n"
    (backup / "training_metadata.json").unlink()  # killed before any backup
    _trim_history(history, backup)
    assert history.read_text() == "epoch,loss\n"


def test_a_resumed_history_keeps_csvloggers_line_ends_and_may_be_empty(tmp_path):
    history = tmp_path / "stage.csv"
    history.write_bytes(b"epoch,loss\r\n0,1.0\r\n1,0.9\r\n")
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    _trim_history(history, backup)
    assert history.read_bytes() == b"epoch,loss\r\n0,1.0\r\n"
    history.write_text("")  # killed after CSVLogger opened it, before its first row
    _trim_history(history, backup)
    assert history.read_text() == ""


class _Killed(Exception):
    pass


def _fit(backup_dir, epochs, kill_after=None):
    """A deterministic fit of a Dense layer with a PeriodicBackup saving at
    every epoch end; `kill_after` stops it (no train end) after that epoch."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")

    def kill(epoch, logs):
        if epoch == kill_after:
            raise _Killed

    callbacks = [
        PeriodicBackup(str(backup_dir), 0, backup_dir.parent / "history.csv"),
        keras.callbacks.LambdaCallback(on_epoch_end=kill),
    ]
    try:
        model.fit(x, x.sum(1, keepdims=True), epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    except _Killed:
        return None
    return model.get_weights()


def test_a_kill_between_the_weights_and_the_epoch_restores_a_matching_pair(tmp_path):
    expected = _fit(tmp_path / "a" / "backup", 4)
    backup = tmp_path / "b" / "backup"
    _fit(backup, 4, kill_after=2)  # backups after epochs 2 (previous) and 3 (latest)
    # The window: Keras wrote epoch 3's weights, and was killed before their
    # epoch, so the metadata file still holds epoch 2's record.
    metadata = backup / "training_metadata.json"
    metadata.write_text((backup / "training_metadata.json.bkp").read_text())
    assert json.loads(metadata.read_text())["epoch"] == 2
    resumed = _fit(backup, 4)
    for got, want in zip(resumed, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    "held, common",
    [
        ([[3, 2, 0], [3, 2, 0]], 3),
        ([[3, 2, 0], [2, 1, 0]], 2),
        ([[3, 2, 0], [0, 0, 0]], 0),
        ([[5, 4, 0], [2, 1, 0]], 0),
    ],
)
def test_workers_agree_on_the_newest_epoch_all_of_them_hold(held, common):
    assert newest_common_epoch(held) == common


@pytest.mark.parametrize("other_worker, resumed_from", [([2, 1, 0], 2), ([0, 0, 0], 0)])
def test_a_backup_ahead_of_another_workers_goes_back_to_their_common_epoch(
    tmp_path, monkeypatch, capsys, other_worker, resumed_from
):
    # The collective is replaced by this worker's row and another worker's
    # (one save behind it, or without a backup); the files are real.
    expected = _fit(tmp_path / "a" / "backup", 4)
    backup = tmp_path / "b" / "backup"
    _fit(backup, 4, kill_after=2)  # backups after epochs 2 (previous) and 3 (latest)
    files = [backup / name for name in ("latest.weights.h5", "training_metadata.json")]
    files += [path.with_name(path.name + ".bkp") for path in files]
    assert held_epochs(files) == {0, 2, 3}
    monkeypatch.setattr(cluster, "gather_from_workers", lambda strategy, values: [values, other_worker])
    capsys.readouterr()
    resumed = _fit(backup, 4)
    assert f"backup: resuming from epoch {resumed_from}, the newest backup every worker holds (this " in (
        capsys.readouterr().out
    )
    for got, want in zip(resumed, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_backup_records_the_sha256_of_its_weights(tmp_path):
    _fit(tmp_path / "backup", 3, kill_after=0)
    record = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert record["epoch"] == 1
    assert record["weights_sha256"] == sha256(tmp_path / "backup" / "latest.weights.h5")


def test_a_kill_before_the_first_epoch_record_starts_afresh(tmp_path):
    expected = _fit(tmp_path / "a" / "backup", 3)
    backup = tmp_path / "b" / "backup"
    _fit(backup, 3, kill_after=0)
    # Killed after Keras wrote the first weights, before their epoch.
    (backup / "training_metadata.json").unlink()
    for got, want in zip(_fit(backup, 3), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_backup_another_model_wrote_is_refused_by_name(tmp_path):
    backup = tmp_path / "backup"
    _fit(backup, 3, kill_after=0)
    # As an older kerazoo's backup: weights keyed by other layer names.
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="renamed")])
    weights = backup / "latest.weights.h5"
    other.save_weights(weights)
    record = json.loads((backup / "training_metadata.json").read_text())
    (backup / "training_metadata.json").write_text(json.dumps({**record, "weights_sha256": sha256(weights)}))
    with pytest.raises(RunDirError, match=r"latest\.weights\.h5 does not fit this run's model.*--overwrite"):
        _fit(backup, 3)


@pytest.mark.parametrize("damage", ["bytes changed", "truncated"])
def test_a_damaged_checkpoint_is_refused_by_name_not_loaded(damage, tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(300)])
    checkpoint = tmp_path / "seed0-none.weights.h5"
    model.save_weights(checkpoint)
    recorded_sha256(checkpoint).write_text(sha256(checkpoint))
    data = bytearray(checkpoint.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2 :]
        recorded_sha256(checkpoint).unlink()  # as if killed before the record: h5py's error
    else:
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match=r"seed0-none\.weights\.h5 is damaged .*delete it"):
        with weights_that_fit(checkpoint):
            model.load_weights(checkpoint)


@pytest.mark.parametrize(
    "logs, named",
    [
        ({"loss": float("nan"), "disc_adv": float("inf")}, "the training loss became nan in epoch 3"),
        ({"loss": 1.5, "disc_adv": float("inf")}, "the training metric 'disc_adv' became inf in epoch 3"),
    ],
)
def test_any_non_finite_logged_number_stops_the_stage(logs, named):
    stop = StopOnDivergence("translator", "Lower translator_lr.")
    stop.on_epoch_end(1, {"loss": 1.5, "disc_adv": 0.25})
    with pytest.raises(TrainingDiverged, match=named) as raised:
        stop.on_epoch_end(2, logs)
    assert "stage 'translator'" in str(raised.value) and "Lower translator_lr." in str(raised.value)


@pytest.mark.parametrize("seconds, reports", [(0.0, 4), (3600.0, 0)])
def test_progress_is_reported_within_an_epoch_once_its_interval_has_passed(seconds, reports):
    messages = []
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    progress = EpochProgress("translator", messages.append, seconds=seconds)
    model.fit(np.zeros((20, 2)), np.zeros((20, 1)), batch_size=2, epochs=2, verbose=0, callbacks=[progress])
    # Calls of 2 steps each: the epochs' steps 2, 4, 6, 8 (not 0, which has no rate yet).
    assert len(messages) == 2 * reports
    if reports:
        assert messages[0].startswith("translator: epoch 1/2, step 2/10 (")
        assert messages[-1].startswith("translator: epoch 2/2, step 8/10 (")
        assert messages[-1].endswith(" s)") and "steps/s; the epoch ends in about " in messages[-1]


def _scalar_events(directory):
    """(step, tag, value, serialized metadata) of every summary value in the
    event files under `directory`."""
    import tensorflow as tf

    events = []
    for path in sorted(directory.iterdir()):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalar = float(tf.make_ndarray(value.tensor))
                events.append((event.step, value.tag, scalar, value.metadata.SerializeToString()))
    return sorted(events)


def test_epoch_tensorboard_writes_the_epoch_scalars_keras_tensorboard_writes(tmp_path):
    # Both watch the same fit: training and validation logs, a decaying rate.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    rate = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model.compile(keras.optimizers.SGD(rate), "mse", metrics=["mae"])
    x, y = np.linspace(0, 1, 24, dtype="float32").reshape(8, 3), np.ones((8, 2), "float32")
    boards = [
        keras.callbacks.TensorBoard(str(tmp_path / "keras"), write_graph=False),
        EpochTensorBoard(str(tmp_path / "epoch"), write_graph=False),
    ]
    model.fit(x, y, batch_size=4, epochs=3, validation_data=(x, y), callbacks=boards, verbose=0)
    for split, tags in (("train", {"loss", "mae", "learning_rate"}), ("validation", {"loss", "mae"})):
        expected = _scalar_events(tmp_path / "keras" / split)
        epochs = [(step, tag) for step, tag, _, _ in expected if tag.startswith("epoch_")]
        assert sorted(epochs) == sorted((step, f"epoch_{tag}") for step in range(3) for tag in tags)
        assert _scalar_events(tmp_path / "epoch" / split) == expected
