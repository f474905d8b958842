"""Figures for run reports (matplotlib, Agg backend, written atomically)."""

import csv
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kerazoo.atomic import atomic_path  # noqa: E402

# One marker per method, so that methods whose points coincide stay apart.
MARKERS = ("o", "s", "^", "v", "D", "x")


def save_figure(figure, path, command=None):
    """Write `figure` to `path` as PNG; `command` (the one that made the run)
    is printed small beneath it, so a figure copied out of its run directory
    still says which run it shows."""
    if command:
        width = int(figure.get_figwidth() * 22)  # characters of 6-point text per line
        figure.text(0, 0, textwrap.fill(command, width), fontsize=6, color="0.35", ha="left", va="top")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(figure)


def read_history(csv_path):
    """A Keras `CSVLogger` file as {column: [floats]}."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def plot_history(csv_path, png_path, title, command=None):
    """Loss and accuracy per epoch, training and test, side by side."""
    history = read_history(csv_path)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"test_{metric}", "--")):
            if key in history:
                ax.plot([e + 1 for e in history["epoch"]], history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(title)
    save_figure(figure, png_path, command)
