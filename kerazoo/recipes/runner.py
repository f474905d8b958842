"""What every recipe run shares: strategy -> run dir -> seeds -> fit -> report
-> export.

A recipe (`kerazoo.recipes.recipe.Recipe`) declares its config, methods
and tables; its experiment module says what one method does on one seed
(`run_method`, see `kerazoo.recipes.recipe`). Once `Recipe.main` has parsed
and validated the config, `run` here takes over. The runner owns the loop
over seeds and methods, seeding (`Run.reseed`), the per-run data and cache
(`Run.protocol`, `Run.cache`), the mean ± std tables
(`kerazoo.recipes.results`), the shipped model and the run directory:

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
import errno
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import kerazoo
from kerazoo._keras_internals import forget_restored_epoch, op_determinism, set_keras_seed
from kerazoo.atomic import atomic_path, write_text
from kerazoo.data import (
    DatasetNotFoundError,
    DataSizeError,
    EpochCounter,
    datasets,
    make_protocol,
    parse_protocol_name,
    pipeline,
)
from kerazoo.models.base import TrainingModel, dtype_policy_scope
from kerazoo.recipes import cluster
from kerazoo.recipes import results as results_lib
from kerazoo.recipes.callbacks import (
    EpochProgress,
    EpochTensorBoard,
    EpochTestMetrics,
    HistoryLogger,
    PeriodicBackup,
    StopOnDivergence,
    recorded_sha256,
    weights_that_fit,
)
from kerazoo.recipes.config import ConfigError, to_dict
from kerazoo.recipes.exports import export_model
from kerazoo.recipes.jobs import JobBoard, exit_with_parent, start_workers, stop_workers_on_error
from kerazoo.recipes.model_pool import ModelPool
from kerazoo.recipes.recipe import STRATEGIES, Outcome, RunDirError, TrainingDiverged
from kerazoo.recipes.run_directory import RunDirectory
from kerazoo.recipes.step_loop import StepLoop
from kerazoo.zoo import sha256

# `precision` -> the Keras dtype policy models are built under. "mixed" is
# bfloat16: float32's exponent range, no loss scaling; float16 scales each
# optimizer's loss (`TrainingModel.loss_scaled`), for GPUs without bfloat16.
PRECISION_POLICIES = {"float32": "float32", "mixed": "mixed_bfloat16", "mixed_float16": "mixed_float16"}


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
    (missing dataset, unusable run dir, a full disk or a folder it may not
    write), 1 when training diverges, 130 on Ctrl-C (SIGINT) with the way
    to resume instead of a traceback.

    With `--jobs N` this process starts N - 1 workers (`--worker`: the same
    command on the same run directory, see `kerazoo.recipes.jobs`) and all
    of them take (seed, method) pairs until none is left.

    Under `--strategy multiworker` every worker of the cluster runs this;
    only the chief writes `--out` (see `kerazoo.recipes.cluster`)."""
    run = None
    try:
        strategy = make_strategy(args.strategy)
        cluster.check_same_config(strategy, recipe.name, config)
        args.jobs = number_of_jobs(args.jobs, strategy, recipe, config)
        check_batch_sizes(config, strategy)
        if args.worker:
            exit_with_parent()
            if not Path(args.out).exists():
                return  # the parent refused the run and removed its directory
            run = Run.join(recipe.name, config, strategy, args.out, args.verbose)
        else:
            if args.overwrite:
                # Before the run directory: it would have deleted the run it
                # replaces for a run that cannot start. (Only then: a test's
                # tfds mock data load without being prepared.)
                base, _, _ = parse_protocol_name(config.dataset)
                datasets.require(base, config.data_dir or None, config.download)
            refused = None
            try:
                run = Run.open(
                    recipe.name,
                    config,
                    strategy,
                    out=cluster.run_directory(recipe.name, args.out, strategy),
                    overwrite=args.overwrite,
                    command=command,
                    strategy_flag=args.strategy,
                    verbose=args.verbose,
                )
            except (ConfigError, RunDirError) as error:
                refused = error
            # In a cluster every worker stops when one refuses its directory
            # (the others would wait for it in their first collective op).
            cluster.check_every_worker_opened(strategy, refused)
        with op_determinism(config.deterministic):
            execute(recipe, config, run, args)
        # The other workers keep their scratch runs until the chief has
        # written its last file: a chief that dies in its report or exports
        # resumes with their runs, which a restart finds again.
        try:
            cluster.wait_for_every_worker(strategy)
        except (tf.errors.UnavailableError, tf.errors.InternalError, tf.errors.CancelledError):
            if not cluster.is_chief(strategy):
                # Unfinished until the chief has finished: a restart resumes it.
                (run.path / "metrics.json").unlink(missing_ok=True)
                raise RunDirError(
                    f"the chief stopped before it finished writing the run; this worker's run in "
                    f"{run.path} is kept: start every worker again with the same command to resume."
                ) from None
            # The chief's run is complete; a worker that died after training
            # leaves only its own scratch run behind.
        if not cluster.is_chief(strategy):
            shutil.rmtree(run.path)
            print(f"{cluster.describe(strategy)}: the chief's --out holds this run; {run.path} removed")
    except (ConfigError, DatasetNotFoundError, DataSizeError, RunDirError) as e:
        if run is not None and not args.worker:
            run.directory.discard_if_empty()
        _log_end(run, f"error: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as e:
        _log_end(run, f"error: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno not in WRITE_ERRORS:
            raise
        # h5py's strerror spans lines (time, file descriptor, buffer, ...).
        reason = e.strerror.splitlines()[0] if e.strerror else errno.errorcode.get(e.errno, "")
        message = f"cannot write {e.filename or args.out} ({reason}); "
        if run is None:
            message += "choose an --out you may write, on a disk with free space."
        else:
            message += (
                f"free space (or restore write access), then re-run the same command: the run in "
                f"{run.path} resumes from what was saved."
            )
        with contextlib.suppress(OSError):  # run.log may be on that disk
            _log_end(run, f"error: {message}")
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if run is None:
            raise  # nothing to resume yet: `Recipe.main` says so
        # A terminal's Ctrl-C reaches the workers of `--jobs` too: the
        # parent speaks for them. What was saved (finished stages, the last
        # backup) stays, as after a kill.
        if not args.worker:
            again = "the same command" if args.out else f"the same command with --out {run.path}"
            _log_end(run, "interrupted")
            print(f"\ninterrupted: re-run {again} to resume the run in {run.path}.", file=sys.stderr)
        sys.exit(130)
    finally:
        # Now, not when the object goes: a caller that catches SystemExit
        # keeps this frame (and the run) alive in its traceback.
        if run is not None:
            run.directory.release()


# Writing the run failed for a reason the user can fix (not a bug to trace).
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def _log_end(run, line):
    """Put how the run ended in run.log too: a batch job's console is often lost."""
    if run is not None and run.path.exists():
        run.log(line, console=False)


def execute(recipe, config, run, args=None):
    """Run every method of `recipe` on every seed, then write the report,
    metrics and the shipped model.

    The loop is the runner's: the experiment's data are prepared once per
    run, every (seed, method) pair starts from the seed's random state (so
    each method sees the same initial weights and batches), and only the
    first seed's model of the shipping method is exported (its pair runs
    last, `sequential_order`; first in a `--jobs` run, `claim_order`). With
    `args.jobs` > 1 the pairs are shared out among processes (the shipped
    one stays here); a worker (`args.worker`) only takes pairs. Models are
    built under the dtype policy `config.precision` names.
    """
    # Restored after the run, for code that runs a recipe in-process and
    # then trains something else.
    with dtype_policy_scope(PRECISION_POLICIES[config.precision]):
        _execute(recipe, config, run, args)


def _execute(recipe, config, run, args):
    experiment = recipe.experiment_module
    jobs, worker = (args.jobs, args.worker) if args is not None else (1, False)
    pairs = [(seed, method) for seed in config.seeds for method in recipe.methods_of(config)]
    shipped = (config.seeds[0], recipe.shipped)
    run.seed = config.seeds[0]
    run.reseed()
    prepare = getattr(experiment, "prepare", None)
    if prepare:
        run.data = prepare(config, run)
    results = {}
    if jobs == 1 and not worker:
        # An interrupted --jobs run's claims are void here too (its finished
        # stages are in checkpoints/ and load again).
        JobBoard(run.path / "jobs").remove()
        order = sequential_order(pairs, shipped)
        last = {pair[0]: pair for pair in order}  # each seed's last pair
        seconds = dict.fromkeys(config.seeds, 0.0)
        for pair in order:
            started = time.time()
            results[pair] = _run_pair(experiment, config, run, pair, keep_model=pair == shipped)
            seconds[pair[0]] += time.time() - started
            if pair == last[pair[0]]:
                run.log(f"seed {pair[0]}: done in {seconds[pair[0]]:.0f} s")
    else:
        run.board = JobBoard(run.path / "jobs")
        workers = []
        if not worker:
            run.board.reset()
            workers = start_workers(recipe.name, args, run.path, jobs - 1)
            run.log(f"--jobs {jobs}: {len(workers)} more process(es) take (seed, method) pairs")
        with stop_workers_on_error(workers):
            for pair in claim_order(pairs, shipped):
                if run.board.claim(pair):
                    results[pair] = _run_pair(experiment, config, run, pair, keep_model=pair == shipped)
                    run.board.post(pair, results[pair])
            if worker:
                return
            for worker_process in workers:
                if worker_process.wait() != 0:
                    run.log(f"a worker exited with code {worker_process.returncode}; its pairs run here")
        for pair in pairs:
            if pair not in results:
                results[pair] = run.board.result(pair) or _run_pair(experiment, config, run, pair, False)
        run.board.remove()
    per_seed = {seed: {m: results[(s, m)] for s, m in pairs if s == seed} for seed in config.seeds}
    report = getattr(experiment, "report", None)
    outcome = report(config, run, per_seed) if report else Outcome()
    run.finish(recipe, per_seed, outcome)


def sequential_order(pairs, shipped):
    """The order in which a one-process run trains the (seed, method)
    `pairs`: as given, but the shipped pair (when it runs) last. Its stages
    can then train the models the other seeds' stages kept (`Run.reuse`),
    and nothing runs after it to overwrite them before the export.

    Example:

    ```python
    from kerazoo.recipes.runner import sequential_order

    pairs = [(s, m) for s in (0, 1) for m in ("ce", "bnm")]
    print(sequential_order(pairs, (0, "bnm")))
    # [(0, 'ce'), (1, 'ce'), (1, 'bnm'), (0, 'bnm')]
    ```
    """
    return [p for p in pairs if p != shipped] + [p for p in pairs if p == shipped]


def claim_order(pairs, shipped):
    """The order in which each process of a `--jobs` run tries to claim the
    (seed, method) `pairs`: the shipped pair first (the process that
    exports keeps it; only when the run's methods include it), then the
    other methods, then the shipped method's other seeds. A shipped
    method's own shared stage (GIT's translator) is then trained by the
    first process while the others work through the other methods, instead
    of claiming a pair that waits on its lock.

    Example:

    ```python
    from kerazoo.recipes.runner import claim_order

    pairs = [(s, m) for s in (0, 1) for m in ("ce_drs", "ce_drs_git")]
    print(claim_order(pairs, (0, "ce_drs_git")))
    # [(0, 'ce_drs_git'), (0, 'ce_drs'), (1, 'ce_drs'), (1, 'ce_drs_git')]
    ```
    """
    rest = [p for p in pairs if p != shipped]
    first = [p for p in pairs if p == shipped]  # as sequential_order: only when it runs
    return [*first, *[p for p in rest if p[1] != shipped[1]], *[p for p in rest if p[1] == shipped[1]]]


def _run_pair(experiment, config, run, pair, keep_model):
    """One method on one seed, from the seed's random state; in the
    strategy's scope, so every model, optimizer and translator it builds is
    distributed as the strategy says."""
    run.seed, method = pair
    run.reseed()
    started = time.time()
    run.exporting = keep_model
    try:
        with run.strategy.scope():
            result = experiment.run_method(config, run, method, run.data)
    finally:
        run.exporting = False
    if not keep_model:
        result.model = None
    run.log(f"seed{run.seed}-{method}: done in {time.time() - started:.0f} s", console=False)
    return result


def number_of_jobs(jobs, strategy, recipe, config):
    """The processes `--jobs` asks for: `auto` is 2 on a machine with 2 or
    more cores, no GPU and a single-replica strategy (a small model keeps
    about one core busy), else 1; never more than there are (seed, method)
    pairs."""
    pairs = len(config.seeds) * len(recipe.methods_of(config))
    devices = strategy.num_replicas_in_sync > 1 or tf.config.list_logical_devices("GPU")
    if jobs == "auto":
        jobs = 1 if devices else min(2, os.cpu_count() or 1)
    elif jobs > 1 and devices:
        raise ConfigError(
            f"--jobs {jobs} runs processes side by side on the CPU cores; with GPUs or a "
            "multi-replica strategy every process would take every device. Use --jobs 1."
        )
    return max(1, min(jobs, pairs))


def check_batch_sizes(config, strategy):
    """Refuse a global batch size (a config key ending in `batch_size`)
    that the strategy's replicas cannot share equally: each replica's loss
    terms are means over its own share, which average to the global batch's
    only for equal shares, and a replica with no image fails (GIT's
    translator at batch 1 on two workers stopped in a padding op)."""
    replicas = strategy.num_replicas_in_sync
    for key, value in to_dict(config).items():
        if key.endswith("batch_size") and isinstance(value, int) and value % replicas:
            raise ConfigError(
                f"Config key '{key}' = {value} does not split into {replicas} equal shares, one "
                f"per replica of this strategy; use a multiple of {replicas}, e.g. "
                f"--set {key}={-(-value // replicas) * replicas}."
            )


def training_stream(train_data, at_most):
    """What `Run.fit` hands `model.fit`: (the dataset, steps per epoch or
    None, steps per call of the compiled step, whether the dataset is one
    endless stream of every epoch). The stream
    (`kerazoo.data.pipeline.all_epochs`) where `train_data` has one and a
    known number of steps per epoch, read by a `StepLoop` whose calls stop
    at each epoch's end; else `train_data` itself."""
    steps = int(train_data.cardinality())
    stream = pipeline.all_epochs(train_data)
    if stream is None or steps <= 0:
        # Keras opens an iterator per epoch of the finite dataset, and
        # knowing the steps, one only (it opens a spare at each epoch end;
        # iterators start lazily, so the spare reads the next epoch).
        return train_data, (steps if steps > 0 else None), at_most, False
    return stream, steps, min(steps, at_most), True


def make_strategy(name):
    """`auto`: MirroredStrategy over the visible GPUs, else the default strategy."""
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        tf_config = _check_tf_config(os.environ.get("TF_CONFIG"))
        if tf_config:
            # TensorFlow waits here, silently, until every worker has started.
            workers = sum(len(addresses) for addresses in tf_config["cluster"].values())
            print(
                f"multiworker: waiting for the cluster's {results_lib.count(workers, 'worker')} (TF_CONFIG) ...",
                flush=True,
            )
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as error:
            if not tf_config or "gRPC server" not in str(error):
                raise
            this = tf_config["task"]
            address = tf_config["cluster"][this["type"]][int(this["index"])]
            raise ConfigError(
                f"this worker ({this['type']} {this['index']} of TF_CONFIG) cannot listen on {address}: "
                "is another process using the port? Give it a free port in every worker's TF_CONFIG."
            ) from None
        # TensorFlow's preemption notifier takes SIGTERM over and only logs
        # it; kerazoo does not use it, and a scheduler's SIGTERM (or
        # `timeout`) must end the process, as a kill does.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return strategy
    if name == "default":
        return tf.distribute.get_strategy()
    raise ConfigError(f"Unknown strategy '{name}'; choose one of {STRATEGIES}.")


def _check_tf_config(text):
    """A clear error for a TF_CONFIG that TensorFlow would answer with a
    traceback: not JSON, a task list that is no list, or a task that is not
    in its cluster. Returns it parsed (None without TF_CONFIG)."""
    if not text:
        return None  # TensorFlow's own message: one process, no cluster
    try:
        tf_config = json.loads(text)
        tasks = tf_config["cluster"][tf_config["task"]["type"]]
        index = int(tf_config["task"]["index"])
        for kind, addresses in tf_config["cluster"].items():
            if not isinstance(addresses, list):
                raise TypeError(f"the cluster's {kind!r} tasks are {addresses!r}, not a list")
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            f"TF_CONFIG is not a cluster description TensorFlow can read ({type(error).__name__}: {error}); "
            'it must be JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}} (docs/recipes.md, "Several machines").'
        ) from None
    if not 0 <= index < len(tasks):
        raise ConfigError(
            f"TF_CONFIG's task index {index} is not one of its cluster's {len(tasks)} "
            f"'{tf_config['task']['type']}' tasks (0 to {len(tasks) - 1}); give each process its own index."
        )
    return tf_config


class Run:
    """The services a recipe's experiment uses while it runs: the run
    directory and its log (`RunDirectory`), the strategy, seeding, the data
    and cache shared by seeds and methods, resumable training stages, and
    the shipped model's export."""

    def __init__(self, directory, recipe, config, strategy):
        self.directory = directory
        self.path = directory.path
        self.recipe = recipe
        self.config = config
        self.strategy = strategy
        self.epoch_counter = EpochCounter()
        self.started = time.time()
        self.data_notes = []
        self.seed = None  # the seed being run (set by `execute`)
        self.data = None  # what the experiment's `prepare` returned (set by `execute`)
        self.board = None  # the `JobBoard` of a run with --jobs > 1
        self.model_pool = ModelPool()  # the models `reuse` keeps
        self.exporting = False  # a pair whose model is exported is running
        self._cache = {}
        tf.random.set_seed(config.seed)

    @classmethod
    def open(cls, recipe, config, strategy, **options):
        """A `Run` in the directory `RunDirectory.open(recipe, config, strategy, **options)` gives."""
        return cls(RunDirectory.open(recipe, config, strategy, **options), recipe, config, strategy)

    @classmethod
    def join(cls, recipe, config, strategy, out, verbose=False):
        """A worker's `Run` (`--worker`): the run directory its parent opened."""
        return cls(RunDirectory.join(recipe, config, out, verbose), recipe, config, strategy)

    @property
    def command(self):
        """The command line that started this run (config.json's `command`)."""
        return self.directory.saved["command"]

    def log(self, message, console=True):
        """See `RunDirectory.log`."""
        self.directory.log(message, console)

    def timed(self, what):
        """See `RunDirectory.timed`."""
        return self.directory.timed(what)

    def reseed(self, seed=None):
        """Set every random state kerazoo draws from (Python, NumPy, Keras)
        from `seed` (default: the seed being run): where each method and
        each stage that must not depend on what ran before it starts.

        `keras.utils.set_random_seed` would also set TensorFlow's global
        seed, and that clears TensorFlow's kernel cache: every function
        already traced is then optimized again by Grappler at its next call
        (0.2–0.5 s for each stage that trains a kept model, `reuse`).
        kerazoo's TensorFlow random ops are stateless, keyed by Keras' seed
        generators and the data's (seed, epoch) keys, and read no global
        seed; it is set once, from the run's seed, when the `Run` is made.
        """
        seed = self.seed if seed is None else seed
        random.seed(seed)
        np.random.seed(seed)
        set_keras_seed(seed)

    def cache(self, key, make):
        """`make()` the first time `key` is asked for in this run, then the
        same object: data and translators shared by seeds and methods."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def protocol(self, name=None, **overrides):
        """The data protocol `name` (default the config's `dataset`; see
        `kerazoo.data.make_protocol`), built once per run and set of overrides."""
        c = self.config
        kwargs = dict(
            data_dir=c.data_dir or None,
            seed=c.seed,
            image_size=c.image_size or None,
            download=c.download,
        )
        kwargs.update(overrides)
        name = name or c.dataset
        return self.cache(
            ("protocol", name, json.dumps(kwargs, sort_keys=True, default=str)),
            lambda: self._make_protocol(name, kwargs),
        )

    def _make_protocol(self, name, kwargs):
        protocol = make_protocol(name, **kwargs)
        if self.seed is not None:
            # Preparing a dataset the first time creates TensorFlow ops,
            # which moves the op-seed counter: without re-seeding, the
            # weights would depend on whether the data was cached.
            self.reseed()
        self.data_notes = protocol.notes
        self.log("data: " + "; ".join(protocol.notes), console=False)
        return protocol

    def reuse(self, model, key):
        """The model to train in place of `model` (built and compiled): one
        kept from an earlier stage of this process under `key`, set to
        `model`'s initial state, or `model` itself (then kept). Its training
        step is then traced once for all the stages of a key instead of once
        each (`kerazoo.recipes.model_pool.ModelPool`, which says what a key
        promises). While a pair runs whose model is exported, what it trains
        leaves the pool: no later stage may overwrite it.
        """
        self._build_optimizers(model)  # their state is copied too
        kept = self.model_pool.take(key, model, keep=not self.exporting)
        if kept is not model:
            self.log(
                f"seed{self.seed}: the next stage trains a kept model (its step traced once)", console=False
            )
        return kept

    def checkpoint_path(self, stage):
        return self.path / "checkpoints" / f"{stage}.weights.h5"

    def fit(
        self,
        model,
        train_data,
        *,
        stage,
        epochs,
        test_data=None,
        callbacks=(),
        divergence_hint="Lower the learning rate, or check the data for NaN.",
    ):
        """`model.fit` as a resumable stage of the run.

        A stage that finished earlier (in an earlier invocation, or in another
        process of a `--jobs` run) is not trained again: its weights are
        loaded from `checkpoints/`. An interrupted stage
        resumes from its last finished epoch (`BackupAndRestore`). The model
        must be built and compiled. Every optimizer of the model (see
        `kerazoo.models.TrainingModel.optimizer_groups`) is built here, in
        the strategy's scope, so that its state is saved and restored too.
        A NaN or infinite loss (or other logged number) stops training with
        `TrainingDiverged`.
        `test_data` is scored after every epoch as `test_<metric>` (the
        learning curve; nothing is selected by it, so it is not called
        validation).
        """
        lock = self.board.stage_lock(stage) if self.board else contextlib.nullcontext()
        with lock:
            self._fit(model, train_data, stage, epochs, test_data, callbacks, divergence_hint)

    def _fit(self, model, train_data, stage, epochs, test_data, callbacks, divergence_hint):
        checkpoint = self.checkpoint_path(stage)
        self._build_optimizers(model)
        cluster.check_every_worker_has(
            self.strategy,
            checkpoint.exists(),
            f"{stage} finished on some workers and not on others ({checkpoint} "
            f"{'exists' if checkpoint.exists() else 'is missing'} here)",
        )
        if checkpoint.exists():
            with weights_that_fit(checkpoint):
                model.load_weights(checkpoint)
            self.log(f"{stage}: finished earlier, weights loaded", console=False)
            return
        self.log(f"{stage}: training {results_lib.count(epochs, 'epoch')} ...")
        (self.path / "logs").mkdir(exist_ok=True)
        history = self.path / "logs" / f"{stage}.csv"
        started = time.time()
        stream, steps, per_call, endless = training_stream(train_data, self.config.steps_per_execution)
        if cluster.task(self.strategy) and not endless:
            # Keras' loop over several steps per call fails across workers (its
            # end-of-data check inside the loop: "You must feed a value for
            # placeholder tensor"); a StepLoop has no such check.
            per_call = 1
        if endless:
            if not isinstance(model.train_function, StepLoop):
                model.train_function = StepLoop(model)
            model.train_function.start(steps, per_call)
        elif model.steps_per_execution != per_call or isinstance(model.train_function, StepLoop):
            model.train_function = None  # Keras' own, traced with its loop over steps
        model.steps_per_execution = per_call  # how Keras' epoch counts the calls
        self.log(f"{stage}: {steps or 'unknown'} steps an epoch, at most {per_call} a call", console=False)
        if sys.stdout.isatty() and self.board is None:
            verbose = 1
        else:
            verbose = 2 if self.directory.verbose else 0
        forget_restored_epoch(model)  # a kept model's last stage may have resumed
        model.fit(
            stream,
            epochs=epochs,
            steps_per_epoch=steps,
            shuffle=False,  # the dataset shuffles itself, per (seed, epoch)
            verbose=verbose,
            callbacks=[
                self.epoch_counter,
                StopOnDivergence(stage, divergence_hint),
                # Keras' progress bar already shows it.
                *([EpochProgress(stage, self.log)] if verbose != 1 else []),
                *([EpochTestMetrics(test_data)] if test_data is not None else []),
                # Before the backup: what they keep of an epoch (AdCo's probe
                # points) exists once that epoch is backed up and not redone.
                *callbacks,
                # Before HistoryLogger: it trims the history the logger appends to.
                PeriodicBackup(str(self.path / "backup" / stage), self._backup_seconds(), history, self.log),
                HistoryLogger(str(history), append=True),
                EpochTensorBoard(str(self.path / "tensorboard" / stage), write_graph=False),
            ],
        )
        with atomic_path(checkpoint) as tmp:
            model.save_weights(tmp)
        # Read back at resume (weights_that_fit); a kill before it leaves a checkpoint unchecked.
        write_text(recorded_sha256(checkpoint), sha256(checkpoint))
        if (self.path / "backup").exists() and not any((self.path / "backup").iterdir()):
            (self.path / "backup").rmdir()
        self.log(f"{stage}: {results_lib.count(epochs, 'epoch')} in {time.time() - started:.0f} s")

    def _backup_seconds(self):
        # Each worker of a cluster keeps its own backup, and all must restore
        # the same epoch: a clock per worker would save at different epochs.
        return 0 if cluster.task(self.strategy) else self.config.backup_seconds

    def _build_optimizers(self, model):
        # Lets load_weights and BackupAndRestore restore every optimizer's
        # state (Keras otherwise skips an unbuilt optimizer with a warning
        # and its state silently resets). In scope: a multi-replica strategy
        # mirrors the slot variables, and a second optimizer built lazily
        # inside the step function fails there (keras#23085).
        with self.strategy.scope():
            if isinstance(model, TrainingModel):
                model.build_optimizers()
            elif not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)

    def finish(self, recipe, per_seed, outcome):
        """Write the exports, report.md and metrics.json; print the tables.

        metrics.json has the same top-level keys for every recipe: recipe,
        seeds, replicas, strategy, seconds_this_invocation, methods (id ->
        label), results (row id -> metric -> value per seed), details
        (seed -> method -> extras), report (the recipe's own numbers) and
        model (the shipped model's description, when one was exported).
        """
        seconds = time.time() - self.started
        rows = {
            seed: {k: v for r in results.values() for k, v in r.rows.items()}
            for seed, results in per_seed.items()
        }
        seeds = list(per_seed)
        label = results_lib.spread_label(len(seeds))
        labels = recipe.labels
        headline = results_lib.headline_table(rows, recipe.columns, labels)
        tables = [f"## Results ({label})", "", headline]
        effects = results_lib.effect_table(rows, recipe.columns, recipe.effects, labels)
        if effects:
            tables += ["", f"## Effect of each method against its baseline (same seed, {label})", "", effects]
        saved = self.directory.saved
        per_row = results_lib.per_method(rows)
        metrics = {
            "recipe": self.recipe,
            "seeds": seeds,
            "replicas": self.strategy.num_replicas_in_sync,
            "strategy": saved.get("strategy"),
            "seconds_this_invocation": round(seconds, 1),
            "methods": {k: labels[k] for k in per_row},
            "results": per_row,
            "details": {
                str(seed): {m: r.details for m, r in results.items() if r.details}
                for seed, results in per_seed.items()
            },
            "report": outcome.metrics,
            "model": None,
        }
        shipped = per_seed[seeds[0]].get(recipe.shipped)
        if self.config.exports != "none" and shipped is not None and shipped.model is not None:
            formats = "model.keras" if self.config.exports == "keras" else "model.keras, SavedModel, ONNX"
            with self.timed(f"export ({formats})"):
                metrics["model"] = export_model(
                    self.path,
                    shipped,
                    self.config,
                    self.data_notes,
                    self.log,
                    shipped.model_metrics or shipped.rows[recipe.shipped],
                )
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
