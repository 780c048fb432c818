"""The paper style: sizes, the colour-blind-safe palette, styled artists, saving."""

import matplotlib
import pytest

from dropmuon.figures.style import COLUMN_WIDTH_IN, PALETTE, color, new_figure, save_figure, styled

from .conftest import check_saved


@styled
def _example():
    fig, ax = new_figure(2, 0.5)
    ax.plot([1, 2, 3], [1, 4, 9], label=r"$\pi_i$")
    ax.set_xlabel(r"iterations $K$")
    ax.set_ylabel("bound")
    ax.legend()
    return fig, ax


def test_styled_figures_are_styled_and_the_global_style_is_untouched():
    before = dict(matplotlib.rcParams)
    fig, ax = _example()
    assert list(fig.get_size_inches()) == pytest.approx([COLUMN_WIDTH_IN[2], COLUMN_WIDTH_IN[2] * 0.5])
    assert ax.xaxis.label.get_fontfamily() == ["serif"] and ax.xaxis.label.get_fontsize() == 8.0
    assert not ax.get_legend().get_frame_on()
    assert ax.get_lines()[0].get_color() == PALETTE[0]
    assert dict(matplotlib.rcParams) == before


def test_palette_and_named_colours():
    assert len(set(PALETTE)) == len(PALETTE) == 8
    assert color(9) == PALETTE[1]
    assert len({color(s) for s in ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift")}) == 5
    with pytest.raises(ValueError, match="no fixed colour for 'best'"):
        color("best")


def test_save_and_bad_input(tmp_path):
    fig, _ = _example()
    paths = save_figure(fig, tmp_path / "sub" / "f")
    assert [p.name for p in paths] == ["f.pdf", "f.png"]
    check_saved(paths)
    with pytest.raises(ValueError, match="unsupported figure format 'jpg'"):
        save_figure(fig, tmp_path / "g", formats=("jpg",))
    with pytest.raises(ValueError, match="columns = 3"):
        new_figure(3)
