"""What every recipe shares: config -> seed -> strategy -> run dir -> fit ->
report.

A recipe module declares a config dataclass (extending `RunConfig`) and a
function `run(config, run, strategy) -> Outcome`, and calls `main(...)`.
The runner owns the run directory:

    runs/<recipe>-<utc time>/   (or --out DIR)
      config.json        resolved config, command, kerazoo version
      run.log            the one-line-per-stage log
      backup/<stage>/    BackupAndRestore state while a stage trains
      checkpoints/       weights of every finished stage
      logs/<stage>.csv   CSVLogger history; tensorboard/<stage>/ events
      metrics.json, report.md, *.png, model.keras, model/ (SavedModel), model.onnx

Re-running with the same `--out` resumes: finished stages are loaded from
`checkpoints/`, an interrupted stage continues from its last finished epoch
(its data order depends only on (seed, epoch), see `kerazoo.data.pipeline`).
A finished run directory is never overwritten without `--overwrite`.
"""

import argparse
import dataclasses
import datetime
import json
import shutil
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

import kerazoo
from kerazoo.atomic import atomic_path, write_text
from kerazoo.data import DatasetNotFoundError, EpochCounter, make_protocol
from kerazoo.data.datasets import PIXEL_FORMAT
from kerazoo.export import export_onnx, export_savedmodel
from kerazoo.export.deploy import image_shape
from kerazoo.recipes.config import ConfigError, describe, option, resolve, to_dict

STRATEGIES = ("auto", "mirrored", "multiworker", "default")


