"""Pretrained models: list, verify, load, publish and rebuild the models in `saved_models/`.

The zoo lives in a root directory (`default_root()`: the repository root
in a clone or an editable install, the package's `_bundled/` folder in a
wheel, or `$KERAZOO_ZOO_DIR`):

    saved_models/manifest.json          one entry per model
    saved_models/<name>/model/          inference SavedModel, signature `serve`
    saved_models/<name>/<name>.keras    the trained Keras model, for fine-tuning
    saved_models/<name>/report.md       the report of the run that made it, and its plots
    export/<name>.onnx                  parity-checked ONNX counterpart

A manifest entry records what the model is (method, dataset, kind:
`classifier` or `features`, classes in output order, input shape and the
exact preprocessing from raw data), how good it is (its test
metrics, what they were measured on, and ONNX parity), how it was made (the exact command, its resolved
config, the kerazoo version) and the sha256 of every file. `load` checks the
files it reads against those sums first and names any file that differs;
what it returns answers alike in every format (`kerazoo.export.Predictor`:
`predict(images)` gives probabilities, or features for kind `features`;
`class_names` names the output columns) and checks its input images
(`kerazoo.inputs.check_images`). `preprocess` makes those images from raw
data with NumPy alone, and refuses data that is not raw (e.g. already
scaled).

Command line:

    python -m kerazoo.zoo list
    python -m kerazoo.zoo info NAME                            # its manifest entry, as JSON
    python -m kerazoo.zoo verify [NAME ...]                    # every broken model, every bad file
    python -m kerazoo.zoo publish RUN_DIR NAME [--overwrite]   # a finished recipe run
    python -m kerazoo.zoo rebuild NAME                         # re-run its command, re-publish

Every command takes `--root DIR` (before or after the command's name).

Example:

```python
import kerazoo
from sklearn.datasets import load_digits

print(kerazoo.zoo.available())  # ['digits_adco', ..., 'digits_lucir']
raw = load_digits().images[:32]
images = kerazoo.zoo.preprocess("digits_lucir", raw)  # raw 0..16, as in training
model = kerazoo.zoo.load("digits_lucir", "keras")  # or "savedmodel" / "onnx": the same answers
digits = model.class_names[model.predict(images).argmax(1)]  # columns follow LUCIR's class order
logits = model.predict(images, output="logits")
```
"""

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kerazoo import inputs
from kerazoo.atomic import atomic_dir, atomic_path, write_text
from kerazoo.export.kinds import DEFAULT_KIND, outputs_of
from kerazoo.protocol_names import with_nuisance

FORMATS = ("savedmodel", "keras", "onnx")
MANIFEST = Path("saved_models") / "manifest.json"
# Where a wheel carries saved_models/, export/ and recipes/ (pyproject.toml).
BUNDLED = "_bundled"


class ZooError(RuntimeError):
    """The zoo, a model's entry or a run to publish cannot be used as asked.

    Example:

    ```python
    import kerazoo

    try:
        kerazoo.zoo.info("no_such_model")
    except kerazoo.zoo.ZooError as error:
        print(error)  # names the available models
    ```
    """


class ChecksumError(ZooError):
    """A model file is missing or differs from the sha256 in the manifest.

    Example:

    ```python
    import shutil
    import tempfile
    from pathlib import Path
    import kerazoo

    root = Path(tempfile.mkdtemp())
    zoo = kerazoo.zoo.default_root() / "saved_models"
    shutil.copytree(zoo / "digits_baseline", root / "saved_models" / "digits_baseline")
    shutil.copy(zoo / "manifest.json", root / "saved_models" / "manifest.json")
    report = root / "saved_models" / "digits_baseline" / "report.md"
    report.write_text(report.read_text() + "edited")
    try:
        kerazoo.zoo.verify("digits_baseline", root=root)
    except kerazoo.zoo.ChecksumError as error:
        print(error)  # names report.md
    ```
    """


def default_root():
    """`$KERAZOO_ZOO_DIR`, else the zoo installed with kerazoo: the package's
    `_bundled/` folder in a wheel, else the repository it runs from (a clone
    or an editable install).

    Returns:
        A `Path`: the folder holding `saved_models/manifest.json`.

    Example:

    ```python
    import kerazoo

    print((kerazoo.zoo.default_root() / "saved_models" / "manifest.json").is_file())  # True
    ```
    """
    if os.environ.get("KERAZOO_ZOO_DIR"):
        return Path(os.environ["KERAZOO_ZOO_DIR"])
    return installed_root()


