"""The BatchFormer recipe: config checks, a toy run on two replicas, the CIFAR-100-LT and the
streamed ImageNet-LT protocols on tfds mock data."""

import json
import os

import keras
import pytest

from helpers.recipes import run_config_on_mock_data
from kerazoo.data.streamed import EVAL_CROP_FRACTION
from kerazoo.inputs import input_spec
from kerazoo.layers import BatchFormer
from kerazoo.models import Classifier
from kerazoo.recipes.config import ConfigError, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
METHODS = ("ce", "ce_batchformer", "balanced_softmax", "balanced_softmax_batchformer")


def test_defaults_and_the_digits_toml_agree_and_ten_seeds_resolve(config_class):
    cls = config_class("batchformer")
    default = resolve(cls)
    from_file = resolve(cls, [os.path.join(ROOT, "recipes", "digits_batchformer.toml")])
    assert default == from_file
    assert (default.dataset, default.batch_size, default.num_seeds) == ("digits-lt", 64, 3)
    assert resolve(cls, sets=["num_seeds=10"]).seeds == list(range(10))


def test_effects_are_called_gains_only_when_a_paired_t_test_says_so():
    from kerazoo.recipes.batchformer.experiment import effect_verdicts
    from kerazoo.recipes.results import MethodResult

    def seed(ce, bf, few=True):
        row = lambda v: {"few": v if few else None, "test_accuracy": v}  # noqa: E731
        return {
            "ce": MethodResult({"ce": row(ce)}),
            "ce_batchformer": MethodResult({"ce_batchformer": row(bf)}),
        }

    noisy = effect_verdicts({0: seed(0.5, 0.52), 1: seed(0.5, 0.47)})
    assert noisy == [
        "CE + BatchFormer − CE, same seed over 2 seeds: few-shot -0.5 ± 2.5 "
        "(within seed noise, p = 0.87); overall -0.5 ± 2.5 (within seed noise, p = 0.87)."
    ]
    # Two seeds that agree are not yet evidence (p = 0.058); three are.
    assert effect_verdicts({0: seed(0.5, 0.56), 1: seed(0.5, 0.55)})[0].count("(within seed noise") == 2
    clear = effect_verdicts({0: seed(0.5, 0.56), 1: seed(0.5, 0.55), 2: seed(0.5, 0.555)})
    assert clear[0].count("(a gain, p = 0.0027)") == 2
    # A protocol whose smallest class is not under `few_shot` images.
    empty = effect_verdicts({0: seed(0.5, 0.56, few=False), 1: seed(0.5, 0.55, few=False)})
    assert empty[0].startswith(
        "CE + BatchFormer − CE, same seed over 2 seeds: few-shot: no class in the group;"
    )
    assert effect_verdicts({0: seed(0.5, 0.56)})[0].endswith(
        "few-shot +6.0 (one seed); overall +6.0 (one seed)."
    )


