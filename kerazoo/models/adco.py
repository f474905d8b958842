"""AdCo: contrastive learning against a bank of negatives trained by gradient ascent (and its MoCo-queue baseline)."""

import keras
import tensorflow as tf
from keras import ops

from kerazoo import initializers
from kerazoo._checks import is_whole
from kerazoo.layers.negative_bank import NegativeBank
from kerazoo.losses.contrastive import info_nce_loss
from kerazoo.models.backbone_shapes import feature_size, image_shape
from kerazoo.models.base import OptimizerGroup, TrainingModel, dtype_policy_scope
from kerazoo.models.feature_extractor import FeatureExtractor
from kerazoo.ops import gather_replica_rows, l2_normalize
from kerazoo.serialization import deserialized

MODES = ("adco", "queue")
SCOPES = ("global", "replica")


def projection_head(input_dim, hidden_dim, dim, name):
    """MoCo v2's head, as AdCo's: Dense(hidden) → ReLU → Dense(dim), no BatchNorm.

    Both layers are initialised as PyTorch's `nn.Linear`, which AdCo's code
    keeps (torchvision's ResNet re-initialises only its convolutions and
    BatchNorms).

    Args:
        input_dim: size of the backbone's features.
        hidden_dim: width of the hidden layer.
        dim: output size.
        name: the model's name.

    Returns:
        A `keras.Model` from (B, input_dim) to (B, dim), not normalised.

    Example:

    ```python
    import numpy as np
    from kerazoo.models.adco import projection_head

    head = projection_head(64, 64, 16, name="projection")
    print(head(np.zeros((2, 64), "float32")).shape)  # (2, 16)
    ```

    References:
        - [He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR
          2020](https://arxiv.org/abs/1911.05722)
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of Unsupervised Representations from
          Self-Trained Negative Adversaries, CVPR 2021](https://arxiv.org/abs/2011.08435)
    """
    head = keras.Sequential(
        [initializers.dense(hidden_dim, input_dim, activation="relu"), initializers.dense(dim, hidden_dim)],
        name=name,
    )
    head.build((None, input_dim))
    return head


