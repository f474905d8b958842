"""Export kinds: what a deployed model outputs, by the `kind` of its model.

No dependencies: the zoo and the ONNX runtime read it without TensorFlow.
"""

# A model without a `kind` attribute is deployed as a classifier.
DEFAULT_KIND = "classifier"

OUTPUTS = {
    # logits (B, C) and their softmax.
    "classifier": ("logits", "probabilities"),
    # feature vectors (B, D), no softmax.
    "features": ("features",),
}

# The output `predict` returns for each kind, in every format
# (`kerazoo.export.predictor.Predictor`).
PREDICTED = {"classifier": "probabilities", "features": "features"}


def outputs_of(kind):
    """The output names of an export of `kind`, in order.

    Args:
        kind: `"classifier"` or `"features"`.

    Example:

    ```python
    from kerazoo.export.kinds import outputs_of

    print(outputs_of("classifier"))  # ('logits', 'probabilities')
    ```
    """
    if kind not in OUTPUTS:
        raise ValueError(f"Unknown export kind {kind!r}; kerazoo exports {sorted(OUTPUTS)}.")
    return OUTPUTS[kind]


def kind_of_outputs(names):
    """The kind whose outputs are `names` (any order), e.g. a SavedModel's
    signature outputs; ValueError if no kind has exactly those.

    Args:
        names: output names.

    Example:

    ```python
    from kerazoo.export.kinds import kind_of_outputs

    print(kind_of_outputs(["probabilities", "logits"]))  # classifier
    ```
    """
    for kind, outputs in OUTPUTS.items():
        if sorted(outputs) == sorted(names):
            return kind
    raise ValueError(
        f"Outputs {sorted(names)} are not those of a kerazoo export "
        f"({'; '.join(f'{k}: {list(v)}' for k, v in OUTPUTS.items())}); export the model with "
        "kerazoo.export."
    )