def installed_root():
    """What kerazoo was installed with: the package's `_bundled/` folder in
    a wheel, else the repository it runs from. It holds the shipped zoo
    (`saved_models/`, `export/`) and the recipe configs (`recipes/*.toml`).

    Returns:
        A `Path`.

    Example:

    ```python
    import kerazoo

    print(sorted(p.name for p in (kerazoo.zoo.installed_root() / "recipes").glob("digits_*.toml"))[:2])
    ```
    """
    package = Path(__file__).resolve().parent
    bundled = package / BUNDLED
    return bundled if bundled.is_dir() else package.parent


def available(root=None):
    """Names of the models in the zoo, sorted.

    Args:
        root: the zoo's root (default `default_root()`).

    Example:

    ```python
    import kerazoo

    print(kerazoo.zoo.available())
    ```
    """
    return sorted(_read_manifest(_root(root), must_exist=True)["models"])


def info(name, root=None):
    """The manifest entry of model `name` (a dict).

    Args:
        name: a model of the zoo.
        root: the zoo's root (default `default_root()`).

    Example:

    ```python
    import kerazoo

    entry = kerazoo.zoo.info("digits_baseline")
    print(entry["method"], entry["dataset"], entry["metrics"])
    ```
    """
    models = _read_manifest(_root(root), must_exist=True)["models"]
    if name not in models:
        raise ZooError(
            f"No model named {name!r} in the zoo; available: {sorted(models)}. A model published to "
            "another zoo loads with root=DIR (--root DIR; or KERAZOO_ZOO_DIR=DIR)."
        )
    return models[name]


def summary(name, root=None):
    """One line on model `name`: its method, the protocol it was trained on
    (GIT's with the nuisance its config gives apart) and its outputs.

    Args:
        name: a model of the zoo.
        root: the zoo's root (default `default_root()`).

    Example:

    ```python
    import kerazoo

    print(kerazoo.zoo.summary("digits_git"))  # git on digits-bg-lt, 10 classes
    ```
    """
    return _summary(info(name, root))


def _summary(entry):
    dataset, nuisance = entry["dataset"], entry["config"].get("transform")
    if nuisance:
        dataset = with_nuisance(dataset, nuisance)
    outputs = f"{len(entry['classes'])} classes" if entry["classes"] else "features"
    return f"{entry['method']} on {dataset}, {outputs}"


