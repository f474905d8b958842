"""A run directory: what it may hold, its config.json, and its log.

    runs/<recipe>-<utc time>/   (or --out DIR)
      config.json        resolved config, command, strategy, kerazoo version
      run.log            the one-line-per-stage log (every line, verbose or not)

A finished run directory is never overwritten without `--overwrite` (which
names the run it deletes), a run is resumed only with the recipe,
config and `--strategy` it started with, and only one process at a time
opens a directory (an exclusive lock on it, held while the run lives).
"""

import contextlib
import datetime
import functools
import json
import os
import shutil
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock
    fcntl = None

import kerazoo
from kerazoo.atomic import remove_interrupted_writes, write_text
from kerazoo.recipes.config import to_dict
from kerazoo.recipes.recipe import RunDirError


class RunDirectory:
    """The directory of one run and its console/run.log lines.

    Example:

    ```python
    directory = RunDirectory.open("baseline", config, strategy, out="runs/mine", command="...")
    with directory.timed("seed0: evaluation"):
        ...
    ```
    """

    def __init__(self, path, created, verbose=False, lock=None):
        self.path = Path(path)
        self.created = created
        self.verbose = verbose
        self._lock = lock

    def __del__(self):
        # At interpreter exit the module's globals may already be None (an
        # in-process run never released: "Exception ignored in __del__");
        # the OS closes the descriptor then anyway.
        if os is not None:
            self.release()

    def release(self):
        """Let another process open this directory (also done when the run's process ends)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @classmethod
    def open(
        cls,
        recipe,
        config,
        strategy,
        out=None,
        overwrite=False,
        command=None,
        strategy_flag="auto",
        verbose=False,
    ):
        """The directory `--out` names (default runs/<recipe>-<utc time>):
        created with config.json, or the unfinished run of the same recipe,
        config and strategy to resume; a finished run only with `overwrite`.

        Raises:
            RunDirError: naming what the directory holds and the way out.
        """
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        path = Path(out) if out else Path("runs") / f"{recipe}-{stamp}"
        config_file = path / "config.json"
        wanted = to_dict(config)
        found = cls.check(recipe, config, path, overwrite, strategy_flag)
        # A requeued job can start before the preempted one has stopped:
        # two processes writing one run corrupted its backups.
        lock = _lock(path) if path.is_dir() else None
        if found == "replace":
            print(f"--overwrite: deleting {_held_run(path)} in {path}", flush=True)
            shutil.rmtree(path)
            if lock is not None:
                os.close(lock)
                lock = None
        created = found != "resume"
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, created, verbose, lock if lock is not None else _lock(path))
        if created:
            write_text(
                config_file,
                json.dumps(
                    {
                        "recipe": recipe,
                        "config": wanted,
                        "command": command,
                        # Relative paths in the command (or in a --config
                        # file) mean this directory: `zoo rebuild` runs there.
                        "working_directory": str(Path.cwd()),
                        "strategy": strategy_flag,
                        "strategy_class": type(strategy).__name__,
                        "replicas": strategy.num_replicas_in_sync,
                        "kerazoo_version": kerazoo.__version__,
                    },
                    indent=2,
                ),
            )
            run.log(f"new run in {path}")
        else:
            run.log(f"resuming the run in {path}")
            for leftover in remove_interrupted_writes(path):
                run.log(f"removed {leftover.relative_to(path)}: a write the interruption cut", console=False)
        return run

    @staticmethod
    def check(recipe, config, out, overwrite=False, strategy_flag="auto"):
        """What `out` holds for a run of `recipe` with `config`: "new"
        (absent or empty), "resume" (the unfinished run of the same recipe,
        config and strategy) or "replace" (any other kerazoo run, with
        `overwrite`). A folder that holds no run is never replaced, nor one
        that holds the current directory.

        It only reads `out`, and imports no TensorFlow: a recipe calls it
        before that import (about 5 s) to answer a bad `--out` at once, and
        `open` calls it again.

        Raises:
            RunDirError: naming what the directory holds and the way out.

        Example:

        ```python
        RunDirectory.check("baseline", config, "runs/mine")  # "new", "resume", or RunDirError
        ```
        """
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"--out {path} is a file, not a directory; choose another --out.")
        if not path.exists() or not any(path.iterdir()):
            return "new"
        held = _held_run(path)
        if not held:
            # --overwrite deletes runs only: never the files of a folder
            # named by mistake (`--out .`, `--out ~/data`).
            raise RunDirError(
                f"{path} is not empty and is not a kerazoo run directory (it has no run's config.json); "
                "choose another --out (a new or empty folder, or a run to resume or --overwrite)."
            )
        if overwrite:
            if Path.cwd().resolve().is_relative_to(path.resolve()):
                raise RunDirError(
                    f"--out {path} holds {held} and the current directory; --overwrite would delete the "
                    "folder you are in: run the command from outside it."
                )
            foreign = sorted(p.name for p in path.iterdir() if not _written_by_runs(p.name))
            if foreign:
                raise RunDirError(
                    f"--out {path} holds {held} and also {', '.join(foreign)}, which no run writes; "
                    "--overwrite would delete them: move them out of it first, or choose another --out."
                )
            return "replace"
        if (path / "metrics.json").exists():
            raise RunDirError(f"{path} holds {held}; pass --overwrite to replace it or choose another --out.")
        saved = _with_added_fields(json.loads((path / "config.json").read_text()), config)
        _check_resumable(path, saved, recipe, to_dict(config), strategy_flag)
        return "resume"

    @classmethod
    def join(cls, recipe, config, out, verbose=False):
        """The directory of a run that another process of the same command
        opened (`--jobs`): it must hold that recipe and config.

        Raises:
            RunDirError: when it does not.
        """
        path = Path(out)
        try:
            saved = _with_added_fields(json.loads((path / "config.json").read_text()), config)
        except (OSError, ValueError):
            raise RunDirError(f"--worker: {path} is not a kerazoo run directory.") from None
        if saved.get("recipe") != recipe or saved.get("config") != to_dict(config):
            raise RunDirError(f"--worker: {path} holds another recipe or config than this command's.")
        return cls(path, False, verbose)

    @functools.cached_property
    def saved(self):
        """What config.json records (the resolved config, the command, the
        --strategy, ...), written when the run was created."""
        return json.loads((self.path / "config.json").read_text())

    def log(self, message, console=True):
        """Append a line to run.log; print it too unless `console` is False
        (and the run is not verbose)."""
        line = f"[{datetime.datetime.now():%H:%M:%S}] {message}"
        if console or self.verbose:
            print(line, flush=True)
        with open(self.path / "run.log", "a") as f:
            f.write(line + "\n")

    @contextlib.contextmanager
    def timed(self, what):
        """Log `what` when it starts and, with its time, when it ends: no
        stretch of a run is silent.

        Example:

        ```python
        with run.timed("seed0: linear probe"):
            probe(...)
        # [12:00:01] seed0: linear probe ...
        # [12:00:09] seed0: linear probe: 8 s
        ```
        """
        self.log(f"{what} ...")
        started = time.time()
        yield
        self.log(f"{what}: {time.time() - started:.0f} s")

    def discard_if_empty(self):
        """Remove a directory this invocation created before any training."""
        trained = (self.path / "checkpoints").exists() or (self.path / "backup").exists()
        if self.created and not trained:
            shutil.rmtree(self.path, ignore_errors=True)


# What a recipe run writes at the top of its directory (besides plots,
# *.png, and the hidden temporaries of atomic writes): --overwrite deletes
# these, and refuses to delete anything else the user put there.
RUN_ENTRIES = {
    "config.json",
    "metrics.json",
    "run.log",
    "report.md",
    "logs",
    "tensorboard",
    "checkpoints",
    "backup",
    "jobs",
    "model",
    "model.keras",
    "model.onnx",
    "translator.keras",
    "probe",
}


def _written_by_runs(name):
    return name in RUN_ENTRIES or name.endswith(".png") or name.startswith(".")


def _lock(path):
    """An open descriptor of the directory `path`, locked exclusively
    (flock: released when it is closed or its process ends), or None
    where there is no flock."""
    if fcntl is None:
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise RunDirError(
            f"{path} is in use by another process (a run of this command still going or still "
            "stopping); wait until it has ended, or choose another --out."
        ) from None
    return descriptor


def _held_run(path):
    """What a run directory holds, in words: "the finished 'lucir' run", ...; '' if not a run."""
    try:
        saved = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(saved, dict) or not {"recipe", "config"} <= saved.keys():
        return ""  # another program's config.json
    state = "finished" if (path / "metrics.json").exists() else "unfinished"
    return f"the {state} '{saved.get('recipe')}' run"


def _with_added_fields(saved, config):
    """`saved` (config.json's contents) with the config fields added to
    kerazoo since the run started, at their defaults: it ran with them."""
    added = {k: v for k, v in to_dict(type(config)()).items() if k not in saved.get("config", {})}
    return {**saved, "config": {**added, **saved.get("config", {})}}


def _check_resumable(path, saved, recipe, wanted, strategy_flag):
    if saved.get("recipe") != recipe:
        raise RunDirError(
            f"{path} holds an unfinished '{saved.get('recipe')}' run, not a '{recipe}' run; choose "
            f"another --out (--overwrite deletes the '{saved.get('recipe')}' run)."
        )
    if saved.get("config") != wanted:
        diff = [
            f"{k}: {saved.get('config', {}).get(k)!r} -> {v!r}"
            for k, v in wanted.items()
            if saved.get("config", {}).get(k) != v
        ]
        raise RunDirError(
            f"{path} holds an unfinished '{saved.get('recipe')}' run with a "
            f"different config ({'; '.join(diff)}). Re-run "
            "with the same config to resume it, or choose another --out "
            "(--overwrite discards it)."
        )
    if saved.get("strategy", "auto") != strategy_flag:
        raise RunDirError(
            f"{path} holds an unfinished run started with --strategy {saved.get('strategy')}; "
            f"resuming it with --strategy {strategy_flag} would change how batches are split "
            f"and reduced. Re-run with --strategy {saved.get('strategy')}, or choose another "
            "--out (--overwrite discards it)."
        )
