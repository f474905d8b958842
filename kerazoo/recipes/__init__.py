"""Runnable experiments: `python -m kerazoo.recipes.<name>`.

Each recipe is a package: `<name>/__init__.py` declares its config, table
columns and `RECIPE` without importing TensorFlow (so `--help` and config
errors answer at once); `<name>/experiment.py` is what one method does on
one seed.
`recipe.py` holds the declaration and the command line, `runner.py` the run
(strategy, run directory, resumable fitting, report, export); `config.py`,
`results.py` and `plots.py` serve them.

One vocabulary across recipes:

- `METHODS`: method id -> `recipe.Method` (label, baselines, ships); the
  config's `methods` lists ids; results, details and files are keyed by id,
  labels appear only in tables and plots.
- `build_model(config, ...)` builds and compiles a method's model,
  `build_optimizer(config, ...)` its optimizer; `run_method` trains and
  evaluates one method on one seed.
- Headline metrics: `test_accuracy` for classification (with
  `balanced_accuracy` and many/medium/few-shot accuracy on long tails),
  `average_incremental_accuracy` for class-incremental learning,
  `linear_probe` for representations.
- `augment`: a `kerazoo.data.augment` policy name (`none`, `crop_flip`,
  `views`); `batch_scope`: whether a batch-level term (BNM, BatchFormer,
  AdCo's keys) sees the global batch (default) or each replica's own;
  `weight_decay`: coupled L2, as PyTorch's optimizers.
- Model classes (`kerazoo.models`) are named for what they train: for a
  task when any method can use them (`Classifier`, `DomainAdapter`,
  `SemiSupervised`, `FeatureExtractor`), `<Method>Classifier` when one
  method trains a classifier (`BatchFormerClassifier`, `GITClassifier`,
  `LUCIRClassifier`), the paper's own name when the model is the paper's
  whole system (`AdCo`, `MUNIT`).
"""
