"""kerazoo.recipes.results: headline and effect tables say what they measured."""

import numpy as np
import pytest
from scipy import stats

from kerazoo.recipes.results import Column, count, effect_table, headline_table, paired_p_value

COLUMNS = [Column("accuracy", "accuracy"), Column("norm", "nuclear norm", scale=1, digits=2)]


def test_every_column_heading_carries_its_own_unit():
    table = headline_table({0: {"A": {"accuracy": 0.5, "norm": 3.0}}}, COLUMNS)
    assert table.splitlines()[0] == "| method | accuracy (%) | nuclear norm |"


def test_a_tie_as_displayed_is_not_a_win():
    per_seed = {
        0: {"A": {"accuracy": 0.50004, "norm": 1.0}, "B": {"accuracy": 0.5, "norm": 1.0}},
        1: {"A": {"accuracy": 0.52, "norm": 2.0}, "B": {"accuracy": 0.5, "norm": 1.0}},
    }
    row = effect_table(per_seed, COLUMNS, [("A", "B")]).splitlines()[2]
    assert row == "| A − B | +1.0 ± 1.0 (1/2 better) | +0.50 ± 0.50 (1/2 better) |"


def test_no_effect_table_when_no_pair_ran():
    per_seed = {0: {"A": {"accuracy": 0.5, "norm": 1.0}}}
    assert effect_table(per_seed, COLUMNS, [("A", "B")]) == ""


def test_count_agrees_in_number():
    assert [
        count(1, "epoch"),
        count(2, "epoch"),
        count(1, "class", "classes"),
        count(0, "class", "classes"),
    ] == ["1 epoch", "2 epochs", "1 class", "0 classes"]


def test_a_seed_on_which_a_metric_is_undefined_is_left_out_of_its_cell():
    per_seed = {
        seed: {"A": {"accuracy": value, "norm": 1.0}} for seed, value in enumerate([0.4, float("nan"), 0.6])
    }
    assert headline_table(per_seed, COLUMNS).splitlines()[2] == "| A | 50.0 ± 10.0 | 1.00 ± 0.00 |"


def test_the_paired_p_value_is_a_one_sample_t_test_of_the_differences():
    diffs = np.array([6.0, 5.0, 5.5, -1.0])
    assert paired_p_value(diffs) == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    assert (paired_p_value(np.array([2.0, 2.0])), paired_p_value(np.zeros(3))) == (0.0, 1.0)
