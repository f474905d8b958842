"""One compiled model of every kerazoo model class, at toy size, for the
tests that train each of them (mixed precision, export)."""

import keras
import numpy as np

from helpers.export import SHAPE
from helpers.export import random_images as images
from kerazoo import backbones
from kerazoo.models import Classifier


def every_model():
    """{name: (compiled model, one batch of its training data)} for every
    kerazoo model, built under the current dtype policy."""
    from kerazoo.incremental import METHODS, Settings, grow_head, snapshot
    from kerazoo.layers import BatchFormer, CosineLinear, GITAugment
    from kerazoo.models import (
        MUNIT,
        AdCo,
        BatchFormerClassifier,
        DomainAdapter,
        GITClassifier,
        LUCIRClassifier,
        MUNITGenerator,
    )
    from kerazoo.optimizers import GradientAscent

    rng = np.random.default_rng(0)
    x, y = images(16), rng.integers(0, 4, 16)

    def backbone(**kwargs):
        return backbones.get("convnet", input_shape=SHAPE, width=8, **kwargs)

    lucir_backbone = backbone(last_relu=False)
    old_head = CosineLinear(2)
    old_head.build(lucir_backbone.output_shape)

    def generator():
        return MUNITGenerator(SHAPE, dim=4, style_dim=2, n_downsample=1, n_res=1, mlp_dim=8, seed=0)

    models = {
        "classifier": (Classifier(backbone(), 4), (x, y)),
        "bnm": (DomainAdapter(backbone(), 4, method="bnm"), ((x, y), images(16, seed=1))),
        "batchformer": (BatchFormerClassifier(backbone(), 4, BatchFormer(num_heads=2)), (x, y)),
        "lucir": (
            LUCIRClassifier(
                lucir_backbone,
                grow_head(old_head, 2, freeze_old=True),
                snapshot(lucir_backbone),
                None,
                2,
                Settings().loss(METHODS["lucir"]),
            ),
            (x, y),
        ),
        "adco": (AdCo(backbone(), bank_size=32, dim=8, hidden_dim=16), (x, images(16, seed=1))),
        "git": (
            GITClassifier(backbone(), 4, augment=GITAugment(generator(), [20, 20, 5, 5], 10, seed=0)),
            (x, y),
        ),
        # GITAugment freezes its translator: MUNIT trains a generator of its own.
        "munit": (MUNIT(generator(), disc_dim=4, disc_layers=2, seed=0), x),
    }
    for name, (model, _) in models.items():
        extra = {"bank_optimizer": GradientAscent(keras.optimizers.SGD(3.0))} if name == "adco" else {}
        model.compile(optimizer=keras.optimizers.SGD(0.01), **extra)
    return models
