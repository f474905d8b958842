"""GIT (generative invariance transfer): CE + DRS, with GIT, and the oracle, on a long tail with a nuisance.

`python -m kerazoo.recipes.git` (`transform=bg`, the default; also `dil`,
`rot`) runs, in one run directory:

1. the translator: a MUNIT (`kerazoo.models.MUNIT`) trained class-agnostically
   on the long-tailed, nuisance-transformed training set with class-balanced
   sampling (or loaded: `translator=` a `.keras` file or a zoo model name);
2. per seed, three classifiers on the same data and seeds (digits-lt with one
   random nuisance per image, 16x16, convnet, SGD 0.05, 60 epochs of batch
   32; the last 15 class-balanced at 0.1x the learning rate, i.e. DRS):
   - CE + DRS;
   - CE + DRS + GIT: from the same first 45 epochs, the DRS epochs replace
     tail-class images (fewer than `threshold` = 20 training images) in the
     last half of each batch with translations of themselves (`GITAugment`);
   - the oracle: the GIT code's `--oracle`, the same schedule on the
     *untransformed* long tail with the true nuisance drawn afresh for every
     image in every epoch (`kerazoo.data.augment.POLICIES[transform]`).

It reports class-balanced and tail-class accuracy on the transformed test
set, and per-class eKLD (`kerazoo.metrics.ekld`: 40 untransformed test images
per class, 100 true nuisances of each, KL between the predictions on the
image and on its transforms); two translator diagnostics (pixel variance
across sampled styles relative to the true nuisance's, and the style-
reconstruction error, ≈ 0.80 when the style is ignored); eKLD against class
size (the paper's Figure 1) and a grid of translations of tail-class images.
It ships the first seed's CE + DRS + GIT classifier (without GITAugment) and
`translator.keras`. Paper protocols (no nuisance, `transform=none`):
recipes/cifar10_lt_git.toml, recipes/cifar100_lt_git.toml.
"""

import dataclasses
import json
import zipfile
from pathlib import Path

from kerazoo.recipes import recipe
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column

METHODS = {
    "ce_drs": recipe.Method("CE + DRS"),
    "ce_drs_git": recipe.Method("CE + DRS + GIT", baselines=("ce_drs",), ships=True),
    "oracle": recipe.Method("CE + DRS + oracle", baselines=("ce_drs",)),
}
TRANSFORMS = ("bg", "dil", "rot", "none")
# `kerazoo.layers.git_augment.RULES` and `STYLES`, spelled out so that the
# config needs no Keras (tests/recipes/test_recipe.py checks that they agree).
RULES = ("threshold", "ramp", "independent")
STYLES = ("prior", "encoded")
COLUMNS = [
    Column("balanced_accuracy", "class-balanced accuracy"),
    Column("tail_accuracy", "tail accuracy"),
    Column("tail_ekld", "tail eKLD", scale=1, digits=3, higher_is_better=False),
    Column("head_ekld", "head eKLD", scale=1, digits=3, higher_is_better=False),
]
TRANSLATOR_FILE = "translator.keras"


