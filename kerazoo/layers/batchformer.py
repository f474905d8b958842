"""BatchFormer: a transformer encoder whose sequence is the mini-batch (Hou et al., CVPR 2022)."""

import math

import keras
import tensorflow as tf
from keras import ops

from kerazoo import initializers
from kerazoo._checks import is_whole
from kerazoo.ops import gather_replica_rows

SCOPES = ("replica", "global")


@keras.saving.register_keras_serializable(package="kerazoo")
class BatchFormer(keras.layers.Layer):
    """Post-norm transformer encoder layer(s) attending *across the samples* of a batch.

    Input (B, D) features → output (B, D). Each layer is
    `torch.nn.TransformerEncoderLayer(d_model=D, nhead=num_heads,
    dim_feedforward=ffn_dim, dropout)` with PyTorch's defaults, as the
    official code (the BatchFormer README and its BalancedSoftmax encoder network):

        h = LayerNorm(x + Dropout(MHA(x, x, x)))         # attention dropout inside MHA too
        y = LayerNorm(h + Dropout(W₂ Dropout(ReLU(W₁ h))))

    with LayerNorm ε = 1e-5 and no positional encoding, so the layer is
    permutation-equivariant over the batch. The features are treated as one
    sequence of length B: (B, D) → (1, B, D). (Keras' `MultiHeadAttention` is
    batch-first; `expand_dims(x, 1)` would give B sequences of one token and
    silently turn the layer into a per-sample MLP.)

    With `training=False` the layer returns its input unchanged: BatchFormer
    only trains the backbone and head, and `train_only = True` makes the
    exporter refuse a graph that still holds it (ship the model without it,
    as `BatchFormerClassifier.inference_model()` does).

    The layer alone is not the method: the paper's *shared classifier*
    (one head applied to the features both before and after BatchFormer,
    with the labels duplicated, so that the head works without it at test
    time) belongs to `kerazoo.models.BatchFormerClassifier`, which uses this
    layer. Put the layer in your own model only with such a shared head.

    Initialisation is PyTorch's for that layer: the attention's query, key
    and value kernels Glorot-uniform over PyTorch's stacked (3E, D)
    `in_proj_weight` (E = num_heads × key_dim), its output kernel and both
    FFN kernels uniform in ±1/√fan_in (`nn.Linear`'s default), the FFN
    biases too, the attention biases 0. (Keras' defaults, Glorot-uniform
    kernels and zero biases, draw kernels 1.4-1.7× as large at the default
    widths.)

    Parameters per layer at the default widths (key_dim = D / num_heads,
    ffn_dim = D): 4D² + 4D (query, key, value, output projections) + 2D² + 2D
    (FFN) + 4D (two LayerNorms) = 6D² + 10D, as PyTorch's layer.

    Scope under a multi-replica strategy: `"global"` (default, as the
    BalancedSoftmax code, which gathers features on one device) all-gathers
    the features of every replica, attends over the global batch and keeps
    this replica's rows; `"replica"` (as the RIDE and MoCo-v3 code) attends
    over each replica's own batch, so the context is global_batch / replicas.
    Every batch-level term in kerazoo (BNM, AdCo's keys) has the same
    `scope` argument and the same default.

    Args:
        num_heads: attention heads (the paper: 4; must divide D unless
            `key_dim` is given).
        key_dim: size of each head; default D / num_heads.
        ffn_dim: width of the FFN's hidden layer; default D (not 4D).
        dropout: rate at all four places PyTorch applies it (attention
            weights, after attention, inside the FFN, after the FFN).
        num_layers: stacked encoder layers (the paper's ablation: 1 to 32).
        scope: `"replica"` or `"global"`, see above.

    Example:

    ```python
    import numpy as np
    from kerazoo.layers import BatchFormer

    features = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    layer = BatchFormer(num_heads=4)
    mixed = layer(features, training=True)  # (8, 16), rows mix across the batch
    same = layer(features, training=False)  # features, unchanged
    assert mixed.shape == (8, 16) and np.allclose(same, features)
    ```

    References:
        - [Hou et al., BatchFormer: Learning to Explore Sample Relationships for Robust Representation
          Learning, CVPR 2022](https://arxiv.org/abs/2203.01522)
    """

    train_only = True

    def __init__(
        self, num_heads=4, key_dim=None, ffn_dim=None, dropout=0.5, num_layers=1, scope="global", **kwargs
    ):
        super().__init__(**kwargs)
        if scope not in SCOPES:
            raise ValueError(f"BatchFormer scope must be one of {SCOPES}, got {scope!r}.")
        if not (is_whole(num_layers, 1) and is_whole(num_heads, 1)):
            raise ValueError(
                f"BatchFormer needs whole numbers num_layers >= 1 and num_heads >= 1, got {num_layers!r} "
                f"and {num_heads!r}."
            )
        for name, size in (("key_dim", key_dim), ("ffn_dim", ffn_dim)):
            # ffn_dim=0 meant the default width silently.
            if size is not None and not is_whole(size, 1):
                raise ValueError(
                    f"BatchFormer {name} must be None (the default) or a whole number >= 1, got {size!r}."
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"BatchFormer dropout must be in [0, 1), got {dropout}.")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.num_layers = num_layers
        self.scope = scope

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"BatchFormer takes (batch, features) inputs with a known feature size, got {input_shape}."
            )
        dim = int(input_shape[-1])
        if self.key_dim is None and dim % self.num_heads:
            raise ValueError(
                f"BatchFormer: the feature size {dim} is not divisible by num_heads={self.num_heads}; "
                "pass key_dim or another num_heads."
            )
        key_dim = self.key_dim or dim // self.num_heads
        ffn_dim = self.ffn_dim or dim
        embed = self.num_heads * key_dim
        sequence = (1, None, dim)
        self.blocks = []
        policy = self.dtype_policy  # not the global one, which may differ when this builds
        for i in range(self.num_layers):
            block = {
                # float32 whatever the policy: the softmax across the batch
                # is the batch-level term a mixed-precision run keeps exact.
                "attention": keras.layers.MultiHeadAttention(
                    self.num_heads,
                    key_dim,
                    dropout=self.dropout,
                    # xavier_uniform_ of the (3E, D) in_proj_weight: fans D and 3E.
                    kernel_initializer=initializers.uniform(math.sqrt(6.0 / (dim + 3 * embed))),
                    name=f"attention_{i}",
                    dtype="float32",
                ),
                "norm1": keras.layers.LayerNormalization(epsilon=1e-5, name=f"norm1_{i}", dtype=policy),
                "ffn1": initializers.dense(ffn_dim, dim, activation="relu", name=f"ffn1_{i}", dtype=policy),
                "ffn2": initializers.dense(dim, ffn_dim, name=f"ffn2_{i}", dtype=policy),
                "norm2": keras.layers.LayerNormalization(epsilon=1e-5, name=f"norm2_{i}", dtype=policy),
                "dropout": keras.layers.Dropout(self.dropout, name=f"dropout_{i}", dtype=policy),
            }
            block["attention"].build(sequence, sequence)
            # out_proj keeps nn.Linear's kernel draw (its bias is zeroed, as Keras').
            output = block["attention"].output_dense.kernel
            output.assign(initializers.uniform(1.0 / math.sqrt(embed))(output.shape, output.dtype))
            block["norm1"].build(sequence)
            block["ffn1"].build(sequence)
            block["ffn2"].build((1, None, ffn_dim))
            block["norm2"].build(sequence)
            self.blocks.append(block)

    def call(self, features, training=False):
        if not training:
            return features
        context = tf.distribute.get_replica_context()
        gather = self.scope == "global" and context is not None and context.num_replicas_in_sync > 1
        if gather:
            features, rows = gather_replica_rows(context, features)
        x = ops.expand_dims(features, 0)  # one sequence whose tokens are the samples
        for block in self.blocks:
            attended = ops.cast(block["attention"](x, x, x, training=training), x.dtype)
            x = block["norm1"](x + block["dropout"](attended, training=training))
            hidden = block["dropout"](block["ffn1"](x), training=training)
            x = block["norm2"](x + block["dropout"](block["ffn2"](hidden), training=training))
        x = ops.squeeze(x, 0)
        return x[rows[0] : rows[1]] if gather else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "ffn_dim": self.ffn_dim,
                "dropout": self.dropout,
                "num_layers": self.num_layers,
                "scope": self.scope,
            }
        )
        return config
