"""A recipe's declaration and its command line, without TensorFlow.

A recipe is a package `kerazoo.recipes.<name>`: its `__init__` declares the
config dataclass (extending `RunConfig`), its methods (`Method`: a label,
the baselines its effect is measured against, whether it ships), the
headline table's columns and `RECIPE = Recipe(...)`. Its `experiment`
module says what one method does on one seed, and is imported only when a
run starts:

    prepare(config, run) -> data                  optional; once per run
    run_method(config, run, method, data) -> results.MethodResult
    report(config, run, per_seed) -> Outcome      optional; per_seed: {seed: {method: MethodResult}}

The runner (`kerazoo.recipes.runner`) owns the rest: the loop over seeds and
methods, seeding, the data cache, the strategy, resumable stages, the tables
(results keyed by method id, labels only in tables and plots) and which model
ships. So
`python -m kerazoo.recipes.<name> --help`, config errors and the recipe
listing answer in a fraction of a second; `kerazoo.recipes.runner` (the run
directory, fitting, exports) does the rest.
"""

import argparse
import dataclasses
import importlib
import os
import shlex
import sys
import typing

from kerazoo.recipes.config import ConfigError, describe, option, resolve

STRATEGIES = ("auto", "mirrored", "multiworker", "default")

# `kerazoo.backbones.available()`, spelled out so that a config can offer
# the choices without importing Keras (tests/recipes/test_recipe.py checks
# that the two agree).
BACKBONES = ("convnet", "convnet5", "ldam_resnet32", "resnet18", "resnet32", "resnet50")


def _jobs(text):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number >= 1, got {text!r}")
    return value


def backbone_option(help="feature extractor"):
    """The `backbone` field: a `kerazoo.backbones` name, `convnet` by default."""
    return option("convnet", help, choices=list(BACKBONES))


def augment_option(default="none", help=None, choices=("none", "crop_flip")):
    """The `augment` field: a `kerazoo.data.augment` policy name."""
    help = help or "training augmentation: none, or crop_flip (pad-4 random crop and horizontal flip)"
    return option(default, help, choices=list(choices))


def batch_scope_option():
    """The `batch_scope` field of a recipe with a batch-level term (BNM,
    BatchFormer, AdCo's keys): one name and one default across them."""
    return option(
        "global",
        "under several replicas, a batch-level term sees the global batch (as one device would) "
        "or each replica's own",
        choices=["global", "replica"],
    )


def seeds_option(default=3):
    """The `num_seeds` field of a recipe comparing methods (3 seeds by default)."""
    return option(default, "seeds seed, seed+1, ...; each repeats every method", min=1)


def methods_option(methods, help="methods run on identical data and seeds", default=None):
    """The `methods` field: ids of `methods` (default all, in their order)."""
    return option(list(default or methods), help, choices=list(methods))


