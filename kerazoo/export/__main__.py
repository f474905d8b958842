"""`python -m kerazoo.export RUN_DIR_OR_MODEL --out DIR [--onnx] [--savedmodel]`

Exports a trained model (a recipe run directory holding `model.keras`, a
zoo model's folder, or a `.keras` file) as `DIR/model/` (SavedModel,
signature `serve`) and `DIR/model.onnx` (parity-checked against Keras).
With neither flag, both. The ONNX file also gets the class names the run
recorded (its metrics.json) or the zoo lists (its manifest.json); a
classifier without them is exported with a note that its outputs are
column indices.

Example:

    python -m kerazoo.export runs/baseline-20260101T000000 --out export/digits
"""

import argparse
import json
import math
import sys
import tempfile
import zipfile
from pathlib import Path

from kerazoo.atomic import remove_dir

# TensorFlow's import takes seconds: `--help` and the mistakes of the command
# line are answered before it (`_export` imports it).


class _UsageError(Exception):
    """A problem with the command line's inputs; exit status 2."""


def main(argv=None):
    args = _parser().parse_args(argv)
    out = Path(args.out)
    both = not (args.savedmodel or args.onnx)
    targets = {}
    if args.savedmodel or both:
        targets["savedmodel"] = out / "model"
    if args.onnx or both:
        targets["onnx"] = out / "model.onnx"
    try:
        if not (math.isfinite(args.atol) and args.atol >= 0):  # before anything is written
            raise _UsageError(f"--atol must be a finite number >= 0, got {args.atol:g}.")
        if out.exists() and not out.is_dir():
            raise _UsageError(f"--out {out} is a file; name a directory (it gets model/ and model.onnx).")
        for target in targets.values():  # before the slow load, not after
            if target.exists() and not args.overwrite:
                raise _UsageError(f"{target} already exists; pass --overwrite to replace it.")
        _check_replaceable(targets)
        _check_writable(out)
        path = _model_file(Path(args.source))
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return _export(args, path, targets)


def _check_replaceable(targets):
    # --overwrite replaces exports, not whatever else has their names.
    saved, onnx_file = targets.get("savedmodel"), targets.get("onnx")
    if saved is not None and saved.exists() and not (saved / "saved_model.pb").is_file():
        raise _UsageError(
            f"{saved} exists and is not a SavedModel (no saved_model.pb), so --overwrite would delete "
            "files no export wrote; move them, or choose another --out."
        )
    if onnx_file is not None and onnx_file.is_dir():
        raise _UsageError(f"{onnx_file} is a directory, not an ONNX file; move it, or choose another --out.")


def _check_writable(out):
    # Before the slow load and conversion, not after them.
    folder = out
    while not folder.exists():
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise _UsageError(
            f"--out {out}: cannot write in {folder} ({error.strerror}); choose another --out."
        ) from None


