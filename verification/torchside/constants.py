"""Measured layer-wise constants of a network along a training trajectory, in each layer's own
norm (spectral norm of the flattened matrix; dual: nuclear):

* ``L̂_i = ‖∇_i f(X') − ∇_i f(X)‖_nuc / ‖X'_i − X_i‖_op`` for consecutive iterates on the *same*
  minibatch (Gluon's estimator, arXiv 2505.13416);
* the ``(L0_i, L1_i)`` fit ``L̂_i ≈ L0_i + L1_i ‖∇_i f(X)‖_nuc`` by least squares with a penalty on
  under-estimation (asymmetric weights, non-negative coefficients);
* for comparison, the Euclidean top eigenvalue of layer ``i``'s Hessian block by
  Hessian-vector-product power iteration;
* the inexactness ``δ_i`` of the step's Newton–Schulz direction on the run's own momentum
  matrices (theorem T4), the gradient noise ``σ_i`` at the run's batch size (assumption A3,
  :mod:`~dropmuon.verification.torchside.noise`) and an estimate of ``Δ0 = f(x0) − f*``.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .layers import first_line
from .noise import NoiseEstimate
from .optimizer import DropMuon, _coefficients, _newton_schulz, _polar, layer_matrix_shape

__all__ = ["LayerConstants", "fit_l0l1", "hessian_top_eigenvalue", "probe_constant", "probe_layer", "ProbeResult",
           "estimate_constants", "estimating_step", "online_summary", "momentum_matrix", "step_direction",
           "direction_error", "UNDER_PENALTY", "IDENTIFY_RANGE", "PROBE_ITERATIONS", "PROBE_STARTS"]

#: weight of an under-estimated point (observation above the fitted line) relative to an over-estimated one
UNDER_PENALTY = 100.0
#: the (L0, L1) fit counts as identified when the gradient's dual norm varied by at least this
#: factor along the trajectory (with a narrower range a line through the points is nearly flat in
#: g, and L0 and L1 trade off against each other)
IDENTIFY_RANGE = 2.0
#: resamples for the bootstrap standard deviations of L0 and L1
BOOTSTRAP_FITS = 100
#: the probe's settings in :func:`estimate_constants` (``dropmuon estimate``): 30 iterations
#: (60 scored Hessian-vector products) from one start. On 300 seeded two-sided least-squares
#: instances (tall, wide, square; ``tests/torchside/test_constants_probe.py``) they reached at
#: least 0.9695 of the closed-form constant (median 0.998, 6% below 0.99); the former 10
#: iterations with every other product scored reached 0.917 (65% below 0.99). Two starts of 30
#: reach 0.985 (1% below 0.99) at twice the cost — the probe is the dearest part of ``estimate``.
PROBE_ITERATIONS = 30
PROBE_STARTS = 1


def _bootstrap_l0l1(g, L_hat, seed: int) -> tuple[float | None, float | None]:
    """Standard deviations of the (L0, L1) fit over trajectory points resampled with replacement."""
    if len(g) < 3:
        return None, None
    rng = np.random.default_rng([seed, 7])
    fits = []
    for _ in range(BOOTSTRAP_FITS):
        k = rng.integers(0, len(g), len(g))
        if np.ptp(g[k]) == 0:
            continue
        fits.append(fit_l0l1(g[k], L_hat[k]))
    if len(fits) < 2:
        return None, None
    a = np.array(fits)
    return float(a[:, 0].std(ddof=1)), float(a[:, 1].std(ddof=1))


def _mat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(layer_matrix_shape(t.shape)).double()


def _nuc(t):
    return float(torch.linalg.svdvals(_mat(t)).sum())


def _op(t):
    return float(torch.linalg.svdvals(_mat(t))[0])


def fit_l0l1(gnorms, L_hat, *, under_penalty: float = UNDER_PENALTY, iterations: int = 50):
    """``(L0, L1) ≥ 0`` minimising ``Σ w_k (L̂_k − L0 − L1 g_k)²`` with ``w_k = under_penalty``
    where the line is below the observation, 1 otherwise (iteratively reweighted; the weights settle
    in a few rounds).

    >>> L0, L1 = fit_l0l1([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    >>> round(L0, 6), round(L1, 6)
    (0.5, 1.0)
    """
    from scipy.optimize import lsq_linear

    g = np.asarray(gnorms, dtype=float)
    y = np.asarray(L_hat, dtype=float)
    if g.shape != y.shape or g.ndim != 1 or g.size < 2:
        raise ValueError(f"need two matching vectors of at least 2 points; got shapes {g.shape} and {y.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(y))):
        raise ValueError("the estimates contain non-finite values")
    A = np.column_stack([np.ones_like(g), g])
    w = np.ones_like(y)
    x = np.zeros(2)
    for _ in range(iterations):
        sw = np.sqrt(w)
        x = lsq_linear(A * sw[:, None], y * sw, bounds=(0, np.inf)).x
        w_new = np.where(y - A @ x > 0, under_penalty, 1.0)
        if np.array_equal(w_new, w):
            break
        w = w_new
    return float(x[0]), float(x[1])


def hessian_top_eigenvalue(loss_fn, params: list, iterations: int = 20, seed: int = 0) -> float:
    """The largest-magnitude eigenvalue of the Hessian block of ``params`` (Euclidean), by power
    iteration on Hessian-vector products; ``loss_fn()`` recomputes the loss. Attention runs on
    ``scaled_dot_product_attention``'s math kernel here (the fused kernels have no second
    derivative); a model with another operation lacking one gives ``nan`` with a warning — the
    eigenvalue is a comparison, not needed by the theory."""
    import warnings

    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        with sdpa_kernel(SDPBackend.MATH):
            return _hessian_power(loss_fn, params, iterations, seed)
    except RuntimeError as e:  # "derivative for ... is not implemented": no double backward
        warnings.warn(f"the Hessian top eigenvalue is not available for this model ({first_line(e)}); reported as nan",
                      RuntimeWarning, stacklevel=2)
        return float("nan")


def _hessian_power(loss_fn, params, iterations, seed) -> float:
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=g).to(p) for p in params]
    nrm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / nrm for x in v]
    lam = 0.0
    H = _hvp_operator(loss_fn, params)
    for _ in range(iterations):
        Hv = H(v)
        lam = float(sum((a * b).sum() for a, b in zip(Hv, v)))
        nrm = torch.sqrt(sum((x * x).sum() for x in Hv))
        if float(nrm) == 0.0:
            return 0.0
        v = [x.detach() / nrm for x in Hv]
    return lam


def _hvp(loss_fn, params: list, v: list) -> list:
    """The Hessian block of ``params`` applied to ``v`` (one double backward)."""
    return _hvp_operator(loss_fn, params)(v)


def _hvp_operator(loss_fn, params: list):
    """``v ↦ H v`` for the Hessian block of ``params`` at the current point: the gradient's graph
    is built once (one forward and backward with ``create_graph``) and kept, so each product costs
    one double backward only (measured on the paper's CNN at batch 256: 35–50% less per product
    for the convolutions than rebuilding it), and every product sees the same randomness of the
    model (dropout masks)."""
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)

    def apply(v: list) -> list:
        return [h.detach() for h in torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)]

    return apply


def _polar_like(G: torch.Tensor) -> torch.Tensor:
    """The spectral-norm sharp direction ``U Vᵀ`` of ``G`` viewed as its layer matrix."""
    return _polar(_mat(G)).reshape(G.shape).to(G.dtype)


def _nuc_polar(G: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(‖G‖_nuc, U Vᵀ)`` of ``G`` viewed as its layer matrix, from one float64 SVD."""
    U, S, Vh = torch.linalg.svd(_mat(G), full_matrices=False)
    return float(S.sum()), (U @ Vh).reshape(G.shape).to(G.dtype)


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`probe_layer` found: ``value`` (the constant's lower bound reached),
    ``iterations`` and ``starts`` (the settings), ``hessian_products`` (computed),
    ``last_change`` (relative increase of the best start's last power step) and ``converged``
    (that start stopped because the increase fell below ``rtol``). A small ``last_change`` does
    not bound the distance to the maximum: on two-sided least squares at 30 iterations the
    remaining gap was a median 27 and up to 560 times the last step's increase (the power method
    converges linearly, slowly where the spectrum is dense)."""

    value: float
    iterations: int
    starts: int
    hessian_products: int
    last_change: float
    converged: bool

    def as_dict(self) -> dict:
        return {"L_probe": self.value, "probe_iterations": self.iterations, "probe_starts": self.starts,
                "probe_hessian_products": self.hessian_products, "probe_last_change": self.last_change,
                "probe_converged": self.converged}


def probe_layer(loss_fn, params: list, *, iterations: int = 30, starts: int = 2, seed: int = 0,
                rtol: float = 1e-7) -> ProbeResult:
    r"""The local layer-wise smoothness constant of ``params`` in the layer's own norm pair —
    ``max_j ‖Δ_j‖_op`` on the step, ``Σ_j ‖·‖_nuc`` on the gradient — at the current point:
    ``sup_{‖Δ‖ ≤ 1} ‖∇²f[Δ]‖_*``, by a power method in that pair, with how far it got
    (:class:`ProbeResult`).

    ``‖H[Δ]‖_* = max_{‖Z‖ ≤ 1} ⟨Z, H[Δ]⟩`` and the Hessian block ``H`` is self-adjoint, so the
    value is ``max ⟨Z, H[Δ]⟩`` over two spectral-norm balls; maximising in turn over ``Z`` and
    ``Δ`` gives ``Z ← polar(H[Δ])``, ``Δ ← polar(H[Z])`` (``polar``: the sharp direction ``UVᵀ`` of
    each matrix). Both half-steps are the same map ``D ← polar(H[D])``, and its value
    ``‖H[D]‖_*`` never decreases (``‖H[D']‖_* ≥ ⟨D, H[D']⟩ = ⟨H[D], D'⟩ = ‖H[D]‖_*`` for
    ``D' = polar(H[D])``), so every Hessian-vector product is scored: an iteration is two
    products. It converges to a local maximum; the best of ``starts`` random starts is returned.
    For a quadratic ``f`` this is the constant of A1 exactly where the maximum is reached: for
    least squares ``½‖WA − B‖²`` it is the sum of the ``min(m, n)`` largest eigenvalues of
    ``AAᵀ``, for ``½‖PWQ − B‖²`` the sum of the products of the paired eigenvalues of ``PᵀP`` and
    ``QQᵀ`` (tests). For a non-quadratic loss it is the constant of the second-order model at
    this point — a lower bound on the sup over a region containing it. The gradient's graph is
    built once and kept (attention on the math kernel, which has a second derivative)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(f"iterations must be a positive integer; got iterations = {iterations!r}")
    if not (isinstance(starts, int) and starts >= 1):
        raise ValueError(f"starts must be a positive integer; got starts = {starts!r}")
    g = torch.Generator(device="cpu").manual_seed(seed)
    best, best_change, best_converged, products = 0.0, math.inf, False, 0
    with sdpa_kernel(SDPBackend.MATH):
        H = _hvp_operator(loss_fn, params)
        for start in range(starts):
            d = [_polar_like(torch.randn(p.shape, generator=g).to(p)) for p in params]
            vals, converged = [], False
            for _ in range(2 * iterations):
                scored = [_nuc_polar(h) for h in H(d)]
                products += 1
                vals.append(sum(v for v, _ in scored))
                d = [q for _, q in scored]
                if len(vals) >= 2 and vals[-1] <= vals[-2] * (1 + rtol):
                    converged = True
                    break
            top = max(vals)
            if start == 0 or top > best:
                best = top
                best_change = (vals[-1] - vals[-2]) / vals[-2] if len(vals) >= 2 and vals[-2] > 0 else math.inf
                best_converged = converged
    return ProbeResult(value=float(best), iterations=iterations, starts=starts, hessian_products=products,
                       last_change=float(best_change), converged=bool(best_converged))


def probe_constant(loss_fn, params: list, *, iterations: int = 30, starts: int = 2, seed: int = 0,
                   rtol: float = 1e-7) -> float:
    """:func:`probe_layer`'s value: the direction-maximising lower bound on the layer's local
    constant (spectral step, nuclear gradient). For a least-squares layer the probe reaches the
    closed form (tests: tall, wide and square layers and a convolution, ≥ 0.99 of it at 50
    iterations)."""
    return probe_layer(loss_fn, params, iterations=iterations, starts=starts, seed=seed, rtol=rtol).value


# -- Newton–Schulz inexactness on the run's own momentum ------------------------------------------

def momentum_matrix(grad: torch.Tensor, buf: torch.Tensor | None, group: dict) -> torch.Tensor:
    """The matrix ``U`` that :meth:`DropMuon.step` orthogonalises for a parameter with gradient
    ``grad`` and momentum buffer ``buf`` (``None`` before its first step) in the param group
    ``group``, computed with the step's own operations and without touching the state::

        B' = B + (1 − μ)(G − B)          (the buffer after the step)
        U  = G + μ(B' − G) if nesterov else B'

    with ``G`` the gradient viewed as its layer matrix."""
    G = grad.reshape(layer_matrix_shape(grad.shape))
    mu = group["momentum"]
    B = (torch.zeros_like(G) if buf is None else buf).lerp(G, 1 - mu)
    return G.lerp(B, mu) if group["nesterov"] else B


def step_direction(U: torch.Tensor, group: dict) -> torch.Tensor:
    """The orthogonalised direction ``O`` :meth:`DropMuon.step` takes for ``U`` in ``group``:
    the exact polar factor with ``sharp="svd"``, else Newton–Schulz with the group's
    coefficients, step count, ``eps`` and dtype (the step's own function)."""
    if group["sharp"] == "svd":
        return _polar(U)
    from ..synthetic.newton_schulz import normalisation

    ns = group["ns_coefficients"]
    scale = normalisation(ns) if isinstance(ns, str) else 1.0
    return _newton_schulz(U, _coefficients(ns, group["ns_steps"]), group["eps"], group["ns_dtype"], scale)


def _op_norm(D: torch.Tensor) -> float:
    """``‖D‖_op`` of a float64 matrix from the top eigenvalue of its smaller Gram matrix (3-5×
    faster than an SVD of a 256 × 1152 matrix; the eigenvalue's absolute error ~1e-16·‖D‖², so
    the norm's is ~1e-16·‖D‖ relative to itself)."""
    if D.numel() == 0:
        return 0.0
    G = D @ D.T if D.shape[0] <= D.shape[1] else D.T @ D
    return math.sqrt(max(float(torch.linalg.eigvalsh(G)[-1]), 0.0))


def _lmo_distance(O: torch.Tensor, U: torch.Tensor) -> float:
    """An upper bound on the spectral-norm distance from ``O`` to the set of polar factors of
    ``U`` (float64): ``U_r V_rᵀ`` over the numerically non-zero singular values — those above
    ``σ_max · max(m, n) · ε`` with ``ε`` the machine epsilon of ``U``'s dtype (numpy's
    ``matrix_rank`` rule) — completed on the two null spaces by ``O``'s own component there,
    its singular values clipped at 1 (every such completion is an element of the LMO set of a
    rank-deficient ``U``). For a ``U`` of full rank one null space is trivial, the completion is
    0, and this is ``‖O − U Vᵀ‖_op`` exactly."""
    A = U.double()
    eps = torch.finfo(U.dtype).eps if U.is_floating_point() else torch.finfo(torch.float64).eps
    Us, S, Vh = torch.linalg.svd(A, full_matrices=False)
    O = O.double()
    if S.numel() == 0 or float(S[0]) == 0.0:
        return _op_norm(O)
    keep = S > S[0] * max(A.shape) * eps
    if bool(keep.all()):
        return _op_norm(O - Us @ Vh)
    Ur, Vr = Us[:, keep], Vh[keep].T
    P = Ur @ Vr.T
    N = O - Ur @ (Ur.T @ O)
    N = N - (N @ Vr) @ Vr.T  # O's component on the two null spaces
    Un, Sn, Vnh = torch.linalg.svd(N, full_matrices=False)
    return _op_norm(O - P - Un @ torch.diag(Sn.clamp(max=1.0)) @ Vnh)


def direction_error(U: torch.Tensor, group: dict) -> float:
    r"""T4's inexactness of the step on ``U`` (:func:`momentum_matrix`)::

        δ = ‖O − polar(U)‖_op,      O = step_direction(U, group)

    with ``polar(U)`` the exact polar factor (float64 SVD). The step is ``−t·O`` and the exact
    LMO ``−t·polar(U)``, so ``δ`` is the direction error relative to the radius in the layer's
    spectral norm, the ``δ_i`` of ``‖D̃ − LMO_t(M)‖ ≤ δ_i t``; for Newton–Schulz in exact
    arithmetic it equals ``max_j |p(σ_j/(f‖U‖_F)) − 1|``
    (:func:`dropmuon.verification.synthetic.newton_schulz.delta`; the step normalises by
    ``max(f‖U‖_F, eps)``), and at a lower ``ns_dtype`` it also carries the iteration's rounding.
    With ``sharp="svd"`` it is the rounding of the polar factor to the parameter's dtype (0 in
    float64).

    A rank-deficient ``U`` has a set of polar factors (any completion on its null spaces), and
    T4 needs the distance to the nearest (:func:`_lmo_distance`, an upper bound on it). This
    matters in practice: a cross-entropy head's gradient has rank at most ``C − 1`` (each
    example's ``softmax − onehot`` sums to 0 over the ``C`` classes), so its last singular value
    is float32 rounding, which Newton–Schulz maps to about 0 and the exact polar factor to 1 —
    the plain distance would read ``δ = 1``."""
    return _lmo_distance(step_direction(U, group), U)


@contextmanager
def _same_noise(seed: int, k: int, device):
    """A forked RNG seeded by ``(seed, k)``: the two gradients of one estimate see the same
    dropout masks (or other randomness of the model), so their difference is the step's alone."""
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) * 1_000_003 + k)
        yield


@dataclass(frozen=True)
class LayerConstants:
    """One layer's measured constants: ``L`` (the largest trajectory estimate), the ``(L0, L1)``
    fit, the Hessian comparison, the raw trajectory (gradient dual norms and estimates), the
    probe with its settings (:class:`ProbeResult`), the gradient noise (``sigma`` and its
    interval, ``sigma_dual``, ``rho``: :class:`~dropmuon.verification.torchside.noise.NoiseEstimate`),
    the Newton–Schulz inexactness ``delta`` with the settings it was measured at, the optimizer's
    ``momentum`` (PyTorch's ``μ``; ``β = 1 − μ``) and ``nesterov``, and the run's ``Delta0``
    estimate (the same in every layer's record)."""

    layer: int
    shape: tuple
    L: float
    L_median: float
    L0: float
    L1: float
    hessian_top_eig: float
    gnorms: tuple
    estimates: tuple
    L_probe: float | None = None
    trajectory_converged: bool | None = None
    l0l1_identified: bool | None = None
    L0_sd: float | None = None
    L1_sd: float | None = None
    probe: ProbeResult | None = None
    noise: NoiseEstimate | None = None
    delta: float | None = None
    delta_points: int | None = None
    ns: dict | None = None  # sharp, ns_dtype, ns_steps, ns_coefficients of the layer's Muon group
    momentum: float | None = None
    nesterov: bool | None = None
    delta0: dict | None = None  # Delta0, Delta0_estimate, Delta0_method, f0, f_best

    def as_dict(self) -> dict:
        out = {"layer": self.layer, "shape": list(self.shape), "L": self.L, "L_median": self.L_median,
               "L0": self.L0, "L1": self.L1, "hessian_top_eig": self.hessian_top_eig,
               "L_probe": self.L_probe, "trajectory_converged": self.trajectory_converged,
               "l0l1_identified": self.l0l1_identified, "L0_sd": self.L0_sd, "L1_sd": self.L1_sd,
               "gnorms": list(self.gnorms), "estimates": list(self.estimates)}
        if self.probe is not None:
            out.update(self.probe.as_dict())
        if self.noise is not None:
            out.update(self.noise.as_dict())
        if self.delta is not None:
            out.update(delta=self.delta, delta_points=self.delta_points)
        if self.ns is not None:
            out.update(self.ns)
        if self.momentum is not None:
            out.update(momentum=self.momentum, nesterov=self.nesterov)
        if self.delta0 is not None:
            out.update(self.delta0)
        return out


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _ns_settings(group: dict) -> dict:
    """The settings a layer's direction error was measured at, as JSON values."""
    ns = group["ns_coefficients"]
    return {"sharp": group["sharp"], "ns_dtype": _dtype_name(group["ns_dtype"]), "ns_steps": int(group["ns_steps"]),
            "ns_coefficients": ns if isinstance(ns, str) else [list(r) for r in _coefficients(ns, group["ns_steps"])]}


def _check_count(name: str, v, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name} = {v!r}")
    return v


def estimate_constants(model, optimizer: DropMuon, loss_fn, data, *, steps: int = 20, batch: int = 256,
                       hessian_every: int = 10, hessian_iterations: int = 10,
                       probe_iterations: int = PROBE_ITERATIONS, probe_starts: int = PROBE_STARTS,
                       noise_every: int = 10, noise_draws: int = 10, delta0_steps: int = 40, delta0_every: int = 10,
                       seed: int = 0, device="cpu", progress=None) -> tuple[list[LayerConstants], dict]:
    """Train with full updates for ``steps`` steps; at each step compare the gradients before and
    after the step on the same minibatch. A layer's estimate is over its matrices (biases and
    norm parameters move with it but are not in its norm). Returns per-layer constants and an
    overhead record (``train_s``, ``estimate_s`` and its parts ``noise_s``, ``probe_s``,
    ``delta0_s``).

    What each number bounds: ``L`` (the largest trajectory estimate) is a lower bound on the
    layer's constant over the region the trajectory visited — along the directions training took,
    which on least squares recover 0.57–1.0 of the true constant depending on the layer's shape;
    ``L_probe`` (:func:`probe_layer` at the last point, ``probe_iterations`` iterations from
    ``probe_starts`` starts; 0 iterations to skip) maximises over directions instead and is exact
    on quadratics where it converges, a lower bound on the sup over any region containing the
    point otherwise; its record says how many products it took and its last relative change.
    ``trajectory_converged`` is false when the largest estimate came in the last quarter of the
    trajectory (``L`` was still growing: more steps may raise it). ``l0l1_identified`` is false
    when the gradient's dual norm varied by less than :data:`IDENTIFY_RANGE`× along the
    trajectory — then ``L0`` and ``L1`` trade off and the fit does not separate them;
    ``L0_sd``/``L1_sd`` are their bootstrap standard deviations.

    The theorems' other constants, measured on the same run:

    With ``batch="full"`` every step uses the whole training set (exact gradients): the noise is
    then exactly zero and is recorded as ``sigma = 0`` without a measurement.

    * ``sigma`` (A3): at the points ``k ≡ 0 (mod noise_every)`` and the last, the full-batch
      gradient and ``noise_draws`` minibatch gradients at this ``batch`` (drawn with replacement,
      as training draws them; :func:`~dropmuon.verification.torchside.noise.gradient_deviations`),
      summarised by :func:`~dropmuon.verification.torchside.noise.summarize_noise` — the largest
      over the points of the mean squared Euclidean deviation, with a bootstrap interval over the
      draws; ``noise_every = 0`` skips it.
    * ``delta`` (T4): at every step, :func:`direction_error` on the matrix the optimizer
      orthogonalises (its momentum, Nesterov form when ``nesterov``) at the optimizer's own
      ``ns_dtype``, coefficients and ``ns_steps``; the largest over the layer's matrices and the
      steps.
    * ``Delta0``: ``f(x0)`` minus the smallest full training loss seen along the trajectory
      continued for ``delta0_steps`` more full-Muon steps (evaluated every ``delta0_every`` steps
      and at the end, and at the noise points). Since ``f* ≤`` that loss it *under*-estimates
      ``f(x0) − f*`` by the loss the longer run still had; it is labelled an estimate.
    """
    from ..runs._progress import Progress
    from .data import FULL_BATCH, batch_size
    from .noise import NOISE_CONFIDENCE, NoiseEstimate, full_loss, gradient_deviations, noise_rho, summarize_noise

    full = batch == FULL_BATCH
    if not full and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive integer or {FULL_BATCH!r}; got batch = {batch!r}")
    N = len(data.x_train)
    chunk = min(batch_size(batch, N), 1024)  # examples per forward pass of a full-loss evaluation

    def draw():
        """The step's batch: the whole training set, or ``batch`` examples drawn with replacement."""
        if full:
            return data.x_train.to(device), data.y_train.to(device)
        idx = torch.randint(0, N, (batch,), generator=gen)
        return data.x_train[idx].to(device), data.y_train[idx].to(device)

    if not (isinstance(steps, int) and steps >= 2):
        raise ValueError(f"steps must be an integer >= 2; got steps = {steps!r}")
    _check_count("probe_iterations", probe_iterations, 0)
    _check_count("probe_starts", probe_starts, 1)
    _check_count("noise_every", noise_every, 0)
    _check_count("noise_draws", noise_draws, 2)
    _check_count("delta0_steps", delta0_steps, 1)
    _check_count("delta0_every", delta0_every, 1)
    # each layer's matrices (the norm pair is theirs); a layer without one falls back to its vectors
    layers, groups = [], []
    for _, gs in sorted(optimizer.layer_groups().items()):
        ps = [p for g in gs for p in g["params"]]
        layers.append([p for p in ps if p.ndim >= 2] or ps)
        groups.append(next((g for g in gs if g.get("algorithm") == "muon"), None))
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed * 1_000_003 + 24)  # the trajectory's batches stay the same
    gn = [[] for _ in layers]
    est = [[] for _ in layers]
    hess = [[] for _ in layers]
    delta = [[] for _ in layers]
    noise_sq = [[] for _ in layers]
    noise_dual = [[] for _ in layers]
    losses = []  # (step, full training loss)
    t_train = t_est = t_noise = t_probe = t_delta0 = 0.0
    with Progress(steps + delta0_steps, "estimate", enabled=progress) as bar:
        for k in range(steps):
            if noise_every and not full and (k % noise_every == 0 or k == steps - 1):
                tn = time.perf_counter()
                sq, dual, f = gradient_deviations(model, loss_fn, layers, data.x_train, data.y_train, batch=batch,
                                                  draws=noise_draws, generator=noise_gen, device=device)
                for i in range(len(layers)):
                    noise_sq[i].append(sq[i])
                    noise_dual[i].append(dual[i])
                losses.append((k, f))
                t_noise += time.perf_counter() - tn
            elif k == 0:
                tn = time.perf_counter()
                losses.append((0, full_loss(model, loss_fn, data.x_train, data.y_train, chunk=chunk, device=device)))
                t_delta0 += time.perf_counter() - tn
            x, y = draw()
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with _same_noise(seed, k, device):
                loss_fn(model(x), y).backward()
            g_before = [[p.grad.detach().clone() for p in ps] for ps in layers]
            w_before = [[p.detach().clone() for p in ps] for ps in layers]
            td = time.perf_counter()
            # the direction error of this step, on the matrices the step is about to orthogonalise
            for i, ps in enumerate(layers):
                errs = [direction_error(momentum_matrix(p.grad, optimizer.state[p].get("momentum_buffer"),
                                                        group_of[id(p)]), group_of[id(p)])
                        for p in ps if p.grad is not None and group_of[id(p)]["algorithm"] == "muon"]
                if errs:
                    delta[i].append(max(errs))
            td = time.perf_counter() - td
            optimizer.step()
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with _same_noise(seed, k, device):  # dropout masks as before the step: only X moved
                loss_fn(model(x), y).backward()
            for i, ps in enumerate(layers):
                dg = sum(_nuc(p.grad - g0) for p, g0 in zip(ps, g_before[i]))
                dx = max(_op(p.detach() - w0) for p, w0 in zip(ps, w_before[i]))
                gn[i].append(sum(_nuc(g0) for g0 in g_before[i]))
                est[i].append(dg / dx if dx > 0 else float("nan"))
            if hessian_every and (k % hessian_every == 0 or k == steps - 1):
                for i, ps in enumerate(layers):
                    hess[i].append(hessian_top_eigenvalue(lambda: loss_fn(model(x), y), ps, hessian_iterations, seed + k))
            optimizer.zero_grad(set_to_none=True)
            t_train += t1 - t0 - td
            t_est += time.perf_counter() - t1 + td
            bar.update()
        t2 = time.perf_counter()
        probes = [probe_layer(lambda: loss_fn(model(x), y), ps, iterations=probe_iterations, starts=probe_starts,
                              seed=seed) if probe_iterations else None for ps in layers]
        optimizer.zero_grad(set_to_none=True)
        t_probe = time.perf_counter() - t2
        # Δ0: the same full-Muon run continued, its full training loss evaluated along the way
        t3 = time.perf_counter()
        for k in range(steps, steps + delta0_steps):
            x, y = draw()
            optimizer.zero_grad(set_to_none=True)
            with _same_noise(seed, k, device):
                loss_fn(model(x), y).backward()
            optimizer.step()
            done = k + 1 - steps
            if done % delta0_every == 0 or done == delta0_steps:
                losses.append((k + 1, full_loss(model, loss_fn, data.x_train, data.y_train, chunk=chunk,
                                                device=device)))
            bar.update()
        optimizer.zero_grad(set_to_none=True)
        t_delta0 += time.perf_counter() - t3
    t_est += t_noise + t_probe + t_delta0
    f0 = losses[0][1]
    finite = [v for _, v in losses if math.isfinite(v)]
    f_best = min(finite) if finite else float("nan")
    delta0 = {"Delta0": f0 - f_best, "Delta0_estimate": True,
              "Delta0_method": (f"f(x0) minus the best full-batch loss of {steps + delta0_steps} full-Muon steps "
                                f"(the {steps}-step trajectory continued {delta0_steps} steps, batch {batch}; full "
                                f"training loss at {len(losses)} points): a lower estimate of f(x0) - f*, short of it "
                                f"by the loss the longer run still had"),
              "f0": f0, "f_best": f_best, "Delta0_steps": steps + delta0_steps}
    out = []
    for i, ps in enumerate(layers):
        e = np.array(est[i])
        ok = np.isfinite(e)
        g = np.array(gn[i])[ok]
        L0, L1 = fit_l0l1(g, e[ok])
        L0_sd, L1_sd = _bootstrap_l0l1(g, e[ok], seed)
        q = (3 * len(e)) // 4
        head, tail = e[:q][np.isfinite(e[:q])], e[q:][np.isfinite(e[q:])]
        rho = noise_rho([layer_matrix_shape(p.shape) for p in ps])
        if full:  # a step's gradient is the full-batch gradient: no noise, exactly
            noise = NoiseEstimate(sigma=0.0, sigma_ci=(0.0, 0.0), sigma_dual=0.0, rho=rho, batch=FULL_BATCH,
                                  per_point=(), draws=0, confidence=NOISE_CONFIDENCE)
        else:
            noise = (summarize_noise(np.array(noise_sq[i]), np.array(noise_dual[i]), rho=rho, batch=batch, seed=seed)
                     if noise_sq[i] else None)
        grp = groups[i]
        out.append(LayerConstants(
            layer=i + 1, shape=tuple(ps[0].shape), L=float(e[ok].max()), L_median=float(np.median(e[ok])),
            L0=L0, L1=L1, hessian_top_eig=float(max(hess[i], key=abs)) if hess[i] else float("nan"),
            gnorms=tuple(float(v) for v in gn[i]), estimates=tuple(float(v) for v in e),
            L_probe=probes[i].value if probes[i] is not None else None,
            trajectory_converged=bool(len(head) and (not len(tail) or tail.max() <= head.max())),
            l0l1_identified=bool(g.min() > 0 and g.max() / g.min() >= IDENTIFY_RANGE), L0_sd=L0_sd, L1_sd=L1_sd,
            probe=probes[i], noise=noise, delta=max(delta[i]) if delta[i] else None,
            delta_points=len(delta[i]) if delta[i] else None, ns=_ns_settings(grp) if grp is not None else None,
            momentum=float(grp["momentum"]) if grp is not None else None,
            nesterov=bool(grp["nesterov"]) if grp is not None else None, delta0=delta0,
        ))
    overhead = {"train_s": t_train, "estimate_s": t_est, "overhead_ratio": t_est / t_train if t_train else None,
                "noise_s": t_noise, "probe_s": t_probe, "delta0_s": t_delta0}
    return out, overhead