def files_of(entry, format):
    """Paths (relative to the root) of the files `load(..., format)` reads.

    Args:
        entry: a manifest entry (`info(name)`).
        format: `"savedmodel"`, `"keras"` or `"onnx"`.

    Example:

    ```python
    import kerazoo

    print(kerazoo.zoo.files_of(kerazoo.zoo.info("digits_baseline"), "keras"))
    ```
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    return sorted(p for p in entry["files"] if _format_of(entry["name"], p) == format)


def verify(name, root=None, formats=None):
    """Check the sha256 of the files of model `name`: those `load` reads for
    each of `formats`, or every file (report and plots too) by default.

    Raises:
        ChecksumError: naming every missing or altered file, and the fix.

    Args:
        name: a model of the zoo.
        root: the zoo's root (default `default_root()`).
        formats: None (every file), or formats whose files to check.

    Example:

    ```python
    import kerazoo

    kerazoo.zoo.verify("digits_baseline", formats=["keras"])  # silent when every file is intact
    ```
    """
    root = _root(root)
    _verify(info(name, root), root, formats)


def _verify(entry, root, formats):
    problems = _file_problems(entry, root, formats)
    if problems:
        raise ChecksumError("\n".join(problems))


def _file_problems(entry, root, formats):
    """One message per missing or altered file of `entry` (see `verify`)."""
    name = entry["name"]
    if formats is None:
        files = sorted(entry["files"])
    else:
        files = [p for format in formats for p in files_of(entry, format)]
    problems = []
    for relative in files:
        path = root / relative
        fix = (
            f"re-fetch it (e.g. `git checkout -- {relative}`) or remake the model with "
            f"`python -m kerazoo.zoo rebuild {name}`."
        )
        if not path.is_file():
            problems.append(f"{path} is missing; {fix}")
            continue
        got = sha256(path)
        if got != entry["files"][relative]:
            problems.append(
                f"{path} is corrupt: its sha256 is {got}, the manifest says {entry['files'][relative]}; {fix}"
            )
    return problems


def load(name, format="savedmodel", root=None, providers=None, session_options=None):
    """Load pretrained model `name` after verifying its files' checksums.

    Every format returns a `kerazoo.export.Predictor`, which answers alike:

    - `predict(images)`: probabilities (N, C) for a classifier, features
      (N, D) for a feature extractor (kind `features`, `info(name)["kind"]`);
      `predict(images, output="logits")` a classifier's logits;
    - `class_names`: numpy array of the class of each output column (from
      the manifest, checked against the ONNX file's own), so
      `model.class_names[model.predict(images).argmax(1)]` names each
      prediction; None for a feature extractor.

    Images are checked first (float32 (N, H, W, C) in [0, 1], finite;
    `kerazoo.inputs.check_images`); an empty batch gives an empty result.
    TensorFlow's start-up lines (oneDNN, absent CUDA drivers) are not
    printed; its other messages are.

    Args:
        name: a name from `available()`.
        format: "savedmodel" (a `kerazoo.export.CheckedSavedModel`; `.serve(images)`
            gives the signature's whole dict, `.signatures` etc. are the
            loaded SavedModel's), "keras" (a `kerazoo.export.CheckedKerasModel`;
            `.model` is the trained `keras.Model`, to fine-tune) or "onnx" (a
            `kerazoo.export.OnnxClassifier` or `OnnxFeatureExtractor`: ONNX
            Runtime, no TensorFlow; `.model` is the session).
        root: the zoo root; default `default_root()`.
        providers: ONNX Runtime providers, for format "onnx".
        session_options: an `onnxruntime.SessionOptions` (threads, graph
            optimizations), for format "onnx".

    Raises:
        ChecksumError: a file is missing or altered (the message names it).
        ZooError: the manifest's classes disagree with the model (their
            number, or the names stored in the ONNX file).

    Example:

    ```python
    import kerazoo
    from sklearn.datasets import load_digits

    images = kerazoo.zoo.preprocess("digits_baseline", load_digits().images[:16])
    model = kerazoo.zoo.load("digits_baseline")
    print(model.class_names[model.predict(images).argmax(1)])  # e.g. ['0' '1' '2' ...]
    ```
    """
    for option, value in (("providers", providers), ("session_options", session_options)):
        if value is not None and format != "onnx":
            raise ValueError(f"{option}= configures ONNX Runtime, for format='onnx'; not {format!r}.")
    root = _root(root)
    entry = info(name, root)
    _verify(entry, root, formats=(format,))
    classes = entry.get("classes")
    if format == "onnx":
        from kerazoo.export.runtime import RUNTIMES

        runtime = RUNTIMES[entry.get("kind", DEFAULT_KIND)]
        model = runtime(root / entry["onnx"]["path"], providers=providers, session_options=session_options)
        stored = getattr(model, "stored_class_names", None)
        if stored is not None and classes is not None and [str(c) for c in classes] != stored:
            raise ZooError(
                f"The manifest's classes for {name!r} ({classes}) disagree with those stored in "
                f"{entry['onnx']['path']} ({stored}); the manifest was edited: restore it (in a "
                f"clone: `git checkout -- {MANIFEST.as_posix()}`) or remake the model with "
                f"`python -m kerazoo.zoo rebuild {name}`."
            )
        return _with_classes(model, name, classes)

    from kerazoo._cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    if format == "keras":
        import keras

        import kerazoo.models  # noqa: F401  (registers the classes a .keras file names)
        from kerazoo.export.served import CheckedKerasModel

        keras_model = keras.saving.load_model(root / _model_dir(name) / f"{name}.keras", safe_mode=True)
        return _with_classes(CheckedKerasModel(keras_model), name, classes)
    from kerazoo.export.served import CheckedSavedModel

    return _with_classes(CheckedSavedModel(root / _model_dir(name) / "model"), name, classes)


def _with_classes(model, name, classes):
    """`model` with the manifest's `classes` as its class names."""
    try:
        model.set_class_names(classes)
    except ValueError as error:
        raise ZooError(
            f"The manifest's classes for {name!r} do not fit the model: {error} Restore the "
            f"manifest (in a clone: `git checkout -- {MANIFEST.as_posix()}`) or remake the model "
            f"with `python -m kerazoo.zoo rebuild {name}`."
        ) from None
    return model


