"""Shared checks for the figure tests."""

import pathlib

import numpy as np
import pytest
from matplotlib.figure import Figure


def check_saved(paths):
    """Every path exists and is a valid PDF (``%PDF-`` header, ``%%EOF`` trailer) or PNG
    (signature and IHDR chunk)."""
    paths = [pathlib.Path(p) for p in paths]
    assert paths, "nothing was saved"
    for p in paths:
        data = p.read_bytes()
        if p.suffix == ".pdf":
            assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:], p
        elif p.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR", p
        else:
            raise AssertionError(f"unexpected file {p}")


def check_labelled(fig):
    """A Figure whose every visible axes has an x and a y label."""
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert axes
    for ax in axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"unlabelled axes {ax}"


@pytest.fixture
def saved_ok():
    return check_saved


@pytest.fixture
def labelled_ok():
    return check_labelled


# -- text layout: overlapping or clipped text, legends on data ------------------------------------

#: Two text boxes may share this much (points, in both directions) without counting as overlapping:
#: a box is the font's layout box (full ascent and descent, mathtext's extra depth), about a point
#: larger than the ink on each side, so boxes touching within it do not touch on paper.
TEXT_OVERLAP_PT = 1.0
#: a text box may reach this far (points) past the saved area or its clip box: the box's empty
#: descent below a tick label, and rounding of the pixel grid
TEXT_CLIP_PT = 0.5
#: a legend's box is shrunk by this much (points) on every side before a line or point counts as
#: being on it: a line grazing its empty padding is not on the legend
LEGEND_MARGIN_PT = 1.0


def draw_and_collect_texts(fig):
    """Draw ``fig`` as ``savefig`` would (Agg, the paper style, the layout engine run) and return
    ``(renderer, [(text, box), …])``: every :class:`~matplotlib.text.Text` actually drawn with
    non-blank text, and its box in display units *as drawn* (an axis reuses its tick label objects,
    so a box asked for after the draw may not be the one drawn; tick labels of ticks outside the
    view are not drawn and so not returned)."""
    from unittest import mock

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from dropmuon.figures.style import paper_style

    drawn = []
    original = Text.draw

    def recording_draw(self, renderer):
        out = original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer).frozen()))
        return out

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with paper_style(), mock.patch.object(Text, "draw", recording_draw):
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
    return renderer, drawn


def saved_area(fig, renderer):
    """The region (display units) that ``save_figure`` writes: with ``savefig.bbox = "tight"``
    (the paper style) the tight bounding box padded by ``savefig.pad_inches``, as
    :meth:`Figure.savefig` computes it; else the whole canvas. The tight box grows past the canvas
    to take in what is drawn there (an axis label longer than its axes, which constrained layout
    counts by its centre only): such text is in the file, which is then larger than the figure's
    nominal size, with the text at its very edge."""
    import matplotlib
    from matplotlib.transforms import TransformedBbox

    from dropmuon.figures.style import PAPER_RC

    if PAPER_RC.get("savefig.bbox", matplotlib.rcParams["savefig.bbox"]) != "tight":
        return fig.bbox
    pad = PAPER_RC.get("savefig.pad_inches", matplotlib.rcParams["savefig.pad_inches"])
    return TransformedBbox(fig.get_tightbbox(renderer).padded(pad), fig.dpi_scale_trans)


def _describe(t, b) -> str:
    return f"{t.get_text()!r} at ({b.x0:.0f}, {b.y0:.0f}) px"


def text_problems(fig, drawn=None) -> list[str]:
    """What a reader would see wrong with the text of ``fig`` as saved, one line each (empty: none):

    * two drawn texts whose boxes intersect by more than :data:`TEXT_OVERLAP_PT` in both directions.
      Every pair counts, with no exceptions: a text is not compared with itself, and a legend packs
      its rows (and a multi-line text its lines) without overlap, so no pair of them is excused;
    * a text reaching more than :data:`TEXT_CLIP_PT` past the saved area (cut off in the file),
      past the figure's canvas (the layout had no room for it: the file grows past the figure's
      nominal size and the text runs to its edge), or past its own clip box (cut at its axes).

    ``drawn``: the ``(renderer, texts)`` that :func:`draw_and_collect_texts` returned for ``fig``,
    to check that draw (the figure unchanged since) instead of drawing it again.
    """
    from dropmuon.figures.style import paper_style

    with paper_style():  # as saved: ticks made or measured outside the style would get other fonts
        return _text_problems(fig, drawn)


def _text_problems(fig, drawn=None) -> list[str]:
    renderer, drawn = draw_and_collect_texts(fig) if drawn is None else drawn
    pt = fig.dpi / 72.0
    area = saved_area(fig, renderer)
    texts, boxes = [t for t, _ in drawn], [b for _, b in drawn]
    problems = []
    for t, b in zip(texts, boxes):
        clip = None
        if t.get_clip_on():
            clip = t.get_clip_box()
            path = t.get_clip_path()
            if path is not None:
                ext = path.get_fully_transformed_path().get_extents()
                clip = ext if clip is None else type(ext).intersection(clip, ext)
        for name, limit in (("the saved file", area), ("the figure's canvas", fig.bbox), ("its clip box", clip)):
            if limit is None:
                continue
            past = max(limit.x0 - b.x0, b.x1 - limit.x1, limit.y0 - b.y0, b.y1 - limit.y1) / pt
            if past > TEXT_CLIP_PT:
                problems.append(f"{_describe(t, b)} is clipped by {name} ({past:.1f} pt past it)")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i], boxes[j]
            w = (min(a.x1, b.x1) - max(a.x0, b.x0)) / pt
            h = (min(a.y1, b.y1) - max(a.y0, b.y0)) / pt
            if w > TEXT_OVERLAP_PT and h > TEXT_OVERLAP_PT:
                problems.append(f"{_describe(texts[i], a)} overlaps {_describe(texts[j], b)} ({w:.1f} × {h:.1f} pt)")
    return problems