# -- online: along a training run -----------------------------------------------------------------

def _layer_matrices(optimizer: DropMuon) -> dict[int, list]:
    """Each layer's matrices (the norm pair is theirs); a layer without one falls back to its vectors."""
    out = {}
    for j, gs in sorted(optimizer.layer_groups().items()):
        ps = [p for g in gs for p in g["params"]]
        out[j] = [p for p in ps if p.ndim >= 2] or ps
    return out


def estimating_step(model, optimizer: DropMuon, loss_fn, inputs, targets, S, *, seed: int = 0, k: int = 0,
                    device="cpu") -> tuple[float, float, list[dict]]:
    """One training step on the layers ``S`` (exactly :func:`~dropmuon.verification.torchside.optimizer.layers_step`'s
    update) that also measures the trajectory estimate of every updated layer ``j ∈ S``:
    ``L̂_j = ‖∇_j f(X') − ∇_j f(X)‖_nuc / ‖X'_j − X_j‖_op`` on this minibatch, the gradient before
    the step being the one the step used (free) and the one after it costing one more forward and
    backward pass, truncated at ``min S`` like the step itself. Layers outside ``S`` did not move
    and get no estimate. Both passes see the same randomness (dropout masks) from an RNG forked
    with ``(seed, k)``.

    Returns ``(train_seconds, estimate_seconds, records)`` with one record
    ``{"step": k, "layer": j, "gnorm": ‖∇_j f(X)‖_nuc, "L_hat": L̂_j}`` per updated layer;
    ``train_seconds`` is the step's own work, ``estimate_seconds`` the rest (copies, the second
    pass, the norms)."""
    from .costs import _sync
    from .optimizer import freeze_except

    S = tuple(S)
    if not S:
        raise ValueError("an estimating step needs a non-empty layer set")
    mats = _layer_matrices(optimizer)
    _sync(device)
    t0 = time.perf_counter()
    with freeze_except(optimizer, S):
        optimizer.zero_grad(set_to_none=True)
        with _same_noise(seed, k, device):
            loss = loss_fn(model(inputs), targets)
        loss.backward()
        _sync(device)
        t1 = time.perf_counter()
        before = {j: [(p.grad.detach().clone(), p.detach().clone()) for p in mats[j]] for j in S}
        _sync(device)
        t2 = time.perf_counter()
        optimizer.step()
        _sync(device)
        t3 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with _same_noise(seed, k, device):  # the same dropout masks: only X moved
            loss_fn(model(inputs), targets).backward()
        records = []
        for j in S:
            dg = sum(_nuc(p.grad - g0) for p, (g0, _) in zip(mats[j], before[j]))
            dx = max(_op(p.detach() - w0) for p, (_, w0) in zip(mats[j], before[j]))
            records.append({"step": int(k), "layer": int(j), "gnorm": sum(_nuc(g0) for g0, _ in before[j]),
                            "L_hat": dg / dx if dx > 0 else float("nan")})
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    t4 = time.perf_counter()
    return (t1 - t0) + (t3 - t2), (t2 - t1) + (t4 - t3), records


