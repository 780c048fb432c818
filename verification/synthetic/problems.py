"""Synthetic problems with certified layer-wise constants (docs/theory.md), the test beds of the
verification: each documents which assumption holds, with which constants, and how they were
derived — the derivations are short enough to live in the docstrings.

Norm-equivalence constants used throughout: for a layer norm ``‖·‖`` on ``m × n`` matrices,
``κ`` satisfies ``‖D‖_F ≤ κ‖D‖`` and, by duality, ``‖G‖_* ≤ κ‖G‖_F``
(:func:`norm_equivalence`): ``κ = 1`` (Frobenius), ``sqrt(r)`` (spectral, ``r = min(m, n)``),
``sqrt(r m/n)`` (scaled spectral ``sqrt(n/m)‖·‖_op``), ``sqrt(mn)`` (``ℓ∞``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar
from dropmuon.theory.norms import Norm, as_matrix, get_norm

__all__ = [
    "Constants",
    "Problem",
    "SeparableQuadratic",
    "CoupledQuadratic",
    "L0L1Radial",
    "DeepLinear",
    "Stochastic",
    "norm_equivalence",
]


def norm_equivalence(norm: Norm | str, shape) -> float:
    """``κ`` with ``‖D‖_F ≤ κ‖D‖`` and ``‖G‖_* ≤ κ‖G‖_F`` for a layer of this shape.

    Both inequalities are attained, so ``κ²`` is the exact constant of ``‖G‖_* ≤ κ²‖G‖`` used
    for quadratics (e.g. ``G = D =`` the identity for the spectral norm).

    >>> norm_equivalence("spectral", (4, 9))
    2.0
    >>> norm_equivalence("linf", (2, 8))
    4.0
    """
    return math.sqrt(_kappa_squared(norm, shape))


def _kappa_squared(norm: Norm | str, shape) -> float:
    norm = get_norm(norm) if isinstance(norm, str) else norm
    m, n = as_matrix(np.zeros(shape)).shape
    r = min(m, n)
    table = {"frobenius": 1.0, "spectral": float(r), "scaled-spectral": r * m / n, "linf": float(m * n)}
    if norm.name not in table:
        raise ValueError(f"no norm-equivalence constant known for the norm {norm.name!r}")
    return table[norm.name]


@dataclass(frozen=True)
class Constants:
    """Certified constants of a problem (``None`` where the assumption does not hold).

    ``L``: A1 in descent form; ``lipschitz``: A1 holds in the (stronger, separable) Lipschitz form
    with the same ``L``; ``L0, L1``: A2, valid for steps of length ``‖Y_i − X_i‖ ≤ 1/L1_i``
    (``radius="1/L1"``) or everywhere (``radius="global"``); ``sigma, rho``: A3; ``region``: where
    the constants hold; ``derivation``: how they were obtained.
    """

    L: np.ndarray | None = None
    lipschitz: bool = False
    L0: np.ndarray | None = None
    L1: np.ndarray | None = None
    l0l1_radius: str = "global"
    sigma: np.ndarray | None = None
    rho: np.ndarray | None = None
    region: str = "everywhere"
    derivation: str = ""

    def as_dict(self) -> dict:
        """JSON-ready copy."""
        out = {}
        for k in ("L", "L0", "L1", "sigma", "rho"):
            v = getattr(self, k)
            out[k] = None if v is None else [float(x) for x in v]
        out.update(lipschitz=self.lipschitz, l0l1_radius=self.l0l1_radius, region=self.region,
                   derivation=self.derivation)
        return out


class CheckedIterate(tuple):
    """An iterate known to be a tuple of finite float64 ndarrays: the Drop-Muon engine
    (:mod:`~dropmuon.verification.synthetic.dropmuon`) checks its own iterates as it forms them and
    hands them to the problem in this form, and :meth:`Problem.check_iterate` then compares only
    the number of layers and their shapes. Not exported: build one only for arrays so checked."""

    __slots__ = ()


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


class Problem:
    """A layer-wise problem ``f(X_1, …, X_b)`` with certified constants.

    Subclasses define ``_value(X)``, ``_grad(X, i)`` (0-based layer ``i``) and set ``name``,
    ``norms``, ``x0``, ``fstar`` (``inf f`` or a lower bound of it, which only loosens ``Δ0``) and
    ``constants``. Public methods validate the iterate and number layers from 1 in messages.

    ``separable`` (default ``False``): ``True`` promises ``f(X) = Σ_i f_i(X_i)``, so that
    ``∇_i f(X) = ∇f_i(X_i)`` depends on layer ``i``'s own block only, and that ``in_region`` is a
    product of per-layer conditions. Drop-Muon then moves each layer on its own, which
    :func:`dropmuon.verification.synthetic.dropmuon.paths` exploits (``method="separable"``). A separable
    subclass may also define ``_layer_values(X)`` (the terms ``f_i(X_i)``, see :meth:`layer_values`).
    """

    name: str = "problem"
    description: str = ""
    norms: tuple = ()
    x0: tuple = ()
    fstar: float = 0.0
    constants: Constants = Constants()
    separable: bool = False

    # -- interface -----------------------------------------------------------------------------
    @property
    def nlayers(self) -> int:
        """``b``, the number of layers."""
        return len(self.x0)

    @property
    def shapes(self) -> tuple:
        """The layers' shapes."""
        return tuple(x.shape for x in self.x0)

    @property
    def delta0(self) -> float:
        """``Δ0 = f(X^0) − f*`` (with ``f*`` the certified lower bound)."""
        return self.value(self.x0) - self.fstar

    def check_iterate(self, X) -> tuple:
        """``X`` as a tuple of float arrays of the layers' shapes; a clear error otherwise."""
        if type(X) is CheckedIterate and len(X) == len(self.x0):
            # finite float arrays already (the engine's own iterate): only the shapes to compare
            for x, x0 in zip(X, self.x0):
                if x.shape != x0.shape:
                    break
            else:
                return X
        if len(X) != self.nlayers:
            raise ValueError(f"problem {self.name!r} has {self.nlayers} layers; got an iterate with {len(X)}")
        out = []
        for j, (x, x0) in enumerate(zip(X, self.x0), start=1):
            a = np.asarray(x, dtype=float)
            if a.shape != x0.shape:
                raise ValueError(f"layer {j} of {self.name!r} has shape {x0.shape}; got {a.shape}")
            if not np.isfinite(a).all():
                bad = a.flat[int(np.flatnonzero(~np.isfinite(a))[0])]
                raise ValueError(f"the iterate's layer {j} has a non-finite entry ({bad!r}); the run diverged")
            out.append(a)
        return tuple(out)

    def value(self, X) -> float:
        """``f(X)``."""
        return float(self._value(self.check_iterate(X)))

    def grad(self, X, layers=None) -> list:
        """``[∇_1 f(X), …, ∇_b f(X)]``; with ``layers`` (1-based), only those blocks are computed
        and the others are ``None`` — an unsampled layer's gradient is never formed."""
        X = self.check_iterate(X)
        if layers is None:
            return [self._grad(X, i) for i in range(self.nlayers)]
        want = self._layers(layers)
        return [self._grad(X, i) if i in want else None for i in range(self.nlayers)]

    def stochastic_grad(self, X, rng: np.random.Generator, layers=None) -> list:
        """An unbiased stochastic gradient (exact for deterministic problems)."""
        return self.grad(X, layers)

    def layer_values(self, X) -> np.ndarray:
        """``[f_1(X_1), …, f_b(X_b)]`` for a separable problem ``f(X) = Σ_i f_i(X_i)`` (the entries
        sum to ``f(X)`` up to rounding; an overflowing term is ``inf``). Raises
        ``NotImplementedError`` where the problem offers no per-layer values (every non-separable
        problem, and a separable one that does not define ``_layer_values``)."""
        X = self.check_iterate(X)
        return np.array([float(v) for v in self._layer_values(X)])

    def in_region(self, X) -> bool:
        """Whether ``X`` lies in the region where the constants are certified."""
        return True

    def dual_norms(self, X) -> np.ndarray:
        """``‖∇_i f(X)‖_(i)*`` for every layer."""
        return np.array([n.dual(g) for n, g in zip(self.norms, self.grad(X))])

    def summary(self) -> dict:
        """Name, description, shapes, norms, ``Δ0`` and the constants (JSON-ready)."""
        return {
            "name": self.name,
            "description": self.description,
            "shapes": [list(s) for s in self.shapes],
            "norms": [n.name for n in self.norms],
            "Delta0": self.delta0,
            "constants": self.constants.as_dict(),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: b={self.nlayers}>"

    # -- helpers -------------------------------------------------------------------------------
    def _layers(self, layers) -> set:
        if layers is None:
            return set(range(self.nlayers))
        out = set()
        for j in layers:
            if not (isinstance(j, (int, np.integer)) and 1 <= j <= self.nlayers):
                raise ValueError(f"layer {j!r} is outside 1..{self.nlayers} for problem {self.name!r}")
            out.add(int(j) - 1)
        return out

    def _value(self, X) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _grad(self, X, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _layer_values(self, X):
        why = "it is not separable" if not self.separable else "it defines no _layer_values"
        raise NotImplementedError(f"problem {self.name!r} offers no per-layer values: {why}")


def _norms(norms, b: int) -> tuple:
    if isinstance(norms, (str, Norm)):
        norms = [norms] * b
    norms = [get_norm(n) if isinstance(n, str) else n for n in norms]
    if len(norms) != b:
        raise ValueError(f"got {len(norms)} norms for {b} layers")
    return tuple(norms)


def _arrays(name: str, arrays, shapes=None) -> tuple:
    out = []
    for j, a in enumerate(arrays, start=1):
        a = np.array(a, dtype=float)
        if a.ndim == 0 or a.size == 0:
            raise ValueError(f"{name} layer {j} must be a non-empty array; got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} layer {j} has non-finite entries")
        if shapes is not None and a.shape != tuple(shapes[j - 1]):
            raise ValueError(f"{name} layer {j} has shape {a.shape}; expected {tuple(shapes[j - 1])}")
        a.setflags(write=False)
        out.append(a)
    if not out:
        raise ValueError(f"{name} needs at least one layer")
    return tuple(out)


class SeparableQuadratic(Problem):
    r"""``f(X) = Σ_i ½ Σ_entries H_i ⊙ (X_i − X_i*)²`` with per-entry curvatures ``H_i ≥ 0``.

    **Constants.** A1 in Lipschitz (hence descent) form with ``L_i = κ_i² max H_i``:
    ``‖H_i⊙D‖_* ≤ κ_i‖H_i⊙D‖_F ≤ κ_i max H_i ‖D‖_F ≤ κ_i² max H_i ‖D‖`` (:func:`norm_equivalence`).
    For the Frobenius norm and ``H_i ≡ c_i`` every inequality is an equality: this is the tight
    instance of T1. A2 holds everywhere with ``L0_i = L_i`` and any ``L1_i ≥ 0`` (pass ``l1``).
    ``f* = 0``.

    ``curvature`` is one number per layer (``H_i ≡ c_i``) or one array per layer.

    Separable (``f_i(X_i) = ½ Σ H_i ⊙ (X_i − X_i*)²``, :meth:`layer_values` gives the terms).

    >>> p = SeparableQuadratic([1.0, 4.0], shapes=[(2, 3), (3, 3)], norms="spectral", seed=0)
    >>> p.constants.L.tolist()
    [2.0, 12.0]
    """

    def __init__(self, curvature, shapes, norms="frobenius", *, x0=None, xstar=None, l1=None,
                 seed: int = 0, name: str | None = None):
        shapes = [tuple(int(d) for d in s) for s in shapes]
        b = len(shapes)
        if b == 0:
            raise ValueError("a problem needs at least one layer")
        if all(np.ndim(ci) == 0 for ci in curvature):
            c = check_layer_array("curvature", curvature, "positive")
            if len(c) != b:
                raise ValueError(f"got {len(c)} curvatures for {b} layers")
            H = tuple(_readonly(np.full(s, ci)) for s, ci in zip(shapes, c))
        else:
            if len(curvature) != b:
                raise ValueError(f"got {len(curvature)} curvature arrays for {b} layers")
            H = _arrays("curvature", curvature, shapes)
            for j, h in enumerate(H, start=1):
                if np.any(h < 0) or not np.any(h > 0):
                    raise ValueError(f"curvature of layer {j} must be non-negative and not all zero")
        self.norms = _norms(norms, b)
        rng = np.random.default_rng(seed)
        self.H = H
        self.xstar = _arrays("xstar", xstar, shapes) if xstar is not None else tuple(
            _readonly(np.zeros(s)) for s in shapes)
        self.x0 = _arrays("x0", x0, shapes) if x0 is not None else tuple(
            _readonly(rng.standard_normal(s)) for s in shapes)
        kappa2 = np.array([_kappa_squared(n, s) for n, s in zip(self.norms, shapes)])
        self.kappa = np.sqrt(kappa2)
        L = kappa2 * np.array([h.max() for h in H])
        self.fstar = 0.0
        self.name = name or f"separable-quadratic[{','.join(n.name for n in self.norms)}]"
        self.description = "separable quadratic ½Σ H_i⊙(X_i − X_i*)²"
        self.constants = Constants(
            L=_readonly(L), lipschitz=True,
            L0=_readonly(L), L1=None if l1 is None else _readonly(check_layer_array("l1", l1, "positive")),
            derivation="L_i = κ_i² max H_i (‖H⊙D‖_* ≤ κ‖H⊙D‖_F ≤ κ² max H ‖D‖); A2 with L0 = L",
        )

    separable = True

    def _value(self, X):
        return sum(0.5 * float((h * (x - xs) ** 2).sum()) for h, x, xs in zip(self.H, X, self.xstar))

    def _layer_values(self, X):
        return [0.5 * float((h * (x - xs) ** 2).sum()) for h, x, xs in zip(self.H, X, self.xstar)]

    def _grad(self, X, i):
        return self.H[i] * (X[i] - self.xstar[i])


class CoupledQuadratic(Problem):
    r"""``f(X) = ½ (x − x*)ᵀ H (x − x*)`` with ``x`` the concatenated layers and ``H ⪰ 0`` coupling them.

    **Constants.** A1 in descent form only (``∇_i f`` depends on every layer) with
    ``L_i = κ_i Σ_j ‖H_ij‖_2 κ_j`` (block Gershgorin): for a step ``D``,
    ``Dᵀ H D ≤ Σ_ij ‖H_ij‖ ‖D_i‖_F ‖D_j‖_F ≤ Σ_ij ‖H_ij‖ κ_iκ_j (‖D_i‖² + ‖D_j‖²)/2
    = Σ_i L_i ‖D_i‖²`` (``‖H_ji‖ = ‖H_ij‖`` by symmetry). ``f* = 0`` (``H ⪰ 0``).

    ``H`` defaults to a random ``WᵀW/N`` with a random ``coupling ∈ [0, 1]`` scaling the
    off-diagonal blocks (then projected back to ``⪰ 0`` by construction: ``H = D + coupling·(G − D)``
    with ``G ⪰ 0`` and ``D`` its block diagonal is PSD as a convex combination of PSD matrices).
    """

    def __init__(self, shapes, norms="frobenius", *, H=None, coupling: float = 0.5, scales=None,
                 x0=None, xstar=None, seed: int = 0, name: str | None = None):
        shapes = [tuple(int(d) for d in s) for s in shapes]
        b = len(shapes)
        if b == 0:
            raise ValueError("a problem needs at least one layer")
        self.norms = _norms(norms, b)
        sizes = [int(np.prod(s)) for s in shapes]
        N = sum(sizes)
        rng = np.random.default_rng(seed)
        offs = np.concatenate([[0], np.cumsum(sizes)])
        if H is None:
            coupling = check_scalar("coupling", coupling, "unit_closed")
            sc = np.ones(b) if scales is None else check_layer_array("scales", scales, "positive")
            W = rng.standard_normal((N + 2, N)) * np.repeat(np.sqrt(sc), sizes)
            G = W.T @ W / (N + 2)
            Dg = np.zeros_like(G)
            for i in range(b):
                sl = slice(offs[i], offs[i + 1])
                Dg[sl, sl] = G[sl, sl]
            H = Dg + coupling * (G - Dg)
        H = np.array(H, dtype=float)
        if H.shape != (N, N):
            raise ValueError(f"H must be {N} × {N} for layers of sizes {sizes}; got {H.shape}")
        if not np.allclose(H, H.T, rtol=0, atol=1e-12 * max(1.0, np.abs(H).max())):
            raise ValueError("H must be symmetric")
        if np.linalg.eigvalsh(H).min() < -1e-10 * max(1.0, np.abs(H).max()):
            raise ValueError("H must be positive semidefinite (f* = 0 is certified only then)")
        H.setflags(write=False)
        self.H, self._offs = H, offs  # not separable: ∇_i f = (H(x − x*))_i involves every layer
        self.xstar = _arrays("xstar", xstar, shapes) if xstar is not None else tuple(
            _readonly(rng.standard_normal(s)) for s in shapes)
        self.x0 = _arrays("x0", x0, shapes) if x0 is not None else tuple(
            _readonly(xs + rng.standard_normal(s)) for xs, s in zip(self.xstar, shapes))
        kappa = np.array([norm_equivalence(n, s) for n, s in zip(self.norms, shapes)])
        blocks = np.array([[np.linalg.norm(H[offs[i]:offs[i + 1], offs[j]:offs[j + 1]], 2)
                            for j in range(b)] for i in range(b)])
        L = kappa * (blocks @ kappa)
        self.kappa, self.fstar = kappa, 0.0
        self.name = name or f"coupled-quadratic[{','.join(n.name for n in self.norms)}]"
        self.description = "coupled quadratic ½(x − x*)ᵀH(x − x*)"
        self.constants = Constants(
            L=_readonly(L), lipschitz=False,
            derivation="descent form, block Gershgorin: L_i = κ_i Σ_j ‖H_ij‖₂ κ_j",
        )

    def _flat(self, X):
        return np.concatenate([(x - xs).ravel() for x, xs in zip(X, self.xstar)])

    def _value(self, X):
        d = self._flat(X)
        return 0.5 * float(d @ self.H @ d)

    def _grad(self, X, i):
        d = self._flat(X)
        sl = slice(self._offs[i], self._offs[i + 1])
        return (self.H[sl] @ d).reshape(self.x0[i].shape)


E_MINUS_1 = math.e - 1.0


class L0L1Radial(Problem):
    r"""``f(X) = Σ_i c_i (cosh(a_i ‖X_i‖_F) − 1)``: layer-wise (L0,L1)-smooth, not L-smooth.

    **Constants** (Frobenius or spectral layer norms). With ``φ(r) = c(cosh(ar) − 1)`` the Hessian
    of ``φ(‖x‖_F)`` has eigenvalues ``φ''(r) = ca² cosh(ar)`` and ``φ'(r)/r ≤ φ''(r)``, and
    ``cosh u − sinh u = e^{−u} ≤ 1`` gives ``‖∇²f_i‖ ≤ ca² + a‖∇f_i‖_F``. Grönwall along a segment of
    length ``s ≤ 1/a`` (Zhang et al. 2020) then gives
    ``‖∇f_i(Y) − ∇f_i(X)‖_F ≤ (e − 1)(ca² + a‖∇f_i(X)‖_F)‖Y − X‖_F``. In the layer norm
    (``‖·‖_F ≤ ‖·‖_*`` for Frobenius/nuclear, ``‖·‖_* ≤ κ‖·‖_F``, ``‖·‖_F ≤ κ‖·‖``) A2 holds with

        L0_i = (e − 1) κ_i² c_i a_i²,    L1_i = (e − 1) κ_i² a_i

    for steps ``‖Y_i − X_i‖ ≤ 1/L1_i`` (then ``‖Y_i − X_i‖_F ≤ κ_i/L1_i ≤ 1/a_i``). Gluon's radius is
    at most ``1/L1_i``, so every step of T2's method stays within that range — the only place the
    proof uses A2 (``docs/theory.md`` §T2). ``f* = 0``.

    Separable: ``f_i(X_i) = c_i (cosh(a_i ‖X_i‖_F) − 1)`` and ``∇_i f`` depends on ``X_i`` only.
    """

    separable = True

    def __init__(self, c, a, shapes, norms="frobenius", *, x0=None, x0_scale: float = 1.0, seed: int = 0,
                 name: str | None = None):
        shapes = [tuple(int(d) for d in s) for s in shapes]
        b = len(shapes)
        self.c = check_layer_array("c", c, "positive")
        self.a = check_layer_array("a", a, "positive")
        if len(self.c) != b or len(self.a) != b:
            raise ValueError(f"c and a need one entry per layer ({b}); got {len(self.c)} and {len(self.a)}")
        self.norms = _norms(norms, b)
        for j, n in enumerate(self.norms, start=1):
            if n.name not in ("frobenius", "spectral"):
                raise ValueError(f"L0L1Radial certifies Frobenius or spectral norms; layer {j} has {n.name!r}")
        rng = np.random.default_rng(seed)
        if x0 is None:
            x0 = []
            for s, ai in zip(shapes, self.a):
                z = rng.standard_normal(s)
                x0.append(z / np.linalg.norm(z) * check_scalar("x0_scale", x0_scale) / ai)
        self.x0 = _arrays("x0", x0, shapes)
        kappa = np.array([norm_equivalence(n, s) for n, s in zip(self.norms, shapes)])
        self.kappa, self.fstar = kappa, 0.0
        self.name = name or f"l0l1-cosh[{','.join(n.name for n in self.norms)}]"
        self.description = "Σ c_i(cosh(a_i‖X_i‖_F) − 1)"
        self.constants = Constants(
            L0=_readonly(E_MINUS_1 * kappa**2 * self.c * self.a**2),
            L1=_readonly(E_MINUS_1 * kappa**2 * self.a),
            l0l1_radius="1/L1",
            derivation="‖∇²f_i‖ ≤ ca² + a‖∇f_i‖; Grönwall on steps ≤ 1/a: factor e−1; norms via κ",
        )

    def _value(self, X):
        return float(sum(c * (math.cosh(a * np.linalg.norm(x)) - 1.0) for c, a, x in zip(self.c, self.a, X)))

    def _layer_values(self, X):
        out = []
        for c, a, x in zip(self.c, self.a, X):
            try:
                out.append(float(c * (math.cosh(a * np.linalg.norm(x)) - 1.0)))
            except OverflowError:  # cosh beyond the float range: the term is +inf
                out.append(math.inf)
        return out

    def _grad(self, X, i):
        r = float(np.linalg.norm(X[i]))
        if r == 0.0:
            return np.zeros_like(X[i])
        return (self.c[i] * self.a[i] * math.sinh(self.a[i] * r) / r) * X[i]


class DeepLinear(Problem):
    r"""A deep linear network ``f(W) = ½‖W_d ⋯ W_1 A − B‖_F²`` (nonconvex) on the region
    ``‖W_i‖_op ≤ R_i``, with spectral layer norms.

    **Constants.** A1 in descent form on the (convex) region. Along ``Z(s) = W + sD`` in the region,
    with ``P(s) = Π_i Z_i(s)``, ``φ(s) = f(Z(s))`` has
    ``φ'' = ‖P'A‖_F² + ⟨PA − B, P''A⟩``. Each term of ``P' = Σ_i P_i`` has ``D_i`` in slot ``i`` and
    ``‖P_i A‖_F ≤ a_i ‖D_i‖_op`` with ``a_i = ‖A‖_F Π_{j≠i} R_j``; ``P'' = 2Σ_{i<j} P_ij`` with
    ``‖P_ij A‖_F ≤ c_ij ‖D_i‖‖D_j‖``, ``c_ij = ‖A‖_F Π_{k≠i,j} R_k``; the residual is at most
    ``q = ‖A‖_F Π R + ‖B‖_F``. Weighted Cauchy–Schwarz and ``2xy ≤ x² + y²`` give
    ``φ'' ≤ Σ_i L_i ‖D_i‖_op²`` with

        L_i = a_i Σ_j a_j + q Σ_{j≠i} c_ij,

    hence ``f(W + D) ≤ f(W) + ⟨∇f(W), D⟩ + Σ_i (L_i/2)‖D_i‖²`` whenever ``W`` and ``W + D`` are
    in the region. The target is realisable (``B = T A`` with ``T`` a product of matrices in the
    region), so ``f* = 0``. Runs record whether they stayed in the region; with constant radii
    ``t_i`` they provably stay when ``‖W_i^0‖_op + K t_i ≤ R_i``. Not separable: ``∇_i f``
    involves every layer through the product.
    """

    def __init__(self, dims: Sequence[int], *, samples: int = 16, R=1.5, init_scale: float = 0.5,
                 seed: int = 0, name: str | None = None, x0=None):
        dims = [check_positive_int("dims", d) for d in dims]
        if len(dims) < 3:
            raise ValueError(f"a deep linear network needs at least two layers (dims of length ≥ 3); got {dims}")
        d = len(dims) - 1
        shapes = [(dims[i + 1], dims[i]) for i in range(d)]
        R = np.full(d, float(R)) if np.ndim(R) == 0 else np.asarray(R, dtype=float)
        self.R = check_layer_array("R", R, "positive")
        if len(self.R) != d:
            raise ValueError(f"R needs one radius per layer ({d}); got {len(self.R)}")
        rng = np.random.default_rng(seed)
        N = check_positive_int("samples", samples)
        A = rng.standard_normal((dims[0], N)) / math.sqrt(N)

        def in_ball(shape, radius):
            Z = rng.standard_normal(shape)
            return Z * (radius / np.linalg.norm(Z, 2))

        T = np.eye(dims[0])
        for i, s in enumerate(shapes):
            T = in_ball(s, 0.8 * self.R[i]) @ T
        self.A, self.B = _readonly(A), _readonly(T @ A)
        self.norms = _norms("spectral", d)
        if x0 is None:
            x0 = [in_ball(s, check_scalar("init_scale", init_scale, "probability") * r) for s, r in zip(shapes, self.R)]
        self.x0 = _arrays("x0", x0, shapes)
        nA = float(np.linalg.norm(A))
        prodR = float(np.prod(self.R))
        a = nA * prodR / self.R
        q = nA * prodR + float(np.linalg.norm(self.B))
        c = nA * prodR / np.outer(self.R, self.R)
        np.fill_diagonal(c, 0.0)
        L = a * a.sum() + q * c.sum(axis=1)
        self.fstar = 0.0
        self.name = name or f"deep-linear[{'x'.join(map(str, dims))}]"
        self.description = "deep linear network ½‖W_d⋯W_1A − B‖_F² on ‖W_i‖_op ≤ R_i"
        self.constants = Constants(
            L=_readonly(L), lipschitz=False, region="‖W_i‖_op ≤ R_i for every layer",
            derivation="L_i = a_i Σ_j a_j + q Σ_{j≠i} c_ij (second derivative along segments in the region)",
        )

    def in_region(self, X) -> bool:
        return all(np.linalg.norm(x, 2) <= r * (1 + 1e-12) for x, r in zip(X, self.R))

    def _forward(self, X):
        outs = [self.A]
        for W in X:
            outs.append(W @ outs[-1])
        return outs

    def _value(self, X):
        return 0.5 * float(np.sum((self._forward(X)[-1] - self.B) ** 2))

    def _grad(self, X, i):
        outs = self._forward(X)
        G = outs[-1] - self.B
        for W in X[:i:-1]:  # back through the layers above i
            G = W.T @ G
        return G @ outs[i].T


class Stochastic(Problem):
    r"""A problem with Gaussian gradient noise: ``G_i = ∇_i f(X) + s_i Z``, ``Z`` standard normal.

    **Constants.** A3 with ``σ_i² = E‖G_i − ∇_i f‖_F² = s_i² d_i`` (``d_i`` entries), exactly, and
    ``ρ_i = κ_i`` (``‖·‖_* ≤ κ_i‖·‖_F``); the smoothness constants are the base problem's.

    ``separable`` and :meth:`layer_values` are the base problem's (``f`` is unchanged; the noise is
    independent across layers). Runs with the noisy gradients (``stochastic=True`` in
    :func:`~dropmuon.verification.synthetic.dropmuon.paths`) are random, so they are never enumerated.
    """

    @property
    def separable(self) -> bool:
        return self.base.separable

    def __init__(self, base: Problem, noise):
        if not isinstance(base, Problem):
            raise ValueError(f"Stochastic wraps a Problem; got {base!r}")
        self.base = base
        s = np.asarray(noise, dtype=float)
        s = np.full(base.nlayers, float(s)) if s.ndim == 0 else s
        self.noise = check_layer_array("noise", s, "nonnegative")
        if len(self.noise) != base.nlayers:
            raise ValueError(f"noise needs one level per layer ({base.nlayers}); got {len(self.noise)}")
        self.norms, self.x0, self.fstar = base.norms, base.x0, base.fstar
        d = np.array([x.size for x in base.x0], dtype=float)
        rho = np.array([norm_equivalence(n, x.shape) for n, x in zip(base.norms, base.x0)])
        c = base.constants
        self.constants = Constants(
            L=c.L, lipschitz=c.lipschitz, L0=c.L0, L1=c.L1, l0l1_radius=c.l0l1_radius,
            sigma=_readonly(self.noise * np.sqrt(d)), rho=_readonly(rho), region=c.region,
            derivation=c.derivation + "; sigma_i = s_i sqrt(d_i), rho_i = κ_i",
        )
        self.name = f"{base.name}+noise"
        self.description = base.description + " with Gaussian gradient noise"

    def in_region(self, X) -> bool:
        return self.base.in_region(X)

    def _value(self, X):
        return self.base._value(X)

    def _grad(self, X, i):
        return self.base._grad(X, i)

    def _layer_values(self, X):
        return self.base._layer_values(X)

    def stochastic_grad(self, X, rng: np.random.Generator, layers=None) -> list:
        g = self.grad(X, layers)
        return [None if gi is None else gi + s * rng.standard_normal(gi.shape) for gi, s in zip(g, self.noise)]

