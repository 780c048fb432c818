"""Verification suites: the tight instances, a fixed set of checks covering every theorem on every
problem it applies to (``quick``), and ``standard`` — those plus random instances per theorem,
the solver predictions and the inexact-LMO coupling at a larger size.

``run_suite(name, seed)`` returns :class:`~dropmuon.verification.synthetic.checks.CheckResult` records;
``dropmuon verify`` prints them as a table or JSON.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dropmuon.theory import RPT, CompactSubsets, Independent, SubsetDistribution, get_theorem, theorems

from .checks import CheckResult, applicability, check_theorem, check_tight_instance
from .dropmuon import count_paths
from .dropmuon import LMO
from .problems import CoupledQuadratic, DeepLinear, L0L1Radial, SeparableQuadratic, Stochastic

__all__ = [
    "SUITES",
    "run_suite",
    "tight_instances",
    "quick_tasks",
    "random_instance",
    "summarise",
    "suite_tasks",
]



def __getattr__(name):
    if name == "THEOREMS":  # the registered theorems' names, read when asked (users may add theorems)
        return tuple(theorems)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: random instances per theorem in the standard suite
STANDARD_INSTANCES = 200

Task = Callable[[], list]


def _sep(c, shapes, norms="frobenius", seed=0, **kw):
    return SeparableQuadratic(c, shapes, norms, seed=seed, **kw)


def _objects(selected=None) -> list:
    """The theorem objects a suite covers: every registered theorem, or ``selected`` names."""
    if selected is None:
        return list(theorems.values())
    return [get_theorem(t) if isinstance(t, str) else t for t in selected]


def tight_instances(selected=None) -> list[tuple[str, Task]]:
    """Every registered theorem's designed tight instances (``Theorem.tight_instances``, run with
    :func:`~dropmuon.verification.synthetic.checks.check_tight_instance`: observed/bound ≥ 0.99 must hold).
    A theorem without one says why in ``Theorem.tight_note`` (``dropmuon bound --list``)."""
    out = []
    for thm in _objects(selected):
        for j, inst in enumerate(thm.tight_instances):
            out.append((f"tight {thm.label} #{j + 1}", lambda thm=thm, inst=inst: check_tight_instance(thm, inst)))
    return out


def _scenarios(s: int) -> list[dict]:
    """The fixed problem set of the quick suite: problems × distributions × ``K`` (and the
    options that only some theorems take: a fixed radius scale, ``L1`` for a quadratic, an inexact
    LMO, momentum). Deterministic ones are exact: separable problems per layer, coupled ones small
    enough to enumerate the joint sampling tree."""
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
    mc = {"mc_paths": 400}
    shrink, over = LMO("perturbed", delta=0.3, mode="shrink"), LMO("perturbed", delta=0.3, mode="overshoot")
    rand = LMO("perturbed", delta=0.5, mode="random")
    muon, you3 = LMO("newton-schulz", preset="muon", steps=5), LMO("newton-schulz", preset="you", steps=3)
    sc = [
        dict(label="spectral uniform", problem=sep_spec, dist=U3, K=5),
        dict(label="linf independent K=12", problem=sep_linf, dist=ind, K=12),
        dict(label="scaled subsets", problem=sep_scaled, dist=subs, K=4),
        dict(label="spectral random RPT", problem=sep_spec, dist=rpt_rand, K=5),
        dict(label="coupled uniform", problem=coupled, dist=U3, K=5),
        dict(label="coupled compact", problem=coupled_f, dist=comp, K=3),
        dict(label="deep linear", problem=deep, dist=U3, K=5),
        dict(label="cosh frobenius", problem=cosh_f, dist=U3, K=6),
        dict(label="cosh spectral", problem=cosh_s, dist=Independent([0.6, 1.0]), K=4),
        dict(label="quadratic with L1", problem=sep_spec, dist=rpt_rand, K=4, l1=[0.1, 0.2, 0.1]),
        dict(label="spectral noise", problem=noisy, dist=U3, K=10, **mc),
        dict(label="frobenius noise full", problem=noisy_f, dist=RPT.full(2), K=10, **mc),
        dict(label="noise momentum overshoot", problem=noisy, dist=U3, K=10, lmo=over, beta=0.5, **mc),
        dict(label="shrink LMO", problem=sep_spec, dist=U3, K=5, lmo=shrink),
        dict(label="overshoot LMO coupled", problem=coupled, dist=U3, K=5, lmo=over),
        dict(label="random LMO", problem=sep_linf, dist=rpt_rand, K=8, lmo=rand, **mc),
        dict(label="Newton-Schulz muon", problem=sep_spec, dist=U3, K=5, lmo=muon, delta_prior=0.32),
        dict(label="Newton-Schulz you 3", problem=sep_scaled, dist=ind, K=3, lmo=you3, delta_prior=0.32),
        dict(label="spectral full", problem=sep_spec, dist=RPT.full(3), K=5),
        dict(label="coupled full", problem=coupled, dist=RPT.full(3), K=5),
        dict(label="cosh frobenius full", problem=cosh_f, dist=RPT.full(3), K=6),
        dict(label="cosh spectral full", problem=cosh_s, dist=RPT.full(2), K=4),
        dict(label="quadratic with L1 full", problem=sep_spec, dist=RPT.full(3), K=4, l1=[0.1, 0.2, 0.1]),
    ]
    return sc


def _applies(thm, sc: dict) -> bool:
    """Whether a scenario is in the theorem's setting (read from the theorem object), and is
    worth running for it: the L1 override only for theorems taking L1, an inexact LMO only for
    inexact theorems, and only full sampling for a theorem that covers nothing else."""
    from .dropmuon import EXACT_LMO

    if "l1" in sc and "L1" not in thm.per_layer:
        return False
    if thm.full_sampling_only and np.any(np.asarray(sc["dist"].inclusion) < 1):
        return False
    why = applicability(thm, sc["problem"], lmo=sc.get("lmo", EXACT_LMO), beta=sc.get("beta"),
                        pi=sc["dist"].inclusion, l1=sc.get("l1"))
    return why is None


def quick_tasks(seed: int = 0, selected=None) -> list[tuple[str, Task]]:
    """Every registered theorem on every scenario of the fixed problem set it applies to (decided
    from the theorem object by :func:`~dropmuon.verification.synthetic.checks.applicability`)."""
    s = int(seed)
    tasks = []
    for thm in _objects(selected):
        for sc in _scenarios(s):
            if not _applies(thm, sc):
                continue
            kw = {k: v for k, v in sc.items() if k not in ("label", "problem", "dist", "K")}
            if "beta" in kw and "beta" not in thm.parameters:
                kw.pop("beta")
            tasks.append((f"{thm.label} {sc['label']}",
                          lambda thm=thm, sc=sc, kw=kw: check_theorem(thm, sc["problem"], sc["dist"], sc["K"],
                                                                      seed=s, **kw)))
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


def _enumerable_K(dist, K: int, max_exact: int) -> int:
    """The largest ``K' ≤ K`` whose joint sampling tree has at most ``max_exact`` paths (≥ 1), so
    that a deterministic coupled problem is checked exactly, never by Monte Carlo."""
    while K > 1 and count_paths(dist, K) > max_exact:
        K -= 1
    return K


def random_instance(theorem, rng: np.random.Generator) -> tuple[str, Task]:
    """A random problem, distribution, ``K`` and step settings for ``theorem`` (b ≤ 3 layers,
    layers up to 4 × 4, random norms, constants spread over two orders of magnitude), chosen from
    what the theorem object says it covers: its constants (``L`` or ``L0, L1``), exact or
    stochastic gradients, exact or inexact LMO, its step parameters, full updates only. A
    deterministic instance is always exact (per layer, or a joint tree small enough to
    enumerate)."""
    thm = get_theorem(theorem) if isinstance(theorem, str) else theorem
    b = int(rng.integers(1, 4))
    shapes = _random_shapes(rng, b)
    norms = [str(n) for n in rng.choice(["frobenius", "spectral", "scaled-spectral", "linf"], size=b)]
    seed = int(rng.integers(2**31))
    c = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=b))
    dist = _random_distribution(rng, b)
    K = int(rng.integers(1, 7))
    max_exact = 3000
    common = {"seed": seed, "max_exact": max_exact, "mc_paths": 200}
    kw: dict = {}
    lmo = None
    if not thm.exact_lmo:
        mode = str(rng.choice(["shrink", "overshoot", "random", "newton-schulz"]))
        if mode == "newton-schulz":
            norms = [n if n in ("spectral", "scaled-spectral") else "spectral" for n in norms]
            lmo = LMO("newton-schulz", preset=str(rng.choice(["muon", "you", "polar-express"])),
                      steps=int(rng.integers(3, 8)))
            kw["delta_prior"] = 0.3
        else:
            lmo = LMO("perturbed", delta=float(rng.uniform(0.0, 0.8)), mode=mode)
    takes_l0l1 = "L0" in thm.per_layer and "L1" in thm.per_layer
    if takes_l0l1:
        if rng.uniform() < 0.7:
            nrm = [n if n in ("frobenius", "spectral") else "frobenius" for n in norms]
            prob = L0L1Radial(c, np.exp(rng.uniform(np.log(0.2), np.log(3.0), size=b)), shapes, nrm,
                              x0_scale=float(rng.uniform(0.5, 4.0)), seed=seed)
        else:
            prob = SeparableQuadratic(c, shapes, norms, seed=seed)
            kw["l1"] = np.exp(rng.uniform(np.log(1e-3), np.log(1.0), size=b))
    else:
        kind = rng.integers(3)
        dist_b = dist
        if thm.needs_lipschitz(stochastic=False, momentum=False):
            kind = 0  # the proof needs A1 in Lipschitz form: separable problems only
        if kind == 1 and not (lmo is not None and lmo.kind == "newton-schulz"):
            prob = CoupledQuadratic(shapes, norms, coupling=float(rng.uniform()), scales=c, seed=seed)
        elif kind == 2 and thm.exact_lmo:
            dims = [int(v) for v in rng.integers(1, 5, size=b + 2)]
            prob = DeepLinear(dims, R=rng.uniform(0.8, 2.0, size=b + 1), seed=seed)
            dist = _random_distribution(rng, b + 1)
        else:
            prob = SeparableQuadratic(c, shapes, norms, seed=seed)
    stochastic_ok = not thm.exact_gradients and isinstance(prob, SeparableQuadratic) and "l1" not in kw
    if stochastic_ok and rng.uniform() < 0.8:
        prob = Stochastic(prob, rng.uniform(0.0, 1.0, size=prob.nlayers))
        K = int(rng.integers(1, 13))
    if "beta" in thm.parameters and rng.uniform() < 0.5 and prob.constants.lipschitz:
        kw["beta"] = float(rng.uniform(0.05, 1.0))
    if thm.step_kind == "constant-radius" and "beta" not in kw and rng.uniform() < 0.5:
        kw["eta"] = float(np.exp(rng.uniform(np.log(1e-3), np.log(1.0))))  # a fixed radius scale
    if thm.full_sampling_only:
        dist = RPT.full(prob.nlayers)
    if isinstance(prob, DeepLinear) and "eta" in kw:  # keep the provable containment ‖W⁰‖ + Kη/π ≤ R
        kw["eta"] = min(kw["eta"], 0.4 * float(np.min(prob.R)) * float(np.min(dist.inclusion)) / K)
    why = applicability(thm, prob, lmo=lmo if lmo is not None else LMO("exact"), beta=kw.get("beta"),
                        pi=dist.inclusion, l1=kw.get("l1"))
    if why is not None and "beta" in kw:  # momentum needs A1 in Lipschitz form: drop it
        kw.pop("beta")
        why = applicability(thm, prob, lmo=lmo if lmo is not None else LMO("exact"), pi=dist.inclusion,
                            l1=kw.get("l1"))
    if why is not None and not takes_l0l1:  # fall back to the separable quadratic, which every
        prob = SeparableQuadratic(c, shapes, norms, seed=seed)  # smooth theorem covers
        dist = RPT.full(b) if thm.full_sampling_only else dist_b
        kw.pop("eta", None)
    deterministic = not isinstance(prob, Stochastic) and not (lmo is not None and lmo.mode == "random")
    if deterministic and not getattr(prob, "separable", False):
        K = _enumerable_K(dist, K, max_exact)
    if lmo is not None:
        kw["lmo"] = lmo
    return (f"{thm.name} random {prob.name}",
            lambda: check_theorem(thm, prob, dist, K, **common, **kw))


def noise_dominated_tasks(seed: int = 0) -> list[tuple[str, Task]]:
    """T3 on instances where the noise and momentum terms dominate its bound (heavy Gaussian noise,
    partial sampling, small β, gradient-aligned and sparse-spike noise:
    :func:`dropmuon.verification.synthetic.instances.t3_noise_dominated_instances`), by Monte Carlo."""
    from .instances import t3_noise_dominated_instances

    return [(f"T3 noise-dominated {inst.name}", lambda inst=inst: inst.check())
            for inst in t3_noise_dominated_instances(seed=int(seed))]


def _extra_tasks(size: str, seed: int) -> list[tuple[str, Task]]:
    from .coupling import coupling_checks
    from .predictions import prediction_checks

    return noise_dominated_tasks(seed) + [
        ("solver predictions", lambda: prediction_checks(seed=seed, size=size)),
        ("inexact-LMO coupling", lambda: coupling_checks(seed=seed, size=size)),
    ]


def _tasks(name: str, seed: int) -> list[tuple[str, Task]]:
    if name == "quick":
        return tight_instances() + quick_tasks(seed) + _extra_tasks("quick", seed)
    if name == "standard":
        rng = np.random.default_rng([seed, 2])
        randoms = [random_instance(t, rng) for t in theorems.values() for _ in range(STANDARD_INSTANCES)]
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


def _names(selected) -> list[str]:
    return [t if isinstance(t, str) else t.name for t in selected]


def suite_tasks(name: str = "quick", seed: int = 0, theorems=None) -> list:
    """The suite as :class:`~dropmuon.verification.runs.execution.Task` objects (key ``NNNN``, in order), each
    returning a list of :class:`CheckResult`."""
    from ..runs.execution import Task

    if not isinstance(name, str) or name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    long = {"solver predictions", "inexact-LMO coupling"}  # seconds each, not milliseconds: start them first
    if theorems is not None:
        selected = _objects(theorems)
        chosen = tight_instances(selected) + quick_tasks(int(seed), selected)
        return [Task(f"{k:04d}", fn) for k, (label, fn) in enumerate(chosen)]
    return [Task(f"{k:04d}", fn, priority=int(label in long))
            for k, (label, fn) in enumerate(_tasks(name, int(seed)))]


def run_suite(name: str = "quick", seed: int = 0, *, progress: bool | None = None, jobs: int = 1,
              scheduler: str | None = None, results=None, resume: bool = True,
              theorems=None) -> list[CheckResult]:
    """Run a suite; returns its :class:`CheckResult` records (``r.as_dict()`` is the JSON record),
    in the same order however it runs.

    ``jobs``/``scheduler``: local processes or a Dask cluster (:func:`dropmuon.verification.runs.execution.run_tasks`);
    ``results``: a folder keeping one file per task, so that a re-run resumes. ``progress=None``
    draws a progress bar on stderr when it is a terminal. ``theorems``: names (or objects) of
    registered theorems to check alone — their tight instances and the fixed problem set, without
    the solver predictions and the coupling experiments.
    """
    from ..runs.execution import run_tasks

    tasks = suite_tasks(name, seed, theorems)
    per_task = run_tasks(tasks, results=results, jobs=jobs, scheduler=scheduler, encode=_encode_checks,
                         decode=_decode_checks,
                         manifest={"suite": name, "seed": int(seed),
                                   **({} if theorems is None else {"theorems": sorted(_names(theorems))})},
                         resume=resume,
                         progress=progress, label=f"verify {name}")
    return [r for rs in per_task for r in rs]


def summarise(results: list[CheckResult]) -> dict:
    """Counts per status (``holds``: real passes; ``violations``; ``within_tolerance`` and
    ``inconclusive``: Monte Carlo checks not shown to hold, counted apart), and min/median/max tightness (bound and tight checks with a finite ratio;
    Monte Carlo ratios are sample means and may exceed 1 within their interval, so the largest
    exact ratio is reported too), overall and per theorem."""

    def stats(rs):
        ratios = np.array([r.ratio for r in rs if r.kind in ("bound", "tight") and np.isfinite(r.ratio)])
        exact = np.array([r.ratio for r in rs if r.kind in ("bound", "tight") and r.method in ("exact", "separable")
                          and np.isfinite(r.ratio)])
        return {
            "checks": len(rs),
            "holds": sum(r.status == "holds" for r in rs),
            "violations": sum(r.status == "violated" for r in rs),
            "within_tolerance": sum(r.status == "within-tolerance" for r in rs),
            "inconclusive": sum(r.status == "inconclusive" for r in rs),
            "exact": sum(r.method in ("exact", "separable", "closed-form") for r in rs),
            "mc": sum(r.method == "mc" for r in rs),
            "ratio_min": float(ratios.min()) if ratios.size else None,
            "ratio_median": float(np.median(ratios)) if ratios.size else None,
            "ratio_max": float(ratios.max()) if ratios.size else None,
            "ratio_max_exact": float(exact.max()) if exact.size else None,
        }

    per = {}
    for r in results:
        per.setdefault(r.theorem, []).append(r)
    return {"all": stats(results), "by_theorem": {k: stats(v) for k, v in sorted(per.items())}}
