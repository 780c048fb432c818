"""Do the solver's predicted best layer-sampling distributions really win ?

On synthetic quadratics whose expected gradient norms are known in closed form, the max-form RPT
optimum of :func:`solvers.optimal_sampling` (T1), uniform index sampling and full updates are run
to the same accuracy; the measured cost-to-ε (iterations × expected per-iteration cost) is compared
with the predicted total cost ``TC = K_max(π) · E cost`` (docs/theory.md: T1 and the cost model).

**The test bed and why it is built this way.** ``f(X) = Σ_i ½ Σ_e h_e (X_i − X_i*)_e²`` with the
Frobenius norm in every layer (:class:`~dropmuon.verification.synthetic.problems.SeparableQuadratic`), so A1 holds with
``L_i = max_e h_e`` exactly. T1's method (sharp step ``1/L_i``, ``β = 1``) then acts entry-wise:
when layer ``i`` is sampled, ``(x − x*)_e ← (1 − h_e/L_i)(x − x*)_e``. A mode of curvature ``h``
in layer ``i`` therefore needs about ``L_i/(2 π_i h)`` iterations per e-fold, so the time to ε has
T1's form ``max_i L_i/π_i`` exactly when every layer carries slow modes of the *same absolute*
curvature ``h_min`` (``spread="common"``, the default): layer ``i``'s slowest mode needs
``≈ (L_i/π_i) · ln(·/ε²)/(2 h_min)`` iterations. If instead every layer's curvatures span the same
*relative* range ``[c·L_i, L_i]`` (``spread="relative"``), ``L_i`` cancels from
``h/L_i`` and every layer needs ``≈ ln(·/ε²)/(2 c π_i)`` iterations, independent of ``L_i``: the
problem then behaves as if all ``L_i`` were equal, and on such problems full updates beat the
max-form optimum (it is a worst case over problems, and this is not its worst case). The accuracy
matters too: with many curvature levels the error first decays sublinearly, and in that phase the
time to ε follows the sum form ``Σ_i L_i Δ_i/π_i`` (T1′-like) rather than the max; the default
``ε`` (:data:`EPSILON`, relative) is small enough that the slowest modes alone decide. Both
regimes are reproducible with the parameters of :func:`run_predictions`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from dropmuon.theory import RPT, CostModel
from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar
from dropmuon.theory.bounds import smooth_deterministic

from .checks import CheckResult
from .problems import SeparableQuadratic

__all__ = [
    "Profile",
    "PredictionRecord",
    "prediction_problem",
    "expected_squared_gradient",
    "iterations_to_target",
    "builtin_profiles",
    "random_profiles",
    "run_predictions",
    "prediction_checks",
    "prediction_summary",
    "EPSILON",
    "FLOOR",
    "SHAPE",
    "ORDER_RTOL",
    "MIN_PREDICTED_GAP",
]

#: default relative accuracy: reach ``E Σ_i ‖∇_i f(X^k)‖_F² ≤ ε² ‖∇f(X^0)‖_F²``. This deep in the
#: linear regime the slowest modes alone decide the time to ε, so the iteration count has T1's
#: max form up to a relative error of about ``ln(#tied bottleneck layers)/ln(1/ε²)`` (≤ 1.5% for
#: ``b ≤ 6`` here); at ``ε = 1e-4`` the sublinear phase of the spread curvatures still matters.
EPSILON = 1e-30

#: the slowest curvature, as a fraction of ``min_i L_i`` (``spread="common"``) or of each ``L_i``
#: (``spread="relative"``)
FLOOR = 1e-2

#: every layer's shape (16 entries, i.e. 16 curvature levels per layer)
SHAPE = (4, 4)

# Measured total costs are (integer iterations) × (an expected cost summed in a different order
# for each distribution): identical distributions give ratios equal to 1 up to a few ulps, so
# 1e-12 separates a tie from a genuine difference (the smallest differences of interest are %).
ORDER_RTOL = 1e-12

# Random profiles whose predicted ratio optimum/baseline lies in (1 − gap, 1) are redrawn: the
# measured iteration counts carry lower-order terms of relative size ~ln(#tied layers)/ln(1/ε²),
# so a predicted saving of a few tenths of a percent is not resolved by this test bed (over 500
# unfiltered random profiles, seed 123, measured/predicted speed-up lies in [0.985, 1.006], and the
# one ordering of 1000 that flipped had a predicted saving of 0.3%); 5% is three times the largest
# deviation seen. Ties (the optimum *is* the baseline, ratio exactly 1) are kept.
MIN_PREDICTED_GAP = 0.05

# the search for the first k with E‖∇f(X^k)‖² ≤ target gives up beyond this many iterations
_MAX_ITERATIONS = 2**62


@dataclass(frozen=True)
class Profile:
    """A layer profile: smoothness constants ``L`` (A1, one per layer, from the input), lumped
    per-layer costs ``costs`` and the always-paid ``forward`` cost (``CostModel.linear``).

    >>> Profile("demo", (1, 4), (1, 1), forward=1).L
    (1.0, 4.0)
    """

    name: str
    L: tuple
    costs: tuple
    forward: float = 0.0
    description: str = ""

    def __post_init__(self):
        L = check_layer_array("L", self.L, "positive")
        c = check_layer_array("costs", self.costs, "positive")
        if len(L) != len(c):
            raise ValueError(f"profile {self.name!r} has {len(L)} smoothness constants but {len(c)} costs")
        object.__setattr__(self, "L", tuple(float(x) for x in L))
        object.__setattr__(self, "costs", tuple(float(x) for x in c))
        object.__setattr__(self, "forward", check_scalar("forward", self.forward, "nonnegative"))

    @property
    def nlayers(self) -> int:
        """``b``."""
        return len(self.L)

    @property
    def cost_model(self) -> CostModel:
        """``CostModel.linear(costs, forward)``."""
        return CostModel.linear(self.costs, forward=self.forward)

    def as_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True)
class PredictionRecord:
    """One distribution on one profile: predicted against measured cost to accuracy ε.

    ``predicted_K = 2Δ0 max_i(L_i/π_i)/ε²`` (T1's ``K_max``, real-valued, ``ε`` absolute), and
    ``predicted_total_cost = predicted_K · expected_cost``; ``measured_iterations`` is the first
    ``k`` with ``E Σ_i ‖∇_i f(X^k)‖_F² ≤ ε²`` (exact, :func:`expected_squared_gradient`) and
    ``measured_total_cost = measured_iterations · expected_cost``. ``epsilon`` is the absolute
    accuracy, ``epsilon_rel`` the relative one it came from.
    """

    profile: str
    L: tuple
    costs: tuple
    forward: float
    distribution: str
    pi: tuple
    start_probs: tuple
    expected_cost: float
    Delta0: float
    epsilon: float
    epsilon_rel: float
    predicted_K: float
    predicted_total_cost: float
    measured_iterations: int
    measured_total_cost: float
    spread: str = "common"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready copy (tuples become lists)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [float(x) for x in v]
        return d


# -- the test bed ---------------------------------------------------------------------------------

def prediction_problem(L, *, shape=SHAPE, floor: float = FLOOR, spread: str = "common",
                       seed: int = 0) -> SeparableQuadratic:
    """The Frobenius-norm :class:`SeparableQuadratic` with per-entry curvatures for profile ``L``.

    ``spread="common"``: one geometric lattice ``h_j = h_min ρ^j`` (``j = 0..n−1``, ``n`` entries
    per layer, ``h_min = floor · min_i L_i``, ``ρ`` so that ``h_{n−1} = max_i L_i``) shared by all
    layers and capped at ``L_i`` (the last entry is ``L_i`` itself): every layer has the same slow
    modes, and only ``L_i`` (hence the step ``1/L_i``) differs. ``spread="relative"``:
    ``geomspace(floor·L_i, L_i, n)`` per layer (the same relative spread everywhere).
    ``X* = 0`` and ``X^0`` has entries ``±1`` (random signs from ``seed``), so no layer starts with
    an advantage. A1 holds with exactly the ``L`` given (Frobenius, ``L_i = max h``).

    >>> p = prediction_problem([1.0, 4.0], shape=(1, 4))
    >>> [h.ravel().round(4).tolist() for h in p.H]
    [[0.01, 0.0737, 0.5429, 1.0], [0.01, 0.0737, 0.5429, 4.0]]
    >>> p.constants.L.tolist()
    [1.0, 4.0]
    """
    L = check_layer_array("L", L, "positive")
    floor = check_scalar("floor", floor, "positive")
    if floor >= 1:
        raise ValueError(f"floor is the slowest curvature as a fraction of L and must be < 1; got floor = {floor!r}")
    if spread not in ("common", "relative"):
        raise ValueError(f"spread must be 'common' or 'relative'; got spread = {spread!r}")
    shape = tuple(check_positive_int("shape", d) for d in shape)
    n = int(np.prod(shape))
    if n < 2:
        raise ValueError(f"a layer needs at least 2 entries (a slow and a fast mode); got shape = {shape}")
    if spread == "common":
        h_min = floor * float(L.min())
        lattice = h_min * (float(L.max()) / h_min) ** (np.arange(n) / (n - 1))
        H = []
        for Li in L:
            h = np.minimum(lattice, Li)
            h[-1] = Li  # exact: max h = L_i, whatever the rounding of the lattice
            H.append(h.reshape(shape))
    else:
        H = []
        for Li in L:
            h = np.geomspace(floor * Li, Li, n)
            h[-1] = Li
            H.append(h.reshape(shape))
    rng = np.random.default_rng(seed)
    x0 = [rng.choice([-1.0, 1.0], size=shape) for _ in L]
    return SeparableQuadratic(H, shapes=[shape] * len(L), norms="frobenius", x0=x0, seed=seed,
                              name=f"prediction-quadratic[{spread}, b={len(L)}]")


def _check_problem(problem) -> None:
    if not isinstance(problem, SeparableQuadratic):
        raise ValueError(f"the closed form needs a SeparableQuadratic; got {problem!r}")
    bad = [j for j, nrm in enumerate(problem.norms, start=1) if nrm.name != "frobenius"]
    if bad:
        raise ValueError(
            f"the closed form needs Frobenius layer norms (the sharp step is then entry-wise); "
            f"layer {bad[0]} has {problem.norms[bad[0] - 1].name!r}"
        )


def _check_pi(pi, b: int) -> np.ndarray:
    p = check_layer_array("pi", pi, "probability")
    if len(p) != b:
        raise ValueError(f"pi needs one inclusion probability per layer ({b}); got {len(p)}")
    return p


def _layer_terms(problem: SeparableQuadratic, pi: np.ndarray):
    """Per entry: ``w = h² (x0 − x*)²`` and the factor ``q = 1 − π_i + π_i(1 − h/L_i)²``."""
    L = problem.constants.L
    w, q = [], []
    for h, x0, xs, Li, p in zip(problem.H, problem.x0, problem.xstar, L, pi):
        w.append((h * (x0 - xs)).ravel() ** 2)
        q.append((1.0 - p + p * (1.0 - h / Li) ** 2).ravel())
    w, q = np.concatenate(w), np.concatenate(q)
    keep = w > 0
    return w[keep], q[keep]


def expected_squared_gradient(problem: SeparableQuadratic, pi, k):
    r"""``E Σ_i ‖∇_i f(X^k)‖_F²`` for T1's method (sharp step ``1/L_i``, ``β = 1``) under i.i.d.
    sampling with inclusion probabilities ``π``, exactly::

        E Σ_i ‖∇_i f(X^k)‖_F² = Σ_i Σ_e h_e² (x^0 − x*)_e² (1 − π_i + π_i (1 − h_e/L_i)²)^k.

    *Proof.* With the Frobenius norm ``M^♯ = M`` and the radius ``‖g_i‖_F/L_i`` the step is
    ``X_i ← X_i − ∇_i f/L_i``, entry-wise ``e ← (1 − h/L_i) e`` for ``e = (x − x*)_e``. After ``k``
    steps layer ``i`` has been updated ``N_i ~ Binomial(k, π_i)`` times (A4), so
    ``e_k = (1 − h/L_i)^{N_i} e_0`` and ``E e_k² = e_0² E z^{N_i}`` with ``z = (1 − h/L_i)²``; the
    binomial's generating function is ``E z^N = (1 − π + π z)^k`` — the square sits inside. The
    gradient entry is ``h e``, and the sum over layers is linear, so only the marginals ``π_i``
    matter (any i.i.d. distribution over sets, RPT included). ∎

    ``k`` may be an integer or an array of them.

    >>> p = prediction_problem([1.0, 4.0], shape=(1, 2))
    >>> round(float(expected_squared_gradient(p, [1.0, 1.0], 1)), 12)  # the L_i modes die in one step
    0.000197510625
    """
    _check_problem(problem)
    pi = _check_pi(pi, problem.nlayers)
    k = np.asarray(k)
    if k.dtype.kind not in "iu" and not (k.dtype.kind == "f" and np.all(k == np.floor(k))):
        raise ValueError(f"k must be a non-negative integer (iterations); got k = {k!r}")
    if np.any(k < 0):
        raise ValueError(f"k must be a non-negative integer (iterations); got k = {k!r}")
    w, q = _layer_terms(problem, pi)
    kk = k.astype(float)
    out = (w[:, None] * q[:, None] ** kk.reshape(1, -1)).sum(axis=0)
    return float(out[0]) if k.ndim == 0 else out.reshape(k.shape)


def iterations_to_target(problem: SeparableQuadratic, pi, target: float) -> int:
    """The first ``k`` with ``E Σ_i ‖∇_i f(X^k)‖_F² ≤ target`` (:func:`expected_squared_gradient`,
    non-increasing in ``k`` since every factor lies in ``[0, 1]``): doubling, then bisection.

    >>> p = prediction_problem([1.0, 4.0], shape=(1, 2))
    >>> iterations_to_target(p, [1.0, 1.0], 1.0), iterations_to_target(p, [1.0, 1.0], 1e-4)
    (1, 65)
    """
    _check_problem(problem)
    pi = _check_pi(pi, problem.nlayers)
    target = check_scalar("target", target, "positive")
    w, q = _layer_terms(problem, pi)

    def value(k: int) -> float:
        return float(np.sum(w * q**k))

    if value(0) <= target:
        return 0
    hi = 1
    while value(hi) > target:
        hi *= 2
        if hi > _MAX_ITERATIONS:
            raise ValueError(f"the target {target!r} needs more than 2^62 iterations")
    lo = hi // 2  # value(lo) > target >= value(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if value(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


# -- profiles -------------------------------------------------------------------------------------

def builtin_profiles() -> list[Profile]:
    """The default suite's profiles; each has a predicted ordering with a clear margin or an exact
    tie (docs/sampling.md: full updates are optimal iff ``L_1 = max_j L_j``).

    >>> [p.name for p in builtin_profiles()]
    ['increasing', 'first-max', 'bump', 'output-rough', 'gluon-like']
    """
    return [
        Profile("increasing", (1, 2, 4, 8), (1, 1, 1, 1), forward=2.0,
                description="L increasing with depth: the optimum pi_i = L_i/L_max is non-trivial"),
        Profile("first-max", (8, 4, 2, 1), (1, 1, 1, 1), forward=2.0,
                description="L_1 = max_j L_j: full updates are the max-form optimum"),
        Profile("bump", (1, 3, 10, 3, 1), (1, 2, 2, 2, 1), forward=2.0,
                description="a rough middle layer: the optimum starts at layer 3 with probability 0.7"),
        Profile("output-rough", (1, 1, 1, 10), (4, 2, 1, 0.5), forward=3.0,
                description="only the (cheap) output layer is rough: the optimum mostly updates it alone"),
        Profile("gluon-like", (1.3, 68, 70, 71, 67, 1.3), (1, 3, 3, 3, 3, 1), forward=4.0,
                description="shaped like the layer-wise L1 Gluon measured on NanoGPT (about 1.3 for "
                            "embedding/output, 67-71 for the blocks), used here as A1 constants"),
    ]


def _predicted_ratios(profile: Profile) -> tuple[float, float]:
    """Predicted TC(optimal)/TC(uniform) and TC(optimal)/TC(full) (ε and Δ0 cancel)."""
    from dropmuon.solvers import optimal_sampling

    r = optimal_sampling(list(profile.L), profile.cost_model)
    return 1.0 / r.speedup_vs_uniform, 1.0 / r.speedup_vs_full


def random_profiles(n: int, seed: int = 0, *, min_gap: float = MIN_PREDICTED_GAP) -> list[Profile]:
    """``n`` random profiles drawn with ``seed``: ``b`` uniform in 3..6, ``L_i = 10^U(0, 1.5)``,
    ``c_i = 10^U(−0.5, 0.5)``, ``F = U(0, 1)·Σc``. A draw whose predicted ratio
    optimum/baseline (uniform or full) lies in ``(1 − min_gap, 1)`` is redrawn (see
    :data:`MIN_PREDICTED_GAP`; the criterion uses the prediction only, never a measurement);
    ``min_gap=0`` keeps every draw.

    >>> [p.nlayers for p in random_profiles(3, seed=0)]
    [6, 5, 6]
    """
    n = check_positive_int("n", n)
    min_gap = float(min_gap)
    if not 0 <= min_gap < 1:
        raise ValueError(f"min_gap must be in [0, 1); got min_gap = {min_gap!r}")
    rng = np.random.default_rng(seed)
    out: list[Profile] = []
    draws = 0
    while len(out) < n:
        draws += 1
        if draws > 1000 * n:
            raise ValueError(f"could not draw {n} profiles with min_gap = {min_gap}")
        b = int(rng.integers(3, 7))
        L = 10 ** rng.uniform(0.0, 1.5, b)
        c = 10 ** rng.uniform(-0.5, 0.5, b)
        F = float(rng.uniform(0.0, 1.0) * c.sum())
        prof = Profile(f"random-{len(out) + 1}", tuple(L), tuple(c), forward=F,
                       description=f"random profile (seed {seed}, draw {draws})")
        if min_gap > 0 and any(1 - min_gap < r < 1 - ORDER_RTOL for r in _predicted_ratios(prof)):
            continue
        out.append(prof)
    return out


# -- runs -----------------------------------------------------------------------------------------

def _records_for(profile: Profile, epsilon_rel: float, seed: int, spread: str, floor: float,
                 shape) -> list[PredictionRecord]:
    from dropmuon.solvers import optimal_sampling

    b = profile.nlayers
    L = np.asarray(profile.L)
    problem = prediction_problem(L, shape=shape, floor=floor, spread=spread, seed=seed)
    g0 = float(expected_squared_gradient(problem, np.ones(b), 0))
    eps = epsilon_rel * math.sqrt(g0)
    model = profile.cost_model
    opt = optimal_sampling(list(L), model, family="rpt", objective="max")
    delta0 = problem.delta0
    out = []
    for name, dist in (("optimal", opt.distribution), ("uniform", RPT.uniform(b)), ("full", RPT.full(b))):
        pi = np.asarray(dist.inclusion, dtype=float)
        ec = model.expected_cost(dist)
        K_pred = smooth_deterministic.iterations_real(eps, L=L, pi=pi, Delta0=delta0)
        K_meas = iterations_to_target(problem, pi, eps**2)
        out.append(PredictionRecord(
            profile=profile.name, L=profile.L, costs=profile.costs, forward=profile.forward,
            distribution=name, pi=tuple(float(x) for x in pi),
            start_probs=tuple(float(x) for x in dist.start_probs), expected_cost=float(ec),
            Delta0=float(delta0), epsilon=float(eps), epsilon_rel=float(epsilon_rel),
            predicted_K=float(K_pred), predicted_total_cost=float(K_pred * ec),
            measured_iterations=int(K_meas), measured_total_cost=float(K_meas * ec), spread=spread,
            extra={"problem": problem.name, "solver_method": opt.method, "floor": floor,
                   "shape": list(shape), "seed": seed},
        ))
    return out


def run_predictions(profiles=None, epsilon: float = EPSILON, seed: int = 0, *, spread: str = "common",
                    floor: float = FLOOR, shape=SHAPE) -> list[PredictionRecord]:
    """For every profile (default :func:`builtin_profiles`) the three records ``optimal`` (the
    solver's max-form RPT optimum), ``uniform`` (``p_s = 1/b``) and ``full``, each run to the
    relative accuracy ``epsilon`` on :func:`prediction_problem` (``spread``, ``floor``, ``shape``,
    ``seed``): the target is ``E Σ_i ‖∇_i f(X^k)‖_F² ≤ ε² ‖∇f(X^0)‖_F²``.

    >>> recs = run_predictions([Profile("p", (1, 4), (1, 1), forward=1.0)])
    >>> [(r.distribution, r.pi) for r in recs]
    [('optimal', (0.25, 1.0)), ('uniform', (0.5, 1.0)), ('full', (1.0, 1.0))]
    >>> [r.measured_total_cost < recs[0].measured_total_cost for r in recs[1:]]
    [False, False]
    """
    profiles = builtin_profiles() if profiles is None else list(profiles)
    if not profiles:
        raise ValueError("profiles is empty; give at least one Profile (or None for the built-in ones)")
    for p in profiles:
        if not isinstance(p, Profile):
            raise ValueError(f"profiles must be Profile objects; got {p!r}")
    epsilon = check_scalar("epsilon", epsilon, "positive")
    if epsilon >= 1:
        raise ValueError(f"epsilon is relative to the initial gradient norm and must be < 1; got epsilon = {epsilon!r}")
    out = []
    for p in profiles:
        out.extend(_records_for(p, epsilon, seed, spread, floor, shape))
    return out


def _by_profile(records) -> dict:
    groups: dict = {}
    for r in records:
        groups.setdefault(r.profile, {})[r.distribution] = r
    for name, g in groups.items():
        missing = {"optimal", "uniform", "full"} - set(g)
        if missing:
            raise ValueError(f"profile {name!r} lacks the records {sorted(missing)}")
    return groups


def prediction_summary(records=None) -> list[dict]:
    """Measured against predicted speed-ups of the optimum, one row per profile (for the issue
    note): ``*_speedup_vs_uniform = TC(uniform)/TC(optimal)`` and likewise against full, predicted
    (``K_max · E cost``) and measured (iterations to ε · E cost); ``>1`` means the optimum is
    cheaper. ``records`` default: :func:`run_predictions` on the built-in profiles.

    >>> rows = prediction_summary(run_predictions([Profile("tie", (4, 1), (1, 1))]))
    >>> rows[0]["predicted_speedup_vs_full"], rows[0]["measured_speedup_vs_full"]
    (1.0, 1.0)
    """
    records = run_predictions() if records is None else list(records)
    rows = []
    for name, g in _by_profile(records).items():
        o = g["optimal"]
        row = {"profile": name, "b": len(o.L), "L": list(o.L), "costs": list(o.costs), "forward": o.forward,
               "optimal_start_probs": list(o.start_probs), "epsilon_rel": o.epsilon_rel, "spread": o.spread}
        for base in ("uniform", "full"):
            r = g[base]
            row[f"predicted_speedup_vs_{base}"] = r.predicted_total_cost / o.predicted_total_cost
            row[f"measured_speedup_vs_{base}"] = r.measured_total_cost / o.measured_total_cost
            row[f"measured_iterations_{base}"] = r.measured_iterations
        row["measured_iterations_optimal"] = o.measured_iterations
        rows.append(row)
    return rows


# -- checks ---------------------------------------------------------------------------------------

def _check(o: PredictionRecord, r: PredictionRecord) -> CheckResult:
    measured = o.measured_total_cost / r.measured_total_cost
    predicted = o.predicted_total_cost / r.predicted_total_cost
    same = o.pi == r.pi
    holds = bool(measured <= 1.0 + ORDER_RTOL)
    note = (
        f"measured TC {r.distribution}/optimal = {1 / measured:.4g}, predicted {1 / predicted:.4g} "
        f"(iterations to eps: optimal {o.measured_iterations}, {r.distribution} {r.measured_iterations}; "
        f"E cost {o.expected_cost:.4g} vs {r.expected_cost:.4g})"
    )
    if same:
        note += f"; the optimum is {r.distribution} itself (a predicted tie)"
    if not holds:
        note += "; the predicted ordering is NOT reproduced"
    pi = [round(x, 3) for x in o.pi]
    return CheckResult(
        name=f"prediction {o.profile}: optimal vs {r.distribution} [rate]",
        theorem="smooth-deterministic", statement="rate",
        problem=f"{o.extra.get('problem', 'prediction-quadratic')} profile {o.profile}",
        observed=float(measured), bound=1.0, ratio=float(measured), holds=holds, method="closed-form",
        n=1, kind="prediction", distribution=f"RPT(pi={pi})", K=int(o.measured_iterations), note=note,
    )


def prediction_checks(seed: int = 0, size: str = "quick") -> list[CheckResult]:
    """Is the solver's predicted ordering reproduced? Per profile two checks, optimum against
    uniform index sampling and against full updates, with

    * ``observed`` = measured ``TC(optimal)/TC(baseline)`` (exact expectations: ``method`` is
      ``closed-form``), ``bound = 1`` (the prediction: the optimum costs no more than the
      baseline), ``ratio = observed``; ``holds`` iff ``observed ≤ 1`` (up to :data:`ORDER_RTOL`),
      i.e. the predicted ordering is reproduced;
    * ``note``: measured and predicted speed-ups ``TC(baseline)/TC(optimal)``, the iteration counts
      and the expected costs; ``K`` the optimum's measured iterations to ε.

    ``size="quick"``: :func:`builtin_profiles`; ``"standard"`` adds 20 :func:`random_profiles`
    drawn with ``seed``.

    >>> rs = prediction_checks()
    >>> len(rs), all(r.holds for r in rs)
    (10, True)
    """
    if size not in ("quick", "standard"):
        raise ValueError(f"size must be 'quick' or 'standard'; got size = {size!r}")
    profiles = builtin_profiles()
    if size == "standard":
        profiles += random_profiles(20, seed=seed)
    out = []
    for name, g in _by_profile(run_predictions(profiles, seed=seed)).items():
        out.append(_check(g["optimal"], g["uniform"]))
        out.append(_check(g["optimal"], g["full"]))
    return out
