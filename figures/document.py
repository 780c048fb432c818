"""The report as a document: a :class:`Report` is a list of blocks (headings, paragraphs, tables,
figures, formulas, preformatted text) rendered to Markdown and to a standalone HTML page (formulas as
SVG from matplotlib's mathtext, :mod:`dropmuon.figures._math`). What goes into the built-in report is
:mod:`dropmuon.figures.report`."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Report", "HTML_PAGE_WIDTH_IN"]


@dataclass
class Report:
    """A document as a list of blocks (headings, paragraphs, tables, figures, formulas,
    preformatted text), rendered to Markdown (:meth:`to_markdown`) and to a standalone HTML page
    (:meth:`to_html`)."""

    title: str
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 2):
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str):
        self.blocks.append(("paragraph", text))

    def table(self, header: list, rows: list):
        self.blocks.append(("table", [str(h) for h in header], [[str(c) for c in r] for r in rows]))

    def figure(self, stem: str, caption: str, width_in: float | None = None):
        """``stem``: the figure's path relative to the report without extension (``.png`` shown,
        ``.pdf`` linked); figures are numbered in order of appearance. ``width_in``: the figure's
        width in inches (one column 3.4, page width 7.0): the HTML page shows every figure at the
        same scale, ``width_in / 7.0`` of the text width (default: the text width)."""
        n = len(self.figures()) + 1
        self.blocks.append(("figure", stem, f"Figure {n}. {caption}", width_in))

    def preformatted(self, text: str):
        self.blocks.append(("pre", text))

    def math(self, latex: str):
        """A displayed formula in LaTeX: a ``math`` block in Markdown; in HTML an SVG drawn by
        matplotlib's mathtext (no network, no script), or readable plain math where mathtext
        cannot parse it (:mod:`dropmuon.figures._math`)."""
        self.blocks.append(("math", latex))

    def figures(self) -> list[str]:
        """The stems of every figure the report links."""
        return [b[1] for b in self.blocks if b[0] == "figure"]

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                out += ["#" * b[1] + " " + b[2], ""]
            elif kind == "paragraph":
                out += [b[1], ""]
            elif kind == "table":
                header, rows = b[1], b[2]
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in header) + " |")
                out.append("|" + "|".join(" --- " for _ in header) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "figure":
                out += [f"![{b[2]}]({b[1]}.png)", "", f"*{b[2]}* ([PDF]({b[1]}.pdf))", ""]
            elif kind == "pre":
                out += ["```", b[1].rstrip("\n"), "```", ""]
            elif kind == "math":
                out += ["```math", b[1].strip(), "```", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "heading":
                body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif kind == "paragraph":
                body.append(f"<p>{_inline_code(e(b[1]))}</p>")
            elif kind == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "figure":
                # one scale for every figure: its printed width relative to the page width (7 in),
                # so a one-column figure is shown at half the width of a page-wide one
                width = _html_width_percent(b[3] if len(b) > 3 else None)
                body.append(f'<figure><img src="{e(b[1])}.png" alt="{e(b[2])}" style="width:{width:g}%">'
                            f'<figcaption>{e(b[2])} (<a href="{e(b[1])}.pdf">PDF</a>)</figcaption></figure>')
            elif kind == "pre":
                body.append(f"<pre>{e(b[1])}</pre>")
            elif kind == "math":
                body.append(_html_math(b[1]))
        style = ("body{font-family:Georgia,serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.45}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
                 "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:right}"
                 "th{background:#eee}figure{margin:1.5em 0}img{max-width:100%}"
                 "figcaption{font-style:italic;font-size:90%}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}"
                 ".math{margin:1em 0;overflow-x:auto}.math img{max-width:none;vertical-align:middle}"
                 ".math-plain{font-style:italic}")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{e(self.title)}</title><style>{style}</style></head><body>\n"
                + "\n".join(body) + "\n</body></html>\n")


#: the printed width (inches) that the HTML report shows at the full text width
HTML_PAGE_WIDTH_IN = 7.0


def _html_width_percent(width_in) -> float:
    """The ``<img>`` width in percent of the text width for a figure ``width_in`` inches wide."""
    if width_in is None or not width_in > 0:
        return 100.0
    return round(min(100.0, 100.0 * float(width_in) / HTML_PAGE_WIDTH_IN), 1)


def _png_width_in(path, dpi: int = 300) -> float | None:
    """The printed width in inches of a PNG written at ``dpi`` (its pixel width from the IHDR
    chunk): the figure as saved, after the tight bounding box."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big") / dpi


def _html_math(latex: str) -> str:
    """A displayed formula for the HTML page: an ``<img>`` of the SVG that mathtext draws (a data
    URI: the page stays one file and loads nothing), with the LaTeX as its ``alt`` text; readable
    plain math where mathtext cannot parse the formula."""
    import base64

    from dropmuon.figures._math import latex_svg, plain_math

    e = html.escape
    svg = latex_svg(latex)
    if svg is None:
        return f'<div class="math math-plain" title="{e(latex)}">{e(plain_math(latex))}</div>'
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<div class="math"><img src="data:image/svg+xml;base64,{data}" alt="{e(latex)}"></div>'


def _inline_code(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))
