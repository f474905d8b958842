"""BatchFormer on a long tail: CE and Balanced Softmax, each with and without BatchFormer.

`python -m kerazoo.recipes.batchformer` trains the four methods on the same
data and seeds (digits-lt: Zipf 2.0, at least 5 images per class, balanced
test set; convnet, Adam 1e-3, 30 epochs of 5 passes, batch 64, 3 seeds) and reports
overall, many-, medium- and few-shot test accuracy, the same-seed effect of
BatchFormer and of Balanced Softmax, and a plot of the three per method. Many-shot classes have
more than 100 training images, few-shot fewer than 20 (the ImageNet-LT
split); on digits-lt that is 1 many, 1 medium and 8 few-shot classes. The
shipped model is Balanced Softmax + BatchFormer of the first seed, exported
without BatchFormer. Paper protocols: recipes/cifar100_lt_batchformer.toml,
recipes/imagenet_lt_batchformer.toml (ImageNet-LT, streamed from disk: the
same code reads an in-memory or a streamed protocol through its
`train_dataset` / `eval_dataset`).
"""

import dataclasses

from kerazoo.recipes import recipe
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column

# The id names the loss (`ce` or `balanced_softmax`) and, with a
# `_batchformer` suffix, adds BatchFormer.
METHODS = {
    "ce": recipe.Method("CE"),
    "ce_batchformer": recipe.Method("CE + BatchFormer", baselines=("ce",)),
    "balanced_softmax": recipe.Method("Balanced Softmax", baselines=("ce",)),
    "balanced_softmax_batchformer": recipe.Method(
        "Balanced Softmax + BatchFormer", baselines=("balanced_softmax",), ships=True
    ),
}
COLUMNS = [
    Column("test_accuracy", "overall"),
    Column("many", "many-shot"),
    Column("medium", "medium-shot"),
    Column("few", "few-shot"),
]


@dataclasses.dataclass
class BatchFormerConfig(recipe.RunConfig):
    reads_streamed_datasets = True  # ImageNet-LT, through protocol.train_dataset

    dataset: str = option(
        "digits-lt",
        "long-tailed protocol: a tfds dataset name, or imagefolder / arrays for your own data in "
        "data_dir (docs/own_data.md), with -lt (Zipf 2.0) or -lt100 (exponential, rho 100), "
        "e.g. digits-lt, cifar100-lt or imagefolder-lt; imagenet_lt is streamed",
    )
    backbone: str = recipe.backbone_option()
    epochs: int = option(30, "training epochs", min=1)
    passes_per_epoch: int = option(
        5,
        "passes over the training set per epoch, each in its own seeded order "
        "(fewer, longer epochs: Keras' per-epoch cost dominates on tiny data)",
        min=1,
    )
    batch_size: int = option(
        64, "global batch size; BatchFormer attends over all of it by default (batch_scope)", min=2
    )
    optimizer: str = option(
        "adam", "adam (constant lr) or sgd (momentum, cosine decay to 0)", choices=["adam", "sgd"]
    )
    learning_rate: float = option(
        1e-3,
        "learning rate of the backbone and head (sgd: where the "
        "warm-up starts, or the cosine's peak without one)",
        min=0.0,
    )
    warmup_steps: int = option(
        0,
        "sgd: linear warm-up steps from learning_rate to warmup_learning_rate, "
        "then cosine from there (the official CIFAR-100-LT schedule: 800)",
        min=0,
    )
    warmup_learning_rate: float = option(
        0.0, "sgd: the warm-up's end and the cosine's peak (official CIFAR-100-LT: 0.1)", min=0.0
    )
    momentum: float = option(0.9, "SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "weight decay, coupled L2 as PyTorch's (both optimizers)", min=0.0)
    batchformer_loss_weight: float = option(
        1.0,
        "factor on the loss with BatchFormer: 1 = mean over the 2B rows (the official README's form), "
        "3 = the official BalancedSoftmax code's three summed terms",
        min=0.0,
    )
    augment: str = recipe.augment_option(
        help="training augmentation: none, or crop_flip (random crop + horizontal "
        "flip: pad-4 (CIFAR) in memory, random-resized (ImageNet) when streamed)"
    )
    num_heads: int = option(4, "BatchFormer attention heads", min=1)
    num_layers: int = option(1, "BatchFormer encoder layers", min=1)
    dropout: float = option(0.5, "BatchFormer dropout (four places, as PyTorch)", min=0.0, max=0.99)
    batchformer_lr_scale: float = option(0.1, "BatchFormer's learning rate / the rest's", min=0.0)
    batch_scope: str = recipe.batch_scope_option()
    many_shot: int = option(100, "many-shot: more than this many training images", min=1)
    few_shot: int = option(20, "few-shot: fewer than this many training images", min=1)
    num_seeds: int = recipe.seeds_option()
    methods: list[str] = recipe.methods_option(METHODS)

    def validate(self):
        super().validate()
        if self.warmup_steps and (
            self.optimizer != "sgd" or self.warmup_steps < 2 or not self.warmup_learning_rate
        ):
            raise ConfigError(
                f"Config key 'warmup_steps' ({self.warmup_steps}): a warm-up needs optimizer=sgd, "
                "warmup_steps >= 2 and warmup_learning_rate > 0 (the cosine's peak)."
            )
        if self.few_shot > self.many_shot:
            raise ConfigError(
                f"Config keys 'few_shot' ({self.few_shot}) and 'many_shot' ({self.many_shot}): "
                "few_shot must not exceed many_shot."
            )


RECIPE = recipe.Recipe("batchformer", BatchFormerConfig, METHODS, COLUMNS, __doc__)
