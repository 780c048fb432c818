"""Paper styles for every figure of the toolkit: serif text with mathtext (Computer Modern), sizes
for one- and two-column layouts, the Okabe–Ito colour-blind-safe palette, and saving as vector
PDF plus PNG. Figures are built as :class:`matplotlib.figure.Figure` objects (no pyplot, no global
figure manager, nothing shown)."""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

__all__ = ["PALETTE", "COLUMN_WIDTH_IN", "PAPER_RC", "paper_style", "styled", "new_figure", "save_figure",
           "color", "mathtext_primes"]

#: Okabe & Ito (2008), distinguishable under the common colour-vision deficiencies; black first
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")

#: text widths in inches: one column of a two-column paper (e.g. NeurIPS/ICML-style 3.25–3.5 in)
#: and the full width of the page
COLUMN_WIDTH_IN = {1: 3.4, 2: 7.0}

#: the rcParams of the paper style (applied while a figure is built and saved)
PAPER_RC = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif", "Times New Roman", "Times"],
    "mathtext.fontset": "cm",
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 8.0,
    "legend.fontsize": 7.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "axes.grid": True,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
    "pdf.fonttype": 42,  # TrueType in the PDF: editable text, accepted by publishers
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}

# mapping of the toolkit's schedule names to fixed colours, so a schedule has one colour everywhere
_NAMED = {"full": PALETTE[0], "uniform": PALETTE[1], "optimal-max": PALETTE[4], "optimal-sum": PALETTE[3],
          "epoch-shift": PALETTE[6], "phase-optimal": PALETTE[2], "optimal": PALETTE[4], "custom": PALETTE[5]}


def color(name_or_index, default=None) -> str:
    """A palette colour: by index (cycling), or by schedule name (``"full"``, ``"uniform"``,
    ``"optimal-max"``, …) so that a schedule has the same colour in every figure; a name without
    a fixed colour gets the palette colour of index ``default`` (an error when ``None``).

    >>> color(0), color("uniform") == color(1), color("mine", default=2) == color(2)
    ('#000000', True, True)
    """
    if isinstance(name_or_index, str):
        if name_or_index in _NAMED:
            return _NAMED[name_or_index]
        if default is None:
            raise ValueError(f"no fixed colour for {name_or_index!r}; use an index or one of {sorted(_NAMED)}")
        return color(int(default))
    return PALETTE[int(name_or_index) % len(PALETTE)]


def mathtext_primes(text: str) -> str:
    """``text`` with every prime ``′`` (U+2032, as in the theorem label ``T1′``) written as the
    mathtext prime ``$'$``: the paper fonts draw U+2032 like an acute accent (``T1´``).

    >>> mathtext_primes("T1′: bound")
    "T1$'$: bound"
    """
    return text.replace("\u2032", "$'$")


@contextmanager
def paper_style():
    """``with paper_style(): ...`` applies :data:`PAPER_RC` (restored afterwards)."""
    with matplotlib.rc_context(PAPER_RC):
        yield


def styled(fn):
    """Decorator for plot functions: the whole body runs in :func:`paper_style` (matplotlib reads
    most style parameters when an artist is created, so the legend, labels and lines must be made
    inside the style, not only the figure)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paper_style():
            return fn(*args, **kwargs)
    return wrapper


def new_figure(columns: int = 1, aspect: float = 0.75, *, nrows: int = 1, ncols: int = 1, gridspec_kw=None,
               **subplot_kw):
    """``(fig, axes)``: a :class:`~matplotlib.figure.Figure` ``COLUMN_WIDTH_IN[columns]`` wide and
    ``aspect`` times as high, with an ``nrows × ncols`` grid of axes (an array unless 1 × 1;
    ``gridspec_kw``, e.g. ``{"height_ratios": [...]}``, shapes the grid), built in the paper
    style. Plot functions call it inside :func:`paper_style` (use :func:`styled`), so that what
    they draw is styled too.

    >>> fig, ax = new_figure(1)
    >>> [round(float(v), 2) for v in fig.get_size_inches()]
    [3.4, 2.55]
    """
    if columns not in COLUMN_WIDTH_IN:
        raise ValueError(f"columns must be 1 or 2; got columns = {columns!r}")
    if not aspect > 0:
        raise ValueError(f"aspect must be positive; got aspect = {aspect!r}")
    w = COLUMN_WIDTH_IN[columns]
    with paper_style():
        fig = Figure(figsize=(w, w * aspect), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=True, subplot_kw=subplot_kw or None, gridspec_kw=gridspec_kw)
    return fig, axes


def save_figure(fig: Figure, stem, formats=("pdf", "png"), dpi: int = 300) -> list[Path]:
    """Write ``fig`` to ``stem.pdf`` (vector) and ``stem.png`` (``dpi``), creating the folder;
    returns the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # fontTools logs "'created' timestamp seems very low" for DejaVu's zero font timestamps while
    # embedding TrueType in the PDF: harmless, so it is quietened for the save
    ft_log = logging.getLogger("fontTools")
    level = ft_log.level
    ft_log.setLevel(logging.ERROR)
    try:
        with paper_style():
            for fmt in formats:
                if fmt not in ("pdf", "png", "svg"):
                    raise ValueError(f"unsupported figure format {fmt!r}; use pdf, png or svg")
                path = stem.with_suffix("." + fmt)
                fig.savefig(path, format=fmt, dpi=dpi)
                paths.append(path)
    finally:
        ft_log.setLevel(level)
    return paths
