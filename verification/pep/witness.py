r"""The witness: a 1-D ``L``-smooth function through a PEP's worst-case points (Taylor–Hendrickx–Glineur
interpolation), as a :class:`~dropmuon.verification.synthetic.problems.Problem` that the numpy Drop-Muon runs on."""

from __future__ import annotations

import numpy as np

from dropmuon.theory._validation import check_scalar


class SmoothInterpolant:
    r"""A 1-D ``L``-smooth function through data ``(x_n, g_n, f_n)`` (exactly, when the data satisfy
    the THG conditions), built as in Taylor–Hendrickx–Glineur (2017): ``f ∈ F_{−L,L}`` iff
    ``h = f + (L/2)x² ∈ F_{0,2L}``, and the convex ``2L``-smooth interpolant of ``h``'s data is

    .. math::

        h(x) = \min_y\ L(x − y)^2 + φ(y),

    ``φ`` the lower convex envelope of the points ``(z_n, c_n)``, ``z_n = x_n − h'_n/(2L)``,
    ``c_n = h_n − h'_n{}^2/(4L)``. Whatever the data, ``h`` is convex and ``2L``-smooth (an
    infimal convolution with ``L(·)²``), so ``f = h − (L/2)x²`` is always ``L``-smooth: the witness
    belongs to the class even where the solver's data are slightly off. ``f`` is piecewise
    quadratic; :meth:`infimum` is exact.

    >>> s = SmoothInterpolant([1.0, 0.0], [1.0, 0.0], [0.5, 0.0], 1.0)
    >>> float(s.value(0.5)), float(s.grad(0.5)), s.infimum()
    (0.125, 0.5, 0.0)
    """

    def __init__(self, x, g, f, L: float):
        x, g, f = (np.asarray(a, dtype=float).ravel() for a in (x, g, f))
        self.L = check_scalar("L", L, "positive")
        hv, hg = f + 0.5 * self.L * x**2, g + self.L * x
        L2 = 2 * self.L
        z, c = x - hg / L2, hv - hg**2 / (2 * L2)
        order = np.lexsort((c, z))
        z, c = z[order], c[order]
        hull: list[int] = []
        for k in range(len(z)):
            if hull and abs(z[k] - z[hull[-1]]) <= 1e-15 * max(1.0, abs(z[k])):
                continue  # same z: the lower c came first
            while len(hull) >= 2:
                a, b_ = hull[-2], hull[-1]
                # drop b_ if it lies on or above the segment a–k
                if (c[b_] - c[a]) * (z[k] - z[a]) >= (c[k] - c[a]) * (z[b_] - z[a]):
                    hull.pop()
                else:
                    break
            hull.append(k)
        self.z, self.c = z[hull], c[hull]
        self.s = np.diff(self.c) / np.diff(self.z) if len(hull) > 1 else np.zeros(0)
        m = len(self.s)
        B = np.empty(2 * m)
        B[0::2] = self.z[:-1] + self.s / L2
        B[1::2] = self.z[1:] + self.s / L2
        self.B = B

    def _prox(self, x):
        x = np.asarray(x, dtype=float)
        L2 = 2 * self.L
        p = np.searchsorted(self.B, x)
        vert = p % 2 == 0
        j = p // 2
        jv = np.minimum(j, len(self.z) - 1)
        js = np.minimum(j, max(len(self.s) - 1, 0))
        if len(self.s):
            y = np.where(vert, self.z[jv], x - self.s[js] / L2)
            phi = np.where(vert, self.c[jv], self.c[js] + self.s[js] * (y - self.z[js]))
        else:
            y = np.full_like(x, self.z[0])
            phi = np.full_like(x, self.c[0])
        return y, phi

    def value(self, x):
        """``f(x)``."""
        y, phi = self._prox(x)
        return self.L * (x - y) ** 2 + phi - 0.5 * self.L * np.asarray(x) ** 2

    def grad(self, x):
        """``f'(x) = 2L(x − y*(x)) − Lx``."""
        y, _ = self._prox(x)
        return 2 * self.L * (x - y) - self.L * np.asarray(x)

    def infimum(self) -> float:
        """``inf f``, exactly: the minimum over the breakpoints and the vertices ``2z_j`` of the
        convex pieces (the other pieces are concave)."""
        cand = np.concatenate([self.B, 2 * self.z])
        return float(np.min(self.value(cand)))


def _witness_problem_class():
    from ..synthetic.problems import Constants, Problem, _norms

    class _Interpolated(Problem):
        def __init__(self, interpolant: SmoothInterpolant, layer: int, L, x0: float):
            b = len(L)
            self.name = f"PEP witness (layer {layer} of {b})"
            self.description = ("worst case of the layer PEP, interpolated by a 1-D piecewise quadratic "
                                 "(docs/certify.md); the other layers are zero functions")
            self.norms = _norms("frobenius", b)
            self.interp = interpolant
            self.layer = layer - 1
            self.x0 = tuple(np.full((1, 1), x0 if i == self.layer else 0.0) for i in range(b))
            for a in self.x0:
                a.setflags(write=False)
            self.fstar = interpolant.infimum()
            self.constants = Constants(L=np.asarray(L, dtype=float), lipschitz=True,
                                       derivation="THG interpolant: h = f + (L/2)x² convex and 2L-smooth")

        def _value(self, X):
            return float(self.interp.value(X[self.layer][0, 0]))

        def _grad(self, X, i):
            if i != self.layer:
                return np.zeros((1, 1))
            return np.full((1, 1), float(self.interp.grad(X[i][0, 0])))

    return _Interpolated


def InterpolatedProblem(interpolant: SmoothInterpolant, layer: int, L, x0: float):
    """A :class:`.problems.Problem` (1×1 Frobenius layers) whose layer ``layer`` (1-based) is the
    1-D function ``interpolant`` started at ``x0`` and whose other layers are zero functions:
    separable, A1 in Lipschitz form with the given ``L``, ``f* = interpolant.infimum()``."""
    return _witness_problem_class()(interpolant, layer, L, x0)