@keras.saving.register_keras_serializable(package="kerazoo")
class AdCo(TrainingModel):
    """AdCo (Hu et al., CVPR 2021) following the official code (maple-research-lab/AdCo).

    One training step on a batch of two views (x_q, x_k):

    1. the key encoder moves by EMA, θ_k ← m·θ_k + (1 − m)·θ_q (parameters
       only, before the keys, once per step, as the official `forward`);
    2. q = normalize(head(backbone(x_q))), k = normalize(key encoder(x_k))
       with no gradient; the key encoder's BatchNorm sees the batch in
       `shuffle_groups` random groups (MoCo's shuffle-BN on one device, so
       a query and its key do not share batch statistics);
    3. logits = [q·k_allᵀ | q·normalize(W)], k_all the keys of the *global*
       batch (all-gathered across replicas: the other keys are extra
       negatives), the positive of query i is key i of its replica;
    4. `contrastive` = CE(logits / τ) (τ = 0.12) steps the query encoder by
       descent; `bank` = CE(logits / τ_m) (τ_m = 0.02, float32) steps W by
       *ascent* through `GradientAscent`; both from this one forward pass
       (simultaneous, as the official code; the bank step uses the
       pre-update queries).

    `mode="queue"` is the MoCo-v2 baseline with the same logits: W is not
    trained but a FIFO of past keys (the global batch's keys are written
    after the step). `symmetric=True` adds the swapped views: every loss is
    ½ (view 1 → view 2) + ½ (view 2 → view 1). The official weight decay
    (coupled, on every parameter of the query encoder, BatchNorm's and
    biases included) is the optimizer's: compile with
    `kerazoo.optimizers.with_weight_decay(SGD(...), λ)`.

    Under a multi-replica strategy, `scope="global"` (default, the official
    code's `concat_all_gather`) all-gathers the keys, so every replica's
    queries meet the keys of the global batch; `scope="replica"` uses the
    replica's own keys only (a queue still takes every replica's keys, as
    MoCo's, so that it stays one queue: it must hold a global batch). Each loss is
    the mean over the replica's queries divided by the replica count by the
    base (gradients are summed), so with `"global"` W, its momentum and the
    encoders get the single-device update of the same global batch and W
    stays identical on every replica. BatchNorm statistics are per replica.

    Tracked per step besides the loss terms: `contrastive_accuracy` (the
    positive is the top logit) and `bank_rank` (the effective rank of
    normalize(W)).

    Args:
        backbone: a functional `keras.Model` (its `output_shape` is read; the key encoder
            is its `clone_model`) from images to pooled features (B, D).
        bank_size: K negatives.
        dim: projection output size.
        hidden_dim: projection hidden size (default D).
        temperature: τ of the encoder's loss.
        bank_temperature: τ_m of the bank's loss.
        key_momentum: m of the key encoder's EMA (0.999 official; 0.99 for
            the ~1,000-step digits runs; the official `--moco-m`). Not the
            optimizer's momentum, hence the name.
        mode: `"adco"` or `"queue"`.
        symmetric: the official `--sym 1` loss.
        shuffle_groups: BatchNorm groups of the key encoder (1 = the whole
            replica batch); must divide the per-replica batch.
        scope: `"global"` or `"replica"`: whose keys the queries contrast
            with under a multi-replica strategy (see above).

    Example:

    ```python
    import numpy as np
    import keras
    import kerazoo

    rng = np.random.default_rng(0)
    view_1 = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    view_2 = np.clip(view_1 + rng.normal(0, 0.1, view_1.shape), 0, 1).astype("float32")
    model = kerazoo.models.AdCo(
        kerazoo.backbones.get("convnet", width=8), bank_size=32, dim=8, key_momentum=0.99
    )
    model.compile(
        optimizer=kerazoo.optimizers.with_weight_decay(keras.optimizers.SGD(0.06, momentum=0.9), 1e-4),
        bank_optimizer=kerazoo.optimizers.GradientAscent(
            keras.optimizers.SGD(3.0, momentum=0.9), weight_decay=1e-4
        ),
    )
    model.fit(view_1, view_2, batch_size=8, epochs=1, verbose=0)  # batches of two views
    encoder = model.inference_model()  # FeatureExtractor of the pooled features
    print(encoder.predict(view_1, verbose=0).shape)  # (16, 8)
    ```

    References:
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of Unsupervised Representations from
          Self-Trained Negative Adversaries, CVPR 2021](https://arxiv.org/abs/2011.08435)
        - [He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR
          2020](https://arxiv.org/abs/1911.05722)
    """

    def __init__(
        self,
        backbone,
        bank_size=65536,
        dim=128,
        hidden_dim=None,
        temperature=0.12,
        bank_temperature=0.02,
        key_momentum=0.999,
        mode="adco",
        symmetric=False,
        shuffle_groups=1,
        scope="global",
        **kwargs,
    ):
        if "momentum" in kwargs:
            raise TypeError(
                "AdCo: the key encoder's EMA coefficient is `key_momentum` (optimizer momentum belongs "
                "to the optimizers); rename momentum= to key_momentum=."
            )
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"AdCo mode={mode!r}: use one of {MODES}.")
        if scope not in SCOPES:
            raise ValueError(f"AdCo scope={scope!r}: use one of {SCOPES}.")
        for name, value, valid, rule in (
            ("temperature", temperature, temperature > 0, "> 0"),
            ("bank_temperature", bank_temperature, bank_temperature > 0, "> 0"),
            ("key_momentum", key_momentum, 0 <= key_momentum <= 1, "in [0, 1]"),
            (
                "shuffle_groups",
                shuffle_groups,
                is_whole(shuffle_groups, 1),
                "a whole number >= 1",
            ),
        ):
            if not valid:
                raise ValueError(f"AdCo {name}={value!r}: it must be {rule}.")
        self.scope = scope
        self.backbone = backbone
        features = feature_size(backbone)
        self.hidden_dim = int(hidden_dim or features)
        with dtype_policy_scope(self.dtype_policy):
            self.head = projection_head(features, self.hidden_dim, dim, "head")
            self.key_backbone = keras.models.clone_model(backbone)
            self.key_head = projection_head(features, self.hidden_dim, dim, "key_head")
            self.bank = NegativeBank(bank_size, dim, trainable=mode == "adco", name="negatives")
            self.bank.build((None, dim))
        self.bank_size, self.dim = int(bank_size), int(dim)
        self.temperature, self.bank_temperature = float(temperature), float(bank_temperature)
        self.key_momentum = float(key_momentum)
        self.mode, self.symmetric = mode, bool(symmetric)
        self.shuffle_groups = int(shuffle_groups)
        self.loss_terms = ("contrastive",) + (("bank",) if mode == "adco" else ())
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.rank_tracker = keras.metrics.Mean(name="bank_rank")
        self.reset_key_encoder()

    # The key encoder stays `trainable` in Keras' sense although no optimizer
    # updates it (optimizer_groups names the query encoder's variables): a
    # frozen Keras BatchNorm runs in inference mode, which would compute the
    # keys with never-updated moving statistics instead of batch statistics.

    def _pairs(self):
        """(key weight, query weight) for every trainable query parameter
        (BatchNorm moving statistics are not averaged, as the official EMA)."""
        pairs = []
        for query, key in ((self.backbone, self.key_backbone), (self.head, self.key_head)):
            pairs += [(k, q) for q, k in zip(query.weights, key.weights) if q.trainable]
        return pairs

    def reset_key_encoder(self):
        """Key encoder ← query encoder, every weight (the start, and the end of `ad_init`)."""
        for query, key in ((self.backbone, self.key_backbone), (self.head, self.key_head)):
            key.set_weights(query.get_weights())

    def start_from(self, warm):
        """The official `ad_init`: continue from `warm`, a queue-mode AdCo
        trained ⌈K/B⌉ steps (MoCo steps whose keys filled its FIFO), taking
        its encoder, head and key-filled bank; the key encoder restarts as a
        copy of the query encoder."""
        self.backbone.set_weights(warm.backbone.get_weights())
        self.head.set_weights(warm.head.get_weights())
        self.bank.bank.assign(warm.bank.bank)
        self.reset_key_encoder()

    def call(self, images, training=False):
        """The query embedding normalize(head(backbone(images)))."""
        return l2_normalize(self.head(self.backbone(images, training=training)), axis=1)

    def compile(self, optimizer, bank_optimizer=None, **kwargs):
        if self.mode == "adco" and bank_optimizer is None:
            raise ValueError(
                "AdCo(mode='adco') needs a bank_optimizer (e.g. kerazoo.optimizers.GradientAscent)."
            )
        super().compile(optimizer=optimizer, **kwargs)
        self.bank_optimizer = self.loss_scaled(bank_optimizer)

    def get_compile_config(self):
        # The bank's optimizer too, so that a loaded model compiles (and
        # restores both optimizers' state).
        config = super().get_compile_config()
        # Keras gives {} for a model never compiled, which has no bank optimizer.
        if config and self.bank_optimizer is not None:
            config["bank_optimizer"] = keras.saving.serialize_keras_object(self.bank_optimizer)
        return config

    def optimizer_groups(self):
        encoder = self.backbone.trainable_variables + self.head.trainable_variables
        groups = [OptimizerGroup("encoder", self.optimizer, encoder, ("contrastive",))]
        if self.mode == "adco":
            # Ascent comes from GradientAscent itself (with its coupled decay).
            groups.append(OptimizerGroup("bank", self.bank_optimizer, [self.bank.bank], ("bank",)))
        return groups

    def _keys(self, images, training):
        """normalize(key encoder(images)), BatchNorm over `shuffle_groups` random groups."""
        n = ops.shape(images)[0]
        if self.shuffle_groups == 1 or not training:
            return l2_normalize(self.key_head(self.key_backbone(images, training=training)), axis=1)
        # Else ops.split fails inside the step with "Number of ways to split
        # should evenly divide the split dimension".
        message = (
            f"AdCo: shuffle_groups={self.shuffle_groups} must divide the batch each replica gets; "
            "use a (per-replica) batch size that is a multiple of it, and drop the last partial batch."
        )
        if images.shape[0] is not None:
            if images.shape[0] % self.shuffle_groups:
                raise ValueError(f"{message} Got {images.shape[0]} images.")
        else:
            with tf.control_dependencies(
                [tf.debugging.assert_equal(n % self.shuffle_groups, 0, message=message)]
            ):
                images = tf.identity(images)
        # A permutation keyed by the step: identical on a resumed run.
        key = tf.stack([tf.cast(self.optimizer.iterations, tf.int64), tf.constant(7, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([n], key))
        groups = ops.split(ops.take(images, order, axis=0), self.shuffle_groups, axis=0)
        shuffled = ops.concatenate(
            [self.key_head(self.key_backbone(g, training=True)) for g in groups], axis=0
        )
        return l2_normalize(ops.take(shuffled, tf.argsort(order), axis=0), axis=1)

    def _contrast(self, q, k_all, labels):
        """(encoder loss, bank loss or None, accuracy) of queries q against all keys and the bank."""
        logits = ops.concatenate([ops.matmul(q, ops.transpose(k_all)), self.bank(q)], axis=1)
        hits = ops.equal(ops.cast(ops.argmax(logits, axis=1), "int32"), labels)
        accuracy = ops.mean(ops.cast(hits, "float32"))
        bank = info_nce_loss(logits, labels, self.bank_temperature) if self.mode == "adco" else None
        return info_nce_loss(logits, labels, self.temperature), bank, accuracy

    def compute_losses(self, data, training):
        if not isinstance(data, (tuple, list)) or (len(data) < 2 and not isinstance(data[0], (tuple, list))):
            raise ValueError(
                "AdCo trains on two augmented views of each image: batches (view_1, view_2), e.g. "
                "fit(tf.data.Dataset.zip(views_1, views_2)) or fit(x=views_1, y=views_2); got one batch of images."
            )
        views = tuple(data[0]) if isinstance(data[0], (tuple, list)) else tuple(data[:2])
        if training:
            for key, query in self._pairs():
                key.assign(self.key_momentum * key + (1.0 - self.key_momentum) * query)
        context = tf.distribute.get_replica_context()
        pairs = [(0, 1), (1, 0)] if self.symmetric else [(0, 1)]
        results, written = [], None
        for qi, ki in pairs:
            q = self(views[qi], training=training)
            k = ops.stop_gradient(self._keys(views[ki], training))
            n = ops.shape(k)[0]
            k_all, offset = k, 0
            if self.scope == "global" and context is not None and context.num_replicas_in_sync > 1:
                k_all, (offset, _) = gather_replica_rows(context, k)
            labels = offset + ops.arange(n, dtype="int32")
            results.append(self._contrast(q, k_all, labels))
            written = k_all if written is None else written
        scale = 1.0 / len(results)
        losses = {
            "contrastive": scale * sum(r[0] for r in results),
        }
        if self.mode == "adco":
            losses["bank"] = scale * sum(r[1] for r in results)
        # Evaluated too: `evaluate` reported these as 0.0 when only training updated them.
        self.accuracy_tracker.update_state(scale * sum(r[2] for r in results))
        self.rank_tracker.update_state(self.bank.effective_rank())
        if training and self.mode == "queue":
            # One queue for every replica, as MoCo's: each writes the global
            # batch's keys whatever keys its queries contrast with, or the
            # replicas' copies of the bank drift apart.
            if self.scope != "global" and context is not None and context.num_replicas_in_sync > 1:
                written, _ = gather_replica_rows(context, written)
            self.bank.write(written)
        return losses, None

    def inference_model(self):
        """What ships: the trained backbone's pooled features (kind `features`),
        what the linear probe and kNN evaluate."""
        extractor = FeatureExtractor(self.backbone)
        extractor(ops.zeros((1, *image_shape(self.backbone))))
        return extractor

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "bank_size": self.bank_size,
            "dim": self.dim,
            "hidden_dim": self.hidden_dim,
            "temperature": self.temperature,
            "bank_temperature": self.bank_temperature,
            "key_momentum": self.key_momentum,
            "mode": self.mode,
            "symmetric": self.symmetric,
            "shuffle_groups": self.shuffle_groups,
            "scope": self.scope,
        }

    @classmethod
    def from_config(cls, config):
        config = deserialized(config, "backbone")
        if "momentum" in config:  # files saved before the argument's rename
            config["key_momentum"] = config.pop("momentum")
        return cls(**config)
