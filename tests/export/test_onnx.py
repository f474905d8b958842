"""export_onnx: dynamic batch, named I/O, class names, refusal on mismatch;
and `python -m kerazoo.export`. Parity of both kinds: test_kinds.py."""

import json
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import onnx
import pytest

from helpers import processes
from helpers.export import SHAPE
from kerazoo import backbones
from kerazoo.export import OnnxClassifier, ParityError, export_onnx
from kerazoo.layers import CosineLinear
from kerazoo.models import Classifier


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    diffs = export_onnx(model, path, class_names=[f"digit {i}" for i in range(10)])
    assert set(diffs) == {1, 7} and max(diffs.values()) <= 1e-4
    return path


def test_io_names_and_dynamic_batch(onnx_path):
    graph = onnx.load(onnx_path).graph
    assert [i.name for i in graph.input] == ["images"]
    assert [o.name for o in graph.output] == ["logits", "probabilities"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(SHAPE)
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_class_names_stored_in_metadata(onnx_path):
    metadata = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    assert metadata["class_names"].startswith('["digit 0", "digit 1"')


def test_refuses_file_when_outputs_differ_by_more_than_atol(model, tmp_path):
    # Large inputs give large logits, whose float rounding differs between
    # TensorFlow's and ONNX Runtime's kernels: measure that real gap, then
    # demand half of it.
    big = np.random.default_rng(1).uniform(0, 1000, (7, *SHAPE)).astype("float32")
    gap = max(export_onnx(model, tmp_path / "measured.onnx", sample_images=big).values())
    assert gap > 0

    target = tmp_path / "refused.onnx"
    with pytest.raises(ParityError, match=r"differs from Keras by .* was not written"):
        export_onnx(model, target, atol=gap / 2, sample_images=big)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["measured.onnx"]


def test_rejects_bad_arguments(model, tmp_path):
    with pytest.raises(ValueError, match="atol"):
        export_onnx(model, tmp_path / "m.onnx", atol=-1)
    with pytest.raises(ValueError, match="sample_images must have shape"):
        export_onnx(model, tmp_path / "m.onnx", sample_images=np.zeros((3, 4, 4, 1)))
    any_size = keras.Sequential(
        [keras.Input((None, None, 1)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
    )
    with pytest.raises(ValueError, match=r"images of any size \(None, None, 1\).* pass sample_images"):
        export_onnx(any_size, tmp_path / "m.onnx")
    # A file that OnnxClassifier could not load, written before the check.
    with pytest.raises(ValueError, match="3 class names given for a model with 10 classes"):
        export_onnx(model, tmp_path / "m.onnx", class_names=["a", "b", "c"])
    assert not (tmp_path / "m.onnx").exists()
    (tmp_path / "m.onnx").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(model, tmp_path / "m.onnx")


def test_command_line_exports_a_run_directory(tmp_path):
    # A kerazoo layer in the file: the CLI must register it before loading.
    model = Classifier(backbones.get("convnet", input_shape=SHAPE), 10, head=CosineLinear(10))
    model(np.zeros((1, *SHAPE), "float32"))
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    names = [f"class {i}" for i in range(10)]
    (run_dir / "metrics.json").write_text(json.dumps({"model": {"class_names": names}}))
    result = processes.run(["-m", "kerazoo.export", run_dir, "--out", out], timeout=300)
    assert result.returncode == 0, result.stderr
    assert "[export] loading" in result.stdout
    assert f"[export] SavedModel -> {out / 'model'}" in result.stdout
    assert f"[export] ONNX -> {out / 'model.onnx'}" in result.stdout
    assert re.search(r"parity .* batch 1: \S+, batch 7: \S+", result.stdout), result.stdout
    assert (out / "model" / "saved_model.pb").exists() and (out / "model.onnx").exists()
    assert list(OnnxClassifier(out / "model.onnx").class_names) == names


def test_command_line_errors_exit_2_without_traceback(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_text("not a zip")
    other_folder = tmp_path / "my_folder"
    other_folder.mkdir()
    (other_folder / "my_model.keras").write_text("")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "no_model").mkdir()  # a finished run made with exports=none
    for name in ("config.json", "metrics.json"):
        (tmp_path / "no_model" / name).write_text("{}")
    # message, and whether finding the mistake needs TensorFlow (a wrong path
    # is answered before its import, which takes seconds)
    cases = {
        tmp_path / "missing.keras": ("no such file", False),
        tmp_path / "empty": ("has no model.keras; pass a run directory", False),
        other_folder: ("has no model.keras; it holds my_model.keras: pass that file.", False),
        tmp_path / "no_model": ("has no model.keras; the run saved no model (`exports=none`", False),
        junk: ("is not a .keras file (those are zip archives", False),
    }
    cases = {(source, tmp_path / "o"): case for source, case in cases.items()}
    cases[(junk, tmp_path / "a_file")] = ("--out " + str(tmp_path / "a_file") + " is a file", False)
    for (source, out), (message, loads) in cases.items():
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kerazoo.export", str(source), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert bool(re.search(r"\|\s+tensorflow$", result.stderr, re.M)) == loads, message


@pytest.mark.parametrize("name", ["resnet32", "ldam_resnet32"])
def test_the_cifar_resnets_convert_with_parity(tmp_path, name):
    # Their explicit PyTorch padding and ldam_resnet32's ZeroPaddedShortcut
    # (a strided slice and a channel pad) in ONNX.
    keras.utils.set_random_seed(0)
    model = Classifier(backbones.get(name, input_shape=(16, 16, 3)), 10)
    images = np.random.default_rng(0).uniform(size=(7, 16, 16, 3)).astype("float32")
    # Untrained, ldam_resnet32's logits reach the hundreds (its fan-in
    # Kaiming weights, BatchNorm at its initial statistics), and float32
    # rounding grows with them: 1.1e-4 at 1e-4's atol for some draws. A
    # wrong conversion errs by the logits' own size.
    atol = max(1e-4, 1e-6 * float(np.abs(model(images)).max()))
    diffs = export_onnx(model, tmp_path / "model.onnx", sample_images=images, atol=atol)
    assert set(diffs) == {1, 7} and max(diffs.values()) <= atol


def test_a_negative_tolerance_is_refused_before_anything_is_written(tmp_path, capsys):
    from kerazoo.export.__main__ import main

    source = tmp_path / "model.keras"
    source.write_text("")
    assert main([str(source), "--out", str(tmp_path / "o"), "--atol", "-1"]) == 2
    assert "--atol must be a finite number >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_overwrite_replaces_exports_only_and_an_unwritable_out_is_named_before_loading(tmp_path, capsys):
    from kerazoo.export.__main__ import main

    source = tmp_path / "model.keras"
    source.write_text("")  # refused before it is read
    out = tmp_path / "o"
    (out / "model").mkdir(parents=True)
    (out / "model" / "notes.txt").write_text("mine")
    assert main([str(source), "--out", str(out), "--overwrite"]) == 2
    assert "is not a SavedModel (no saved_model.pb), so --overwrite would delete" in capsys.readouterr().err
    assert (out / "model" / "notes.txt").read_text() == "mine"
    (tmp_path / "a_file").write_text("")
    assert main([str(source), "--out", str(tmp_path / "a_file" / "export")]) == 2
    assert "cannot write in " + str(tmp_path / "a_file") in capsys.readouterr().err


def test_a_failed_parity_check_replaces_neither_file(tmp_path, capsys):
    from kerazoo.export.__main__ import main

    keras.utils.set_random_seed(0)
    runs = []
    for i in range(2):
        model = Classifier(backbones.get("convnet", input_shape=SHAPE), 10)
        model(np.zeros((1, *SHAPE), "float32"))
        runs.append(tmp_path / f"model{i}.keras")
        model.save(runs[-1])
    out = tmp_path / "out"
    assert main([str(runs[0]), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # atol 0: ONNX Runtime's kernels round differently from TensorFlow's.
    assert main([str(runs[1]), "--out", str(out), "--overwrite", "--atol", "0"]) == 1
    assert "model.onnx was not written" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # Passing, both are replaced; the old SavedModel is gone before the new
    # one is written (a kill then leaves no mismatched pair), nothing left over.
    assert main([str(runs[1]), "--out", str(out), "--overwrite"]) == 0
    assert f"removed the old SavedModel {out / 'model'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["model", "model.onnx"]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after[out / "model.onnx"] != before[out / "model.onnx"]
    assert (
        after[out / "model" / "variables" / "variables.data-00000-of-00001"]
        != before[out / "model" / "variables" / "variables.data-00000-of-00001"]
    )


def test_a_zoo_models_folder_exports_with_the_class_names_its_manifest_lists(tmp_path, capsys):
    from kerazoo import zoo
    from kerazoo.export.__main__ import main

    folder = zoo.default_root() / "saved_models" / "digits_lucir"
    assert main([str(folder), "--out", str(tmp_path / "out"), "--onnx"]) == 0
    assert "no class names" not in capsys.readouterr().err
    names = zoo.info("digits_lucir")["classes"]
    assert names != sorted(names)  # LUCIR's columns: its class order
    assert list(OnnxClassifier(tmp_path / "out" / "model.onnx").class_names) == names

    unnamed = tmp_path / "model.keras"
    shutil.copy(folder / "digits_lucir.keras", unnamed)
    assert main([str(unnamed), "--out", str(tmp_path / "out2"), "--onnx"]) == 0
    assert "note: no class names recorded beside" in capsys.readouterr().err