def _segment_hits_box(p, q, box) -> bool:
    """Whether the segment ``p``–``q`` meets the rectangle ``box = (x0, y0, x1, y1)``
    (Liang–Barsky clipping)."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for d, v, a, b in ((dx, x0, box[0], box[2]), (dy, y0, box[1], box[3])):
        if d == 0:
            if v < a or v > b:
                return False
            continue
        t0, t1 = sorted(((a - v) / d, (b - v) / d))
        lo, hi = max(lo, t0), min(hi, t1)
        if lo > hi:
            return False
    return True


def _inside(pts, box):
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    return bool(np.any((pts[:, 0] >= box[0]) & (pts[:, 0] <= box[2]) & (pts[:, 1] >= box[1]) & (pts[:, 1] <= box[3])))


def legend_problems(fig, drawn=None) -> list[str]:
    """Legends drawn on the data, one line each (empty: none): for every legend of ``fig``, the
    plotted lines (segments and markers), scatter points, interval bars (line collections) and bars
    of its axes that are drawn inside the legend's box (shrunk by :data:`LEGEND_MARGIN_PT`), in
    display coordinates as drawn; what an artist clips to its axes counts only inside the axes.
    Contour lines and filled areas are not checked (a legend may sit on a heat map or a band), nor
    axis-spanning reference lines (``axhline``/``axvline``) under an opaque legend frame, which
    hides them rather than letting them run through its text. ``drawn``: as for
    :func:`text_problems`, a draw of ``fig`` already made, to check instead of drawing again."""
    from dropmuon.figures.style import paper_style

    with paper_style():
        return _legend_problems(fig, drawn)


def _legend_problems(fig, drawn=None) -> list[str]:
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.legend import Legend
    from matplotlib.patches import Rectangle

    renderer, _ = draw_and_collect_texts(fig) if drawn is None else drawn
    m = LEGEND_MARGIN_PT * fig.dpi / 72.0
    problems = []
    for leg in fig.findobj(Legend):
        if not leg.get_visible():
            continue
        lb = leg.get_window_extent(renderer)
        box = (lb.x0 + m, lb.y0 + m, lb.x1 - m, lb.y1 - m)
        name = f"legend {leg.get_texts()[0].get_text() if leg.get_texts() else ''!r}…"
        for ax in [leg.axes] if leg.axes is not None else fig.axes:
            ab = ax.bbox
            clipped = (max(box[0], ab.x0), max(box[1], ab.y0), min(box[2], ab.x1), min(box[3], ab.y1))
            if clipped[0] > clipped[2] or clipped[1] > clipped[3]:
                clipped = None

            def seen(artist, clipped=clipped, box=box):  # the legend box where the artist can be drawn
                return clipped if artist.get_clip_on() else box

            # an opaque legend frame masks the axis-spanning reference lines (axhline, axvline)
            # under it: they stop at the legend instead of running through its text
            frame = leg.get_frame()
            opaque = leg.get_frame_on() and frame.get_facecolor()[3] >= 0.8
            spanning = (ax.get_xaxis_transform(which="grid"), ax.get_yaxis_transform(which="grid"))
            for ln in ax.get_lines():
                b = seen(ln)
                if not ln.get_visible() or len(ln.get_xydata()) == 0 or b is None:
                    continue
                if opaque and ln.get_transform() in spanning:
                    continue
                xy = ln.get_transform().transform(ln.get_xydata())
                hit = ln.get_linestyle() not in ("None", "none", "", " ") and any(
                    _segment_hits_box(xy[k], xy[k + 1], b) for k in range(len(xy) - 1)
                    if np.all(np.isfinite(xy[k:k + 2])))
                hit = hit or (ln.get_marker() not in (None, "None", "none", "", " ") and _inside(xy, b))
                if hit:
                    problems.append(f"{name} sits on the line {ln.get_label()!r} (gid {ln.get_gid()!r})")
            for col in ax.collections:
                b = seen(col)
                if not col.get_visible() or b is None:
                    continue
                if isinstance(col, PathCollection):
                    if _inside(col.get_offset_transform().transform(col.get_offsets()), b):
                        problems.append(f"{name} sits on the points {col.get_gid()!r}")
                elif isinstance(col, LineCollection) and not type(col).__name__.startswith("Contour"):
                    segs = [col.get_transform().transform(s) for s in col.get_segments()]
                    if any(_segment_hits_box(s[k], s[k + 1], b) for s in segs for k in range(len(s) - 1)):
                        problems.append(f"{name} sits on the segments {col.get_gid()!r}")
            for patch in ax.patches:
                b = seen(patch)
                if isinstance(patch, Rectangle) and patch.get_visible() and b is not None:
                    pb = patch.get_window_extent(renderer)
                    if min(pb.x1, b[2]) > max(pb.x0, b[0]) and min(pb.y1, b[3]) > max(pb.y0, b[1]):
                        problems.append(f"{name} sits on the bar {patch.get_label()!r}")
    return problems