@dataclasses.dataclass
class RunConfig:
    """Fields every recipe has."""

    dataset: str = option(
        "digits",
        "protocol: a tfds dataset name, or imagefolder / arrays for your own data in data_dir "
        "(docs/own_data.md), plus modifiers -rot/-bg/-dil (one nuisance per image) and -lt "
        "(Zipf long tail) or -lt100 (exponential, rho 100), e.g. digits-rot-lt, cifar100 or imagefolder-lt",
    )
    data_dir: str = option(
        "",
        "tfds data directory ('' = $KERAZOO_DATA_DIR or ~/tensorflow_datasets); "
        "dataset=imagefolder: your image folder; dataset=arrays: your .npz file",
    )
    download: bool = option(False, "let tfds download a missing dataset (needs internet)")
    image_size: int = option(0, "resize images to this square size (0 = keep the dataset's size)", min=0)
    seed: int = option(0, "first seed for weights, data order, nuisances and subsets", min=0)
    num_seeds: int = option(1, "seeds seed, seed+1, ...; tables give mean ± std over them", min=1)
    deterministic: bool = option(
        True, "enable TensorFlow op determinism (same seed, same numbers on the same host)"
    )
    exports: str = option(
        "all",
        "what the shipped model is written as: all (model.keras, SavedModel, ONNX), keras "
        "(model.keras only: sweeps and smoke runs; the zoo publishes only 'all' runs) or none",
        choices=["all", "keras", "none"],
    )
    precision: str = option(
        "float32",
        "float32, or mixed: layers compute in bfloat16 on float32 weights (Keras' mixed_bfloat16 "
        "policy; losses and batch-level terms such as BNM's SVD stay float32, and the exports "
        "compute in float32), or mixed_float16: in float16 with dynamic loss scaling (Keras' "
        "LossScaleOptimizer on every optimizer), for GPUs without fast bfloat16 such as V100 and T4",
        choices=["float32", "mixed", "mixed_float16"],
    )
    steps_per_execution: int = option(
        32,
        "most training steps per call of the compiled step (Keras' compile option; an epoch's last "
        "call takes the steps left): fewer Python round trips, the same arithmetic; "
        "1 under --strategy multiworker for a dataset of unknown length, where Keras' own loop "
        "over steps fails",
        min=1,
    )
    backup_seconds: float = option(
        30.0,
        "back up an unfinished stage at the first epoch end after this many seconds "
        "(0 = every epoch; always every epoch under --strategy multiworker, so that every "
        "worker holds the same one); a killed stage resumes from its last backup",
        min=0.0,
    )

    # Whether the recipe reads the datasets too large for memory (see
    # kerazoo.data.streamed); a recipe that does sets this True.
    reads_streamed_datasets: typing.ClassVar[bool] = False

    def validate(self):
        """Cross-field checks; recipes extend this (call super().validate()).

        Validation runs before the run directory exists and, where it can,
        before TensorFlow's import (about 5 s), so that a config error is
        answered at once: import the data layer (and so TensorFlow) only
        for checks that need it.
        """
        methods = getattr(self, "methods", None)
        if methods is not None and not methods:
            choices = next(f for f in dataclasses.fields(self) if f.name == "methods").metadata["choices"]
            raise ConfigError(f"Config key 'methods' is empty; choose from {', '.join(choices)}.")
        from kerazoo.protocol_names import is_streamed, is_user_source, parse_protocol_name

        try:
            base, _, _ = parse_protocol_name(self.dataset)
        except ValueError as error:
            raise ConfigError(f"Config key 'dataset': {error}") from None
        if self.dataset != self.dataset.lower():
            # tfds would read 'Digits' as digits, but the zoo's records and
            # kerazoo's own names (imagefolder, the streamed ones) go by case.
            raise ConfigError(
                f"Config key 'dataset': names are lower case; use {self.dataset.lower()!r}, not {self.dataset!r}."
            )
        if is_user_source(base):
            from kerazoo.data import DatasetNotFoundError
            from kerazoo.data.user_sources import check_location

            try:
                check_location(base, self.data_dir)
            except DatasetNotFoundError as error:
                raise ConfigError(f"Config key 'data_dir': {error}") from None
        if is_streamed(self.dataset) and not self.reads_streamed_datasets:
            raise ConfigError(
                f"Config key 'dataset': '{self.dataset}' is too large for memory and is read as a "
                "stream, which this recipe does not support; the batchformer recipe does "
                "(recipes/imagenet_lt_batchformer.toml), and the adco recipe reads it into memory "
                "(recipes/imagenet_adco.toml)."
            )
        if is_streamed(self.dataset) and not self.image_size:
            raise ConfigError(
                f"Config key 'image_size': '{self.dataset}' is streamed and its photos have no "
                "common size; set image_size (224 for the paper protocols)."
            )

    @property
    def seeds(self):
        return [self.seed + i for i in range(self.num_seeds)]

    @property
    def evaluated_on(self):
        """What the shipped model's metrics are measured on, in words, for
        its record (`python -m kerazoo.zoo list` prints it): by default
        `protocol_names.evaluation_split`; a recipe whose metrics come from
        elsewhere (BNM's target domain) says so."""
        from kerazoo.protocol_names import evaluation_split

        return evaluation_split(self.dataset)


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


