"""BatchFormer: attention runs over the batch, identity at inference, permutation
equivariance, parameter count, serialization, and both scopes on two replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers.layers import check_layer
from helpers.replicas import two_cpu_strategy
from kerazoo.layers import BatchFormer

DIM = 16


def features(n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype("float32")


def built(**kwargs):
    layer = BatchFormer(dropout=kwargs.pop("dropout", 0.0), **kwargs)
    layer.build((None, DIM))
    return layer


def test_changing_one_sample_changes_every_other_output():
    # The most common bug (expand_dims on axis 1) gives one-token sequences:
    # a per-sample MLP, with no error. Row i must depend on row j.
    layer = built()
    x = features()
    changed = x.copy()
    changed[3] += 1.0
    before, after = np.asarray(layer(x, training=True)), np.asarray(layer(changed, training=True))
    others = [i for i in range(len(x)) if i != 3]
    assert np.abs(after[others] - before[others]).min(axis=1).max() > 1e-4
    assert (np.abs(after[others] - before[others]).max(axis=1) > 1e-4).all()


def _torch_encoder_layer(x, block, heads):
    """torch.nn.TransformerEncoderLayer(D, heads, D, dropout=0) on x as the official
    code calls it, x.unsqueeze(1): a sequence of B tokens, written out in NumPy."""

    def dense(layer, h):
        kernel, bias = (np.asarray(w) for w in layer.weights)
        return h @ kernel.reshape(h.shape[-1], -1) + bias.reshape(-1)

    def norm(layer, h):
        gamma, beta = (np.asarray(w) for w in layer.weights)
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + 1e-5) * gamma + beta

    attention = block["attention"]
    q, k, v = (dense(d, x) for d in (attention._query_dense, attention._key_dense, attention._value_dense))
    q, k, v = (t.reshape(len(x), heads, -1).transpose(1, 0, 2) for t in (q, k, v))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    mixed = (weights @ v).transpose(1, 0, 2).reshape(len(x), -1)
    h = norm(block["norm1"], x + dense(attention._output_dense, mixed))
    return norm(block["norm2"], h + dense(block["ffn2"], np.maximum(dense(block["ffn1"], h), 0)))


def test_training_output_is_pytorchs_encoder_layer_over_the_batch():
    # Checked once against torch 2.14 itself with the same weights: 9e-8 apart.
    layer = built(num_heads=4)
    rng = np.random.default_rng(1)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    x = features(10)
    expected = _torch_encoder_layer(x, layer.blocks[0], heads=4)
    assert_allclose(layer(x, training=True), expected, atol=2e-5)


def test_inference_is_the_identity_and_independent_of_the_batch():
    layer = built(dropout=0.5)
    x = features()
    assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert_array_equal(np.asarray(layer(x[:1])), x[:1])  # training defaults to False


def test_permuting_the_batch_permutes_the_output():
    layer = built(num_layers=2)
    x = features(8)
    order = np.random.default_rng(1).permutation(8)
    assert_allclose(
        np.asarray(layer(x[order], training=True)), np.asarray(layer(x, training=True))[order], atol=1e-5
    )


@pytest.mark.parametrize("dim, heads", [(16, 4), (64, 4), (12, 1)])
def test_parameters_per_layer_are_six_d_squared_plus_ten_d(dim, heads):
    # MHA: 4 projections of D×D plus D biases (key_dim = D/heads, so heads·key_dim = D);
    # FFN D→D→D: 2D² + 2D; two LayerNorms: 4D. As torch.nn.TransformerEncoderLayer.
    for layers in (1, 3):
        layer = BatchFormer(num_heads=heads, num_layers=layers)
        layer.build((None, dim))
        assert layer.count_params() == layers * (6 * dim**2 + 10 * dim)


@pytest.mark.parametrize("dim, heads, key_dim, ffn_dim", [(256, 4, None, None), (128, 2, 32, 384)])
def test_initialisation_is_pytorchs_encoder_layer(dim, heads, key_dim, ffn_dim):
    # nn.TransformerEncoderLayer: MHA's (3E, D) in_proj_weight xavier_uniform_
    # with zero bias, out_proj nn.Linear's kernel with zero bias, linear1/2
    # nn.Linear's kernel and bias: uniform in ±1/√fan_in.
    keras.utils.set_random_seed(0)
    layer = BatchFormer(num_heads=heads, key_dim=key_dim, ffn_dim=ffn_dim)
    layer.build((None, dim))
    embed = heads * (key_dim or dim // heads)
    ffn = ffn_dim or dim
    in_proj = np.sqrt(6 / (dim + 3 * embed))
    bounds = {
        "query/kernel": in_proj,
        "key/kernel": in_proj,
        "value/kernel": in_proj,
        "attention_output/kernel": 1 / np.sqrt(embed),
        "ffn1_0/kernel": 1 / np.sqrt(dim),
        "ffn1_0/bias": 1 / np.sqrt(dim),
        "ffn2_0/kernel": 1 / np.sqrt(ffn),
        "ffn2_0/bias": 1 / np.sqrt(ffn),
    }
    values = {}
    for weight in layer.weights:
        value = np.asarray(weight).ravel()
        name = "/".join(weight.path.split("/")[-2:])
        if name in bounds:
            bound = bounds[name]
            assert np.abs(value).max() <= bound, name
            # Uniform in ±bound: std bound/√3, to 10 % with ≥ 128 draws.
            assert abs(value.std() / (bound / np.sqrt(3)) - 1) < 0.1, name
            values[name] = value
        elif "attention" in name:
            assert_array_equal(value, 0)  # the four projection biases
    assert len(values) == len(bounds)
    assert not np.array_equal(values["query/kernel"], values["key/kernel"])  # separate draws


def test_non_default_widths_change_the_count():
    layer = BatchFormer(num_heads=2, key_dim=4, ffn_dim=32)
    layer.build((None, DIM))
    attention = 3 * (DIM * 8 + 8) + 8 * DIM + DIM
    assert layer.count_params() == attention + (DIM * 32 + 32) + (32 * DIM + DIM) + 4 * DIM


def test_config_round_trip_and_keras_file(tmp_path):
    layer = BatchFormer(num_heads=2, num_layers=2, dropout=0.1, scope="global")
    check_layer(layer, features(), (6, DIM), tmp_path)
    layer = BatchFormer(dropout=0.0)
    output = check_layer(layer, features(), (6, DIM), tmp_path, training=True)
    assert not np.allclose(output, features())


def test_dropout_is_active_in_training():
    layer = built(dropout=0.5)
    x = features()
    assert not np.allclose(np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scope": "world"}, "scope"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_heads": 2.5}, "num_heads"),
        ({"dropout": 1.0}, "dropout"),
        ({"key_dim": -2}, "key_dim must be None"),
        ({"ffn_dim": 0}, "ffn_dim must be None"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchFormer(**kwargs)


def test_feature_size_must_split_into_heads():
    with pytest.raises(ValueError, match="divisible"):
        BatchFormer(num_heads=3).build((None, DIM))
    with pytest.raises(ValueError, match="batch, features"):
        BatchFormer().build((None, 4, DIM))


def _on_two_replicas(layer, x):
    """The layer's training output on two replicas, each taking half the batch, in batch order."""
    strategy = two_cpu_strategy()
    with strategy.scope():
        replica_layer = type(layer).from_config(layer.get_config())
        replica_layer.build((None, DIM))
    replica_layer.set_weights(layer.get_weights())
    data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(len(x)))

    @tf.function
    def step(batch):
        return replica_layer(batch, training=True)

    outputs = strategy.run(step, args=(next(iter(data)),))
    return np.concatenate([np.asarray(v) for v in strategy.experimental_local_results(outputs)])


def test_replica_scope_attends_within_each_replica():
    layer = built(scope="replica")
    x = features(8)
    expected = np.concatenate(
        [np.asarray(layer(x[:4], training=True)), np.asarray(layer(x[4:], training=True))]
    )
    assert_allclose(_on_two_replicas(layer, x), expected, atol=1e-5)


def test_global_scope_attends_over_the_global_batch():
    layer = built(scope="global")
    x = features(8)
    assert_allclose(_on_two_replicas(layer, x), np.asarray(layer(x, training=True)), atol=1e-5)
