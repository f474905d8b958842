"""BNM (batch nuclear-norm maximisation) against CE only, EntMin and fast BNM.

`python -m kerazoo.recipes.bnm` (`task=da`, the default) runs unsupervised
domain adaptation offline: source = a seeded half of the digits training
split, upsampled to 16x16; target = the other half with a background shift
(every zero pixel set to one random level in {0..127}/255 per image),
unlabelled; evaluation on the shifted test split. 400 steps of 64 source +
64 target images in separate forward passes (as the official code), Adam
1e-3, λ = 1, BNM = −mean of the singular values (the official DA code). A
CE-only warm-up of 150 steps
stands in for the official code's ImageNet-pretrained start: from random
weights BNM amplifies whatever the near-uniform target predictions are.

`--set task=ssl` runs semi-supervised learning: digits with a few labels per
class, BNM (÷ batch, the paper's form) on the rest.

In the same run, on the same data and seeds, it trains CE only (source-only,
with the target batches passing through the network as the official code's
λ = 0; or labelled-only), EntMin, BNM and FBNM, and reports accuracy on the target
(DA) or test (SSL) split, and the diversity the paper analyses: the number
of distinct predicted classes and the nuclear norm of the prediction matrix
on that split, with a plot of its sorted singular values per method. The
exported model (and the zoo's `digits_bnm`) is the first seed's BNM model.
"""

import dataclasses

from kerazoo.recipes import recipe
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column

METHODS = {
    "none": recipe.Method("CE only"),
    "bnm": recipe.Method("BNM", baselines=("none",), ships=True),
    "fbnm": recipe.Method("FBNM", baselines=("none",)),
    "entmin": recipe.Method("EntMin", baselines=("none",)),
}
COLUMNS = [
    Column("test_accuracy", "target (DA) / test (SSL) accuracy"),
    Column("batch_stats_accuracy", "the same with BatchNorm batch statistics"),
    Column("predicted_classes", "predicted classes", scale=1),
    Column("nuclear_norm", "nuclear norm of predictions", scale=1),
]
# The config key holding each target shift's strength; a shift between
# two of a dataset's own splits has none.
SHIFTS = {"bg": "bg_max_level", "rot": "rot_max_degrees", "fonts": None}
# shift -> the dataset whose splits it pairs: `kerazoo.data.protocols.SPLIT_SHIFTS`,
# spelled out so that the config needs no TensorFlow (tests/recipes/test_recipe.py
# checks that the two agree).
SPLIT_SHIFTS = {"fonts": "glyphs"}
# `kerazoo.data.user_sources.IMAGE_FOLDERS`, spelled out so that the config
# needs no TensorFlow (tests/recipes/test_recipe.py checks that the two agree).
FOLDERS = "imagefolder"


@dataclasses.dataclass
class BNMConfig(recipe.RunConfig):
    task: str = option("da", "da: domain adaptation; ssl: few labels + unlabelled", choices=["da", "ssl"])
    image_size: int = option(16, "resize images to this square size (0 = keep)", min=0)
    shift: str = option(
        "bg", "da target shift of the dataset's other half (not with domain folders)", choices=sorted(SHIFTS)
    )
    bg_max_level: int = option(127, "bg shift: background level up to this /255", min=0, max=255)
    rot_max_degrees: float = option(45.0, "rot shift: rotation up to ± this", min=0.0, max=180.0)
    source_domain: str = option(
        "",
        f"dataset={FOLDERS}: source folder under data_dir (e.g. amazon) "
        "for domain folders root/<domain>/<class>/<image>; '' = shift one dataset",
    )
    target_domain: str = option("", f"dataset={FOLDERS}: target folder under data_dir (e.g. webcam)")
    labels_per_class: int = option(5, "ssl: labelled training images per class", min=1)
    methods: list[str] = recipe.methods_option(
        METHODS, "methods, same data and seeds", default=["none", "entmin", "bnm", "fbnm"]
    )
    weight: float = option(1.0, "λ of the transfer term", min=0.0)
    warmup_steps: int = option(150, "CE-only steps before λ applies", min=0)
    normalization: str = option(
        "default",
        "BNM/FBNM divisor: default = min_dim (da) / batch (ssl)",
        choices=["default", "min_dim", "batch"],
    )
    batch_scope: str = recipe.batch_scope_option()
    steps: int = option(400, "training steps (rounded up to whole epochs of the paired stream)", min=1)
    batch_size: int = option(64, "labelled (source) images per step, global", min=1)
    unlabelled_batch_size: int = option(64, "unlabelled (target) images per step, global", min=1)
    backbone: str = recipe.backbone_option()
    synchronized_bn: bool = option(False, "BatchNorm statistics over the global batch")
    optimizer: str = option("adam", "adam, or sgd (momentum, nesterov)", choices=["adam", "sgd"])
    learning_rate: float = option(1e-3, "initial learning rate", min=0.0)
    lr_schedule: str = option(
        "constant", "constant, or inverse: lr·(1 + 0.001·i)^-0.75", choices=["constant", "inverse"]
    )
    momentum: float = option(0.9, "sgd momentum", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "weight decay, coupled L2 as PyTorch's", min=0.0)
    augment: str = recipe.augment_option(
        help="augmentation of both streams: none, or crop_flip (pad-4 random crop and horizontal flip)"
    )
    num_seeds: int = recipe.seeds_option()

    @property
    def domain_folders(self):
        """Whether the source and target are two domain folders (else a shift of one dataset)."""
        return bool(self.source_domain or self.target_domain)

    @property
    def evaluated_on(self):
        if self.task == "ssl":
            return super().evaluated_on
        if self.domain_folders:
            return f"the {self.target_domain} target domain"
        # The target's held-out test images, not the unlabelled ones it trained on.
        if self.shift in SPLIT_SHIFTS:
            return f"the target domain's test images of the {self.dataset} {self.shift} split"
        return f"the {self.dataset} test split under the {self.shift} shift (the target domain)"

    def validate(self):
        # The domain-folder mode's own needs first: they name every key it needs, data_dir included.
        if self.domain_folders and not (
            self.dataset == FOLDERS
            and self.task == "da"
            and self.data_dir
            and self.source_domain
            and self.target_domain
        ):
            raise ConfigError(
                f"source_domain/target_domain (domain folders root/<domain>/<class>/<image>) need "
                f"dataset={FOLDERS}, task=da, data_dir, source_domain and target_domain."
            )
        if self.domain_folders and not self.image_size:
            raise ConfigError(
                f"dataset={FOLDERS} with domains needs image_size (folder images differ in size)."
            )
        if self.task == "da" and not self.domain_folders and self.shift in SPLIT_SHIFTS:
            if self.dataset != SPLIT_SHIFTS[self.shift]:
                raise ConfigError(
                    f"shift={self.shift} pairs two splits of dataset={SPLIT_SHIFTS[self.shift]}, "
                    f"not of {self.dataset}; use shift=bg or rot with {self.dataset}."
                )
        super().validate()


RECIPE = recipe.Recipe("bnm", BNMConfig, METHODS, COLUMNS, __doc__)
