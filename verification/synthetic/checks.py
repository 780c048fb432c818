"""Bound checks: run Drop-Muon on a problem with certified constants and compare a theorem's
left-hand side with its right-hand side (``docs/verification.md``).

Expectations over the sampling are exact where possible — per layer for separable problems
(``K + 1`` states per layer), over the joint sampling tree otherwise — and Monte Carlo only for
noise or random directions, with normal confidence limits from the sample size. Every check
returns a :class:`CheckResult` whose ``status`` is one of :data:`STATUSES`: ``holds``,
``within-tolerance``, ``inconclusive`` or ``violated``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from dropmuon.theory import STEP_KINDS, RunSettings, get_theorem
from dropmuon.theory._validation import check_scalar

from .dropmuon import (
    EXACT_LMO,
    LMO,
    MAX_EXACT_PATHS,
    count_paths,
    AdaptiveRadius,
    ConstantRadius,
    SharpStep,
    as_sampler,
    paths,
)
from .problems import Problem

__all__ = [
    "CheckResult",
    "NotApplicable",
    "applicability",
    "check_theorem",
    "check_tight_instance",
    "tight_problem",
    "observed_lhs",
    "MC_RESOLUTION",
    "STATUSES",
    "BOUND_RTOL",
    "TIGHT_MIN",
    "CONFIDENCE",
]

# The observed left-hand side is a sum of at most K·b·(number of paths) float64 terms and the bound
# a closed form: both carry relative rounding errors of ~1e-13 at our sizes, so 1e-9 separates a
# violation from rounding while being far below any meaningful slack.
BOUND_RTOL = 1e-9
# The bar for a tight instance: observed/bound at least 0.99.
TIGHT_MIN = 0.99
# Monte Carlo checks are decided at this confidence (each confidence limit one-sided).
CONFIDENCE = 0.999
# A Monte Carlo check holds only when its upper confidence limit is at most the bound. An upper
# limit above the bound by at most this fraction is "within-tolerance" (a bound too small by less
# than 2% cannot be told from one that holds at this sample size, and is not called a pass); an
# interval straddling the bound by more is "inconclusive".
MC_RESOLUTION = 0.02

#: the verdicts of a check, from a real pass to a failure: ``holds`` (exact: observed ≤ bound;
#: Monte Carlo: the upper confidence limit ≤ bound), ``within-tolerance`` (Monte Carlo only: the
#: interval reaches above the bound, but by at most :data:`MC_RESOLUTION`), ``inconclusive`` (the
#: interval straddles the bound by more), ``violated``. Only ``holds`` is a pass.
STATUSES = ("holds", "within-tolerance", "inconclusive", "violated")


class NotApplicable(ValueError):
    """The theorem does not apply to the problem (its assumptions are not certified there, or the
    problem/LMO is outside the theorem's setting): a ``ValueError`` a sweep records as "not
    applicable" rather than as a failure."""


@dataclass(frozen=True)
class CheckResult:
    """One check: ``observed`` (the expectation of the left-hand side; the sample mean for Monte
    Carlo) against ``bound``; ``ratio = observed/bound`` is the tightness. ``kind``: ``bound``
    (upper bound must hold), ``tight`` (must hold with ``ratio ≥ 0.99``), ``prediction`` (a
    solver's predicted ordering), ``coupling`` (T4's predicted direction). ``method``: ``exact``
    (the joint sampling tree enumerated), ``separable`` (exact per layer), ``mc`` (Monte Carlo;
    ``ci_low, ci_high`` at ``confidence``) or ``closed-form``. ``status``: one of
    :data:`STATUSES` (``holds``, ``within-tolerance``, ``inconclusive``, ``violated``); ``holds``
    is ``status == "holds"``, a real pass."""

    name: str
    theorem: str
    statement: str
    problem: str
    observed: float
    bound: float
    ratio: float
    holds: bool
    method: str
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 1
    kind: str = "bound"
    confidence: float | None = None
    distribution: str = ""
    K: int | None = None
    note: str = ""
    status: str = ""

    def __post_init__(self):
        if not self.status:  # records written before the status field: derive it
            object.__setattr__(self, "status", "holds" if self.holds else "violated")

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        """The inverse of :meth:`as_dict` after a JSON round trip: ``None`` or ``"nan"`` in the
        float fields ``observed, bound, ratio`` is NaN, ``"inf"``/``"-inf"`` are infinities.

        >>> r = CheckResult("n", "t", "s", "p", 1.0, float("inf"), 0.0, True, "exact")
        >>> CheckResult.from_dict({**r.as_dict(), "bound": "inf"}) == r
        True
        """
        def num(v, optional=False):
            if v is None:
                return None if optional else float("nan")
            return float(v)

        d = dict(d)
        for k in ("observed", "bound", "ratio"):
            d[k] = num(d.get(k))
        for k in ("ci_low", "ci_high", "confidence"):
            d[k] = num(d.get(k), optional=True)
        return cls(**d)

    def as_dict(self) -> dict:
        """JSON-ready (non-finite numbers become ``None`` in :func:`dropmuon.figures.cli` output)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, (np.floating, np.integer, np.bool_)):
                d[k] = v.item()
        return d


def observed_lhs(theorem, statement: str, gnorms: np.ndarray, constants: dict) -> np.ndarray:
    """A statement's left-hand side on each path, ``(1/K) Σ_k Σ_i term_i``, from
    ``gnorms[n, k, i] = ‖∇_i f(X^k)‖_*`` and the theorem's numeric term
    (:meth:`dropmuon.theory.Theorem.lhs_terms`); meaningful for joint paths (``exact``, ``mc``)."""
    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    h = thm.lhs_terms(statement, gnorms, **_theorem_constants(thm, constants))
    with np.errstate(invalid="ignore", over="ignore"):
        return h.sum(axis=2).mean(axis=1)


def _theorem_constants(thm, consts: dict) -> dict:
    """The entries of ``consts`` the theorem takes (its per-layer constants, Δ0, step parameters)."""
    keep = set(thm.per_layer) | {"Delta0"} | set(thm.parameters)
    return {k: v for k, v in consts.items() if k in keep}


def _describe_distribution(sampler) -> str:
    d = getattr(sampler, "distribution", None)
    if d is None:
        return type(sampler).__name__
    pi = np.round(np.asarray(d.inclusion), 3).tolist()
    return f"{type(d).__name__}(pi={pi})"


def _needs(problem: Problem, theorem: str, what: str):
    c = problem.constants
    v = getattr(c, what, None)
    if v is None:
        raise NotApplicable(f"theorem {theorem} needs constants {what} but problem {problem.name!r} certifies none")
    return np.asarray(v, dtype=float)


def _rule(thm, consts: dict, params: dict, pi: np.ndarray):
    """The step rule of the theorem's step kind (:data:`dropmuon.theory.STEP_KINDS`)."""
    kind = thm.step_kind
    if kind == "sharp":
        return SharpStep(consts["L"])
    if kind == "constant-radius":
        return ConstantRadius(params["eta"], pi)
    if kind == "adaptive-radius":
        return AdaptiveRadius(consts["L0"], consts["L1"])
    raise ValueError(f"theorem {thm.name} has step kind {kind!r}; a check can run: {', '.join(STEP_KINDS)}")


def applicability(theorem, problem: Problem, *, lmo: LMO = EXACT_LMO, beta=None, pi=None, l1=None) -> str | None:
    """Why the theorem does not apply to this problem and setting (``None`` when it does), read
    from the theorem object: its constants, exact gradients / exact LMO, the form of A1 it needs
    with noise or momentum, and full updates only."""
    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    c = problem.constants
    stochastic = c.sigma is not None and bool(np.any(c.sigma > 0))
    momentum = beta is not None and beta < 1
    for n in thm.per_layer:
        if n in ("pi", "delta") or n in thm.defaults or (n == "L1" and l1 is not None):
            continue
        if getattr(c, n, None) is None:
            return f"theorem {thm.name} needs constants {n} but problem {problem.name!r} certifies none"
    full = pi is None or bool(np.all(np.asarray(pi) >= 1))
    # the check runs the theorem's own step rule; the rest of the setting is the problem's and the options'
    run = RunSettings(full_batch=not stochastic, momentum=1.0 if beta is None else beta, exact_lmo=lmo.kind == "exact",
                      step=thm.step_kind if thm.step_kind in STEP_KINDS else "sharp", full_sampling=full)
    cov = thm.covers(run)
    if not cov.applies:
        where = f" (problem {problem.name!r}, lmo={lmo.kind!r}" + ("" if full else
                                                                   f", pi = {np.round(np.asarray(pi), 3).tolist()}")
        return f"{thm.name} {cov.reasons[0]}{where})"
    if thm.needs_lipschitz(stochastic=stochastic, momentum=momentum) and not c.lipschitz:
        return (f"{thm.name} with noise or momentum needs A1 in Lipschitz (separable) form; "
                f"problem {problem.name!r} certifies only the descent form")
    return None


def _quantile(confidence: float, n: int) -> float:
    """The one-sided Student-t quantile for a mean of ``n`` draws (the normal one undercovers at
    small ``n``: at ``n = 5`` the 99.9% normal limit covers only ~99.5%)."""
    if n < 2:
        return math.inf
    if confidence == 0:
        return -math.inf  # the lower end of the support, as scipy.stats.t.ppf(0, n − 1) gives
    # the kernel of scipy.stats.t.ppf (the same number for 0 < confidence < 1) without the cost of
    # importing scipy.stats
    from scipy.special import stdtrit

    return float(stdtrit(n - 1, confidence))


def _decide(method: str, observed: float, bound: float, lo, hi) -> str:
    """One of :data:`STATUSES`. Exact: ``holds`` iff ``observed ≤ bound`` (up to
    :data:`BOUND_RTOL`), else ``violated``. Monte Carlo, with confidence limits ``lo ≤ hi``:
    ``violated`` iff ``lo > bound``; ``holds`` iff ``hi ≤ bound``, i.e. the mean is shown at the
    check's confidence to be at most the bound; ``within-tolerance`` iff
    ``bound < hi ≤ bound·(1 + MC_RESOLUTION)`` (not shown to hold, but any violation is below
    2%); otherwise the interval is too wide to decide: ``inconclusive``."""
    if not math.isfinite(observed) or not math.isfinite(bound):
        return "violated" if not math.isfinite(observed) else "holds"
    tol = bound * (1 + BOUND_RTOL)
    if method in ("exact", "separable"):
        return "holds" if observed <= tol else "violated"
    if lo > tol:
        return "violated"
    if hi <= tol:
        return "holds"
    if hi <= bound * (1 + MC_RESOLUTION) + bound * BOUND_RTOL:
        return "within-tolerance"
    return "inconclusive"


def check_theorem(theorem, problem: Problem, distribution, K: int, *, statements=None, eta=None,
                  beta=None, lmo: LMO = EXACT_LMO, l1=None, method: str = "auto", mc_paths: int = 1000,
                  max_exact: int = MAX_EXACT_PATHS, seed: int = 0, confidence: float = CONFIDENCE,
                  kind: str = "bound", name: str | None = None, delta_prior=None) -> list[CheckResult]:
    """Run the theorem's algorithm on ``problem`` for ``K`` steps and check its statements.

    ``theorem``: a name or a :class:`~dropmuon.theory.Theorem` (registered or not). Everything the
    check needs is read from the object: the step kind (``sharp``: ``γ_i = 1/L_i``;
    ``constant-radius``: radii ``η/π_i`` with ``η, β`` from the theorem's rule unless given;
    ``adaptive-radius``: Gluon's radius), the constants it takes (from the problem; ``π`` is the
    sampler's inclusion, ``δ`` the LMO's), whether it allows noise or an inexact LMO, the form of
    A1 it needs (:func:`applicability`), and each statement's numeric left-hand side
    ``(1/K) Σ_k E Σ_i term_i``. For an inexact theorem ``lmo`` is the direction: ``perturbed``
    uses its ``δ``, ``newton-schulz`` the largest δ met along the runs (the tightest valid value;
    the step is tuned with ``delta_prior``, default 0, and the bound is then evaluated at the step
    actually used).

    Expectations are exact where possible: per layer (``separable``: ``K + 1`` states per layer,
    binomially weighted) for separable problems with deterministic gradients and directions,
    otherwise over the joint sampling tree when it has at most ``max_exact`` paths; Monte Carlo
    only for noise or random directions (or a joint tree too large to enumerate). A Monte Carlo
    check whose interval cannot decide is ``inconclusive`` (:func:`_decide`).

    >>> from dropmuon.verification.synthetic.problems import SeparableQuadratic
    >>> from dropmuon.theory import RPT
    >>> p = SeparableQuadratic([1.0, 3.0], shapes=[(2, 2), (2, 2)], seed=0)
    >>> r = check_theorem("smooth-deterministic", p, RPT.full(2), 1, statements=["weighted"])[0]
    >>> round(r.ratio, 12), r.status, r.method
    (1.0, 'holds', 'separable')
    """
    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    tname = thm.name
    if thm.step_kind not in STEP_KINDS:
        raise ValueError(f"theorem {tname} has step kind {thm.step_kind!r}; a check can run: {', '.join(STEP_KINDS)}")
    sampler = as_sampler(distribution)
    if sampler.nlayers != problem.nlayers:
        raise ValueError(
            f"the distribution has {sampler.nlayers} layers but problem {problem.name!r} has {problem.nlayers}"
        )
    if not sampler.iid:
        raise ValueError("the theorems assume i.i.d. sampling (A4); an epoch-shift schedule is not covered")
    if kind not in ("bound", "tight"):
        raise ValueError(f"kind must be 'bound' or 'tight'; got {kind!r}")
    confidence = check_scalar("confidence", confidence, "unit_open")
    pi = np.asarray(sampler.inclusion, dtype=float)
    if np.any(pi <= 0):
        j = int(np.argmin(pi)) + 1
        raise ValueError(f"A4 needs every inclusion probability positive; pi_{j} = {float(pi[j - 1])!r}")
    why = applicability(thm, problem, lmo=lmo, beta=beta, pi=pi, l1=l1)
    if why is not None:
        raise NotApplicable(why)
    c = problem.constants
    stochastic = c.sigma is not None and bool(np.any(c.sigma > 0))
    consts: dict = {"Delta0": problem.delta0}
    for n in thm.per_layer:
        if n == "pi":
            consts["pi"] = pi
        elif n == "delta":
            if lmo.kind == "perturbed":
                consts["delta"] = np.full(problem.nlayers, lmo.delta)
            else:
                consts["delta"] = np.full(problem.nlayers, 0.0 if delta_prior is None else float(delta_prior))
        elif n == "L1" and l1 is not None:
            consts["L1"] = np.asarray(l1, dtype=float)
        elif getattr(c, n, None) is not None:
            consts[n] = np.asarray(getattr(c, n), dtype=float)
        elif n in thm.defaults:
            consts[n] = np.full(problem.nlayers, float(thm.defaults[n]))
        else:
            consts[n] = _needs(problem, tname, n)

    fixed = {k: v for k, v in (("eta", eta), ("beta", beta)) if v is not None and k in thm.parameters}
    tuned = thm.evaluate(K, **consts, **fixed).parameters
    params = {k: float(tuned[k]) for k in thm.parameters}
    rule = _rule(thm, consts, params, pi)
    deterministic = not stochastic and not (lmo.kind == "perturbed" and lmo.mode == "random")
    if method == "auto" and deterministic and not getattr(problem, "separable", False):
        n_paths = count_paths(sampler, K)
        if n_paths > max_exact:
            raise ValueError(
                f"a deterministic instance is checked exactly, never by Monte Carlo: problem {problem.name!r} is "
                f"not separable and its sampling tree has {n_paths:.3g} paths > max_exact = {max_exact} at K = {K}; "
                "lower K, raise max_exact, or ask for method='mc' explicitly")
    P = paths(problem, rule, sampler, K, beta=params.get("beta", 1.0), lmo=lmo, stochastic=stochastic,
              seed=seed, method=method, mc_paths=mc_paths, max_exact=max_exact,
              momentum_init="gradient")
    if method == "auto" and deterministic and P.method == "mc":  # e.g. a per-layer run beyond its size cap
        raise ValueError(f"a deterministic instance is checked exactly, never by Monte Carlo: problem {problem.name!r} "
                         f"at K = {K} is too large for the exact methods; lower K or ask for method='mc' explicitly")
    inexact = "delta" in consts
    if inexact and lmo.kind == "newton-schulz":
        consts["delta"] = P.delta_max.copy()
    notes = []
    if P.diverged.any():
        notes.append(f"diverged on {int(P.diverged.sum())} of {P.n} paths")
    if P.left_region.any():
        notes.append(f"left the certified region ({c.region}) on {int(P.left_region.sum())} of {P.n} paths")
    ok_consts = not (inexact and np.any(consts["delta"] >= 1))
    if not ok_consts:
        notes.append(f"the measured LMO inexactness reached delta = {consts['delta'].max():.3g} >= 1")
    out = []
    names = list(thm.statements) if statements is None else list(statements)
    for st in names:
        thm.statement(st)  # clear error for an unknown statement
        h = thm.lhs_terms(st, P.gnorms, **consts, **params)
        bound = thm.evaluate(K, statement=st, **consts, **params).value if ok_consts else math.inf
        lo = hi = None
        if P.diverged.any() or not np.all(np.isfinite(h)):
            observed = math.inf
        elif P.method == "mc":
            with np.errstate(invalid="ignore", over="ignore"):
                per = h.sum(axis=2).mean(axis=1)
            observed = P.expectation(per)
            sd = float(np.std(per, ddof=1)) if P.n > 1 else math.inf
            half = _quantile(confidence, P.n) * sd / math.sqrt(P.n)
            lo, hi = observed - half, observed + half
        else:
            observed = float(P.layer_step_expectation(h).sum(axis=1).mean())
        ratio = observed / bound if bound > 0 and math.isfinite(bound) else math.nan
        status = _decide(P.method, observed, bound, lo, hi)
        if P.diverged.any() or P.left_region.any() or not ok_consts:
            status = "violated" if status in ("holds", "within-tolerance") else status
        note = list(notes)
        if status == "inconclusive":
            note.append(f"Monte Carlo interval [{lo:.4g}, {hi:.4g}] too wide to decide against the bound "
                        f"{bound:.4g} at ±{MC_RESOLUTION:.0%}: use more paths")
        elif status == "within-tolerance":
            note.append(f"Monte Carlo upper limit {hi:.4g} above the bound {bound:.4g} by "
                        f"{hi / bound - 1:.2%} (at most {MC_RESOLUTION:.0%}): not shown to hold; more paths may decide")
        if kind == "tight" and not ratio >= TIGHT_MIN:
            status = "violated" if status in ("holds", "within-tolerance") else status
            note.append(f"tight instance below {TIGHT_MIN}")
        label = name or f"{thm.label} {problem.name} {_describe_distribution(sampler)} K={K}"
        out.append(CheckResult(
            name=f"{label} [{st}]", theorem=tname, statement=st, problem=problem.name,
            observed=float(observed), bound=float(bound), ratio=float(ratio), holds=status == "holds",
            method=P.method, ci_low=lo, ci_high=hi, n=P.n, kind=kind,
            confidence=None if P.method != "mc" else confidence,
            distribution=_describe_distribution(sampler), K=int(K), note="; ".join(note), status=status,
        ))
    return out


def tight_problem(spec) -> Problem:
    """The problem of a :class:`~dropmuon.theory.TightInstance` (its ``problem`` data)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind != "separable-quadratic":
        raise ValueError(f"tight instances can build problems of kind 'separable-quadratic'; got {kind!r}")
    from .problems import SeparableQuadratic

    x0 = spec.pop("x0", None)
    shapes = [tuple(sh) for sh in spec.pop("shapes")]
    if x0 is not None:
        x0 = [np.asarray(x, dtype=float).reshape(sh) for x, sh in zip(x0, shapes)]
        spec["x0"] = x0
    return SeparableQuadratic(spec.pop("curvature"), shapes, spec.pop("norms", "frobenius"), **spec)


def check_tight_instance(theorem, instance, *, seed: int = 0) -> list[CheckResult]:
    """Run a theorem's :class:`~dropmuon.theory.TightInstance`: full sampling, ``kind="tight"``
    (the check must hold with ``observed/bound ≥ 0.99``)."""
    from dropmuon.theory import RPT

    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    problem = tight_problem(instance.problem)
    opts = dict(instance.options)
    if "lmo" in opts:
        opts["lmo"] = LMO(**opts["lmo"])
    out = check_theorem(thm, problem, RPT.full(problem.nlayers), instance.K, statements=[instance.statement],
                        kind="tight", seed=seed, name=f"tight {thm.label}: {instance.description}", **opts)
    owner = thm.inherited_claims.get("tight_instances")
    if owner:  # the instance is the parent's claim, taken over unchanged: say so beside the verdict
        out = [replace(r, note="; ".join(filter(None, [r.note, f"tight instance inherited from {owner}"])))
               for r in out]
    return out
