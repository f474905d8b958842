"""Per-seed results, their mean ± std and the markdown tables of a report.

A recipe measures, for every seed, one row of metrics per method
(`MethodResult.rows`, keyed by method id). The runner aggregates them here: the headline table
(mean ± std over seeds, or the plain value with one seed) and, for each
method paired with its baseline, the **same-seed** differences (mean ± std
and on how many seeds the method was better), the fair measure of an
effect that is small next to the seed-to-seed spread.

Example:

```python
columns = [Column("test_accuracy", "test accuracy (%)")]
per_seed = {0: {"ERM": {"test_accuracy": 0.97}}, 1: {"ERM": {"test_accuracy": 0.98}}}
print(headline_table(per_seed, columns))  # | ERM | 97.5 ± 0.5 |
```
"""

import dataclasses

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Column:
    """One metric of the headline table.

    key: the metric's key in `MethodResult.rows[method]`.
    title: the column header.
    scale: multiply values by this for display (100 for fractions as %).
    digits: decimals shown.
    higher_is_better: direction, for "better on k of n seeds".
    """

    key: str
    title: str
    scale: float = 100.0
    digits: int = 1
    higher_is_better: bool = True

    @property
    def heading(self):
        """The header with its unit: "(%)" for fractions shown as percent."""
        return f"{self.title} (%)" if self.scale == 100.0 else self.title

    def rounded(self, value):
        """`value` as displayed (scaled and rounded), for comparisons that
        must agree with what the table shows."""
        return round(self.scale * value, self.digits)


@dataclasses.dataclass
class MethodResult:
    """What one method measured on one seed (`run_method`'s return value).

    rows: row id -> {metric key: float or None}; the method's own row has
        its id, a method reporting more (LUCIR's NME classifier) declares
        those rows in `Method.rows`.
    details: JSON-able extras for metrics.json (e.g. per-phase curves).
    model: the trained model; the runner exports the shipping method's
        (first seed, `model.inference_model()`).
    input_shape: the image shape (H, W, C) `model` takes.
    sample_images: real inputs for the ONNX parity check.
    class_names: the class of each output column of `model`.
    model_metrics: the test metrics the zoo quotes for `model` (default:
        the method's own row).
    """

    rows: dict
    details: dict = dataclasses.field(default_factory=dict)
    model: object = None
    input_shape: tuple = None
    sample_images: object = None
    class_names: list = None
    model_metrics: dict = None


def format_values(values, scale=100.0, digits=1):
    """`mean ± std` of the scaled values (the population std, ddof 0); the
    plain value for one; '–' for none. None and NaN (a seed on which the
    metric is undefined, e.g. a group without test images) are left out."""
    values = [v for v in values if v is not None and not np.isnan(v)]
    if not values:
        return "–"
    values = scale * np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def paired_p_value(diffs):
    """Two-sided p-value of a paired t-test that the mean same-seed
    difference is 0 (at least two seeds); differences all equal give 0, or 1
    when they are all 0.

    Args:
        diffs: the per-seed differences, method − baseline.

    Example:

    ```python
    import numpy as np
    from kerazoo.recipes.results import paired_p_value

    print(round(paired_p_value(np.array([6.0, 5.0, 5.5])), 4))  # 0.0027: a gain at p < 0.05
    ```
    """
    sd = np.std(diffs, ddof=1)
    if sd == 0:
        return 0.0 if diffs.mean() != 0 else 1.0
    t = diffs.mean() / (sd / np.sqrt(len(diffs)))
    return float(2 * stats.t.sf(abs(t), len(diffs) - 1))


def count(n, noun, plural=None):
    """`n` with its noun in the right number: "1 epoch", "2 epochs", "1 class"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def spread_label(num_seeds):
    """How a table's numbers were aggregated, for titles and captions."""
    return "one seed" if num_seeds == 1 else f"mean ± std over {num_seeds} seeds"


def per_method(per_seed):
    """{method: {metric: [value per seed]}} in the order methods first appear."""
    methods = {}
    for rows in per_seed.values():
        for method, row in rows.items():
            entry = methods.setdefault(method, {})
            for key, value in row.items():
                entry.setdefault(key, []).append(value)
    return methods


def headline_table(per_seed, columns, labels=None):
    """Markdown table: one row per method, one column per metric.

    `per_seed`: {seed: {row id: {metric: value}}}; `labels`: row id ->
    the name shown (default the id)."""
    labels = labels or {}
    lines = [
        "| method | " + " | ".join(c.heading for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for method, values in per_method(per_seed).items():
        cells = [format_values(values.get(c.key, []), c.scale, c.digits) for c in columns]
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def effect_table(per_seed, columns, effects, labels=None):
    """Markdown table of same-seed differences method − baseline.

    effects: (method, baseline method) pairs. Each cell is the mean ± std
    over seeds of (method − baseline) on the same seed, then on how many
    seeds the method was better (as rounded for display: a tie is not a
    win). '' when no pair of `effects` ran. `labels`: row id -> the name
    shown (default the id).
    """
    labels = labels or {}
    lines = [
        "| method − baseline | " + " | ".join(c.heading for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    ran = per_method(per_seed)
    for method, baseline in effects:
        if method not in ran or baseline not in ran:
            continue
        cells = []
        for c in columns:
            pairs = [
                (rows[method].get(c.key), rows[baseline].get(c.key))
                for rows in per_seed.values()
                if method in rows and baseline in rows
            ]
            diffs = [a - b for a, b in pairs if a is not None and b is not None]
            if not diffs:
                cells.append("–")
                continue
            shown = [c.rounded(d) for d in diffs]
            better = sum((d > 0) if c.higher_is_better else (d < 0) for d in shown)
            text = format_values(diffs, c.scale, c.digits)
            cells.append(f"{'+' if np.mean(diffs) >= 0 else ''}{text} ({better}/{len(diffs)} better)")
        lines.append(
            f"| {labels.get(method, method)} − {labels.get(baseline, baseline)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""
