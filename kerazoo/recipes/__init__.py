"""Runnable experiments: `python -m kerazoo.recipes.<name>`.

`runner.py` holds what every recipe shares (config, strategy, run directory,
resumable fitting, report); each other module is one method.
"""
