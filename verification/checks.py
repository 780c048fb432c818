"""Bound checks: run Drop-Muon on a problem with certified constants and compare a theorem's
left-hand side with its right-hand side (STYLE.md §4, §8).

Expectations over the sampling are exact when the paths can be enumerated, otherwise Monte Carlo
with a one-sided normal confidence interval from the sample size; a check holds when the bound is
not exceeded at that confidence. Every check returns a :class:`CheckResult`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from dropmuon.theory import get_theorem
from dropmuon.theory._validation import check_scalar

from .dropmuon import (
    EXACT_LMO,
    LMO,
    MAX_EXACT_PATHS,
    AdaptiveRadius,
    ConstantRadius,
    SharpStep,
    as_sampler,
    paths,
)
from .problems import Problem

__all__ = [
    "CheckResult",
    "check_theorem",
    "observed_lhs",
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
# Monte Carlo checks pass when the bound is not exceeded at this one-sided confidence.
CONFIDENCE = 0.999


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
    (enumerated), ``mc`` (Monte Carlo; ``ci_low, ci_high`` at ``confidence``) or ``closed-form``."""

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


def _lhs_functions():
    """(theorem, statement) -> per-path left-hand side from gnorms[n, k, i] and the constants."""

    def mean_k(a):
        return a.sum(axis=2).mean(axis=1)

    return {
        ("smooth-deterministic", "weighted"): lambda g, c: mean_k(c["pi"] / c["L"] * g**2),
        ("smooth-deterministic", "rate"): lambda g, c: mean_k(g**2),
        ("smooth-constant-radius", "rate"): lambda g, c: mean_k(g),
        ("l0l1-deterministic", "weighted"): lambda g, c: mean_k(c["pi"] * g**2 / (c["L0"] + c["L1"] * g)),
        ("l0l1-deterministic", "rate"): lambda g, c: mean_k(c["pi"] / c["L1"] * g),
        ("l0l1-deterministic", "unweighted"): lambda g, c: mean_k(g / c["L1"]),
        ("smooth-stochastic", "rate"): lambda g, c: mean_k(g),
        ("inexact-constant-radius", "weighted"): lambda g, c: mean_k((1 - c["delta"]) * g),
        ("inexact-constant-radius", "rate"): lambda g, c: mean_k(g),
    }


_LHS = _lhs_functions()


def observed_lhs(theorem: str, statement: str, gnorms: np.ndarray, constants: dict) -> np.ndarray:
    """A statement's left-hand side on each path, from ``gnorms[n, k, i] = ‖∇_i f(X^k)‖_*``."""
    try:
        f = _LHS[(theorem, statement)]
    except KeyError:
        raise ValueError(f"no observed left-hand side is implemented for {theorem} / {statement}") from None
    with np.errstate(invalid="ignore", over="ignore"):
        return f(np.asarray(gnorms, dtype=float), constants)


def _describe_distribution(sampler) -> str:
    d = getattr(sampler, "distribution", None)
    if d is None:
        return type(sampler).__name__
    pi = np.round(np.asarray(d.inclusion), 3).tolist()
    return f"{type(d).__name__}(pi={pi})"


def _needs(problem: Problem, theorem: str, what: str):
    c = problem.constants
    v = getattr(c, what)
    if v is None:
        raise NotApplicable(f"theorem {theorem} needs constants {what} but problem {problem.name!r} certifies none")
    return np.asarray(v, dtype=float)


