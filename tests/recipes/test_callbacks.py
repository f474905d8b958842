"""kerazoo.recipes.callbacks: the periodic backup and the history it keeps in step."""

import keras
import numpy as np
import pytest

from kerazoo.recipes.callbacks import PeriodicBackup, _trim_history


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
