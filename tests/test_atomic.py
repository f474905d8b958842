import pytest

from kerazoo.atomic import atomic_dir, atomic_path


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
