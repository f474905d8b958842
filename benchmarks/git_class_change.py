"""How often does a GIT translation change the character? A translation
that turns a `q` into a `g` is label noise for the classifier GIT trains.

    python -m benchmarks.git_class_change RUN_DIR [--judge-epochs 5] [--styles 10]
        [--style-source prior encoded own]

RUN_DIR is a finished or running GIT recipe run on a glyphs protocol that
holds translator.keras. A judge classifier (the 5-convolution backbone) is
trained on the *balanced* training split with the run's nuisance (e.g.
`glyphs-bg`: 500 images per class, every class well learnt), then judges
`--styles` translations of each tail-class training image (those GIT
translates: fewer than the run's `threshold` training images). Reported: the
judge's test accuracy, its error on the untranslated tail images (the floor
of what it can tell), and the share of translations it assigns to another
class, overall, among the images it reads right untranslated, and for the
worst classes. Writes
benchmarks/results/git_class_change-<run name>.json.
"""

import argparse
import json
import os
import pathlib
import time

import numpy as np

from kerazoo.recipes.git import STYLES

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def train_judge(protocol, epochs, seed):
    """A convnet5 classifier on `protocol`'s balanced training split (SGD 0.05 cosine, batch 64)."""
    import keras

    from kerazoo import backbones
    from kerazoo.data import EpochCounter, train_dataset
    from kerazoo.models import Classifier

    keras.utils.set_random_seed(seed)
    counter = EpochCounter()
    data = train_dataset(protocol.train_images, protocol.train_labels, 64, seed=seed, epoch_counter=counter)
    steps = epochs * (len(protocol.train_labels) // 64)
    judge = Classifier(backbones.get("convnet5", input_shape=protocol.image_shape), protocol.num_classes)
    schedule = keras.optimizers.schedules.CosineDecay(0.05, steps)
    judge.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), metrics=["accuracy"])
    judge.fit(data, epochs=epochs, callbacks=[counter], verbose=2)
    return judge


def predicted(model, images):
    return np.argmax(model.predict(images, batch_size=512, verbose=0), axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("--judge-epochs", type=int, default=5)
    parser.add_argument("--styles", type=int, default=10, help="translations per tail image")
    parser.add_argument(
        "--style-source",
        nargs="+",
        choices=[*STYLES, "own"],
        default=["prior"],
        help="where the styles come from (each judged in turn): prior, N(0, I) as GIT's code; "
        "encoded, the styles of training images drawn class-balanced, as a DRS batch holds them; "
        "own, each image's own style (a reconstruction: what the translator changes with no "
        "new style)",
    )
    parser.add_argument(
        "--style-scale",
        type=float,
        help="factor on the styles (default: the run's style_scale, 1 for runs without one)",
    )
    parser.add_argument("--data-dir", default=os.environ.get("KERAZOO_DATA_DIR"))
    args = parser.parse_args(argv)

    import keras

    import kerazoo.models  # noqa: F401  (registers the translator's classes)
    from kerazoo.data import make_protocol, parse_protocol_name
    from kerazoo.recipes.git.experiment import draw_styles

    saved = json.loads((args.run_dir / "config.json").read_text())
    config = saved["config"]
    base, _, long_tail = parse_protocol_name(config["dataset"])
    transform, seed, image_size = config["transform"], config["seed"], config["image_size"] or None
    shifted = make_protocol(
        "-".join(filter(None, [base, transform, long_tail])), args.data_dir, seed, image_size
    )
    balanced = make_protocol(f"{base}-{transform}", args.data_dir, seed, image_size)
    translator = keras.saving.load_model(args.run_dir / "translator.keras")
    scale = config.get("style_scale", 1.0) if args.style_scale is None else args.style_scale

    start = time.perf_counter()
    judge = train_judge(balanced, args.judge_epochs, seed)
    judge_seconds = time.perf_counter() - start
    judge_accuracy = float(np.mean(predicted(judge, balanced.test_images) == balanced.test_labels))

    counts = shifted.class_counts()
    rows = np.flatnonzero(counts[shifted.train_labels] < config["threshold"])
    images, labels = shifted.train_images[rows], shifted.train_labels[rows]
    # A judge that misreads an untranslated image says nothing of what its
    # translations change: the rate among the images it reads right is the
    # translator's alone (it matters where the judge errs often: rotations).
    read_right = predicted(judge, images) == labels
    source_error = float(np.mean(~read_right))
    for source in args.style_source:
        draws = 1 if source == "own" else args.styles
        changed = np.zeros((draws, len(rows)), bool)
        for k in range(draws):
            if source == "own":
                styles = translator.styles_of(images)
            else:
                styles = draw_styles(translator, source, shifted, len(images), 1000 + k, scale)
            changed[k] = predicted(judge, np.asarray(translator.translate(images, styles))) != labels
        per_class = {shifted.class_names[c]: float(changed[:, labels == c].mean()) for c in np.unique(labels)}
        worst = sorted(per_class.items(), key=lambda item: -item[1])[:8]
        result = {
            "run": str(args.run_dir),
            "protocol": shifted.name,
            "judge": f"convnet5 on {balanced.name} ({len(balanced.train_labels)} images), "
            f"{args.judge_epochs} epochs, SGD 0.05 cosine, batch 64",
            "judge_seconds": round(judge_seconds, 1),
            "judge_test_accuracy": judge_accuracy,
            "tail_classes": len(per_class),
            "tail_images": int(len(rows)),
            "styles_per_image": draws,
            "style_source": source,
            "style_scale": None if source == "own" else scale,
            "source_error": source_error,
            "class_change_rate": float(changed.mean()),
            "class_change_rate_where_judge_reads_source": float(changed[:, read_right].mean()),
            "worst_classes": dict(worst),
        }
        RESULTS.mkdir(exist_ok=True)
        suffix = ("" if source == "prior" else f"-{source}") + (
            "" if source == "own" or scale == 1 else f"-x{scale:g}"
        )
        out = RESULTS / f"git_class_change-{args.run_dir.name}{suffix}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"judge: {judge_accuracy:.1%} test accuracy ({judge_seconds:.0f} s); tail images: "
            f"{len(rows)} in {len(per_class)} classes; judge error on them untranslated: "
            f"{source_error:.1%}; {source} styles: translations judged another class: "
            f"{changed.mean():.1%} ({changed[:, read_right].mean():.1%} of the images it reads "
            f"right untranslated)\nworst classes: {', '.join(f'{c} {r:.0%}' for c, r in worst)}\n"
            f"wrote {out}"
        )


if __name__ == "__main__":
    main()