def test_imagenet_lt_toml_is_the_official_balanced_softmax_config(config_class):
    paper = resolve(
        config_class("batchformer"), [os.path.join(ROOT, "recipes", "imagenet_lt_batchformer.toml")]
    )
    assert (paper.dataset, paper.image_size, paper.backbone, paper.augment) == (
        "imagenet_lt",
        224,
        "resnet50",
        "crop_flip",
    )
    assert (paper.batch_size, paper.optimizer, paper.learning_rate, paper.momentum, paper.weight_decay) == (
        128,
        "sgd",
        0.05,
        0.9,
        5e-4,
    )
    assert (paper.epochs, paper.passes_per_epoch, paper.batchformer_lr_scale) == (90, 1, 0.1)
    assert (paper.many_shot, paper.few_shot) == (100, 20)
    assert paper.methods == ["balanced_softmax", "balanced_softmax_batchformer"]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["few_shot=200"], "few_shot"),
        (["methods=[]"], "methods"),
        (["batch_scope=world"], "batch_scope"),
        (["dataset=imagenet_lt"], "image_size"),
        (["dataset=imagenet_lt-lt", "image_size=224"], "no modifiers"),
    ],
)
def test_bad_configs_are_refused(config_class, sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve(config_class("batchformer"), sets=sets)


@pytest.mark.slow
def test_toy_run_on_two_replicas_reports_shots_effects_and_ships_without_batchformer(two_replica_run):
    # Two methods, one seed (time); the full default run's tables are in the README.
    metrics, out = two_replica_run(
        "batchformer",
        "epochs=2",
        "passes_per_epoch=2",
        "num_seeds=1",
        "batch_scope=global",
        "methods=balanced_softmax,balanced_softmax_batchformer",
    )
    assert metrics["replicas"] == 2 and metrics["seeds"] == [0]
    assert list(metrics["results"]) == list(METHODS[2:])
    for rows in metrics["results"].values():
        assert set(rows) == {"test_accuracy", "many", "medium", "few"}
    assert metrics["report"]["classes_per_group"] == {"many": 1, "medium": 1, "few": 8}
    report = (out / "report.md").read_text()
    assert "| Balanced Softmax + BatchFormer − Balanced Softmax |" in report
    assert "| CE + BatchFormer − CE |" not in report  # CE did not run
    assert "one seed" in report and "(shots.png)" in report
    assert "Balanced Softmax + BatchFormer − Balanced Softmax, same seed over 1 seed: few-shot" in report
    assert (out / "shots.png").stat().st_size > 0
    assert metrics["model"]["kind"] == "classifier"
    assert metrics["model"]["metrics"] == {
        k: v[0] for k, v in metrics["results"]["balanced_softmax_batchformer"].items()
    }
    shipped = keras.saving.load_model(out / "model.keras")
    assert type(shipped) is Classifier
    assert not any(isinstance(layer, BatchFormer) for layer in shipped._flatten_layers())


@pytest.mark.slow
def test_cifar100_lt_protocol_runs_on_tfds_mock_data(tmp_path):
    # The protocol's long tail, ResNet-32 and BatchFormer at d = 64.
    metrics, out = run_config_on_mock_data(
        "batchformer",
        "cifar100_lt_batchformer.toml",
        tmp_path,
        "epochs=1",
        "batch_size=16",
        "methods=balanced_softmax_batchformer",
        "warmup_steps=2",
    )
    assert list(metrics["results"]) == ["balanced_softmax_batchformer"]
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["dataset"], config["backbone"]) == ("cifar100-lt100", "ldam_resnet32")
    assert (config["warmup_learning_rate"], config["batchformer_loss_weight"]) == (0.1, 3.0)
    assert "exponential long tail (rho 100" in (out / "report.md").read_text()


@pytest.mark.slow
def test_imagenet_lt_protocol_streams_resnet50_on_tfds_mock_data(tmp_path):
    # ResNet-50 and BatchFormer at d = 2048 as in the paper, at 32x32 on 64
    # mock images, one method (each costs ~40 s of ResNet-50 compilation,
    # the export ~60 s). Balanced Softmax needs all 1,000 classes in the
    # training set (mock labels cover them from ~6,400 images, too slow
    # here), so this runs CE + BatchFormer; the CIFAR-100-LT test runs
    # Balanced Softmax. Toy lr: 4 steps at 0.05 on noise blow the logits up
    # to ~1e12, beyond what the ONNX parity check can compare.
    metrics, out = run_config_on_mock_data(
        "batchformer",
        "imagenet_lt_batchformer.toml",
        tmp_path,
        "image_size=32",
        "epochs=1",
        "batch_size=16",
        "learning_rate=0.001",
        "methods=ce_batchformer",
        "exports=none",
        num_examples=64,  # the shipped method (Balanced Softmax + BatchFormer) does not run
    )
    assert list(metrics["results"]) == ["ce_batchformer"]
    assert set(metrics["results"]["ce_batchformer"]) == {"test_accuracy", "many", "medium", "few"}
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["dataset"], config["backbone"], config["batch_size"]) == ("imagenet_lt", "resnet50", 16)
    assert "imagenet_lt: 64 train / 64 test images from tfds, streamed" in (out / "report.md").read_text()
    assert metrics["model"] is None  # nothing ships without Balanced Softmax + BatchFormer
    assert (out / "logs" / "seed0-ce_batchformer.csv").read_text().count("\n") == 2  # header + 1 epoch
    # What a streamed run's model records as its preprocessing.
    spec = input_spec("imagenet_lt", 32, crop_fraction=EVAL_CROP_FRACTION)
    assert (
        "shorter side resized to 37 (bilinear, antialiased) and the central 32x32 crop"
        in spec["preprocessing"]
    )
