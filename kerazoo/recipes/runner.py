"""What every recipe run shares: strategy -> run dir -> seeds -> fit -> report
-> export.

A recipe (`kerazoo.recipes.recipe.Recipe`) declares its config and tables;
its experiment module defines `run_seed(config, run, seed) -> SeedResult`
and, optionally, `report(config, run, per_seed) -> Outcome`. Once
`Recipe.main` has parsed and validated the config, `run` here takes over.
The runner owns the seeds loop
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

import contextlib
import datetime
import json
import math
import shutil
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

import kerazoo
from kerazoo.atomic import atomic_path, write_text
from kerazoo.data import DatasetNotFoundError, EpochCounter, make_protocol, parse_protocol_name
from kerazoo.data import datasets
from kerazoo.data.streamed import EVAL_CROP_FRACTION, is_streamed
from kerazoo.export import export_onnx, export_savedmodel, kind_of
from kerazoo.inputs import input_spec
from kerazoo.models.base import OptimizerGroup, TrainingModel
from kerazoo.recipes import results as results_lib
from kerazoo.recipes.config import ConfigError, to_dict
from kerazoo.recipes.recipe import STRATEGIES, Outcome, RunDirError, TrainingDiverged

def dataset_num_classes(config):
    """The class count of `config.dataset`, from tfds metadata (no data loaded)."""
    base, _, _ = parse_protocol_name(config.dataset)
    try:
        return datasets.num_classes(base, config.data_dir or None)
    except DatasetNotFoundError as error:
        raise ConfigError(f"Config key 'dataset': {error}") from None


def run(recipe, config, args, command):
    """Open the run directory `args` ask for, run `recipe` in it and exit
    like `Recipe.main`: 2 with a one-paragraph message on a user error
    (missing dataset, unusable run dir), 1 when training diverges."""
    run = None
    try:
        strategy = make_strategy(args.strategy)
        run = Run.open(recipe.name, config, strategy, args.out, args.overwrite, command,
                       strategy_flag=args.strategy, verbose=args.verbose)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        execute(recipe, config, run)
    except (ConfigError, DatasetNotFoundError, RunDirError) as e:
        if run is not None:
            run.discard_if_empty()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def execute(recipe, config, run):
    """Run every seed of `recipe`'s experiment, then write the report,
    metrics and exports."""
    experiment = recipe.experiment_module
    per_seed = {}
    for seed in config.seeds:
        run.seed = seed
        keras.utils.set_random_seed(seed)
        started = time.time()
        result = experiment.run_seed(config, run, seed)
        if seed != config.seeds[0]:
            result.model = None  # only the first seed's model ships
        per_seed[seed] = result
        run.log(f"seed {seed}: done in {time.time() - started:.0f} s")
    report = getattr(experiment, "report", None)
    outcome = report(config, run, per_seed) if report else Outcome()
    run.finish(recipe, per_seed, outcome)


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


class EpochTestMetrics(keras.callbacks.Callback):
    """Adds the model's compiled metrics on `data` to each epoch's logs as
    `test_<name>` (so CSVLogger, TensorBoard and the progress line show
    them under their true name; Keras' `validation_data` would call them
    `val_<name>`)."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch, logs=None):
        scores = self.model.evaluate(self.data, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"test_{name}": value for name, value in scores.items()})


class HistoryLogger(keras.callbacks.CSVLogger):
    """`CSVLogger` with exactly the columns the epochs log: Keras' own adds
    a `val_<name>` column of NA for every metric when a fit has no
    validation data, which reads as if something had been validated."""

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted((logs or {}).keys())
        super().on_epoch_end(epoch, logs)


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
            held = _held_run(path)
            if overwrite:
                if held:
                    print(f"--overwrite: deleting {held} in {path}", flush=True)
                shutil.rmtree(path)
            elif (path / "metrics.json").exists():
                raise RunDirError(
                    f"{path} holds {held}; pass --overwrite to replace it "
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

    def fit(self, model, train_data, *, stage, epochs, test_data=None, callbacks=(),
            divergence_hint="Lower the learning rate, or check the data for NaN."):
        """`model.fit` as a resumable stage of the run.

        A stage that finished in an earlier invocation is not trained again:
        its weights are loaded from `checkpoints/`. An interrupted stage
        resumes from its last finished epoch (`BackupAndRestore`). The model
        must be built and compiled. Every optimizer of the model (see
        `kerazoo.models.TrainingModel.optimizer_groups`) is built here, in
        the strategy's scope, so that its state is saved and restored too.
        A NaN or infinite loss stops training with `TrainingDiverged`.
        `test_data` is scored after every epoch as `test_<metric>` (the
        learning curve; nothing is selected by it, so it is not called
        validation).
        """
        checkpoint = self.checkpoint_path(stage)
        self._build_optimizers(model)
        if checkpoint.exists():
            model.load_weights(checkpoint)
            self.log(f"{stage}: finished earlier, weights loaded", console=False)
            return
        self.log(f"{stage}: training {results_lib.count(epochs, 'epoch')} ...")
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
            shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
            verbose=verbose,
            callbacks=[
                self.epoch_counter,
                StopOnNonFiniteLoss(stage, divergence_hint),
                *([EpochTestMetrics(test_data)] if test_data is not None else []),
                # Before HistoryLogger: it trims the history the logger appends to.
                PeriodicBackup(str(self.path / "backup" / stage), self.config.backup_seconds, history),
                HistoryLogger(str(history), append=True),
                keras.callbacks.TensorBoard(str(self.path / "tensorboard" / stage), write_graph=False),
                *callbacks,
            ],
        )
        with atomic_path(checkpoint) as tmp:
            model.save_weights(tmp)
        if (self.path / "backup").exists() and not any((self.path / "backup").iterdir()):
            (self.path / "backup").rmdir()
        self.log(f"{stage}: {results_lib.count(epochs, 'epoch')} in {time.time() - started:.0f} s")

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
        tables = [f"## Results ({label})", "", headline]
        effects = results_lib.effect_table(rows, recipe.columns, recipe.effects)
        if effects:
            tables += ["", f"## Effect of each method against its baseline (same seed, {label})", "", effects]
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
            formats = "model.keras" if self.config.exports == "keras" else "model.keras, SavedModel, ONNX"
            with self.timed(f"export ({formats})"):
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
        self.log("export: model.keras written", console=False)
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
        self.log("export: SavedModel model/ (signature 'serve') written", console=False)
        parity = export_onnx(
            model,
            self.path / "model.onnx",
            sample_images=result.sample_images,
            class_names=class_names,
            overwrite=True,
        )
        self.log(
            "export: model.onnx written (max |ONNX Runtime - Keras| "
            + ", ".join(f"{v:.1e} at batch {b}" for b, v in parity.items())
            + ")"
        )
        return {**description, "onnx_parity_max_abs_diff": {str(b): float(v) for b, v in parity.items()}}

    def discard_if_empty(self):
        """Remove a directory this invocation created before any training."""
        trained = (self.path / "checkpoints").exists() or (self.path / "backup").exists()
        if self.created and not trained:
            shutil.rmtree(self.path, ignore_errors=True)


def _held_run(path):
    """What a run directory holds, in words: "the finished 'lucir' run", ...; '' if not a run."""
    try:
        saved = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    state = "finished" if (path / "metrics.json").exists() else "unfinished"
    return f"the {state} '{saved.get('recipe')}' run"


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
