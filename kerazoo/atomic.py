"""Write files so that a reader never sees a half-written one."""

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary name keeps the suffix, so savers that infer the format
    from it (`.weights.h5`, `.keras`, `.png`) still work.

    Args:
        path: the file to write.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import atomic_path

    path = Path(tempfile.mkdtemp()) / "results.json"
    with atomic_path(path) as tmp:
        tmp.write_text("{}")  # `path` appears only when the block succeeds
    print(path.read_text())
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text):
    """Write `text` to `path` atomically (`atomic_path`).

    Args:
        path: the file to write.
        text: its content.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import write_text

    path = Path(tempfile.mkdtemp()) / "notes.txt"
    write_text(path, "done")
    print(path.read_text())
    ```
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def atomic_dir(path, overwrite=False):
    """Yield a fresh temporary directory path beside `path`; on success move
    it onto `path`, which then appears complete or not at all.

    The yielded path does not exist yet, so writers that create their own
    directory (SavedModel) can use it. An existing `path` is an error
    unless `overwrite`; it is replaced only once the new one is complete.

    Args:
        path: the directory to write.
        overwrite: replace an existing `path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is false.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import atomic_dir

    path = Path(tempfile.mkdtemp()) / "model"
    with atomic_dir(path) as tmp:
        tmp.mkdir()
        (tmp / "weights.txt").write_text("1 2 3")
    print(sorted(p.name for p in path.iterdir()))  # ['weights.txt']
    ```
    """
    path = Path(path)
    check_free(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Reserve a unique name, then let the writer create the directory: one
    # made by mkdtemp would keep its owner-only permissions.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.rmdir()
    try:
        yield tmp
        check_free(path, overwrite)
        # A directory cannot be renamed over a non-empty one, so an old one
        # is moved aside first and deleted only once the new one is in place.
        old = _moved_aside(path) if path.exists() else None
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _moved_aside(path):
    """Move `path` (a directory, or a link to one) into a new hidden folder
    beside it, `.<name>.old.<random>`, in one step; return that folder, which
    `remove_interrupted_writes` deletes if the process dies before its caller does."""
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    os.replace(path, old / path.name)
    return old


def remove_dir(path):
    """Delete the directory `path` (or the link to one) as one step: it is
    gone at once, and a process killed while its files are deleted leaves
    only a hidden folder that `remove_interrupted_writes` deletes.

    Args:
        path: an existing directory or link to one.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import remove_dir

    folder = Path(tempfile.mkdtemp())
    (folder / "model").mkdir()
    remove_dir(folder / "model")
    print(list(folder.iterdir()))  # []
    ```
    """
    shutil.rmtree(_moved_aside(Path(path)))


def check_free(path, overwrite):
    """Raise `FileExistsError` if `path` exists and `overwrite` is false.

    Args:
        path: a `Path`.
        overwrite: allow an existing `path`.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import check_free

    folder = Path(tempfile.mkdtemp())
    check_free(folder / "new", overwrite=False)  # fine
    try:
        check_free(folder, overwrite=False)
    except FileExistsError as error:
        print(error)
    ```
    """
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")


def remove_interrupted_writes(folder):
    """Delete what `atomic_path` and `atomic_dir` writes in `folder` (and
    below) left when their process was killed: hidden temporaries named
    `.<name>.<8 random characters><name's suffixes>` (and `atomic_dir`'s
    `.<name>.old.<8 random characters>`). Nothing else is touched. Call it
    only where no other process is writing (a run directory being
    resumed).

    Args:
        folder: a `Path`.

    Returns:
        The paths removed.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from kerazoo.atomic import remove_interrupted_writes

    folder = Path(tempfile.mkdtemp())
    (folder / ".model.k3j_x9ab").mkdir()  # as a killed atomic_dir("model") leaves it
    (folder / ".keep").touch()
    print([p.name for p in remove_interrupted_writes(folder)])  # ['.model.k3j_x9ab']
    ```
    """
    found = {p for p in Path(folder).rglob(".*") if _is_temporary(p.name)}
    removed = sorted(p for p in found if found.isdisjoint(p.parents))
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def _is_temporary(name):
    # tempfile's random part is 8 characters of [a-z0-9_]; atomic_path keeps
    # the target's suffixes after it (format inference).
    found = re.fullmatch(r"\.(.+?)\.(old\.)?[a-z0-9_]{8}(.*)", name)
    return bool(found) and found[3] == "".join(Path(found[1]).suffixes)
