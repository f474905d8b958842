"""Runnable experiments: `python -m kerazoo.recipes.<name>`.

Each recipe is a package: `<name>/__init__.py` declares its config, table
columns and `RECIPE` without importing TensorFlow (so `--help` and config
errors answer at once); `<name>/experiment.py` is what one seed does.
`recipe.py` holds the declaration and the command line, `runner.py` the run
(strategy, run directory, resumable fitting, report, export); `config.py`,
`results.py` and `plots.py` serve them.
"""