@dataclasses.dataclass
class GITConfig(recipe.RunConfig):
    dataset: str = option("digits-lt", "long-tailed protocol without a nuisance (`transform` adds it)")
    transform: str = option(
        "bg",
        "nuisance on every image: bg, dil, rot; none for natural images (then no oracle and no eKLD)",
        choices=list(TRANSFORMS),
    )
    image_size: int = option(16, "resize images to this square size (0 = keep)", min=0)
    backbone: str = recipe.backbone_option("classifier feature extractor")
    epochs: int = option(60, "classifier epochs", min=1)
    drs_epoch: int = option(45, "first class-balanced (DRS) epoch; the lr drops and GIT starts there", min=0)
    drs_lr_scale: float = option(0.1, "learning rate from drs_epoch on / before", min=0.0)
    batch_size: int = option(32, "classifier batch size", min=2)
    learning_rate: float = option(0.05, "classifier SGD learning rate", min=0.0)
    momentum: float = option(0.9, "classifier SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "classifier weight decay, coupled L2 as PyTorch's SGD", min=0.0)
    augment: str = recipe.augment_option(help="classifier augmentation of every image")
    threshold: int = option(
        20, "GIT's class-size threshold K: classes with fewer images are translated", min=1
    )
    fraction: float = option(
        0.5, "share of each batch GIT may replace (the code's gen_frac)", min=0.0, max=1.0
    )
    rule: str = option(
        "threshold",
        "threshold: translate a candidate itself if N < K; ramp: with "
        "probability max((K - N)/(K - N_min), 0) (the code's --weighted_gen); "
        "independent: the official default, translations of an independent second "
        "batch, every class",
        choices=list(RULES),
    )
    styles: str = option(
        "prior",
        "prior: translate with styles drawn from N(0, I) (GIT's code); encoded: with the styles "
        "of random images of the same batch (MUNIT's example-guided translation, not GIT's "
        "code; fewer translations change the class: docs/benchmark.md)",
        choices=list(STYLES),
    )
    style_scale: float = option(
        1.0,
        "multiply the translation styles by this (< 1: the truncation trick, not in GIT's code: "
        "translations vary less and change the character less often; docs/benchmark.md)",
        min=0.0,
    )
    tail_size: int = option(20, "tail classes have fewer training images than this", min=1)
    translator: str = option(
        "",
        "'' trains the translator in this run; else a .keras file or a zoo model name, "
        "copied into the run directory (the translator_* keys then do not apply)",
    )
    translator_epochs: int = option(
        45,
        "translator passes over the training set (45 on digits-lt: "
        "10,485 steps at batch 1; the official K49 translators: 10,000)",
        min=1,
    )
    translator_batch_size: int = option(1, "translator batch size (MUNIT: 1)", min=1)
    translator_domains: int = option(
        1,
        "2: MUNIT's two-domain trainer as GIT runs it (two generators and two discriminators, "
        "both domains the training set, two loaders); 1: one of each, half the cost, not the "
        "official code (on digits it varies less and changes the digits less: docs/git.md)",
        choices=[1, 2],
    )
    translator_augment: str = option(
        "flip",
        "augmentation of the translator's training images: flip (a random horizontal flip, as "
        "GIT's MUNIT loaders for K49 and CIFAR) or none (the classifier's images are not flipped)",
        choices=["flip", "none"],
    )
    translator_lr: float = option(1e-4, "translator Adam learning rate, beta (0.5, 0.999)", min=0.0)
    translator_lr_step: int = option(
        100_000,
        "translator steps after which its learning rate halves, again every as many steps "
        "(MUNIT's lr_policy step: step_size 100,000, gamma 0.5; 0 = constant)",
        min=0,
    )
    translator_weight_decay: float = option(
        1e-4, "translator weight decay, coupled L2 as MUNIT's PyTorch Adam (MUNIT/GIT: 1e-4)", min=0.0
    )
    translator_dim: int = option(16, "width of the translator's first convolution (MUNIT: 64)", min=1)
    translator_n_res: int = option(
        2, "residual blocks in the content encoder and the AdaIN decoder (MUNIT: 4)", min=1
    )
    translator_n_downsample: int = option(2, "stride-2 convolutions of the content encoder", min=0)
    translator_mlp_dim: int = option(128, "width of the style MLP (MUNIT: 256)", min=1)
    translator_style_dim: int = option(8, "style code size (MUNIT: 8)", min=1)
    translator_content_channels: int = option(
        0, "channels of a 1x1 bottleneck ending the content encoder, not in MUNIT (0 = none, as MUNIT)", min=0
    )
    disc_dim: int = option(16, "width of the discriminator's first convolution (MUNIT: 64)", min=1)
    disc_layers: int = option(3, "stride-2 layers of the discriminator (MUNIT: 4)", min=1)
    ekld_images: int = option(40, "untransformed test images per class for eKLD", min=1)
    ekld_transforms: int = option(100, "true nuisances drawn per eKLD image", min=1)
    diagnostic_styles: int = option(8, "styles (and true nuisances) drawn per image for the variance", min=2)
    num_seeds: int = recipe.seeds_option()
    methods: list[str] = recipe.methods_option(METHODS)

    @property
    def evaluated_on(self):
        from kerazoo.protocol_names import evaluation_split, with_nuisance

        return evaluation_split(with_nuisance(self.dataset, self.transform))

    def validate(self):
        super().validate()
        from kerazoo.protocol_names import parse_protocol_name

        _, nuisance, long_tail = parse_protocol_name(self.dataset)
        if nuisance:
            raise ConfigError(
                f"Config key 'dataset': {self.dataset!r} already has the nuisance '-{nuisance}'; "
                f"give the protocol without it and set transform={nuisance}."
            )
        if "oracle" in self.methods and self.transform == "none":
            raise ConfigError(
                "Config key 'methods': the oracle needs a true nuisance; with transform=none drop 'oracle'."
            )
        if self.drs_epoch >= self.epochs:
            raise ConfigError(
                f"Config key 'drs_epoch' ({self.drs_epoch}) must be below 'epochs' "
                f"({self.epochs}): GIT acts in the class-balanced epochs."
            )
        if self.translator:
            translator_file(self.translator)


def translator_file(source, root=None):
    """The path of the translator `source` names: a `.keras` file, or a zoo
    model carrying a `translator.keras` (checksum-verified; `root`: the zoo
    root, default the shipped zoo).

    Raises:
        ConfigError: naming the missing file, the unknown zoo model (with
            the available ones), a zoo model without a translator, or a
            file whose checksum differs.

    Example:

    ```python
    translator_file("digits_git")   # .../saved_models/digits_git/translator.keras
    ```
    """
    from kerazoo import zoo

    if source.endswith(".keras"):
        if not Path(source).is_file():
            raise ConfigError(
                f"Config key 'translator': no file {source}; give an existing "
                ".keras file or a zoo model name (python -m kerazoo.zoo list)."
            )
        translator_image_shape(source)  # refuses a file that is no translator
        return Path(source)
    if "/" in source and Path(source).is_dir():  # a bare name is a zoo model's
        inside = Path(source) / TRANSLATOR_FILE
        raise ConfigError(
            f"Config key 'translator': {source} is a directory; give the translator file"
            + (
                f" inside it: translator={inside}"
                if inside.is_file()
                else " (a .keras file) or a zoo model name"
            )
            + "."
        )
    root = zoo.default_root() if root is None else Path(root)
    relative = f"saved_models/{source}/{TRANSLATOR_FILE}"
    try:
        if relative not in zoo.info(source, root)["files"]:
            with_translator = [
                name
                for name in zoo.available(root)
                if f"saved_models/{name}/{TRANSLATOR_FILE}" in zoo.info(name, root)["files"]
            ]
            raise ConfigError(
                f"Config key 'translator': zoo model {source!r} has no {TRANSLATOR_FILE}; "
                f"zoo models with one: {with_translator}."
            )
        zoo.verify(source, root)
    except zoo.ZooError as error:
        raise ConfigError(f"Config key 'translator' ({source!r}): {error}") from None
    return root / relative


def translator_image_shape(path):
    """The image shape a saved translator (a `.keras` file) translates, read
    from the file's config without TensorFlow.

    Raises:
        ConfigError: the file is not a saved kerazoo `MUNITGenerator` (a
            classifier, a corrupt file).

    Example:

    ```python
    translator_image_shape("saved_models/digits_git/translator.keras")  # (16, 16, 1)
    ```
    """
    try:
        with zipfile.ZipFile(path) as saved:
            config = json.loads(saved.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ConfigError(
            f"Config key 'translator': {path} is not a readable .keras file ({error})."
        ) from None
    if config.get("registered_name") != "kerazoo>MUNITGenerator":
        raise ConfigError(
            f"Config key 'translator': {path} holds a {config.get('class_name')}, not a GIT "
            f"translator (a kerazoo MUNITGenerator, the {TRANSLATOR_FILE} of a GIT run)."
        )
    return tuple(config["config"]["image_shape"])


RECIPE = recipe.Recipe("git", GITConfig, METHODS, COLUMNS, __doc__)
