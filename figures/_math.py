"""Formulas for the HTML report without a network: LaTeX rendered to SVG by matplotlib's mathtext
(Computer Modern, the figures' math font), or, where mathtext cannot parse it, written as readable
plain math (Unicode symbols, fractions as ``(a)/(b)``).

mathtext parses a subset of LaTeX: :func:`to_mathtext` first rewrites the common commands it lacks
(``\\le``, ``\\ge``, ``\\ne``, ``\\dfrac``, ``\\lVert`` …) into ones it has.
"""

from __future__ import annotations

import io
import re

__all__ = ["latex_svg", "plain_math", "to_mathtext"]

# LaTeX commands mathtext lacks, and what it has instead (a command is matched only as a whole
# word: ``\le`` but not ``\left``)
_MATHTEXT_REWRITES = {
    "le": r"\leq", "ge": r"\geq", "ne": r"\neq", "dfrac": r"\frac", "tfrac": r"\frac",
    "lVert": r"\Vert", "rVert": r"\Vert", "lvert": "|", "rvert": "|", "operatorname": r"\mathrm",
    "displaystyle": "", "textstyle": "", "limits": "", "nolimits": "",
}


def _command(name: str):
    return re.compile(r"\\" + name + r"(?![A-Za-z])")


def to_mathtext(latex: str) -> str:
    r"""``latex`` with the commands mathtext lacks replaced by equivalents it parses.

    >>> to_mathtext(r"a \le \dfrac{1}{2} \left(b\right)")
    'a \\leq \\frac{1}{2} \\left(b\\right)'
    """
    out = latex
    for name, repl in _MATHTEXT_REWRITES.items():
        out = _command(name).sub(lambda _m, r=repl: r, out)
    return out.strip()


def latex_svg(latex: str, fontsize: float = 14.0) -> str | None:
    """The formula as a standalone SVG document (glyphs as paths: no font needed to show it), or
    ``None`` when mathtext cannot parse it even after :func:`to_mathtext`. Deterministic: no date
    in the metadata, fixed element ids."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    s = "$" + to_mathtext(latex) + "$"
    rc = {"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "dropmuon-report",
          "font.family": "serif"}
    with matplotlib.rc_context(rc):
        prop = FontProperties(size=fontsize)
        try:
            width, height, depth, _, _ = MathTextParser("path").parse(s, dpi=72, prop=prop)
        except ValueError:
            return None
        # as matplotlib.mathtext.math_to_image, with the metadata left out
        fig = Figure(figsize=(width / 72.0, height / 72.0))
        fig.text(0, depth / height, s, fontproperties=prop)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    return buf.getvalue().decode("utf-8")


_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
    "sum": "Σ", "prod": "∏", "int": "∫", "nabla": "∇", "partial": "∂", "infty": "∞", "le": "≤", "leq": "≤",
    "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "sim": "∼", "cdot": "·", "times": "×",
    "pm": "±", "to": "→", "in": "∈", "|": "‖", "Vert": "‖", "lVert": "‖", "rVert": "‖", "vert": "|",
    "max": "max", "min": "min", "log": "log", "exp": "exp", "sup": "sup", "inf": "inf", "ldots": "…",
    "cdots": "⋯", ",": " ", ";": " ", "quad": "  ", "qquad": "    ", "!": "", "left": "", "right": "",
}
_OPERATORS = {"Σ", "∏", "∫", "max", "min", "log", "exp", "sup", "inf"}
_FONTS = {"mathbb": {"E": "𝔼", "R": "ℝ", "N": "ℕ", "Z": "ℤ", "P": "ℙ"}}


def _group(s: str, i: int) -> tuple[str, int]:
    """The argument at ``s[i:]`` (a ``{…}`` group or one character) and the index after it."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] != "{":
        if s[i] == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            return m.group(0), i + len(m.group(0))
        return s[i], i + 1
    depth, j = 0, i
    while j < len(s):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1:j], j + 1
        j += 1
    return s[i + 1:], len(s)


def _wrap(x: str) -> str:
    return x if len(x) <= 1 or re.fullmatch(r"[\w.]+", x) else f"({x})"


def plain_math(latex: str) -> str:
    r"""``latex`` as readable plain text (Unicode symbols; ``\frac{a}{b}`` as ``a/b``, bracketed
    where needed; ``x^{2}`` as ``x^2``): the fall-back where mathtext cannot draw a formula.

    >>> plain_math(r"\frac{2 \Delta_{0}}{K} \le \sqrt{x + 1}")
    '(2 Δ_0)/K ≤ √(x + 1)'
    """
    out, i = [], 0
    while i < len(latex):
        ch = latex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            name = m.group(1)
            i += len(m.group(0))
            if name in ("begin", "end"):  # an environment's name: dropped with it
                _, i = _group(latex, i)
            elif name == "\\":  # a line break (aligned, cases …)
                out.append("; ")
            elif name in ("frac", "dfrac", "tfrac"):
                a, i = _group(latex, i)
                b, i = _group(latex, i)
                out.append(f"{_wrap(plain_math(a))}/{_wrap(plain_math(b))} ")
            elif name == "sqrt":
                a, i = _group(latex, i)
                out.append(f"√{_wrap(plain_math(a))}")
            elif name in _FONTS or name in ("mathrm", "mathit", "mathbf", "text", "operatorname", "mathcal"):
                a, i = _group(latex, i)
                out.append(_FONTS.get(name, {}).get(a, plain_math(a)))
            else:
                sym = _SYMBOLS.get(name, name)
                out.append(sym + " " if sym in _OPERATORS else sym)
        elif ch in "^_":
            a, i = _group(latex, i + 1)
            out.append(ch + _wrap(plain_math(a)))
        elif ch in "{}&":  # groups, alignment points
            i += 1
        else:
            out.append(ch)
            i += 1
    text = re.sub(r" {2,}", " ", "".join(out))
    return re.sub(r" (?=[_^)\]};,])", "", text).strip()
