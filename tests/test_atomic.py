import subprocess
import sys
import time

import pytest

from kerazoo.atomic import atomic_dir, atomic_path, remove_dir, remove_interrupted_writes


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_replaces_a_directory_only_once_the_new_one_is_complete(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"), atomic_dir(target):
        pass
    with pytest.raises(RuntimeError), atomic_dir(target, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new.bin").write_text("half")
        raise RuntimeError("writer died")
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    with atomic_dir(target, overwrite=True) as tmp:
        assert not tmp.exists()  # the writer creates it (SavedModel does)
        tmp.mkdir()
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_writes_a_killed_process_left_are_removed_and_nothing_else(tmp_path):
    # A real process SIGKILLed inside both kinds of atomic write.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from kerazoo.atomic import atomic_dir, atomic_path\n"
        "run = Path(sys.argv[1])\n"
        "with atomic_path(run / 'logs' / 'model.keras') as f, atomic_dir(run / 'model') as d:\n"
        "    f.write_text('half'); d.mkdir(); (d / 'saved_model.pb').write_text('half')\n"
        "    (run / 'ready').touch(); time.sleep(60)\n"
    )
    (tmp_path / "logs").mkdir()
    for kept in (".keep", ".model.ab12cd34.keras", "logs/.hidden"):
        (tmp_path / kept).write_text("the user's")
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    try:
        deadline = time.time() + 60
        while not (tmp_path / "ready").exists():
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()
    removed = sorted(str(p.relative_to(tmp_path)) for p in remove_interrupted_writes(tmp_path))
    assert (
        len(removed) == 2 and removed[0].startswith(".model.") and removed[1].startswith("logs/.model.keras.")
    )
    hidden = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(".*"))
    assert hidden == [".keep", ".model.ab12cd34.keras", "logs/.hidden"]  # the user's, left alone


def test_remove_dir_deletes_a_directory_or_only_the_link_to_one(tmp_path):
    (tmp_path / "model" / "variables").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "saved_model.pb").write_text("kept")
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    remove_dir(tmp_path / "model")
    remove_dir(tmp_path / "linked")  # rmtree refuses a link
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert (tmp_path / "elsewhere" / "saved_model.pb").read_text() == "kept"