def preprocess(name, raw_images, root=None):
    """Model input for pretrained model `name` from raw images, made exactly
    as its training data was (the manifest's `input.preprocessing`), with
    NumPy alone (TensorFlow is not imported).

    The raw images are checked against the model's raw format first
    (`kerazoo.inputs.check_raw`), so data already scaled or resized is
    refused instead of giving wrong answers (digits divided by 16 score
    about 10 %).

    Args:
        name: a name from `available()`.
        raw_images: the dataset's raw form (`input.raw_format` in the
            manifest), e.g. `sklearn.datasets.load_digits().images` (float,
            whole numbers 0..16, (N, 8, 8)) for digits models, uint8 0..255
            (N, H, W, C) otherwise.
        root: the zoo root; default `default_root()`.

    Returns:
        float32 (N, H, W, C) in [0, 1], the model's input shape.

    Raises:
        ValueError: the images are not raw data of the model's format; the
            message names the problem and the fix.

    Example:

    ```python
    import kerazoo
    from sklearn.datasets import load_digits

    images = kerazoo.zoo.preprocess("digits_baseline", load_digits().images)
    try:
        kerazoo.zoo.preprocess("digits_baseline", load_digits().images / 16)
    except ValueError as error:
        print(error)  # looks already scaled
    ```
    """
    entry = info(name, root)
    spec = entry["input"]
    images = inputs.preprocess(raw_images, spec.get("raw_format") or inputs.raw_format(entry["dataset"]))
    height, width, channels = spec["shape"][1:4]
    if images.shape[-1] != channels:
        raise ValueError(
            f"raw images have {images.shape[-1]} channel(s); {name} takes {channels} "
            f"(input shape {tuple(spec['shape'])})."
        )
    if images.shape[1:3] != (height, width):
        if entry.get("config", {}).get("image_size") != height or height != width:
            raise ValueError(
                f"raw images are {images.shape[1]}x{images.shape[2]}; {name} takes {height}x{width} "
                "images and was trained on its dataset's images at that size, not resized: pass "
                "images of that size."
            )
        # Trained on resized images (config `image_size`): the same resize,
        # bit for bit (kerazoo.data.transforms.resize, with NumPy).
        images = inputs.resize_bilinear(images, height)
    return images