@dataclasses.dataclass
class RunConfig:
    """Fields every recipe has."""

    dataset: str = option(
        "digits",
        "protocol: a tfds dataset name plus modifiers -rot/-bg/-dil (one nuisance "
        "per image) and -lt (Zipf long tail), e.g. digits-rot-lt or cifar100",
    )
    data_dir: str = option("", "tfds data directory ('' = $KERAZOO_DATA_DIR or ~/tensorflow_datasets)")
    download: bool = option(False, "let tfds download a missing dataset (needs internet)")
    image_size: int = option(0, "resize images to this square size (0 = keep the dataset's size)")
    seed: int = option(0, "seed for weights, data order, nuisances and subsets")
    deterministic: bool = option(True, "enable TensorFlow op determinism (same seed, same numbers)")


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked."""


@dataclasses.dataclass
class Outcome:
    """What a recipe returns to the runner.

    metrics: JSON-able numbers for metrics.json.
    report: markdown body of report.md.
    summary: (name, value) rows for the final table on stdout.
    model: the model to export (model.keras, SavedModel, ONNX), or None.
    sample_images: real inputs for the ONNX parity check.
    class_names: the class of each of the model's outputs, in output order.
    model_metrics: test metrics of `model` itself (not averages over seeds
        or methods); the model zoo's manifest quotes them.
    table: text printed above the summary (e.g. a per-phase table).
    """

    metrics: dict
    report: str
    summary: list
    model: object = None
    sample_images: object = None
    class_names: list = None
    model_metrics: dict = None
    table: str = ""


def make_strategy(name):
    """`auto`: MirroredStrategy over the visible GPUs, else the default strategy."""
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ConfigError(f"Unknown strategy '{name}'; choose one of {STRATEGIES}.")


class Run:
    """A run directory and the services recipes use while training."""

    def __init__(self, path, recipe, config, strategy, created):
        self.path = Path(path)
        self.recipe = recipe
        self.config = config
        self.strategy = strategy
        self.created = created
        self.epoch_counter = EpochCounter()
        self.started = time.time()
        self.data_notes = []

    @classmethod
    def open(cls, recipe, config, strategy, out=None, overwrite=False, command=None):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path(out) if out else Path("runs") / f"{recipe}-{stamp}"
        config_file = path / "config.json"
        wanted = to_dict(config)
        created = True
        if path.exists() and any(path.iterdir()):
            if overwrite:
                shutil.rmtree(path)
            elif (path / "metrics.json").exists():
                raise RunDirError(
                    f"{path} holds a finished run; pass --overwrite to replace it "
                    "or choose another --out."
                )
            elif not config_file.exists():
                raise RunDirError(
                    f"{path} is not empty and is not a kerazoo run directory; "
                    "choose another --out (or --overwrite to replace its contents)."
                )
            else:
                saved = json.loads(config_file.read_text())
                if saved.get("recipe") != recipe or saved.get("config") != wanted:
                    diff = [
                        f"{k}: {saved.get('config', {}).get(k)!r} -> {v!r}"
                        for k, v in wanted.items()
                        if saved.get("config", {}).get(k) != v
                    ]
                    raise RunDirError(
                        f"{path} holds an unfinished '{saved.get('recipe')}' run with a "
                        f"different config ({'; '.join(diff) or 'other recipe'}). Re-run "
                        "with the same config to resume it, or choose another --out "
                        "(--overwrite discards it)."
                    )
                created = False
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, recipe, config, strategy, created)
        if created:
            write_text(
                config_file,
                json.dumps(
                    {
                        "recipe": recipe,
                        "config": wanted,
                        "command": command,
                        "kerazoo_version": kerazoo.__version__,
                    },
                    indent=2,
                ),
            )
            run.log(f"new run in {path}")
        else:
            run.log(f"resuming the run in {path}")
        return run

    def log(self, message):
        line = f"[{datetime.datetime.now():%H:%M:%S}] {message}"
        print(line, flush=True)
        with open(self.path / "run.log", "a") as f:
            f.write(line + "\n")

    def protocol(self, **overrides):
        """The config's data protocol (`kerazoo.data.make_protocol`)."""
        c = self.config
        kwargs = dict(
            data_dir=c.data_dir or None,
            seed=c.seed,
            image_size=c.image_size or None,
            download=c.download,
        )
        kwargs.update(overrides)
        protocol = make_protocol(c.dataset, **kwargs)
        self.data_notes = protocol.notes
        self.log("data: " + "; ".join(protocol.notes))
        return protocol

    def checkpoint_path(self, stage):
        return self.path / "checkpoints" / f"{stage}.weights.h5"

    def fit(self, model, train_data, *, stage, epochs, validation_data=None, callbacks=()):
        """`model.fit` as a resumable stage of the run.

        A stage that finished in an earlier invocation is not trained again:
        its weights are loaded from `checkpoints/`. An interrupted stage
        resumes from its last finished epoch (`BackupAndRestore`). The model
        must be built and compiled.
        """
        checkpoint = self.checkpoint_path(stage)
        if model.optimizer is not None and not model.optimizer.built:
            # Lets load_weights restore the optimizer state too (otherwise
            # Keras skips it with a warning and the state silently resets).
            # In scope: a multi-replica strategy mirrors the slot variables.
            with self.strategy.scope():
                model.optimizer.build(model.trainable_variables)
        if checkpoint.exists():
            model.load_weights(checkpoint)
            self.log(f"{stage}: finished earlier, weights loaded")
            return
        self.log(f"{stage}: training for {epochs} epochs")
        (self.path / "logs").mkdir(exist_ok=True)
        started = time.time()
        model.fit(
            train_data,
            epochs=epochs,
            validation_data=validation_data,
            shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
            verbose=1 if sys.stdout.isatty() else 2,
            callbacks=[
                self.epoch_counter,
                keras.callbacks.BackupAndRestore(str(self.path / "backup" / stage)),
                keras.callbacks.CSVLogger(str(self.path / "logs" / f"{stage}.csv"), append=True),
                keras.callbacks.TensorBoard(str(self.path / "tensorboard" / stage)),
                *callbacks,
            ],
        )
        with atomic_path(checkpoint) as tmp:
            model.save_weights(tmp)
        if (self.path / "backup").exists() and not any((self.path / "backup").iterdir()):
            (self.path / "backup").rmdir()
        self.log(f"{stage}: done in {time.time() - started:.0f} s")

    def finish(self, outcome):
        """Write model.keras, metrics.json and report.md; print the summary."""
        seconds = time.time() - self.started
        metrics = {
            "recipe": self.recipe,
            "seed": self.config.seed,
            "replicas": self.strategy.num_replicas_in_sync,
            "seconds_this_invocation": round(seconds, 1),
            **outcome.metrics,
        }
        if outcome.model is not None:
            metrics["model"] = self.export(outcome)
        header = (
            f"# {self.recipe} — kerazoo {kerazoo.__version__}\n\n"
            f"- dataset: `{self.config.dataset}`, seed {self.config.seed}, "
            f"{self.strategy.num_replicas_in_sync} replica(s) "
            f"({type(self.strategy).__name__})\n"
            f"- command: `{json.loads((self.path / 'config.json').read_text())['command']}`\n\n"
        )
        config_table = "\n".join(
            ["## Config", "", "| key | value |", "|---|---|"]
            + [f"| {k} | `{v}` |" for k, v in to_dict(self.config).items()]
        )
        write_text(self.path / "report.md", header + outcome.report.strip() + "\n\n" + config_table + "\n")
        # metrics.json last: its presence marks the run as finished.
        write_text(self.path / "metrics.json", json.dumps(metrics, indent=2))
        if outcome.table:
            print("\n" + outcome.table.strip())
        width = max(len(name) for name, _ in outcome.summary)
        print("\n" + f"{'result':<{width}}  value")
        for name, value in outcome.summary:
            print(f"{name:<{width}}  {value}")
        print(f"\nrun directory: {self.path}  ({seconds:.0f} s)")

    def export(self, outcome):
        """model.keras, the SavedModel `model/` and the parity-checked
        `model.onnx` (overwriting those of an earlier, unfinished invocation);
        returns the model's description for metrics.json."""
        model = outcome.model
        with atomic_path(self.path / "model.keras") as tmp:
            model.save(tmp)
        self.log("export: model.keras")
        export_savedmodel(model, self.path / "model", overwrite=True)
        self.log("export: SavedModel model/ (signature 'serve')")
        parity = export_onnx(
            model,
            self.path / "model.onnx",
            sample_images=outcome.sample_images,
            class_names=outcome.class_names,
            overwrite=True,
        )
        self.log(
            "export: model.onnx, max |ONNX Runtime - Keras| "
            + ", ".join(f"{v:.1e} at batch {b}" for b, v in parity.items())
        )
        return {
            "class_names": outcome.class_names,
            "input_shape": [None, *image_shape(model)],
            "preprocessing": PIXEL_FORMAT,
            "training_data": self.data_notes,
            "metrics": outcome.model_metrics or {},
            "onnx_parity_max_abs_diff": {str(b): float(v) for b, v in parity.items()},
        }

    def discard_if_empty(self):
        """Remove a directory this invocation created before any training."""
        trained = (self.path / "checkpoints").exists() or (self.path / "backup").exists()
        if self.created and not trained:
            shutil.rmtree(self.path, ignore_errors=True)


def main(recipe, config_cls, run_fn, description, argv=None):
    """Parse the command line and run a recipe; exit 2 with a one-paragraph
    message on a user error (bad key, missing dataset, unusable run dir)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m kerazoo.recipes.{recipe}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="config fields (set with --set key=value or in a TOML file):\n"
        + describe(config_cls),
    )
    parser.add_argument("--config", action="append", default=[], metavar="FILE.toml",
                        help="TOML file of config fields (may repeat; later wins)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (may repeat)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="auto = MirroredStrategy over visible GPUs, else default")
    parser.add_argument("--out", help="run directory (default runs/<recipe>-<utc time>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory instead of refusing")
    args = parser.parse_args(argv)
    run = None
    try:
        config = resolve(config_cls, args.config, args.set)
        strategy = make_strategy(args.strategy)
        command = " ".join(["python -m", f"kerazoo.recipes.{recipe}", *(argv if argv is not None else sys.argv[1:])])
        run = Run.open(recipe, config, strategy, args.out, args.overwrite, command)
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        run.finish(run_fn(config, run, strategy))
    except (ConfigError, DatasetNotFoundError, RunDirError) as e:
        if run is not None:
            run.discard_if_empty()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
