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


def outputs_of(kind):
    """The output names of an export of `kind`, in order."""
    if kind not in OUTPUTS:
        raise ValueError(f"Unknown export kind {kind!r}; kerazoo exports {sorted(OUTPUTS)}.")
    return OUTPUTS[kind]