def check_theorem(theorem, problem: Problem, distribution, K: int, *, statements=None, eta=None,
                  beta=None, lmo: LMO = EXACT_LMO, l1=None, method: str = "auto", mc_paths: int = 1000,
                  max_exact: int = MAX_EXACT_PATHS, seed: int = 0, confidence: float = CONFIDENCE,
                  kind: str = "bound", name: str | None = None, delta_prior=None) -> list[CheckResult]:
    """Run the theorem's algorithm on ``problem`` for ``K`` steps and check its statements.

    ``theorem``: a name or object (T1–T4). The step rule is the theorem's own (T1 ``1/L_i``; T1′,
    T3, T4 radii ``η/π_i`` with ``η, β`` from the theorem's rule unless given; T2 Gluon's radius);
    ``π`` is the sampler's inclusion. T3/T4 with noise or ``β < 1`` need A1 in Lipschitz form.
    For T4 ``lmo`` is the inexact direction: ``perturbed`` uses its ``δ``, ``newton-schulz`` the
    largest δ met along the runs (the tightest valid value; the step is tuned with ``delta_prior``,
    default 0, and the bound is then evaluated at the step actually used).

    >>> from dropmuon.verification.problems import SeparableQuadratic
    >>> from dropmuon.theory import RPT
    >>> p = SeparableQuadratic([1.0, 3.0], shapes=[(2, 2), (2, 2)], seed=0)
    >>> r = check_theorem("smooth-deterministic", p, RPT.full(2), 1, statements=["weighted"])[0]
    >>> round(r.ratio, 12), r.holds, r.method
    (1.0, True, 'exact')
    """
    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    tname = thm.name
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
    c = problem.constants
    stochastic = c.sigma is not None and bool(np.any(c.sigma > 0))
    consts: dict = {"Delta0": problem.delta0, "pi": pi}
    if tname == "smooth-deterministic":
        consts["L"] = _needs(problem, tname, "L")
        rule = SharpStep(consts["L"])
    elif tname == "smooth-constant-radius":
        consts["L"] = _needs(problem, tname, "L")
    elif tname == "l0l1-deterministic":
        consts["L0"] = _needs(problem, tname, "L0")
        consts["L1"] = np.asarray(l1, dtype=float) if l1 is not None else _needs(problem, tname, "L1")
        rule = AdaptiveRadius(consts["L0"], consts["L1"])
    elif tname in ("smooth-stochastic", "inexact-constant-radius"):
        consts["L"] = _needs(problem, tname, "L")
        consts["sigma"] = np.zeros(problem.nlayers) if c.sigma is None else np.asarray(c.sigma)
        consts["rho"] = np.ones(problem.nlayers) if c.rho is None else np.asarray(c.rho)
        momentum = beta is not None and beta < 1
        if (stochastic or momentum or tname == "smooth-stochastic") and not c.lipschitz:
            raise NotApplicable(
                f"{tname} with noise or momentum needs A1 in Lipschitz (separable) form; "
                f"problem {problem.name!r} certifies only the descent form"
            )
        if tname == "inexact-constant-radius":
            if lmo.kind == "perturbed":
                consts["delta"] = np.full(problem.nlayers, lmo.delta)
            else:
                consts["delta"] = np.full(problem.nlayers, 0.0 if delta_prior is None else float(delta_prior))
    else:
        raise ValueError(f"no check is implemented for theorem {tname!r}")
    if tname != "inexact-constant-radius" and lmo.kind != "exact":
        raise NotApplicable(f"{tname} assumes the exact LMO; use inexact-constant-radius for lmo={lmo.kind!r}")
    if stochastic and tname not in ("smooth-stochastic", "inexact-constant-radius"):
        raise NotApplicable(f"{tname} assumes exact gradients; problem {problem.name!r} is stochastic")

    fixed = {k: v for k, v in (("eta", eta), ("beta", beta)) if v is not None and k in thm.parameters}
    tuned = thm.evaluate(K, **consts, **fixed).parameters
    params = {k: float(tuned[k]) for k in thm.parameters}
    if tname in ("smooth-constant-radius", "smooth-stochastic", "inexact-constant-radius"):
        rule = ConstantRadius(params["eta"], pi)
    P = paths(problem, rule, sampler, K, beta=params.get("beta", 1.0), lmo=lmo, stochastic=stochastic,
              seed=seed, method=method, mc_paths=mc_paths, max_exact=max_exact,
              momentum_init="gradient")
    if tname == "inexact-constant-radius" and lmo.kind == "newton-schulz":
        consts["delta"] = P.delta_max.copy()
    notes = []
    if P.diverged.any():
        notes.append(f"diverged on {int(P.diverged.sum())} of {P.n} paths")
    if P.left_region.any():
        notes.append(f"left the certified region ({c.region}) on {int(P.left_region.sum())} of {P.n} paths")
    if tname == "inexact-constant-radius" and np.any(consts["delta"] >= 1):
        notes.append(f"the measured LMO inexactness reached delta = {consts['delta'].max():.3g} >= 1")
    z = NormalDist().inv_cdf(confidence)
    out = []
    names = list(thm.statements) if statements is None else list(statements)
    for st in names:
        thm.statement(st)  # clear error for an unknown statement
        per = observed_lhs(tname, st, P.gnorms, consts)
        ok_consts = not (tname == "inexact-constant-radius" and np.any(consts["delta"] >= 1))
        bound = thm.evaluate(K, statement=st, **consts, **params).value if ok_consts else math.inf
        observed = P.expectation(per) if np.all(np.isfinite(per)) else math.inf
        if P.method == "exact":
            lo = hi = None
            test_value = observed
        else:
            sd = float(np.std(per, ddof=1)) if P.n > 1 and math.isfinite(observed) else math.inf
            half = z * sd / math.sqrt(P.n)
            lo, hi = observed - half, observed + half
            test_value = lo
        ratio = observed / bound if bound > 0 and math.isfinite(bound) else math.nan
        holds = bool(math.isfinite(observed) and test_value <= bound * (1 + BOUND_RTOL))
        holds = holds and not P.diverged.any() and not P.left_region.any() and ok_consts
        note = list(notes)
        if kind == "tight" and not ratio >= TIGHT_MIN:
            holds = False
            note.append(f"tight instance below {TIGHT_MIN}")
        label = name or f"{thm.label} {problem.name} {_describe_distribution(sampler)} K={K}"
        out.append(CheckResult(
            name=f"{label} [{st}]", theorem=tname, statement=st, problem=problem.name,
            observed=float(observed), bound=float(bound), ratio=float(ratio), holds=holds,
            method=P.method, ci_low=lo, ci_high=hi, n=P.n, kind=kind,
            confidence=None if P.method == "exact" else confidence,
            distribution=_describe_distribution(sampler), K=int(K), note="; ".join(note),
        ))
    return out
