"""Run-report figures: written atomically, with the command that made the
run printed beneath them."""

import pytest

from kerazoo.recipes import plots

COMMAND = (
    "python -m kerazoo.recipes.git --config recipes/glyphs_dil_lt100_git.toml "
    "--set translator_augment=flip --set num_seeds=3 --out runs/glyphs_git_dil_flip"
)


@pytest.mark.parametrize("command", [COMMAND, None])
def test_a_figure_carries_the_command_of_its_run(command, tmp_path):
    figure, ax = plots.plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    plots.save_figure(figure, tmp_path / "f.png", command)
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")
    assert list(tmp_path.iterdir()) == [tmp_path / "f.png"]  # no temporary file left
    printed = [text.get_text() for text in figure.texts]
    if command is None:
        assert printed == []
    else:
        (footnote,) = printed
        # All of it, wrapped to the figure's width (4 inches: two lines).
        assert " ".join(footnote.splitlines()) == command and len(footnote.splitlines()) == 2


def test_history_plots_the_columns_a_log_has(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,accuracy\n0,2.0,0.5\n1,1.0,0.75\n")
    assert plots.read_history(log) == {"epoch": [0.0, 1.0], "loss": [2.0, 1.0], "accuracy": [0.5, 0.75]}
    plots.plot_history(log, tmp_path / "curves.png", "digits: CE, seed 0", COMMAND)
    assert (tmp_path / "curves.png").stat().st_size > 0
