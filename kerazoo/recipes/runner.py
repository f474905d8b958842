"""What every recipe shares: config -> seeds -> strategy -> run dir -> fit ->
report -> export.

A recipe module declares a config dataclass (extending `RunConfig`), a
function `run_seed(config, run, seed) -> SeedResult` and, optionally,
`report(config, run, per_seed) -> Outcome`, and bundles them in a `Recipe`
whose `main()` is the command line. The runner owns the seeds loop
(`num_seeds`), the mean ± std tables (`kerazoo.recipes.results`) and the
run directory:

    runs/<recipe>-<utc time>/   (or --out DIR)
      config.json        resolved config, command, strategy, kerazoo version
      run.log            the one-line-per-stage log (every line, verbose or not)
      backup/<stage>/    BackupAndRestore state while a stage trains
      checkpoints/       weights (and optimizer states) of every finished stage
      logs/<stage>.csv   CSVLogger history; tensorboard/<stage>/ events
      metrics.json, report.md, *.png, model.keras, model/ (SavedModel), model.onnx

Every config value is validated before the directory is created.
Re-running with the same `--out` resumes: finished stages are loaded from
`checkpoints/`, an interrupted stage continues from its last backup (see
`PeriodicBackup`; its data order depends only on (seed, epoch), see
`kerazoo.data.pipeline`).
A finished run directory is never overwritten without `--overwrite`, and a
run is resumed only with the config and `--strategy` it started with.
"""

import argparse
import dataclasses
import datetime
import json
import math
import shutil
import sys
import time
import typing
from pathlib import Path

import keras
import tensorflow as tf

import kerazoo
from kerazoo.atomic import atomic_path, write_text
from kerazoo.data import DatasetNotFoundError, EpochCounter, make_protocol, parse_protocol_name
from kerazoo.data import datasets
from kerazoo.data.streamed import EVAL_CROP_FRACTION, is_streamed
from kerazoo.data.user_sources import check_location, is_user_source
from kerazoo.export import export_onnx, export_savedmodel, kind_of
from kerazoo.inputs import input_spec
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.recipes import results as results_lib
from kerazoo.recipes.config import ConfigError, describe, option, resolve, to_dict
from kerazoo.recipes.results import SeedResult  # noqa: F401  (recipes build it from here)

STRATEGIES = ("auto", "mirrored", "multiworker", "default")


@dataclasses.dataclass
class RunConfig:
    """Fields every recipe has."""

    dataset: str = option(
        "digits",
        "protocol: a tfds dataset name, or imagefolder / arrays for your own data in data_dir "
        "(docs/own_data.md), plus modifiers -rot/-bg/-dil (one nuisance per image) and -lt "
        "(Zipf long tail), e.g. digits-rot-lt, cifar100 or imagefolder-lt",
    )
    data_dir: str = option("", "tfds data directory ('' = $KERAZOO_DATA_DIR or ~/tensorflow_datasets); "
                               "dataset=imagefolder: your image folder; dataset=arrays: your .npz file")
    download: bool = option(False, "let tfds download a missing dataset (needs internet)")
    image_size: int = option(0, "resize images to this square size (0 = keep the dataset's size)", min=0)
    seed: int = option(0, "first seed for weights, data order, nuisances and subsets", min=0)
    num_seeds: int = option(1, "seeds seed, seed+1, ...; tables give mean ± std over them", min=1)
    deterministic: bool = option(True, "enable TensorFlow op determinism (same seed, same numbers)")
    exports: str = option(
        "all",
        "what the shipped model is written as: all (model.keras, SavedModel, ONNX) or keras "
        "(model.keras only: sweeps and smoke runs; the zoo publishes only 'all' runs)",
        choices=["all", "keras"],
    )
    backup_seconds: float = option(
        30.0,
        "back up an unfinished stage at the first epoch end after this many seconds "
        "(0 = every epoch); a killed stage resumes from its last backup",
        min=0.0,
    )

    # Whether the recipe reads the datasets too large for memory (see
    # kerazoo.data.streamed); a recipe that does sets this True.
    reads_streamed_datasets: typing.ClassVar[bool] = False

    def validate(self):
        """Cross-field checks; recipes extend this (call super().validate())."""
        try:
            base, _, _ = parse_protocol_name(self.dataset)
        except ValueError as error:
            raise ConfigError(f"Config key 'dataset': {error}") from None
        if is_user_source(base):
            try:
                check_location(base, self.data_dir)
            except DatasetNotFoundError as error:
                raise ConfigError(f"Config key 'data_dir': {error}") from None
        if is_streamed(self.dataset) and not self.reads_streamed_datasets:
            raise ConfigError(
                f"Config key 'dataset': '{self.dataset}' is too large for memory and is read as a "
                "stream, which this recipe does not support yet; the batchformer recipe does "
                "(recipes/imagenet_lt_batchformer.toml)."
            )
        if is_streamed(self.dataset) and not self.image_size:
            raise ConfigError(
                f"Config key 'image_size': '{self.dataset}' is streamed and its photos have no "
                "common size; set image_size (224 for the paper protocols)."
            )

    @property
    def seeds(self):
        return [self.seed + i for i in range(self.num_seeds)]