def _export(args, path, targets):
    from kerazoo.export.kinds import DEFAULT_KIND
    from kerazoo.export.onnx import ParityError, export_onnx
    from kerazoo.export.savedmodel import export_savedmodel

    try:
        model = _load(path)
        class_names = _class_names(path)
        if class_names is None and getattr(model, "kind", DEFAULT_KIND) == "classifier":
            print(
                f"note: no class names recorded beside {path} (a run's metrics.json or a zoo's "
                "manifest.json); the ONNX file carries none, and its outputs are the model's columns, "
                "which need not be in label order (LUCIR's are in its class order).",
                file=sys.stderr,
            )
        # ONNX first: its parity check can fail, and then neither file is
        # written (a new SavedModel beside an old ONNX file would disagree).
        if "onnx" in targets:
            print(f"[export] ONNX -> {targets['onnx']}", flush=True)
            diffs = export_onnx(
                model, targets["onnx"], atol=args.atol, class_names=class_names, overwrite=args.overwrite
            )
            checked = ", ".join(f"batch {n}: {d:.2g}" for n, d in diffs.items())
            print(f"[export] parity ONNX Runtime vs Keras, max abs diff: {checked} (atol {args.atol:g})")
        if "savedmodel" in targets:
            if len(targets) == 2 and targets["savedmodel"].exists():
                # The new ONNX file is written: a process killed while the
                # new SavedModel is written must not leave the old one beside
                # it.
                remove_dir(targets["savedmodel"])
                print(f"[export] removed the old SavedModel {targets['savedmodel']}", flush=True)
            print(f"[export] SavedModel -> {targets['savedmodel']}", flush=True)
            export_savedmodel(model, targets["savedmodel"], overwrite=args.overwrite)
    # ValueError: deploy_model cannot build the model's inference graph.
    except (_UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ParityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m kerazoo.export",
        description="Export a trained kerazoo model as SavedModel and/or ONNX.",
    )
    parser.add_argument(
        "source",
        help="run directory containing model.keras, a zoo model's folder, or a .keras file (required)",
    )
    parser.add_argument(
        "--out", required=True, help="output directory, gets model/ and model.onnx (required; no default)"
    )
    parser.add_argument(
        "--savedmodel",
        action="store_true",
        help="write the SavedModel (default: off; with neither --savedmodel nor --onnx, both are written)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="write the ONNX file (default: off; with neither --savedmodel nor --onnx, both are written)",
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=1e-4,
        help="ONNX parity tolerance: largest allowed |ONNX Runtime - Keras| (default: %(default)g)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing exports (default: off; an existing output is an error)",
    )
    return parser


def _class_names(path):
    """The class names of the model in `path`: those its recipe run recorded
    (`RUN/metrics.json` beside `RUN/model.keras`), or those a zoo lists
    (`saved_models/manifest.json` for `saved_models/NAME/NAME.keras`); else None."""
    metrics = path.parent / "metrics.json"
    if path.name == "model.keras" and metrics.is_file():
        return json.loads(metrics.read_text()).get("model", {}).get("class_names")
    manifest = path.parent.parent / "manifest.json"
    if path.stem == path.parent.name and manifest.is_file():
        return json.loads(manifest.read_text()).get("models", {}).get(path.stem, {}).get("classes")
    return None


def _model_file(source):
    """The model.keras of a run directory, NAME.keras of a zoo model's
    folder NAME, or the .keras file itself."""
    path = source / "model.keras" if source.is_dir() else source
    if source.is_dir() and not path.is_file() and (source / f"{source.name}.keras").is_file():
        path = source / f"{source.name}.keras"
    if not path.is_file():
        where = f"{source} has no model.keras" if source.is_dir() else f"no such file: {source}"
        # A zoo model's folder names its file after the model.
        others = sorted(p.name for p in source.glob("*.keras")) if source.is_dir() else []
        if others:
            fix = f"it holds {', '.join(others)}: pass that file"
        elif (source / "metrics.json").is_file():
            fix = (
                "the run saved no model (`exports=none`, or its shipping method was not among its "
                "methods): re-run it with --set exports=keras or exports=all"
            )
        elif (source / "config.json").is_file():
            fix = "the run is unfinished: re-run its command to finish it, which exports its model"
        else:
            fix = "pass a run directory or a .keras file"
        raise _UsageError(f"{where}; {fix}.")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        # Keras' loader answers "File not found" for it.
        raise _UsageError(
            f"{path} is not a .keras file (those are zip archives; this one is not: truncated, or "
            "another format); pass a model saved with model.save('....keras')."
        )
    return path


def _load(path):
    import keras

    import kerazoo.models  # noqa: F401  (registers the classes a model.keras names)

    print(f"[export] loading {path}", flush=True)
    try:
        model = keras.saving.load_model(path, safe_mode=True)  # no code from the file runs
    except Exception as error:  # the loader raises many types; all mean "not a model"
        raise _UsageError(f"{path} is not a loadable Keras model ({error})") from None
    if not isinstance(model, keras.Model):
        raise _UsageError(f"{path} holds a {type(model).__name__}, not a keras.Model.")
    return model


if __name__ == "__main__":
    sys.exit(main())
