"""Build an expensive test input once per test session, for every xdist worker."""

import os
import shutil

import filelock


def shared_directory(tmp_path_factory, name, build):
    """The directory `name`, made by `build(path)` once per test session.

    Under pytest-xdist a session fixture runs once per worker; this one
    builds in the directory all workers share (the parent of each worker's
    basetemp), under a file lock: the first worker to ask builds, a later
    one reuses the build (or waits for it). Without xdist the directory is
    in the session's own basetemp. A build interrupted half-way is redone.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / name
    built = base / f"{name}.built"
    with filelock.FileLock(str(base / f"{name}.lock")):
        if not built.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
            built.touch()
    return path
