"""What a run ships: model.keras, the SavedModel `model/` and the
parity-checked `model.onnx` of a trained model's `inference_model()`."""

from kerazoo.atomic import atomic_path
from kerazoo.data.streamed import EVAL_CROP_FRACTION
from kerazoo.export import export_onnx, export_savedmodel, kind_of
from kerazoo.inputs import input_spec
from kerazoo.protocol_names import is_streamed


def export_model(path, result, config, data_notes, log, metrics=None):
    """Write `result.model.inference_model()` into the run directory `path`
    (overwriting the files of an earlier, unfinished invocation;
    `config.exports == "keras"` writes only model.keras) and return its
    description for metrics.json (kind, class names, input, preprocessing,
    training data, `metrics` and what they were measured on, ONNX parity).

    Args:
        path: the run directory (a `pathlib.Path`).
        result: the shipping method's `results.MethodResult`.
        config: the run's config (dataset, image size, exports).
        data_notes: what the model was trained on, for its record.
        log: `log(message, console=False)`, the run's log.
        metrics: the test metrics quoted for the model; default
            `result.model_metrics`.

    Example:

    ```python
    described = export_model(run.path, result, config, run.data_notes, run.log)
    ```
    """

    model = result.model.inference_model()
    kind = kind_of(model)
    class_names = result.class_names if kind == "classifier" else None
    with atomic_path(path / "model.keras") as tmp:
        model.save(tmp)
    log("export: model.keras written", console=False)
    description = {
        "kind": kind,
        "class_names": class_names,
        "input_shape": [None, *result.input_shape],
        **input_spec(
            config.dataset,
            config.image_size,
            crop_fraction=EVAL_CROP_FRACTION if is_streamed(config.dataset) else None,
        ),
        "training_data": data_notes,
        "metrics": metrics or result.model_metrics,
        "evaluated_on": config.evaluated_on,
    }
    if config.exports == "keras":
        return description
    export_savedmodel(model, path / "model", overwrite=True)
    log("export: SavedModel model/ (signature 'serve') written", console=False)
    parity = export_onnx(
        model,
        path / "model.onnx",
        sample_images=result.sample_images,
        class_names=class_names,
        overwrite=True,
    )
    log(
        "export: model.onnx written (max |ONNX Runtime - Keras| "
        + ", ".join(f"{v:.1e} at batch {b}" for b, v in parity.items())
        + ")"
    )
    return {**description, "onnx_parity_max_abs_diff": {str(b): float(v) for b, v in parity.items()}}