@dataclasses.dataclass(frozen=True)
class Method:
    """One method a recipe compares, declared as data (its id is its key in
    `Recipe.methods` and in the config's `methods`).

    Args:
        label: its name in tables and plots; results are keyed by the id.
        baselines: ids of the methods its same-seed effect is measured against.
        ships: whether its model (the first seed's) is the run's exported
            model; exactly one method of a recipe ships.
        rows: further rows it reports besides its own, row id -> label
            (LUCIR's NME classifier: `{"lucir_nme": "LUCIR-NME"}`).

    Example:

    ```python
    METHODS = {"ce_drs": Method("CE + DRS"),
               "ce_drs_git": Method("CE + DRS + GIT", baselines=("ce_drs",), ships=True)}
    ```
    """

    label: str
    baselines: tuple = ()
    ships: bool = False
    rows: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Recipe:
    """A runnable recipe: its config, its methods, its tables and where its
    experiment is.

    Args:
        name: the package name under `kerazoo.recipes`.
        config: the config dataclass (extends `RunConfig`); its `methods`
            field, if any, lists method ids (default: every method).
        methods: method id -> `Method`, in table order.
        columns: the headline table's `results.Column`s.
        description: the package docstring, for `--help`.
        experiment: the module defining `run_method` (and optionally
            `prepare` and `report`); default `kerazoo.recipes.<name>.experiment`.

    Example:

    ```python
    RECIPE = Recipe("baseline", BaselineConfig, {"erm": Method("ERM baseline", ships=True)},
                    COLUMNS, __doc__)
    # kerazoo/recipes/baseline/__main__.py:
    RECIPE.main()
    ```
    """

    name: str
    config: type
    methods: dict
    columns: list
    description: str = ""
    experiment: str = ""

    def __post_init__(self):
        shipping = [i for i, m in self.methods.items() if m.ships]
        if len(shipping) != 1:
            raise ValueError(f"Recipe {self.name!r}: exactly one method ships, not {shipping}.")

    @property
    def shipped(self):
        """The id of the method whose model the run exports."""
        return next(i for i, m in self.methods.items() if m.ships)

    @property
    def labels(self):
        """Row id -> its name in tables: every method's and its extra rows'."""
        return {k: v for i, m in self.methods.items() for k, v in {i: m.label, **m.rows}.items()}

    @property
    def effects(self):
        """(row id, baseline row id) pairs whose same-seed differences are reported."""
        return [(i, b) for i, m in self.methods.items() for b in m.baselines]

    def methods_of(self, config):
        """The ids `config` runs, in its order."""
        return list(getattr(config, "methods", self.methods))

    def check(self, config):
        """What a config must satisfy for this recipe besides its own fields:
        its shipping method runs unless nothing is exported."""
        if config.exports != "none" and self.shipped not in self.methods_of(config):
            raise ConfigError(
                f"Config key 'methods': this recipe exports the model of '{self.shipped}', which "
                f"{self.methods_of(config)} leaves out; add it, or set exports=none."
            )

    @property
    def experiment_module(self):
        """The imported experiment module (this imports TensorFlow)."""
        return importlib.import_module(self.experiment or f"kerazoo.recipes.{self.name}.experiment")

    def parser(self):
        """The `argparse` parser of `python -m kerazoo.recipes.<name>`."""
        parser = argparse.ArgumentParser(
            prog=f"python -m kerazoo.recipes.{self.name}",
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="config fields (set with --set key=value or in a TOML file):\n" + describe(self.config),
        )
        parser.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="FILE.toml",
            help="TOML file of config fields (may repeat; later wins)",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help='override one config field (may repeat); lists: a,b or ["a", "b"]',
        )
        parser.add_argument(
            "--strategy",
            choices=STRATEGIES,
            default="auto",
            help="auto = MirroredStrategy over visible GPUs, else default",
        )
        parser.add_argument("--out", help="run directory (default runs/<recipe>-<utc time>)")
        parser.add_argument(
            "--overwrite", action="store_true", help="replace an existing run directory instead of refusing"
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="print a line per epoch (a terminal shows progress bars anyway)",
        )
        parser.add_argument(
            "--jobs",
            type=_jobs,
            default=os.environ.get("KERAZOO_JOBS", "auto"),
            metavar="N",
            help="train N (seed, method) pairs at once in N processes on the CPU, with the "
            "numbers of --jobs 1; auto (default, or $KERAZOO_JOBS): 2 on a machine with 2+ "
            "cores and no GPU, else 1",
        )
        # A process that --jobs starts: it joins the run directory --out.
        parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
        return parser

    def main(self, argv=None):
        """Parse the command line and run; exit 2 with a one-paragraph
        message on a user error (bad config, missing dataset, unusable run
        dir), 1 when training diverges, 130 on Ctrl-C."""
        args = self.parser().parse_args(argv)
        try:
            self._main(args, argv)
        except KeyboardInterrupt:
            # Before the run directory opened (TensorFlow's import, data
            # preparation): nothing to resume. A terminal's Ctrl-C reaches
            # the workers of `--jobs` too; the parent speaks for them.
            if not args.worker:
                print("\ninterrupted.", file=sys.stderr)
            sys.exit(130)

    def _main(self, args, argv):
        try:
            config = resolve(self.config, args.config, args.set)
            self.check(config)
            if args.strategy == "multiworker" and not args.out:
                raise ConfigError(
                    "--strategy multiworker needs --out, the same path in every worker's command: "
                    "the default is named after the time, and a restarted worker finds its backups "
                    "by it."
                )
            if args.out and not args.worker and args.strategy != "multiworker":
                # Before TensorFlow's import; a multiworker run's directory
                # depends on the worker's role, known only after it.
                from kerazoo.recipes.run_directory import RunDirectory

                RunDirectory.check(self.name, config, args.out, args.overwrite, args.strategy)
        except (ConfigError, RunDirError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        from kerazoo.recipes import runner

        words = argv if argv is not None else sys.argv[1:]
        # Quoted as a shell needs it: the report's command pastes into one,
        # and `zoo rebuild` splits it back into these very arguments.
        command = shlex.join(["python", "-m", f"kerazoo.recipes.{self.name}", *map(str, words)])
        runner.run(self, config, args, command)