def dataset_num_classes(config):
    """The class count of `config.dataset`, from tfds metadata (no data loaded)."""
    base, _, _ = parse_protocol_name(config.dataset)
    try:
        return datasets.num_classes(base, config.data_dir or None)
    except DatasetNotFoundError as error:
        raise ConfigError(f"Config key 'dataset': {error}") from None


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked."""


class TrainingDiverged(RuntimeError):
    """A training loss became NaN or infinite."""


@dataclasses.dataclass
class Outcome:
    """What a recipe's `report` adds to the runner's tables.

    report: markdown body of report.md, after the headline tables.
    metrics: extra JSON-able numbers for metrics.json.
    table: text printed on the console before the headline table (e.g. a
        per-phase table).
    """

    report: str = ""
    metrics: dict = dataclasses.field(default_factory=dict)
    table: str = ""


@dataclasses.dataclass
class Recipe:
    """A runnable recipe: its config, what one seed does, and its tables.

    name: the module name under `kerazoo.recipes`.
    config: the config dataclass (extends `RunConfig`).
    run_seed: (config, run, seed) -> `SeedResult`.
    columns: the headline table's `results.Column`s.
    description: the module docstring, for `--help`.
    effects: (method, baseline method) pairs whose same-seed differences
        are reported.
    report: (config, run, per_seed) -> `Outcome`, or None.

    Example:

    ```python
    RECIPE = runner.Recipe("baseline", BaselineConfig, run_seed, COLUMNS, __doc__)
    if __name__ == "__main__":
        RECIPE.main()
    ```
    """

    name: str
    config: type
    run_seed: object
    columns: list
    description: str = ""
    effects: list = dataclasses.field(default_factory=list)
    report: object = None

    def execute(self, config, run):
        """Run every seed, then write the report, metrics and exports."""
        per_seed = {}
        for seed in config.seeds:
            run.seed = seed
            keras.utils.set_random_seed(seed)
            started = time.time()
            result = self.run_seed(config, run, seed)
            if seed != config.seeds[0]:
                result.model = None  # only the first seed's model ships
            per_seed[seed] = result
            run.log(f"seed {seed}: done in {time.time() - started:.0f} s")
        outcome = self.report(config, run, per_seed) if self.report else Outcome()
        run.finish(self, per_seed, outcome)

    def main(self, argv=None):
        """Parse the command line and run; exit 2 with a one-paragraph
        message on a user error (bad config, missing dataset, unusable run
        dir), 1 when training diverges."""
        parser = argparse.ArgumentParser(
            prog=f"python -m kerazoo.recipes.{self.name}",
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="config fields (set with --set key=value or in a TOML file):\n"
            + describe(self.config),
        )
        parser.add_argument("--config", action="append", default=[], metavar="FILE.toml",
                            help="TOML file of config fields (may repeat; later wins)")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override one config field (may repeat); lists: a,b or [\"a\", \"b\"]")
        parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                            help="auto = MirroredStrategy over visible GPUs, else default")
        parser.add_argument("--out", help="run directory (default runs/<recipe>-<utc time>)")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace an existing run directory instead of refusing")
        parser.add_argument("--verbose", action="store_true",
                            help="print a line per epoch (a terminal shows progress bars anyway)")
        args = parser.parse_args(argv)
        run = None
        try:
            config = resolve(self.config, args.config, args.set)
            words = argv if argv is not None else sys.argv[1:]
            command = " ".join(["python -m", f"kerazoo.recipes.{self.name}", *words])
            strategy = make_strategy(args.strategy)
            run = Run.open(self.name, config, strategy, args.out, args.overwrite, command,
                           strategy_flag=args.strategy, verbose=args.verbose)
            if config.deterministic:
                tf.config.experimental.enable_op_determinism()
            self.execute(config, run)
        except (ConfigError, DatasetNotFoundError, RunDirError) as e:
            if run is not None:
                run.discard_if_empty()
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except TrainingDiverged as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)


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


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise `TrainingDiverged` at the end of an epoch whose mean training
    loss is NaN or infinite, so that no model is written from diverged
    weights. (Per epoch: reading the loss after every batch would
    synchronise each step and cost ~15 % on small models.)"""

    def __init__(self, stage, hint):
        super().__init__()
        self.stage = stage
        self.hint = hint

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"stage '{self.stage}': the training loss became {loss} in epoch "
                f"{epoch + 1}. {self.hint} No model was written; re-run with a corrected "
                "config and --overwrite (or another --out)."
            )


class PeriodicBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that saves at an epoch end only once `seconds` have
    passed since its last save, and keeps the CSV `history` in step with
    what it restores.

    Saving every epoch cost 28 % of the LUCIR digits run, whose epochs take
    a fraction of a second. Any backup resumes exactly, since an epoch's
    data depends only on (seed, epoch); a kill costs at most `seconds` of
    training to redo. The previous backup is kept (`double_checkpoint`): a
    kill while the weights file is being written leaves it unreadable, and
    the restore then falls back to the one before.
    """

    def __init__(self, backup_dir, seconds, history):
        super().__init__(backup_dir, double_checkpoint=True)
        self.seconds = seconds
        self.history = Path(history)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # After the restore (or its fallback) and before CSVLogger opens the file.
        _trim_history(self.history, Path(self.backup_dir))
        self._saved_at = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._saved_at >= self.seconds:
            super().on_epoch_end(epoch, logs)
            self._saved_at = time.monotonic()


def _trim_history(csv_path, backup_dir):
    """Drop the CSV rows of epochs a resumed stage will train again (those
    after its last backup), so that the history has each epoch once."""
    if not csv_path.exists():
        return
    metadata = backup_dir / "training_metadata.json"
    kept_epochs = json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0
    header, *rows = csv_path.read_text().splitlines(keepends=True)
    write_text(csv_path, "".join([header, *rows[:kept_epochs]]))


class Run:
    """A run directory and the services recipes use while training."""

    def __init__(self, path, recipe, config, strategy, created, verbose=False):
        self.path = Path(path)
        self.recipe = recipe
        self.config = config
        self.strategy = strategy
        self.created = created
        self.verbose = verbose
        self.epoch_counter = EpochCounter()
        self.started = time.time()
        self.data_notes = []
        self.seed = None  # the seed being run (set by Recipe.execute)
        self._protocols = {}

    @classmethod
    def open(cls, recipe, config, strategy, out=None, overwrite=False, command=None,
             strategy_flag="auto", verbose=False):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path(out) if out else Path("runs") / f"{recipe}-{stamp}"
        config_file = path / "config.json"
        wanted = to_dict(config)
        created = True
        if path.exists() and not path.is_dir():
            raise RunDirError(f"--out {path} is a file, not a directory; choose another --out.")
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
                _check_resumable(path, json.loads(config_file.read_text()), recipe, wanted, strategy_flag)
                created = False
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, recipe, config, strategy, created, verbose)
        if created:
            write_text(
                config_file,
                json.dumps(
                    {
                        "recipe": recipe,
                        "config": wanted,
                        "command": command,
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
        return run

    def log(self, message, console=True):
        """Append a line to run.log; print it too unless `console` is False
        (and the run is not verbose)."""
        line = f"[{datetime.datetime.now():%H:%M:%S}] {message}"
        if console or self.verbose:
            print(line, flush=True)
        with open(self.path / "run.log", "a") as f:
            f.write(line + "\n")

    def protocol(self, **overrides):
        """The config's data protocol (`kerazoo.data.make_protocol`), built
        once per set of overrides."""
        c = self.config
        kwargs = dict(
            data_dir=c.data_dir or None,
            seed=c.seed,
            image_size=c.image_size or None,
            download=c.download,
        )
        kwargs.update(overrides)
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in self._protocols:
            protocol = make_protocol(c.dataset, **kwargs)
            if self.seed is not None:
                # Preparing a dataset the first time creates TensorFlow ops,
                # which moves the op-seed counter: without re-seeding, the
                # weights would depend on whether the data was cached.
                keras.utils.set_random_seed(self.seed)
            self._protocols[key] = protocol
            self.data_notes = protocol.notes
            self.log("data: " + "; ".join(protocol.notes), console=False)
        return self._protocols[key]

    def checkpoint_path(self, stage):
        return self.path / "checkpoints" / f"{stage}.weights.h5"

    def fit(self, model, train_data, *, stage, epochs, validation_data=None, callbacks=(),
            divergence_hint="Lower the learning rate, or check the data for NaN."):
        """`model.fit` as a resumable stage of the run.

        A stage that finished in an earlier invocation is not trained again:
        its weights are loaded from `checkpoints/`. An interrupted stage
        resumes from its last finished epoch (`BackupAndRestore`). The model
        must be built and compiled. Every optimizer of the model (see
        `kerazoo.models.TrainingModel.optimizer_groups`) is built here, in
        the strategy's scope, so that its state is saved and restored too.
        A NaN or infinite loss stops training with `TrainingDiverged`.
        """
        checkpoint = self.checkpoint_path(stage)
        self._build_optimizers(model)
        if checkpoint.exists():
            model.load_weights(checkpoint)
            self.log(f"{stage}: finished earlier, weights loaded", console=False)
            return
        self.log(f"{stage}: training for {epochs} epochs", console=False)
        (self.path / "logs").mkdir(exist_ok=True)
        history = self.path / "logs" / f"{stage}.csv"
        started = time.time()
        if sys.stdout.isatty():
            verbose = 1
        else:
            verbose = 2 if self.verbose else 0
        model.fit(
            train_data,
            epochs=epochs,
            validation_data=validation_data,
            shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
            verbose=verbose,
            callbacks=[
                self.epoch_counter,
                StopOnNonFiniteLoss(stage, divergence_hint),
                # Before CSVLogger: it trims the history the logger appends to.
                PeriodicBackup(str(self.path / "backup" / stage), self.config.backup_seconds, history),
                keras.callbacks.CSVLogger(str(history), append=True),
                keras.callbacks.TensorBoard(str(self.path / "tensorboard" / stage), write_graph=False),
                *callbacks,
            ],
        )
        with atomic_path(checkpoint) as tmp:
            model.save_weights(tmp)
        if (self.path / "backup").exists() and not any((self.path / "backup").iterdir()):
            (self.path / "backup").rmdir()
        self.log(f"{stage}: {epochs} epochs in {time.time() - started:.0f} s")

    def _build_optimizers(self, model):
        # Lets load_weights and BackupAndRestore restore every optimizer's
        # state (Keras otherwise skips an unbuilt optimizer with a warning
        # and its state silently resets). In scope: a multi-replica strategy
        # mirrors the slot variables, and a second optimizer built lazily
        # inside the step function fails there (keras#23085).
        if isinstance(model, TrainingModel):
            groups = model.optimizer_groups()
        else:
            groups = [OptimizerGroup("model", model.optimizer, model.trainable_variables)]
        with self.strategy.scope():
            for group in groups:
                if group.optimizer is not None and not group.optimizer.built:
                    group.optimizer.build(group.variables)

    def finish(self, recipe, per_seed, outcome):
        """Write the exports, report.md and metrics.json; print the tables."""
        seconds = time.time() - self.started
        rows = {seed: result.rows for seed, result in per_seed.items()}
        seeds = list(per_seed)
        label = results_lib.spread_label(len(seeds))
        headline = results_lib.headline_table(rows, recipe.columns)
        tables = [f"## Results (%, {label})", "", headline]
        if recipe.effects:
            tables += [
                "",
                f"## Effect of each method against its baseline (same seed, {label})",
                "",
                results_lib.effect_table(rows, recipe.columns, recipe.effects),
            ]
        saved = json.loads((self.path / "config.json").read_text())
        metrics = {
            "recipe": self.recipe,
            "seeds": seeds,
            "replicas": self.strategy.num_replicas_in_sync,
            "strategy": saved.get("strategy"),
            "seconds_this_invocation": round(seconds, 1),
            "results": results_lib.per_method(rows),
            "details": {str(seed): r.details for seed, r in per_seed.items() if r.details},
            **outcome.metrics,
        }
        shipped = per_seed[seeds[0]]
        if shipped.model is not None:
            metrics["model"] = self.export(shipped)
        header = (
            f"# {self.recipe} — kerazoo {kerazoo.__version__}\n\n"
            f"- dataset: `{self.config.dataset}`, seeds {seeds}\n"
            f"- strategy: `--strategy {saved.get('strategy')}` → "
            f"{type(self.strategy).__name__}, {self.strategy.num_replicas_in_sync} replica(s)\n"
            f"- command: `{saved['command']}`\n\n"
        )
        config_table = "\n".join(
            ["## Config", "", "| key | value |", "|---|---|"]
            + [f"| {k} | `{v}` |" for k, v in to_dict(self.config).items()]
        )
        body = "\n".join(tables) + "\n\n" + outcome.report.strip()
        write_text(self.path / "report.md", header + body.strip() + "\n\n" + config_table + "\n")
        # metrics.json last: its presence marks the run as finished.
        write_text(self.path / "metrics.json", json.dumps(metrics, indent=2))
        if outcome.table:
            print("\n" + outcome.table.strip())
        print("\n" + "\n".join(tables).replace("## ", ""))
        print(f"\nrun directory: {self.path}  ({seconds:.0f} s)")

    def export(self, result):
        """model.keras, the SavedModel `model/` and the parity-checked
        `model.onnx` of `result.model.inference_model()` (overwriting those of
        an earlier, unfinished invocation; `exports="keras"` writes only the
        first); returns the model's description for metrics.json."""
        model = result.model.inference_model()
        kind = kind_of(model)
        class_names = result.class_names if kind == "classifier" else None
        with atomic_path(self.path / "model.keras") as tmp:
            model.save(tmp)
        self.log("export: model.keras", console=False)
        description = {
            "kind": kind,
            "class_names": class_names,
            "input_shape": [None, *result.input_shape],
            **input_spec(self.config.dataset, self.config.image_size,
                         crop_fraction=EVAL_CROP_FRACTION if is_streamed(self.config.dataset) else None),
            "training_data": self.data_notes,
            "metrics": result.model_metrics or {},
        }
        if self.config.exports == "keras":
            return description
        export_savedmodel(model, self.path / "model", overwrite=True)
        self.log("export: SavedModel model/ (signature 'serve')", console=False)
        parity = export_onnx(
            model,
            self.path / "model.onnx",
            sample_images=result.sample_images,
            class_names=class_names,
            overwrite=True,
        )
        self.log(
            "export: model.keras, SavedModel model/, model.onnx (max |ONNX Runtime - Keras| "
            + ", ".join(f"{v:.1e} at batch {b}" for b, v in parity.items())
            + ")"
        )
        return {**description, "onnx_parity_max_abs_diff": {str(b): float(v) for b, v in parity.items()}}

    def discard_if_empty(self):
        """Remove a directory this invocation created before any training."""
        trained = (self.path / "checkpoints").exists() or (self.path / "backup").exists()
        if self.created and not trained:
            shutil.rmtree(self.path, ignore_errors=True)


def _check_resumable(path, saved, recipe, wanted, strategy_flag):
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
    if saved.get("strategy", "auto") != strategy_flag:
        raise RunDirError(
            f"{path} holds an unfinished run started with --strategy {saved.get('strategy')}; "
            f"resuming it with --strategy {strategy_flag} would change how batches are split "
            f"and reduced. Re-run with --strategy {saved.get('strategy')}, or choose another "
            "--out (--overwrite discards it)."
        )
