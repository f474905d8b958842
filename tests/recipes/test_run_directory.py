"""The run directory (`kerazoo.recipes.run_directory`): what `--out` may
hold, which runs resume, what `--overwrite` may delete, and the lock that
keeps two processes out of one run."""

import importlib
import json
import signal

import pytest
import tensorflow as tf

from helpers import processes
from helpers.resume import wait_until
from kerazoo.recipes import runner
from kerazoo.recipes.baseline import BaselineConfig
from kerazoo.recipes.config import resolve
from kerazoo.recipes.run_directory import RunDirectory

BASELINE = "kerazoo.recipes.baseline"


def test_an_out_that_is_a_file_is_refused(cli, tmp_path):
    out = tmp_path / "file"
    out.write_text("mine")
    result = cli(BASELINE, "--out", out)
    assert result.returncode == 2 and "is a file, not a directory" in result.stderr
    assert out.read_text() == "mine"


def _open(out, strategy_flag="auto", **sets):
    config = resolve(BaselineConfig, sets=[f"{k}={v}" for k, v in sets.items()])
    return runner.Run.open(
        "baseline", config, tf.distribute.get_strategy(), out=out, command="test", strategy_flag=strategy_flag
    )


def test_resume_refuses_another_config_another_strategy_and_foreign_folders(tmp_path):
    out = tmp_path / "run"
    _open(out, epochs=3)
    with pytest.raises(runner.RunDirError, match=r"different config \(epochs: 3 -> 4\)"):
        _open(out, epochs=4)
    with pytest.raises(runner.RunDirError, match="started with --strategy auto.*--strategy mirrored"):
        _open(out, "mirrored", epochs=3)
    assert json.loads((out / "config.json").read_text())["strategy"] == "auto"
    _open(out, epochs=3)  # the same config and strategy resume
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    (foreign / "config.json").write_text('{"another": "program"}')
    for overwrite in (False, True):  # --overwrite replaces runs only
        with pytest.raises(runner.RunDirError, match="not a kerazoo run directory"):
            RunDirectory.check("baseline", resolve(BaselineConfig), foreign, overwrite)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_overwrite_never_deletes_the_current_directory(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _open(out)
    (out / "metrics.json").write_text("{}")
    (out / "mine").mkdir()
    for cwd, named in ((out, "."), (out / "mine", ".."), (out / "mine", out)):
        monkeypatch.chdir(cwd)
        with pytest.raises(runner.RunDirError, match="would delete the folder you are in"):
            RunDirectory.check("baseline", resolve(BaselineConfig), named, overwrite=True)
    assert (out / "config.json").is_file()


def test_overwrite_never_deletes_what_the_user_put_in_a_run(tmp_path):
    out = tmp_path / "run"
    _open(out)
    for written in ("metrics.json", "report.md", "shots.png", ".model.keras.tmp-1"):
        (out / written).write_text("{}")
    (out / "my_analysis.txt").write_text("mine")
    (out / "export").mkdir()
    with pytest.raises(runner.RunDirError, match=r"and also export, my_analysis.txt, which no run writes"):
        RunDirectory.check("baseline", resolve(BaselineConfig), out, overwrite=True)
    assert (out / "my_analysis.txt").read_text() == "mine"
    (out / "my_analysis.txt").unlink()
    (out / "export").rmdir()
    assert RunDirectory.check("baseline", resolve(BaselineConfig), out, overwrite=True) == "replace"


def test_a_run_started_before_a_field_existed_resumes_if_it_keeps_the_default(tmp_path):
    out = tmp_path / "run"
    _open(out, epochs=3)
    saved = json.loads((out / "config.json").read_text())
    del saved["config"]["steps_per_execution"]  # as written by a kerazoo without the field
    (out / "config.json").write_text(json.dumps(saved))
    _open(out, epochs=3)
    with pytest.raises(runner.RunDirError, match=r"different config \(steps_per_execution: 32 -> 8\)"):
        _open(out, epochs=3, steps_per_execution=8)
    # A --jobs worker joins it as its parent resumed it.
    RunDirectory.join("baseline", BaselineConfig(epochs=3), out)
    with pytest.raises(runner.RunDirError, match="another recipe or config"):
        RunDirectory.join("baseline", BaselineConfig(epochs=3, steps_per_execution=8), out)


def test_another_recipes_run_is_named_when_refused_or_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    lucir_config = resolve(importlib.import_module("kerazoo.recipes.lucir").LUCIRConfig)
    runner.Run.open("lucir", lucir_config, tf.distribute.get_strategy(), out=out, command="test")
    with pytest.raises(runner.RunDirError, match="holds an unfinished 'lucir' run, not a 'baseline' run"):
        _open(out)
    (out / "metrics.json").write_text("{}")
    with pytest.raises(runner.RunDirError, match="holds the finished 'lucir' run; pass --overwrite"):
        _open(out)
    capsys.readouterr()
    config = resolve(BaselineConfig)
    runner.Run.open("baseline", config, tf.distribute.get_strategy(), out=out, overwrite=True, command="test")
    assert f"--overwrite: deleting the finished 'lucir' run in {out}" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["recipe"] == "baseline"


def test_overwrite_keeps_the_old_run_when_the_new_runs_dataset_is_missing(cli, tmp_path):
    out = tmp_path / "run"
    _open(out)
    (out / "metrics.json").write_text("{}")
    result = cli(
        BASELINE,
        "--set",
        "dataset=cifar10",
        "--set",
        f"data_dir={tmp_path / 'empty'}",
        "--out",
        out,
        "--overwrite",
    )
    assert result.returncode == 2 and "Dataset 'cifar10' is not prepared" in result.stderr, result.stderr
    assert (out / "metrics.json").is_file() and "deleting" not in result.stdout


def test_a_run_directory_another_process_holds_is_refused(cli, tmp_path):
    out = tmp_path / "run"
    held = _open(out)  # this process is running it
    result = cli(BASELINE, "--out", out)
    assert result.returncode == 2 and "is in use by another process" in result.stderr, result.stderr
    held.directory.release()
    _open(out)  # resumable again


def test_an_interrupted_run_without_out_says_which_out_resumes_it(tmp_path):
    interrupted = processes.Process(["-m", BASELINE, "--set", "backup_seconds=0"], cwd=tmp_path)
    wait_until(lambda: list(tmp_path.glob("runs/*/logs/*")), interrupted)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=120)
    (run,) = tmp_path.glob("runs/*")
    assert (run / "run.log").read_text().splitlines()[-1].endswith("] interrupted")
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: re-run the same command with --out {run.relative_to(tmp_path)} to resume the run in "
        f"{run.relative_to(tmp_path)}."
    )


def test_an_out_that_cannot_be_written_is_one_line_not_a_traceback(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = cli(BASELINE, "--out", tmp_path / "notes.txt" / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot write {tmp_path / 'notes.txt'}")
