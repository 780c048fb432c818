"""Verification suites: the tight instances, a fixed set of checks covering every theorem on every
problem it applies to (``quick``), and ``standard`` — those plus random instances per theorem,
the solver predictions and the inexact-LMO coupling at a larger size.

``run_suite(name, seed)`` returns :class:`~dropmuon.verification.checks.CheckResult` records;
``dropmuon verify`` prints them as a table or JSON.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution

from .checks import CheckResult, check_theorem
from .dropmuon import LMO
from .problems import CoupledQuadratic, DeepLinear, L0L1Radial, SeparableQuadratic, Stochastic

__all__ = [
    "SUITES",
    "THEOREMS",
    "run_suite",
    "tight_instances",
    "quick_tasks",
    "random_instance",
    "summarise",
    "suite_tasks",
]

THEOREMS = (
    "smooth-deterministic",
    "smooth-constant-radius",
    "l0l1-deterministic",
    "smooth-stochastic",
    "inexact-constant-radius",
)
#: random instances per theorem in the standard suite
STANDARD_INSTANCES = 200

Task = Callable[[], list]


def _sep(c, shapes, norms="frobenius", seed=0, **kw):
    return SeparableQuadratic(c, shapes, norms, seed=seed, **kw)


def tight_instances() -> list[tuple[str, Task]]:
    """Designed problems on which observed/bound ≥ 0.99 (docs/theory.md says why each is tight).

    * T1 ``weighted``: ``f = Σ_i (L_i/2)‖X_i‖_F²``, full sampling, ``K = 1``: the step lands on
      the minimiser and ``Σ_i ‖g_i‖²/L_i = 2Δ0`` exactly. ``rate`` is tight too when the ``L_i``
      are equal.
    * T1′: ``f = (L/2)x²`` on one coordinate started at ``x0 = Kη`` with radius ``η``: every step
      moves by ``η`` towards 0 and ``(1/K)Σ|g_k| = Lη(K+1)/2 = Δ0/(Kη) + ηL/2``.
    * T2 ``weighted``: ``f = (L0/2)x²`` with ``L1 = 10⁻⁴``, ``x0 = 1``, ``K = 1``: ratio
      ``1/(1 + L1 x0)``.

    T3 and T4 (``δ > 0``) have no tight instance from our proofs: their bounds add worst-case
    terms (noise, momentum error, ``(1+δ)²``) that no single problem attains together.
    """
    eta, K = 0.25, 4
    return [
        ("tight T1 weighted", lambda: check_theorem(
            "smooth-deterministic", _sep([1.0, 4.0, 2.0], [(3, 2), (2, 2), (4, 1)], seed=1), RPT.full(3), 1,
            statements=["weighted"], kind="tight", name="tight T1 separable Frobenius quadratic, full, K=1")),
        ("tight T1 rate", lambda: check_theorem(
            "smooth-deterministic", _sep([2.0, 2.0], [(3, 2), (2, 2)], seed=2), RPT.full(2), 1,
            statements=["rate"], kind="tight", name="tight T1 equal-L separable quadratic, full, K=1")),
        ("tight T1′", lambda: check_theorem(
            "smooth-constant-radius", _sep([3.0], [(1,)], x0=[np.array([K * eta])]), RPT.full(1), K,
            eta=eta, kind="tight", name=f"tight T1′ 1-D quadratic x0=Kη, η={eta}, K={K}")),
        ("tight T2 weighted", lambda: check_theorem(
            "l0l1-deterministic", _sep([5.0], [(1,)], x0=[np.array([1.0])]), RPT.full(1), 1,
            l1=[1e-4], statements=["weighted"], kind="tight", name="tight T2 1-D quadratic, L1=1e-4, K=1")),
    ]


def quick_tasks(seed: int = 0) -> list[tuple[str, Task]]:
    """Every theorem on every problem type it applies to, small enough to enumerate mostly."""
    s = int(seed)
    shapes3 = [(3, 4), (2, 3), (4, 2)]
    sep_spec = _sep([1.0, 4.0, 2.0], shapes3, "spectral", seed=s)
    sep_linf = _sep([2.0, 1.0, 3.0], [(2, 2), (3, 1), (2, 3)], "linf", seed=s + 1)
    sep_scaled = _sep([1.0, 1.0, 5.0], shapes3, "scaled-spectral", seed=s + 2)
    coupled = CoupledQuadratic([(2, 3), (3, 2), (4, 1)], ["frobenius", "spectral", "linf"], coupling=0.7, seed=s)
    coupled_f = CoupledQuadratic([(2, 2), (3, 1), (2, 2)], "frobenius", coupling=1.0, seed=s + 3)
    deep = DeepLinear([3, 4, 5, 2], R=[1.5, 1.2, 1.8], seed=s)
    cosh_f = L0L1Radial([1.0, 2.0, 0.5], [1.0, 0.5, 2.0], shapes3, "frobenius", x0_scale=2.0, seed=s)
    cosh_s = L0L1Radial([1.0, 2.0], [1.0, 0.5], [(3, 3), (2, 4)], "spectral", x0_scale=2.0, seed=s)
    noisy = Stochastic(sep_spec, 0.3)
    noisy_f = Stochastic(_sep([1.0, 3.0], [(2, 2), (3, 2)], seed=s + 4), [0.5, 0.2])
    rng = np.random.default_rng(s)
    rpt_rand = RPT(rng.dirichlet(np.ones(3)))
    ind = Independent([0.5, 0.8, 1.0])
    comp = CompactSubsets([0.4, 0.3, 0.3], [1.0, 0.5, 0.7])
    subs = SubsetDistribution(3, [(1, 2, 3), (1, 3), (2,), (3,)], [0.3, 0.2, 0.3, 0.2])
    U3 = RPT.uniform(3)
    t1, t1p, t2, t3, t4 = THEOREMS
    tasks = [
        ("T1 spectral uniform", lambda: check_theorem(t1, sep_spec, U3, 5, seed=s)),
        ("T1 linf independent", lambda: check_theorem(t1, sep_linf, ind, 3, seed=s)),
        ("T1 scaled subsets", lambda: check_theorem(t1, sep_scaled, subs, 4, seed=s)),
        ("T1 coupled uniform", lambda: check_theorem(t1, coupled, U3, 5, seed=s)),
        ("T1 coupled compact", lambda: check_theorem(t1, coupled_f, comp, 3, seed=s)),
        ("T1 deep linear", lambda: check_theorem(t1, deep, U3, 5, seed=s)),
        ("T1′ spectral random RPT", lambda: check_theorem(t1p, sep_spec, rpt_rand, 5, seed=s)),
        ("T1′ coupled uniform", lambda: check_theorem(t1p, coupled, U3, 5, seed=s)),
        ("T1′ deep linear", lambda: check_theorem(t1p, deep, U3, 5, seed=s)),
        ("T1′ linf MC", lambda: check_theorem(t1p, sep_linf, ind, 12, mc_paths=400, seed=s)),
        ("T2 cosh frobenius", lambda: check_theorem(t2, cosh_f, U3, 6, seed=s)),
        ("T2 cosh spectral", lambda: check_theorem(t2, cosh_s, Independent([0.6, 1.0]), 4, seed=s)),
        ("T2 quadratic", lambda: check_theorem(t2, sep_spec, rpt_rand, 4, l1=[0.1, 0.2, 0.1], seed=s)),
        ("T3 spectral noise", lambda: check_theorem(t3, noisy, U3, 10, mc_paths=400, seed=s)),
        ("T3 frobenius noise full", lambda: check_theorem(t3, noisy_f, RPT.full(2), 10, mc_paths=400, seed=s)),
        ("T3 exact no noise", lambda: check_theorem(t3, sep_scaled, ind, 3, seed=s)),
        ("T4 shrink", lambda: check_theorem(t4, sep_spec, U3, 5, lmo=LMO("perturbed", delta=0.3, mode="shrink"), seed=s)),
        ("T4 overshoot coupled", lambda: check_theorem(
            t4, coupled, U3, 5, lmo=LMO("perturbed", delta=0.3, mode="overshoot"), seed=s)),
        ("T4 random MC", lambda: check_theorem(
            t4, sep_linf, rpt_rand, 8, lmo=LMO("perturbed", delta=0.5, mode="random"), mc_paths=400, seed=s)),
        ("T4 Newton-Schulz muon", lambda: check_theorem(
            t4, sep_spec, U3, 5, lmo=LMO("newton-schulz", preset="muon", steps=5), delta_prior=0.32, seed=s)),
        ("T4 Newton-Schulz you 3", lambda: check_theorem(
            t4, sep_scaled, ind, 3, lmo=LMO("newton-schulz", preset="you", steps=3), delta_prior=0.32, seed=s)),
        ("T4 noise momentum", lambda: check_theorem(
            t4, noisy, U3, 10, lmo=LMO("perturbed", delta=0.2, mode="overshoot"), beta=0.5, mc_paths=400, seed=s)),
    ]
    return tasks


def _random_shapes(rng, b):
    return [tuple(int(v) for v in rng.integers(1, 5, size=2)) for _ in range(b)]


def _random_distribution(rng, b):
    kind = rng.integers(5)
    if kind == 0:
        return RPT.full(b)
    if kind == 1:
        return RPT.uniform(b)
    if kind == 2:
        return RPT(rng.dirichlet(np.ones(b)))
    if kind == 3:
        return Independent(rng.uniform(0.2, 1.0, size=b))
    lowest = rng.dirichlet(np.ones(b))
    return CompactSubsets(lowest, rng.uniform(0.2, 1.0, size=b))


def random_instance(theorem: str, rng: np.random.Generator) -> tuple[str, Task]:
    """A random problem, distribution, ``K`` and step settings for ``theorem`` (b ≤ 3 layers,
    layers up to 4 × 4, random norms, constants spread over two orders of magnitude)."""
    b = int(rng.integers(1, 4))
    shapes = _random_shapes(rng, b)
    norms = [str(n) for n in rng.choice(["frobenius", "spectral", "scaled-spectral", "linf"], size=b)]
    seed = int(rng.integers(2**31))
    c = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=b))
    dist = _random_distribution(rng, b)
    K = int(rng.integers(1, 7))
    common = {"seed": seed, "max_exact": 3000, "mc_paths": 200}
    t1, t1p, t2, t3, t4 = THEOREMS
    if theorem in (t1, t1p):
        kind = rng.integers(3)
        if kind == 0:
            prob = SeparableQuadratic(c, shapes, norms, seed=seed)
        elif kind == 1:
            prob = CoupledQuadratic(shapes, norms, coupling=float(rng.uniform()), scales=c, seed=seed)
        else:
            dims = [int(v) for v in rng.integers(1, 5, size=b + 2)]
            prob = DeepLinear(dims, R=rng.uniform(0.8, 2.0, size=b + 1), seed=seed)
            dist = _random_distribution(rng, b + 1)
        kw = {}
        if theorem == t1p and rng.uniform() < 0.5:  # a fixed radius scale instead of the tuned one
            kw["eta"] = float(np.exp(rng.uniform(np.log(1e-3), np.log(1.0))))
            if isinstance(prob, DeepLinear):  # keep the provable containment ‖W⁰‖ + Kη/π ≤ R
                kw["eta"] = min(kw["eta"], 0.4 * float(np.min(prob.R)) * float(np.min(dist.inclusion)) / K)
        return f"{theorem} random {prob.name}", lambda: check_theorem(theorem, prob, dist, K, **common, **kw)
    if theorem == t2:
        if rng.uniform() < 0.7:
            nrm = [n if n in ("frobenius", "spectral") else "frobenius" for n in norms]
            prob = L0L1Radial(c, np.exp(rng.uniform(np.log(0.2), np.log(3.0), size=b)), shapes, nrm,
                              x0_scale=float(rng.uniform(0.5, 4.0)), seed=seed)
            kw = {}
        else:
            prob = SeparableQuadratic(c, shapes, norms, seed=seed)
            kw = {"l1": np.exp(rng.uniform(np.log(1e-3), np.log(1.0), size=b))}
        return f"{theorem} random {prob.name}", lambda: check_theorem(theorem, prob, dist, K, **common, **kw)
    if theorem == t3:
        base = SeparableQuadratic(c, shapes, norms, seed=seed)
        noise = rng.uniform(0.0, 1.0, size=b) * (rng.uniform() < 0.8)
        prob = Stochastic(base, noise)
        kw = {}
        if rng.uniform() < 0.5:
            kw["beta"] = float(rng.uniform(0.05, 1.0))
        K3 = int(rng.integers(1, 13))
        return f"{theorem} random {prob.name}", lambda: check_theorem(theorem, prob, dist, K3, **common, **kw)
    if theorem == t4:
        mode = str(rng.choice(["shrink", "overshoot", "random", "newton-schulz"]))
        if mode == "newton-schulz":
            spec = [n if n in ("spectral", "scaled-spectral") else "spectral" for n in norms]
            prob = SeparableQuadratic(c, shapes, spec, seed=seed)
            lmo = LMO("newton-schulz", preset=str(rng.choice(["muon", "you", "polar-express"])),
                      steps=int(rng.integers(3, 8)))
            kw = {"delta_prior": 0.3}
        else:
            lmo = LMO("perturbed", delta=float(rng.uniform(0.0, 0.8)), mode=mode)
            if rng.uniform() < 0.5:
                prob = SeparableQuadratic(c, shapes, norms, seed=seed)
            else:
                prob = CoupledQuadratic(shapes, norms, coupling=float(rng.uniform()), scales=c, seed=seed)
            kw = {}
            if rng.uniform() < 0.3 and isinstance(prob, SeparableQuadratic):
                prob = Stochastic(prob, rng.uniform(0.0, 1.0, size=b))
                kw["beta"] = float(rng.uniform(0.1, 1.0))
        return f"{theorem} random {prob.name}", lambda: check_theorem(theorem, prob, dist, K, lmo=lmo, **common, **kw)
    raise ValueError(f"no random instances for theorem {theorem!r}; choose one of {', '.join(THEOREMS)}")


def _extra_tasks(size: str, seed: int) -> list[tuple[str, Task]]:
    from .coupling import coupling_checks
    from .predictions import prediction_checks

    return [
        ("solver predictions", lambda: prediction_checks(seed=seed, size=size)),
        ("inexact-LMO coupling", lambda: coupling_checks(seed=seed, size=size)),
    ]


def _tasks(name: str, seed: int) -> list[tuple[str, Task]]:
    if name == "quick":
        return tight_instances() + quick_tasks(seed) + _extra_tasks("quick", seed)
    if name == "standard":
        rng = np.random.default_rng([seed, 2])
        randoms = [random_instance(t, rng) for t in THEOREMS for _ in range(STANDARD_INSTANCES)]
        return tight_instances() + quick_tasks(seed) + randoms + _extra_tasks("standard", seed)
    raise ValueError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")


SUITES = {
    "quick": "tight instances, every theorem on every problem type, solver predictions, T4 coupling (≤ 60 s)",
    "standard": f"quick plus {STANDARD_INSTANCES} random instances per theorem and larger prediction/coupling runs",
}


def _encode_checks(results: list[CheckResult]) -> list[dict]:
    return [r.as_dict() for r in results]


def _decode_checks(records: list[dict]) -> list[CheckResult]:
    return [CheckResult.from_dict(d) for d in records]


def suite_tasks(name: str = "quick", seed: int = 0) -> list:
    """The suite as :class:`~dropmuon.verification.execution.Task` objects (key ``NNNN``, in order), each
    returning a list of :class:`CheckResult`."""
    from .execution import Task

    if not isinstance(name, str) or name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    long = {"solver predictions", "inexact-LMO coupling"}  # seconds each, not milliseconds: start them first
    return [Task(f"{k:04d}", fn, priority=int(label in long))
            for k, (label, fn) in enumerate(_tasks(name, int(seed)))]


def run_suite(name: str = "quick", seed: int = 0, *, progress: bool | None = None, jobs: int = 1,
              scheduler: str | None = None, results=None, resume: bool = True) -> list[CheckResult]:
    """Run a suite; returns its :class:`CheckResult` records (``r.as_dict()`` is the JSON record),
    in the same order however it runs.

    ``jobs``/``scheduler``: local processes or a Dask cluster (:func:`dropmuon.verification.execution.run_tasks`);
    ``results``: a folder keeping one file per task, so that a re-run resumes. ``progress=None``
    draws a progress bar on stderr when it is a terminal.
    """
    from .execution import run_tasks

    tasks = suite_tasks(name, seed)
    per_task = run_tasks(tasks, results=results, jobs=jobs, scheduler=scheduler, encode=_encode_checks,
                         decode=_decode_checks, manifest={"suite": name, "seed": int(seed)}, resume=resume,
                         progress=progress, label=f"verify {name}")
    return [r for rs in per_task for r in rs]


def summarise(results: list[CheckResult]) -> dict:
    """Counts, failures and min/median/max tightness (bound and tight checks with a finite ratio;
    Monte Carlo ratios are sample means and may exceed 1 within their interval, so the largest
    exact ratio is reported too), overall and per theorem."""

    def stats(rs):
        ratios = np.array([r.ratio for r in rs if r.kind in ("bound", "tight") and np.isfinite(r.ratio)])
        exact = np.array([r.ratio for r in rs if r.kind in ("bound", "tight") and r.method == "exact"
                          and np.isfinite(r.ratio)])
        return {
            "checks": len(rs),
            "violations": sum(not r.holds for r in rs),
            "ratio_min": float(ratios.min()) if ratios.size else None,
            "ratio_median": float(np.median(ratios)) if ratios.size else None,
            "ratio_max": float(ratios.max()) if ratios.size else None,
            "ratio_max_exact": float(exact.max()) if exact.size else None,
        }

    per = {}
    for r in results:
        per.setdefault(r.theorem, []).append(r)
    return {"all": stats(results), "by_theorem": {k: stats(v) for k, v in sorted(per.items())}}
