"""Pre-registered predictions (``dropmuon predict``): before any training, what every registered
theorem predicts for each layer-sampling schedule of a run — whether it covers the run, the
iteration ratio against full updates, the cost model's per-step speed-up, their quotient (the
predicted speed-up) and the predicted ranking — from a ``dropmuon estimate --json`` file.
Torch-free (numpy, sympy and the solvers); ``docs/torch.md``, "Predict, then measure".

**What is predicted.** For a schedule with inclusion probabilities ``π`` and a theorem whose
iteration count is ``K(π, ε)`` (its statement that compares distributions: its solver objective's,
else its rate statement), at the theorem's own tuned step parameters:

* ``iterations_ratio = K(π, ε) / K(full, ε)`` (real ``K``, before rounding up:
  :meth:`~dropmuon.theory.Theorem.iterations_continuous`). T1: ``max_i(L_i/π_i) / max_i L_i``;
  T1′: ``Σ L_i/π_i / Σ L_i``; T2: its ``unweighted`` count ``2Δ0 W/ε + 2Δ0 A′/ε²``; T3 and T4 by
  bisection on their tuned bound.
* ``iterations_ratio_limit``: the same ratio as ``ε → 0``, from the leading term of ``K(ε)``
  (:meth:`~dropmuon.theory.Theorem.iterations_leading`). For T3/T4 with noise it is
  ``S₁(π)/S₁(full)``, ``S₁ = Σ_i (1+δ_i) L_i/π_i``, since ``K(ε) ≈ 256 Δ0 S₁ R²/(ε(1 − max δ))⁴``
  with ``R = Σ_i ρ_iσ_i`` free of ``π`` (``docs/theory.md``, section T3, "Iterations as ε → 0").
* ``step_speedup = E cost(full) / E cost(π)`` from the file's cost model
  (:meth:`~dropmuon.theory.CostModel.expected_cost`; for the epoch-shift schedule averaged over
  its cycle, whose epochs are equally long).
* ``predicted_speedup = step_speedup / iterations_ratio`` (and ``…_limit``): the predicted
  wall-clock speed-up over full updates; schedules are ranked by it (1 = fastest).
* ``at_run_parameters``: for a theorem with step parameters, the bound at the run's own ``η``
  (its ``lr``) and ``β`` (``1 − momentum``) instead of the tuned ones. Such a bound has a floor
  (:meth:`~dropmuon.theory.Theorem.floor`, its limit as ``K → ∞``): ``K = ∞`` (``null``) when the
  target lies below it.

A theorem that does not cover the run (:meth:`~dropmuon.theory.Theorem.covers`, decided per
schedule) still predicts, labelled so; the epoch-shift schedule is not i.i.d., so no theorem gives
its ``K`` (ratio ``null``, with the reason). A constant a theorem needs that the file lacks is
named in its ``missing`` list and its numbers are ``null``; the other theorems still predict. A
ratio whose value does not depend on ``Δ0`` (``K``, or its leading term, proportional to ``Δ0`` —
every ratio of T1, T1′ and T2 and every ``ε → 0`` limit here) is given without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dropmuon.theory._validation import check_scalar

from .measured import _number, _records, cost_dict, load_constants

__all__ = ["predict", "PlannedRun", "PREDICT_SCHEDULES", "KNOWN_SCHEDULES", "L_SOURCES", "RADIUS_RULES", "EPS_FRACTION",
           "DEFAULT_MOMENTUM", "TIE_RTOL"]

#: the schedules :func:`predict` knows (those of the closed loop, built by
#: :func:`dropmuon.verification.forecasting.schedules.make_schedule` as training builds them)
PREDICT_SCHEDULES = ("full", "uniform", "optimal-max", "optimal-sum", "epoch-shift")
#: every schedule :func:`predict` knows: the default ones and ``phase-optimal``, which needs a
#: calibration with per-phase constants (an experiment's)
KNOWN_SCHEDULES = PREDICT_SCHEDULES + ("phase-optimal",)

#: the record fields the theorems' ``L`` may come from: ``L`` (the trajectory estimate, what
#: training builds its optimal schedules from) or ``L_probe`` (the direction-maximising probe)
L_SOURCES = ("L", "L_probe")

#: ``--radius-rule``: Muon's one learning rate for every sampled layer, or the theorems'
#: constant-radius rule ``η/π_i`` (``inverse-inclusion`` is the torch optimizer's name for it)
RADIUS_RULES = {"common": "common-lr", "theory": "constant-radius", "inverse-inclusion": "constant-radius"}

#: the default accuracy target is this fraction of the initial gradient's total dual norm
#: ``Σ_i gnorms_i[0]`` (each layer's nuclear norm of its first minibatch gradient in the file): a
#: target fixed by the file alone, before any training
EPS_FRACTION = 0.1

#: PyTorch momentum ``μ`` when neither the run nor the file says (DropMuon's and Muon's default)
DEFAULT_MOMENTUM = 0.95

# Predicted speed-ups within this relative distance share a rank: two schedules with the same
# inclusion probabilities (the max-form optimum is full updates when L_1 = max_j L_j) give values
# equal up to a few ulps, while genuine differences between the schedules here are far above 1e-9.
TIE_RTOL = 1e-9

# Constants whose value follows from the run itself, whatever the file says: A3's noise is 0 with
# exact (full-batch) gradients, and the LMO's inexactness delta is 0 with the exact polar factor.
_ZERO_WHEN = {"sigma": ("full_batch", "0: full batch, exact gradients"),
              "delta": ("exact_lmo", "0: exact LMO (polar factor)")}


@dataclass(frozen=True)
class PlannedRun:
    """The settings of the run to predict that a constants file does not decide.

    ``batch``: a minibatch size, ``"full"`` (exact gradients) or ``None`` (the records' ``batch``);
    ``momentum``: PyTorch's ``μ`` (``β = 1 − μ``; ``None``: the records' ``momentum``, else
    :data:`DEFAULT_MOMENTUM`); ``nesterov``: recorded only (the theorems' momentum is the plain
    average); ``exact_lmo``: the exact polar factor instead of Newton–Schulz; ``radius_rule``:
    ``common`` (one learning rate for every layer, Muon's) or ``theory`` (radii ``η/π_i``);
    ``lr``: the learning rate, read as the theorems' ``η`` (``None``: the records' ``lr``).

    >>> PlannedRun(batch="full", momentum=0).radius_rule
    'common'
    """

    batch: int | str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    exact_lmo: bool = False
    radius_rule: str = "common"
    lr: float | None = None

    def __post_init__(self):
        b = self.batch
        if b is not None and b != "full" and (isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1):
            raise ValueError(f"batch must be a positive integer or 'full'; got batch = {b!r}")
        if self.momentum is not None:
            mu = check_scalar("momentum", self.momentum, "real")
            if not 0 <= mu < 1:
                raise ValueError(f"momentum (PyTorch's mu) must be in [0, 1); got momentum = {self.momentum!r}")
        if self.radius_rule not in RADIUS_RULES:
            raise ValueError(f"unknown radius rule {self.radius_rule!r}; choose one of: {', '.join(RADIUS_RULES)}")
        if self.lr is not None:
            check_scalar("lr", self.lr, "positive")
        for name in ("exact_lmo",) + (("nesterov",) if self.nesterov is not None else ()):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {name} = {getattr(self, name)!r}")


def _run_field(recs, key: str, name: str):
    """A run-level value the records repeat (``batch``, ``lr``, ``Delta0``…): ``None`` when no record
    has it; ``ValueError`` when two records disagree."""
    seen = [(r["layer"], r[key]) for r in recs if r.get(key) is not None]
    if not seen:
        return None
    if any(v != seen[0][1] for _, v in seen[1:]):
        j, v = next((j, v) for j, v in seen if v != seen[0][1])
        raise ValueError(f"{name}: the records disagree on {key!r} (layer {seen[0][0]}: {seen[0][1]!r}, "
                         f"layer {j}: {v!r}); it is one value for the whole run")
    return seen[0][1]


def _layer_field(recs, key: str, name: str):
    """``(array, None)`` of a per-layer field, or ``(None, why)`` when some layers lack it."""
    lacking = [r["layer"] for r in recs if r.get(key) is None]
    if lacking:
        where = "every layer" if len(lacking) == len(recs) else "layers " + ", ".join(map(str, lacking))
        return None, f"{key!r} absent in {where}"
    return np.array([_number(r[key], f"{name}: layer {r['layer']}, field {key!r}") for r in recs]), None


def _ranks(rows: dict, key: str) -> list[str]:
    """Schedules with a value of ``key``, best (largest) first; sets ``rank_…`` in the rows (ties
    within :data:`TIE_RTOL` share the better rank)."""
    have = sorted(((v[key], n) for n, v in rows.items() if v.get(key) is not None), key=lambda t: -t[0])
    rank_key = "rank" if key == "predicted_speedup" else "rank_limit"
    prev, prev_rank = None, 0
    for pos, (val, n) in enumerate(have, start=1):
        r = prev_rank if prev is not None and abs(val - prev) <= TIE_RTOL * max(abs(val), abs(prev)) else pos
        rows[n][rank_key] = r
        prev, prev_rank = val, r
    return [n for _, n in have]


def _schedule_table(names, b: int, L_sched, model, phases=None) -> dict:
    from .schedules import make_schedule

    out = {}
    for name in names:
        sampler, info = make_schedule(name, b, L=L_sched, costs=model, epoch_length=1, phases=phases)
        rec = {"iid": hasattr(sampler, "distribution"), "start_probs": info["start_probs"]}
        if rec["iid"]:
            d = sampler.distribution
            rec["inclusion"] = np.asarray(d.inclusion, dtype=float)
            rec["seconds_per_step"] = model.expected_cost(d)
        elif "start_probs_per_phase" in info:  # phase-optimal: averaged over the measured phases
            w = sampler.weights
            rec["start_probs_per_phase"] = info["start_probs_per_phase"]
            rec["phase_starts"] = info["phase_starts"]
            rec["predicted_speedup_per_phase"] = info["predicted_speedup_per_phase"]
            rec["inclusion"] = np.asarray(sampler.inclusion, dtype=float)
            rec["seconds_per_step"] = float(np.average([model.expected_cost(d) for d in sampler.distributions],
                                                       weights=w))
        else:
            rec["start_probs_per_epoch"] = info["start_probs_per_epoch"]
            rec["inclusion"] = np.mean([d.inclusion for d in sampler.distributions], axis=0)  # cycle average
            rec["seconds_per_step"] = float(np.mean([model.expected_cost(d) for d in sampler.distributions]))
        if "solver_status" in info:
            rec["solver"] = {"status": info["solver_status"],
                             "predicted_speedup_vs_full": info["predicted_speedup_vs_full"]}
        out[name] = rec
    return out


class _Values:
    """The constants of one prediction: per-layer arrays by theorem name, and why any is absent."""

    def __init__(self):
        self.arrays: dict = {}
        self.why: dict = {}
        self.source: dict = {}


def _read_constants(recs, name, needed, *, L_source, full_batch, exact_lmo, batch, rec_batch) -> _Values:
    vals = _Values()
    flags = {"full_batch": full_batch, "exact_lmo": exact_lmo}
    for n in needed:
        if n in _ZERO_WHEN and flags[_ZERO_WHEN[n][0]]:
            vals.arrays[n] = np.zeros(len(recs))
            vals.source[n] = _ZERO_WHEN[n][1]
            continue
        field = L_source if n == "L" else n
        arr, why = _layer_field(recs, field, name)
        if arr is None:
            vals.why[n] = why
            continue
        vals.arrays[n] = arr
        vals.source[n] = f"the records' {field!r}"
        if n == "sigma" and isinstance(batch, int) and isinstance(rec_batch, int) and batch != rec_batch:
            # the noise of a mean of B i.i.d. per-example gradients scales as 1/sqrt(B)
            vals.arrays[n] = arr * math.sqrt(rec_batch / batch)
            vals.source[n] += f", measured at batch {rec_batch}, times sqrt({rec_batch}/{batch}) for batch {batch}"
    return vals


def _default_epsilon(recs):
    """``(ε, rule)``: :data:`EPS_FRACTION` of ``Σ_i gnorms_i[0]``, or ``(None, why)``."""
    firsts = []
    for r in recs:
        g = r.get("gnorms")
        if not isinstance(g, list) or not g:
            return None, (f"no epsilon: layer {r['layer']} has no 'gnorms' to fix the default target; "
                          "give epsilon (--eps)")
        firsts.append(_number(g[0], f"layer {r['layer']}, field 'gnorms[0]'"))
    g0 = float(np.sum(firsts))
    if not (math.isfinite(g0) and g0 > 0):
        return None, f"no epsilon: the initial gradient norms sum to {g0}; give epsilon (--eps)"
    return EPS_FRACTION * g0, (f"{EPS_FRACTION:g} x sum_i gnorms_i[0] = {EPS_FRACTION:g} x {g0:.6g}: a fraction of "
                               "the initial gradient's total dual (nuclear) norm, from the file alone")


def predict(constants, schedules=PREDICT_SCHEDULES, *, run=None, epsilon=None, L_source: str = "L",
            theorems=None) -> dict:
    """Pre-registered predictions for a training run: per registered theorem and per schedule,
    whether the theorem covers the run, the iteration ratio against full updates, the per-step
    speed-up, the predicted speed-up and its rank (module docstring for the definitions).

    ``constants``: a ``dropmuon estimate --json`` file, its list of per-layer records, or a
    calibration dict; ``schedules``: names from :data:`KNOWN_SCHEDULES` (default
    :data:`PREDICT_SCHEDULES`; full updates are the
    baseline whether listed or not; ``phase-optimal`` needs a calibration with the per-phase
    constants of :func:`~dropmuon.verification.torchside.calibration.measure_phases`, and its row
    carries each phase's start and predicted speed-up); ``run``: a :class:`PlannedRun` or a dict of its fields;
    ``epsilon``: the accuracy target (``None``: :data:`EPS_FRACTION` of the initial total gradient
    norm in the file); ``L_source``: the record field the theorems' ``L`` comes from
    (:data:`L_SOURCES`; the optimal schedules are built from ``L`` whatever it is, as training
    builds them); ``theorems``: names (default every registered theorem, in catalogue order).

    Returns a JSON-ready dict: ``epsilon``, ``epsilon_rule``, ``run``, ``inputs``, ``schedules``
    (per schedule: ``iid``, ``start_probs``, ``inclusion``, ``seconds_per_step``,
    ``step_speedup``), ``theorems`` (per theorem: ``theorem``, ``label``, ``title``,
    ``statement``, ``target``, ``missing``, ``constants``, ``schedules`` with one row per schedule —
    ``applies``, ``reasons``, ``coverage``, ``iterations_ratio``, ``iterations_ratio_limit``,
    ``step_speedup``, ``predicted_speedup``, ``predicted_speedup_limit``, ``rank``, ``rank_limit``,
    ``K``, ``why_null``, ``at_run_parameters`` — and ``ranking``, ``winner``, ``ranking_limit``,
    ``winner_limit``) and ``winners`` (theorem name → winner). Bad input raises ``ValueError``.

    >>> recs = [{"layer": 1, "L": 1.0, "gnorms": [3.0],
    ...          "costs": {"forward_s": 1.0, "activation_s": 0.0, "weight_s": 1.0, "update_s": 0.0}},
    ...         {"layer": 2, "L": 4.0, "gnorms": [1.0],
    ...          "costs": {"activation_s": 0.0, "weight_s": 1.0, "update_s": 0.0}}]
    >>> p = predict(recs, ["full", "uniform"], run={"batch": "full", "momentum": 0, "exact_lmo": True})
    >>> p["epsilon"]
    0.4
    >>> t1 = next(t for t in p["theorems"] if t["label"] == "T1")
    >>> row = t1["schedules"]["uniform"]
    >>> row["iterations_ratio"], row["step_speedup"], row["predicted_speedup"], t1["winner"]
    (1.0, 1.2, 1.2, 'uniform')
    >>> row["applies"], row["reasons"][0]
    (False, 'steps with sharp steps 1/L_i; the run uses one learning rate for every layer')
    >>> t3 = next(t for t in p["theorems"] if t["label"] == "T3")
    >>> [m.split(":")[0] for m in t3["missing"]]
    ['rho', 'Delta0']
    """
    from dropmuon.theory import RunSettings, get_theorem
    from dropmuon.theory import theorems as registry

    if L_source not in L_SOURCES:
        raise ValueError(f"unknown L source {L_source!r}; choose one of: {', '.join(L_SOURCES)}")
    if isinstance(schedules, str):
        schedules = [schedules]
    names = list(dict.fromkeys(schedules))
    if not names:
        raise ValueError(f"no schedule to predict; choose from: {', '.join(KNOWN_SCHEDULES)}")
    for n in names:
        if n not in KNOWN_SCHEDULES:
            raise ValueError(f"unknown schedule {n!r}; choose from: {', '.join(KNOWN_SCHEDULES)}")
    if run is None:
        run = PlannedRun()
    elif isinstance(run, dict):
        run = PlannedRun(**run)
    elif not isinstance(run, PlannedRun):
        raise ValueError(f"run must be a PlannedRun or a dict of its fields; got {run!r}")
    thms = list(registry.values()) if theorems is None else [get_theorem(t) for t in theorems]

    L_sched, model = load_constants(constants)  # validates the records (layers, L, costs)
    recs, name = _records(constants)
    recs = sorted(recs, key=lambda r: r["layer"])
    b = len(recs)

    # -- the run ---------------------------------------------------------------------------------
    notes = []
    rec_batch = _run_field(recs, "batch", name)
    batch, batch_src = (run.batch, "given") if run.batch is not None else (rec_batch, "the records' 'batch'")
    if batch is None:
        batch_src = "unknown (neither given nor in the file): a minibatch run"
    full_batch = batch == "full"
    rec_mu = _run_field(recs, "momentum", name)
    if run.momentum is not None:
        mu, mu_src = float(run.momentum), "given"
    elif rec_mu is not None:
        mu, mu_src = float(_number(rec_mu, f"{name}: field 'momentum'")), "the records' 'momentum'"
    else:
        mu, mu_src = DEFAULT_MOMENTUM, "the default of DropMuon (not in the file)"
    beta = 1.0 - mu
    rec_nest = _run_field(recs, "nesterov", name)
    nesterov = run.nesterov if run.nesterov is not None else (bool(rec_nest) if rec_nest is not None else mu > 0)
    if nesterov and mu > 0:
        notes.append("the run uses Nesterov momentum; the theorems' momentum is the plain average "
                     "M <- (1-beta) M + beta G, and their coverage does not look at the look-ahead")
    rec_lr = _run_field(recs, "lr", name)
    lr, lr_src = ((float(run.lr), "given") if run.lr is not None else
                  (float(_number(rec_lr, f"{name}: field 'lr'")), "the records' 'lr'") if rec_lr is not None else
                  (None, "unknown"))
    try:  # values read from the file pass the same checks as given ones
        PlannedRun(batch=batch, momentum=mu, lr=lr)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    step = RADIUS_RULES[run.radius_rule]
    run_out = {"batch": batch, "batch_source": batch_src, "full_batch": full_batch, "momentum": mu,
               "momentum_source": mu_src, "beta": beta, "nesterov": bool(nesterov), "exact_lmo": bool(run.exact_lmo),
               "radius_rule": run.radius_rule, "step": step, "lr": lr, "lr_source": lr_src, "notes": notes}

    # -- constants and epsilon -------------------------------------------------------------------
    needed = list(dict.fromkeys(n for t in thms for n in t.per_layer if n != "pi"))
    vals = _read_constants(recs, name, needed, L_source=L_source, full_batch=full_batch,
                           exact_lmo=bool(run.exact_lmo), batch=batch, rec_batch=rec_batch)
    D0 = _run_field(recs, "Delta0", name)
    if D0 is not None:
        D0 = check_scalar("Delta0", _number(D0, f"{name}: field 'Delta0'"), "positive")
    if epsilon is not None:
        eps, eps_rule = check_scalar("epsilon", epsilon, "positive"), "given"
    else:
        eps, eps_rule = _default_epsilon(recs)

    # -- schedules -------------------------------------------------------------------------------
    phases = constants.get("phases") if isinstance(constants, dict) else None  # a calibration's (phase-optimal)
    if "phase-optimal" in names and phases is None:
        raise ValueError(f"{name}: phase-optimal needs per-phase constants, which a constants file does not hold; "
                         f"predict it from an experiment's calibration (dropmuon experiment measures them)")
    table = _schedule_table(list(dict.fromkeys(["full"] + names)), b, L_sched, model, phases)
    base_cost = table["full"]["seconds_per_step"]
    for rec in table.values():
        rec["step_speedup"] = base_cost / rec["seconds_per_step"]
        rec["full_sampling"] = bool(rec["iid"] and np.all(rec["inclusion"] == 1))

    settings = {n: RunSettings(full_batch=full_batch, momentum=beta, exact_lmo=bool(run.exact_lmo), step=step,
                               full_sampling=table[n]["full_sampling"], iid=table[n]["iid"]) for n in table}
    out_thms = [_predict_theorem(t, names, table, settings, vals, D0, eps, lr, beta) for t in thms]

    inputs = {"constants": str(constants) if isinstance(constants, (str, Path)) else "records given in Python",
              "layers": b, "L_source": L_source,
              "L_schedules": "the records' 'L' (verification.forecasting.measured.load_constants), as training builds the "
                             "optimal schedules",
              "costs": cost_dict(model), "Delta0": D0,
              "Delta0_estimate": _run_field(recs, "Delta0_estimate", name),
              "constants_used": {n: vals.arrays[n] for n in vals.arrays},
              "constants_source": dict(vals.source), "constants_absent": dict(vals.why),
              "gnorms0": [r["gnorms"][0] if isinstance(r.get("gnorms"), list) and r["gnorms"] else None
                          for r in recs]}
    for key in ("ns_dtype", "ns_steps", "sigma_ci", "sigma_dual"):
        if any(r.get(key) is not None for r in recs):
            inputs[key] = [r.get(key) for r in recs]
    return _jsonable({
        "epsilon": eps, "epsilon_rule": eps_rule, "run": run_out, "inputs": inputs,
        "schedules": {n: table[n] for n in names},
        "theorems": out_thms,
        "winners": {t["theorem"]: {"label": t["label"], "winner": t["winner"], "winner_limit": t["winner_limit"],
                                   "covers_winner": (t["schedules"][t["winner"]]["applies"]
                                                     if t["winner"] is not None else None)}
                    for t in out_thms},
    })


def _predict_theorem(thm, names, table, settings, vals: _Values, D0, eps, lr, beta) -> dict:
    """One theorem's entry of :func:`predict`."""
    st_name = thm.solver_objective[1] if thm.solver_objective else thm.rate
    st = thm.statement(st_name)
    own = [n for n in thm.per_layer if n != "pi"]
    missing = [f"{n}: {vals.why[n]}" for n in own if n in vals.why]
    if D0 is None:
        missing.append("Delta0: absent in every record (the numbers that depend on it are null)")
    takes_pi = "pi" in thm.per_layer
    base = {n: vals.arrays[n] for n in own if n in vals.arrays}
    scale = 1.0 if D0 is None else D0  # Delta0-free results only when D0 is None (checked below)

    def consts(pi, **extra):
        return dict(base, **({"pi": pi} if takes_pi else {}), Delta0=scale, **extra)

    cache: dict = {}

    def leading(sched):
        if ("lead", sched) not in cache:
            cache[("lead", sched)] = thm.iterations_leading(st_name, **consts(table[sched]["inclusion"]))
        return cache[("lead", sched)]

    def floor(sched, **params):
        return thm.floor(st_name, **consts(table[sched]["inclusion"], **params))

    def K(sched, **params):
        key = ("K", sched, tuple(sorted(params.items())))
        if key not in cache:
            pi = table[sched]["inclusion"]
            if params and floor(sched, **params) >= thm.target(eps, st_name):
                cache[key] = math.inf
            else:
                cache[key] = thm.iterations_continuous(eps, st_name, **consts(pi, **params))
        return cache[key]

    rows = {}
    for sched in names:
        cov = thm.covers(settings[sched])
        row = {"applies": cov.applies, "reasons": list(cov.reasons), "coverage": str(cov),
               "step_speedup": table[sched]["step_speedup"], "iterations_ratio": None,
               "iterations_ratio_limit": None, "predicted_speedup": None, "predicted_speedup_limit": None,
               "rank": None, "rank_limit": None, "K": None, "why_null": [], "at_run_parameters": None}
        rows[sched] = row
        why = row["why_null"]
        if not table[sched]["iid"]:
            why.append("the schedule is not i.i.d. (it changes over epochs or phases): no theorem here gives its "
                       "K for the whole run")
            continue
        if not takes_pi and not table[sched]["full_sampling"]:
            why.append("the theorem has no inclusion probabilities pi: it says nothing about partial updates")
            continue
        if any(n in vals.why for n in own):
            why.append("missing constants: " + ", ".join(n for n in own if n in vals.why))
            continue
        try:
            lp, lf = leading(sched), leading("full")
            if lp is None or lf is None:
                why.append("limit: the theorem gives no leading term of K(eps) for these inputs")
            elif lp.power != lf.power:
                why.append(f"limit: K grows as eps^-{lp.power} here but eps^-{lf.power} for full updates")
            elif D0 is None and not lp.ratio_free_of_Delta0:
                why.append("limit: needs Delta0 (the leading term of K is not proportional to it)")
            else:
                row["iterations_ratio_limit"] = lp.coefficient / lf.coefficient
            if eps is None:
                why.append("no epsilon: the ratio at eps is not computed")
            elif D0 is None and not (lp is not None and lf is not None and lp.closed_form_proportional_to_Delta0
                                     and lf.closed_form_proportional_to_Delta0):
                why.append("at eps: needs Delta0 (K(eps) is not proportional to it)")
            else:
                row["iterations_ratio"] = K(sched) / K("full")
                if D0 is not None:
                    row["K"] = K(sched)
            row["at_run_parameters"] = _at_run_parameters(thm, sched, K, floor, D0, eps, lr, beta,
                                                          settings[sched].step,
                                                          table[sched]["full_sampling"])
        except ValueError as e:  # constants out of a theorem's domain, or K beyond a double
            why.append(f"error: {' '.join(str(e).split())}")
        for key, ratio in (("predicted_speedup", "iterations_ratio"), ("predicted_speedup_limit",
                                                                       "iterations_ratio_limit")):
            if row[ratio] is not None:
                row[key] = row["step_speedup"] / row[ratio]
    ranking, ranking_limit = _ranks(rows, "predicted_speedup"), _ranks(rows, "predicted_speedup_limit")
    target = None if eps is None or st.target is None else thm.target(eps, st_name)
    return {"theorem": thm.name, "label": thm.label, "title": thm.title, "statement": st_name,
            "statement_description": st.description, "target_expression": str(st.target), "target": target,
            "missing": missing, "constants": own + ["Delta0"],
            "step_parameters": list(thm.parameters), "schedules": rows,
            "ranking": ranking, "winner": ranking[0] if ranking else None,
            "ranking_limit": ranking_limit, "winner_limit": ranking_limit[0] if ranking_limit else None}


def _at_run_parameters(thm, sched, K, floor, D0, eps, lr, beta, step, full_sampling) -> dict | None:
    """The iteration ratio at the run's own step parameters (``η = lr``, ``β = 1 − μ``), where the
    theorem has such parameters; ``K = inf`` (``null``) below the bound's floor."""
    if not thm.parameters:
        return None
    params, why = {}, []
    if "eta" in thm.parameters:
        if lr is None:
            why.append("the run's lr is unknown (give --lr)")
        else:
            params["eta"] = lr
    if "beta" in thm.parameters:
        params["beta"] = beta
    if D0 is None:
        why.append("needs Delta0")
    if eps is None:
        why.append("no epsilon")
    out = {"parameters": params, "K": None, "K_full": None, "floor": None, "iterations_ratio": None, "why_null": why}
    if step == "common-lr" and not full_sampling:
        out["note"] = ("the run's radius is lr for every layer (radius rule common); this is the bound for radii "
                       "lr/pi_i (radius rule theory)")
    if why:
        return out
    try:
        out["K"], out["K_full"] = K(sched, **params), K("full", **params)
        out["floor"] = floor(sched, **params)
    except ValueError as e:  # e.g. a target just above the floor needs more than 2^100 iterations
        why.append(f"error: {' '.join(str(e).split())}")
        return out
    if math.isfinite(out["K"]) and math.isfinite(out["K_full"]):
        out["iterations_ratio"] = out["K"] / out["K_full"]
    else:
        which = [n for n, k in ((sched, out["K"]), ("full", out["K_full"])) if not math.isfinite(k)]
        why.append(f"K = inf for {' and '.join(dict.fromkeys(which))}: the target is below the bound's floor at "
                   "these parameters")
    return out


def _jsonable(x):
    """Plain JSON values: arrays to lists, numpy scalars to Python numbers, a non-finite number to
    ``None`` (an infinite ``K`` says why in its ``why_null``)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None  # K = inf below a floor: null, with why_null
    return x