def online_summary(records: list[dict], nlayers: int, seed: int = 0) -> list[dict]:
    """Per layer, from the records of :func:`estimating_step` along a run: ``n`` estimates, ``L``
    (the largest) and ``L_median``, ``trajectory_converged`` (the largest did not come in the last
    quarter of the layer's estimates), and with at least 3 estimates the ``(L0, L1)`` fit with
    ``l0l1_identified`` and bootstrap standard deviations, as in :func:`estimate_constants`. A
    layer with no estimate (never updated at an estimating step) has ``n = 0`` and ``L = None``."""
    out = []
    for j in range(1, nlayers + 1):
        rs = sorted((r for r in records if r["layer"] == j), key=lambda r: r["step"])
        e = np.array([r["L_hat"] for r in rs], dtype=float)
        g = np.array([r["gnorm"] for r in rs], dtype=float)
        ok = np.isfinite(e)
        rec = {"layer": j, "n": int(ok.sum()), "L": None, "L_median": None, "trajectory_converged": None,
               "L0": None, "L1": None, "l0l1_identified": None, "L0_sd": None, "L1_sd": None}
        if ok.any():
            q = (3 * len(e)) // 4
            head, tail = e[:q][np.isfinite(e[:q])], e[q:][np.isfinite(e[q:])]
            rec.update(L=float(e[ok].max()), L_median=float(np.median(e[ok])),
                       trajectory_converged=bool(len(head) and (not len(tail) or tail.max() <= head.max())))
        if ok.sum() >= 3 and np.ptp(g[ok]) > 0:
            L0, L1 = fit_l0l1(g[ok], e[ok])
            L0_sd, L1_sd = _bootstrap_l0l1(g[ok], e[ok], seed)
            rec.update(L0=L0, L1=L1, L0_sd=L0_sd, L1_sd=L1_sd,
                       l0l1_identified=bool(g[ok].min() > 0 and g[ok].max() / g[ok].min() >= IDENTIFY_RANGE))
        out.append(rec)
    return out
