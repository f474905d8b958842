"""Sanity check of the `glyphs` dataset: a small convnet on the balanced
splits, its test accuracy and its most confused class pairs.

    python -m benchmarks.glyphs_sanity [--data-dir DIR] [--epochs 12]

Writes benchmarks/results/glyphs_sanity.json, glyphs_confusion.png and
glyphs_samples.png. Confusions are counted on the test split plus extra
renders of the same distribution (test indices past the split's 2,350), so
that rare pairs show up; each error is attributed to its font.
"""

import argparse
import collections
import json
import os
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def model_fn(num_classes):
    import keras
    from keras import layers

    def block(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        return layers.ReLU()(x)

    inputs = keras.Input((28, 28, 1))
    x = block(inputs, 32)
    x = block(x, 32)
    x = layers.MaxPooling2D()(x)
    x = block(x, 64)
    x = block(x, 64)
    x = layers.MaxPooling2D()(x)
    x = block(x, 128)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--extra-per-class", type=int, default=200)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from kerazoo.data import glyphs, load_arrays

    keras.utils.set_random_seed(0)
    train_x, train_y, info = load_arrays("glyphs", "train", args.data_dir)
    test_x, test_y, _ = load_arrays("glyphs", "test", args.data_dir)
    names = info.features["label"].names

    batch = 64
    steps = args.epochs * int(np.ceil(len(train_y) / batch))
    schedule = keras.optimizers.schedules.CosineDecay(0.05, steps)
    model = model_fn(len(names))
    model.compile(
        keras.optimizers.SGD(schedule, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    started = time.time()
    model.fit(train_x, train_y, batch_size=batch, epochs=args.epochs, verbose=2, shuffle=True)
    train_seconds = time.time() - started
    test_accuracy = float(np.mean(model.predict(test_x, 512, verbose=0).argmax(1) == test_y))

    # More of the test distribution, with the font of every image.
    first = len(test_y)
    extra = [glyphs.render_example("test", i) for i in range(first, first + 47 * args.extra_per_class)]
    extra_x = np.stack([image for image, _, _ in extra]).astype(np.float32) / 255.0
    extra_y = np.array([label for _, label, _ in extra])
    extra_fonts = [font for _, _, font in extra]
    extra_pred = model.predict(extra_x, 512, verbose=0).argmax(1)
    extra_accuracy = float(np.mean(extra_pred == extra_y))

    confusion = np.zeros((47, 47), np.int64)
    np.add.at(confusion, (extra_y, extra_pred), 1)
    pairs = collections.Counter()
    by_font = collections.defaultdict(collections.Counter)
    for y, p, font in zip(extra_y, extra_pred, extra_fonts):
        if y != p:
            pair = f"{names[y]}->{names[p]}"
            pairs[pair] += 1
            by_font[pair][font] += 1
    top = [
        {"pair": pair, "count": count, "fonts": dict(by_font[pair].most_common(4))}
        for pair, count in pairs.most_common(12)
    ]
    font_errors = collections.Counter(f for f, y, p in zip(extra_fonts, extra_y, extra_pred) if y != p)
    font_totals = collections.Counter(extra_fonts)
    font_error_rate = {f: round(font_errors[f] / font_totals[f], 4) for f in sorted(font_totals)}

    os.makedirs(RESULTS, exist_ok=True)
    result = {
        "model": "5 conv (32,32,64,64,128) + BN(momentum 0.9) + GAP + dense",
        "optimizer": "SGD momentum 0.9, lr 0.05 cosine, batch 64",
        "epochs": args.epochs,
        "train_seconds": round(train_seconds, 1),
        "test_accuracy": test_accuracy,
        "extra_renders": len(extra_y),
        "extra_accuracy": extra_accuracy,
        "top_confusions": top,
        "error_rate_by_font": font_error_rate,
    }
    with open(os.path.join(RESULTS, "glyphs_sanity.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    plots(confusion, names, test_x, test_y)


def plots(confusion, names, images, labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = confusion / confusion.sum(1, keepdims=True)
    off = rates.copy()
    np.fill_diagonal(off, 0.0)
    fig, ax = plt.subplots(figsize=(11, 10))
    im = ax.imshow(off, cmap="magma", vmin=0.0)
    ax.set_xticks(range(47), names, fontsize=7)
    ax.set_yticks(range(47), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("glyphs test: confusion rates off the diagonal")
    fig.colorbar(im, ax=ax, fraction=0.046).set_label("fraction of the true class's test images")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "glyphs_confusion.png"), dpi=90)
    plt.close(fig)

    # Eight test images of every class, classes in columns.
    rows = 8
    grid = np.zeros((rows * 28, 47 * 28))
    for c in range(47):
        for r, i in enumerate(np.flatnonzero(labels == c)[:rows]):
            grid[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = images[i, ..., 0]
    plt.imsave(os.path.join(RESULTS, "glyphs_samples.png"), grid, cmap="gray", vmin=0, vmax=1)


if __name__ == "__main__":
    main()