def publish(run_dir, name, root=None, overwrite=False):
    """Add the model of a finished recipe run to the zoo (or replace it).

    Copies the run's SavedModel, `.keras`, report and ONNX file into the
    zoo, hashes them, and writes the manifest entry last. Without
    `overwrite` nothing already there is replaced: neither a listed model
    nor files of that name the manifest does not list. Every file of the
    run is checked before anything is written.

    Returns:
        The new manifest entry.

    Raises:
        ZooError: the run lacks a file the zoo ships, or the name is taken
            (by a model or by unlisted files) and `overwrite` is false.

    Args:
        run_dir: the directory of a finished recipe run (`python -m kerazoo.recipes ... --out run_dir`).
        name: the model's name in the zoo.
        root: the zoo's root (default `default_root()`).
        overwrite: replace a model of that name.

    Example:

    ```python
    import tempfile
    import kerazoo

    # kerazoo.zoo.publish("runs/lucir", "digits_lucir_v2") after a recipe run; a
    # directory without a finished run is refused:
    try:
        kerazoo.zoo.publish(tempfile.mkdtemp(), "digits_new", root=tempfile.mkdtemp())
    except (kerazoo.zoo.ZooError, FileNotFoundError) as error:
        print(error)
    ```
    """
    root, run_dir = _root(root), Path(run_dir)
    if not name.replace("_", "").isalnum():
        raise ZooError(f"Model names use letters, digits and '_' only; got {name!r}.")
    config, metrics = (_read_run_json(run_dir, f) for f in ("config.json", "metrics.json"))
    if not metrics.get("model"):
        raise ZooError(f"{run_dir} exported no model (exports=none, or its shipping method did not run).")
    if "onnx_parity_max_abs_diff" not in metrics["model"]:
        raise ZooError(
            f"{run_dir} wrote only model.keras (exports=keras); re-run it with "
            "--set exports=all to get the SavedModel and ONNX files the zoo ships (files "
            "exported later with python -m kerazoo.export serve as they are, but the zoo takes "
            "a run's own exports, whose ONNX parity its metrics.json records)."
        )
    missing = [f for f in ("model", "model.keras", "model.onnx", "report.md") if not (run_dir / f).exists()]
    if missing:
        raise ZooError(
            f"{run_dir} lacks {', '.join(missing)}, which a run with exports=all writes; re-run it "
            "(or restore the files) before publishing."
        )
    manifest = _read_manifest(root, must_exist=False)
    onnx_path = Path("export") / f"{name}.onnx"
    if not overwrite:
        if name in manifest["models"]:
            raise ZooError(f"The zoo already has {name!r}; pass overwrite=True (--overwrite) to replace it.")
        # Files of that name the manifest does not list (a user's, or left by
        # an earlier install) are not the zoo's to replace.
        taken = [p for p in (root / _model_dir(name), root / onnx_path) if p.exists()]
        if taken:
            raise ZooError(
                f"{' and '.join(map(str, taken))} already {'exists' if len(taken) == 1 else 'exist'}, "
                f"though the zoo lists no model "
                f"{name!r}; move them away, choose another name, or pass overwrite=True (--overwrite)."
            )
    # The ONNX file is staged first and renamed into place last, so that a
    # failed copy leaves the old model whole, not half replaced.
    with atomic_path(root / onnx_path) as onnx_tmp:
        shutil.copy2(run_dir / "model.onnx", onnx_tmp)
        with atomic_dir(root / _model_dir(name), overwrite=True) as staging:
            shutil.copytree(run_dir / "model", staging / "model")
            shutil.copy2(run_dir / "model.keras", staging / f"{name}.keras")
            for page in [run_dir / "report.md", *run_dir.glob("*.png")]:  # the report and its plots
                shutil.copy2(page, staging / page.name)
            # Models a recipe trained besides the shipped one (GIT's translator.keras):
            # hashed like the rest, read by the recipe that uses them, not by `load`.
            for companion in run_dir.glob("*.keras"):
                if companion.name != "model.keras":
                    shutil.copy2(companion, staging / companion.name)
    model = metrics["model"]
    kind = model.get("kind", DEFAULT_KIND)
    dataset = config["config"]["dataset"]
    files = sorted([p for p in (root / _model_dir(name)).rglob("*") if p.is_file()] + [root / onnx_path])
    entry = {
        "name": name,
        "method": config["recipe"],
        "dataset": dataset,
        "kind": kind,
        "training_data": model["training_data"],
        "classes": model.get("class_names"),  # None for features
        "input": {
            "name": "images",
            "shape": model["input_shape"],
            "dtype": "float32",
            "raw_format": model.get("raw_format") or inputs.raw_format(dataset),
            "preprocessing": model["preprocessing"],
        },
        "outputs": list(outputs_of(kind)),
        "metrics": model["metrics"],
        # Runs made before the record had it lack it; `list` then names no split.
        "evaluated_on": model.get("evaluated_on"),
        "command": config["command"],
        **_working_directory(config, root),
        # A model published from a folder inside its run (AdCo's probe/).
        **({"run_subdir": metrics["run_subdir"]} if metrics.get("run_subdir") else {}),
        "config": config["config"],
        "kerazoo_version": config["kerazoo_version"],
        "onnx": {"path": onnx_path.as_posix(), "parity_max_abs_diff": model["onnx_parity_max_abs_diff"]},
        "files": {p.relative_to(root).as_posix(): sha256(p) for p in files},
    }
    manifest["models"][name] = entry
    write_text(root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return entry


def rebuild(name, root=None):
    """Re-run the command that made model `name` and publish the result in its place.

    The command runs in the directory it was first run in (the entry's
    `working_directory`: relative to the root when inside it; the root itself
    for models published before it was recorded), so that its relative
    paths name the same files. The run directory is a temporary one (`--out`
    of the recorded command is replaced); it is deleted after publishing,
    and kept if the run fails so that re-running the printed command resumes it.

    Returns:
        (old entry, new entry).

    Args:
        name: a model of the zoo.
        root: the zoo's root (default `default_root()`).

    Example:

    ```python
    import kerazoo

    # kerazoo.zoo.rebuild("digits_baseline") re-trains the model (minutes); an
    # unknown name is refused at once:
    try:
        kerazoo.zoo.rebuild("no_such_model")
    except kerazoo.zoo.ZooError as error:
        print(error)
    ```
    """
    root = _root(root)
    old = info(name, root)
    module, args = _recipe_command(old["command"])
    cwd = root / old.get("working_directory", ".")
    if not cwd.is_dir():
        raise ZooError(
            f"{name!r} was made in {cwd}, which does not exist here, and the relative paths of "
            f"its command (`{old['command']}`) and config files are relative to it; create it with "
            "the files they name, or run the command and `zoo publish` the run yourself."
        )
    run_dir = Path(tempfile.mkdtemp(prefix=f"kerazoo-rebuild-{name}-"))
    command = [sys.executable, "-m", module, *args, "--out", str(run_dir)]
    print(f"[zoo] rebuilding {name} in {cwd}: {shlex.join(command)}", flush=True)
    new_dir = run_dir / old.get("run_subdir", "")
    publish_command = f"python -m kerazoo.zoo publish {shlex.quote(str(new_dir))} {name} --overwrite --root {shlex.quote(str(root))}"
    resume = f"re-run `{shlex.join(command)}` in {cwd} to resume it, then `{publish_command}`"
    try:
        failed = subprocess.run(command, cwd=cwd).returncode != 0
    except KeyboardInterrupt:
        print(f"[zoo] interrupted: the run directory {run_dir} is kept ({resume}).", file=sys.stderr)
        raise
    if failed:
        raise ZooError(
            f"The command that made {name!r} failed; its run directory {run_dir} is kept ({resume})."
        )
    new = publish(new_dir, name, root, overwrite=True)
    shutil.rmtree(run_dir)
    return old, new


def sha256(path):
    """Hex sha256 of a file's bytes.

    Args:
        path: a file.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import kerazoo

    path = Path(tempfile.mkdtemp()) / "empty"
    path.write_bytes(b"")
    print(kerazoo.zoo.sha256(path))  # e3b0c442...
    ```
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _root(root):
    return Path(root) if root is not None else default_root()


def _model_dir(name):
    return Path("saved_models") / name


def _format_of(name, relative):
    parts = Path(relative).parts
    if parts[0] == "export":
        return "onnx"
    if parts[2:3] == ("model",):
        return "savedmodel"
    if parts[2:] == (f"{name}.keras",):
        return "keras"
    return None  # the report and plots: hashed, read by no loader


def _read_manifest(root, must_exist):
    path = root / MANIFEST
    if not path.is_file():
        if must_exist:
            raise ZooError(
                f"No model zoo at {root} ({MANIFEST} is missing). The pretrained models ship "
                "with kerazoo (saved_models/ and export/ of the repository, bundled in its "
                "wheel): reinstall kerazoo, or set KERAZOO_ZOO_DIR to a directory holding "
                "saved_models/ and export/."
            )
        return {"format_version": 1, "models": {}}
    return _read_json(
        path,
        f"restore it (in a clone: `git checkout -- {MANIFEST.as_posix()}`; else reinstall "
        "kerazoo) or point KERAZOO_ZOO_DIR at an intact zoo",
    )


def _read_run_json(run_dir, name):
    path = run_dir / name
    if not run_dir.is_dir():
        raise ZooError(f"No run directory {run_dir}: give the --out directory of a finished recipe run.")
    if not path.is_file():
        raise ZooError(f"{run_dir} is not a finished recipe run ({name} is missing).")
    return _read_json(path, "finish the run by re-running its command with the same --out")


def _read_json(path, fix):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ZooError(f"{path} is not valid JSON ({error}), e.g. truncated; {fix}.") from None


def _working_directory(config, root):
    """The manifest's `working_directory` of a run: relative to the zoo's root
    when inside it, so that a clone's models rebuild wherever the clone is;
    absolute otherwise. Runs made before config.json recorded it have none,
    and rebuild in the root (where the shipped models were made)."""
    made_in = config.get("working_directory")
    if made_in is None:
        return {}
    path, root = Path(made_in).resolve(), Path(root).resolve()
    return {"working_directory": (path.relative_to(root) if path.is_relative_to(root) else path).as_posix()}


def _recipe_command(command):
    """(module, args) of a recorded `python -m kerazoo.recipes.X ...`, without --out/--overwrite."""
    words = shlex.split(command)
    if words[:2] != ["python", "-m"] or not words[2].startswith("kerazoo.recipes."):
        raise ZooError(f"Cannot rebuild from {command!r}: not a `python -m kerazoo.recipes.X` command.")
    args, rest = [], iter(words[3:])
    for word in rest:
        if word == "--out":
            next(rest, None)
        elif not (word == "--overwrite" or word.startswith("--out=")):
            args.append(word)
    return words[2], args


def main(argv=None):
    # --root is accepted before the command and after it (a parent parser of
    # each command; SUPPRESS keeps a value given before from being reset).
    """The `python -m kerazoo.zoo` command line: list, info, verify, publish, rebuild.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Example:

    ```python
    import kerazoo

    kerazoo.zoo.main(["list"])
    ```
    """
    root_option = argparse.ArgumentParser(add_help=False)
    root_option.add_argument(
        "--root",
        default=argparse.SUPPRESS,
        help="zoo root (default $KERAZOO_ZOO_DIR, else the zoo installed with kerazoo)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m kerazoo.zoo",
        description="The pretrained models of a zoo root: list, describe, verify, publish and rebuild them (load "
        "them in Python with kerazoo.zoo.load).",
        parents=[root_option],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[root_option], help="the models, their method, dataset and metrics")
    show = commands.add_parser(
        "info",
        parents=[root_option],
        help="a model's manifest entry as JSON: input, preprocessing, classes, metrics, command, hashes",
    )
    show.add_argument("name")
    check = commands.add_parser(
        "verify", parents=[root_option], help="check every file's sha256; report every broken model"
    )
    check.add_argument("names", nargs="*", help="default: every model")
    add = commands.add_parser("publish", parents=[root_option], help="add the model of a finished recipe run")
    add.add_argument("run_dir")
    add.add_argument("name")
    add.add_argument("--overwrite", action="store_true", help="replace a model of that name")
    remake = commands.add_parser(
        "rebuild", parents=[root_option], help="re-run a model's recorded command and re-publish it"
    )
    remake.add_argument("name")
    args = parser.parse_args(argv)
    root = _root(getattr(args, "root", None))
    try:
        if args.command == "list":
            for name in available(root):
                entry = info(name, root)
                shown = ", ".join(f"{k} {v:.4f}" for k, v in entry["metrics"].items() if isinstance(v, float))
                where = f" on {entry['evaluated_on']}" if entry.get("evaluated_on") else ""
                print(f"{name}: {_summary(entry)}; {shown}{where}")
        elif args.command == "info":
            print(json.dumps(info(args.name, root), indent=2))
        elif args.command == "verify":
            broken = []
            for name in args.names or available(root):
                entry = info(name, root)
                problems = _file_problems(entry, root, formats=None)
                if problems:
                    broken.append(name)
                    print(f"{name}: {len(problems)} of {len(entry['files'])} files broken", flush=True)
                    for problem in problems:
                        print(f"error: {problem}", file=sys.stderr, flush=True)
                else:
                    print(f"{name}: {len(entry['files'])} files OK", flush=True)
            if broken:
                print(f"error: {len(broken)} broken model(s): {', '.join(broken)}", file=sys.stderr)
                return 2
        elif args.command == "publish":
            entry = publish(args.run_dir, args.name, root, args.overwrite)
            where = root / _model_dir(args.name)
            print(
                f"published {args.name} in {where}: {len(entry['files'])} files, metrics {entry['metrics']}"
            )
            installed = installed_root()
            if installed.name == BUNDLED and root.resolve() == installed.resolve():
                print(
                    f"note: this zoo is inside the installed kerazoo package; reinstalling or upgrading "
                    f"kerazoo replaces its manifest, which then no longer lists {args.name} (its files "
                    "stay behind, unlisted). To keep a zoo of your own, publish with --root DIR "
                    "(or set KERAZOO_ZOO_DIR=DIR).",
                    file=sys.stderr,
                )
        else:
            old, new = rebuild(args.name, root)
            for key, value in new["metrics"].items():
                print(f"{key}: {old['metrics'].get(key)} -> {value}")
    except ZooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    from kerazoo._cli import exit_with

    exit_with(main)
