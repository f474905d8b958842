"""AdCo against MoCo-queue, a random encoder, a supervised encoder and raw pixels, by linear probe and kNN.

`python -m kerazoo.recipes.adco` learns digits representations without
labels: 16x16 images, two augmented views per image (rotation ±15°, shift
±2 px, intensity ×U(0.7, 1.3), noise σ 0.05, stateless in tf.data), the
digits convnet + MLP 64→64→32, batch 128, 30 epochs (330 steps),
encoder SGD 0.06 cosine, momentum 0.9, coupled weight decay 5e-4; key EMA
m = 0.99 (0.999 is too slow for so few steps); τ = 0.12; K = 1024
negatives. In the same run, on the same views and seeds:

- AdCo: the bank trained by ascent at τ_m = 0.02 (SGD lr 3, momentum 0.9,
  coupled weight decay 1e-4), random-normal start (`bank_init=keys`: the
  official `ad_init`, ⌈K/B⌉ MoCo steps writing the keys into the bank);
- MoCo-queue: the same model with a FIFO queue of past keys (MoCo v2);
- supervised: the same backbone trained with labels (CE, one view);
- random init: the backbone as initialised;
- raw pixels.

Every encoder is evaluated frozen on its pooled (backbone) features: a
linear probe (logistic regression on standardised features) and a kNN
(k = 20, cosine), train split → test split; also the final contrastive
accuracy, bank loss and the bank's effective rank, and a plot of the linear
probe over training. The first seed's AdCo encoder ships as a feature
extractor (kind `features`) and, in `probe/`, the encoder with its linear
probe as a classifier. Paper protocol: recipes/imagenet_adco.toml.
"""

import dataclasses

from kerazoo.recipes import recipe
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column

# `raw`: the probes on the pixels themselves, no encoder.
METHODS = {
    "raw": recipe.Method("raw pixels"),
    "adco": recipe.Method("AdCo", baselines=("moco", "random"), ships=True),
    "moco": recipe.Method("MoCo-queue", baselines=("random",)),
    "supervised": recipe.Method("supervised"),
    "random": recipe.Method("random init"),
}
COLUMNS = [
    Column("linear_probe", "linear probe"),
    Column("knn", "kNN"),
    Column("contrastive_accuracy", "contrastive acc."),
    Column("bank_loss", "bank loss (τ_m)", scale=1.0, digits=3),  # near 0 when the bank loses
    Column("bank_rank", "bank eff. rank", scale=1.0),
]


@dataclasses.dataclass
class AdCoConfig(recipe.RunConfig):
    # ImageNet: its own loader holds the resized splits in memory (max_train_images caps them).
    reads_streamed_datasets = True

    image_size: int = option(
        16,
        "resize images to this square size (0 = keep; needed for datasets whose images differ in size)",
        min=0,
    )
    eval_split: str = option("test", "tfds split the probes are scored on (imagenet2012: validation)")
    max_train_images: int = option(0, "use the first N training images (0 = all)", min=0)
    backbone: str = recipe.backbone_option("encoder backbone")
    hidden_dim: int = option(64, "projection MLP hidden size (0 = the backbone's feature size)", min=0)
    dim: int = option(32, "projection output size (the bank's dimension)", min=1)
    bank_size: int = option(1024, "K: negatives in the bank (and the MoCo queue)", min=1)
    bank_init: str = option(
        "random",
        "random: standard normal; keys: the official ad_init (⌈K/B⌉ MoCo steps writing the keys)",
        choices=["random", "keys"],
    )
    temperature: float = option(0.12, "τ of the encoder's loss", min=1e-4)
    bank_temperature: float = option(0.02, "τ_m of the bank's (ascent) loss", min=1e-4)
    bank_lr: float = option(3.0, "bank SGD learning rate (constant)", min=0.0)
    bank_momentum: float = option(0.9, "bank SGD momentum", min=0.0, max=1.0)
    bank_weight_decay: float = option(1e-4, "bank coupled weight decay", min=0.0)
    key_momentum: float = option(0.99, "m of the key encoder's EMA (paper 0.999)", min=0.0, max=1.0)
    symmetric: bool = option(False, "symmetric loss (both views as queries)")
    batch_scope: str = recipe.batch_scope_option()
    shuffle_groups: int = option(2, "BatchNorm groups of the key encoder (shuffle-BN on one device)", min=1)
    epochs: int = option(
        30,
        "training epochs (the same for every trained encoder; the linear probe "
        "plateaus by ~30 on digits; docs/adco.md)",
        min=1,
    )
    batch_size: int = option(128, "global batch size", min=2)
    learning_rate: float = option(0.06, "encoder SGD learning rate (cosine per step)", min=0.0)
    final_learning_rate: float = option(0.0, "floor of the cosine (official: 6e-4 at lr 0.03)", min=0.0)
    momentum: float = option(0.9, "encoder SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(
        5e-4,
        "AdCo's and MoCo's encoder coupled weight decay (official 1e-4; the supervised reference has none)",
        min=0.0,
    )
    augment: str = recipe.augment_option(
        "views", "augmentation policy of the views (kerazoo.data.augment)", choices=("views", "crop_flip")
    )
    knn_k: int = option(20, "neighbours of the kNN evaluation", min=1)
    probe_every: int = option(5, "linear probe on the test split every N epochs (the plot); 0 = never", min=0)
    num_seeds: int = recipe.seeds_option()
    methods: list[str] = recipe.methods_option(METHODS, "encoders, same data and seeds")

    def validate(self):
        super().validate()
        from kerazoo.protocol_names import parse_protocol_name

        _, nuisance, tail = parse_protocol_name(self.dataset)
        if nuisance or tail:
            raise ConfigError(
                f"Config key 'dataset': AdCo runs on a plain dataset without modifiers, not {self.dataset!r}."
            )
        if self.batch_size % self.shuffle_groups:
            raise ConfigError(
                f"Config keys 'batch_size' ({self.batch_size}) and 'shuffle_groups' "
                f"({self.shuffle_groups}): the groups must split the batch evenly."
            )
        if self.bank_size < self.batch_size and ("moco" in self.methods or self.bank_init == "keys"):
            raise ConfigError(
                f"Config key 'bank_size' ({self.bank_size}): a queue of keys must hold a whole "
                f"batch ({self.batch_size} keys)."
            )


RECIPE = recipe.Recipe("adco", AdCoConfig, METHODS, COLUMNS, __doc__)
