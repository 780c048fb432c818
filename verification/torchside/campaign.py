"""Where can Drop-Muon win? The regimes campaign: one named closed-loop experiment per regime
(:func:`~dropmuon.verification.torchside.experiment.run_experiment`, each predicting first and
then measuring with power), sized per device, run in sequence into ``OUT/<regime>/`` and summed
up in ``OUT/campaign.json`` — per regime and schedule the per-step speed-up, the iteration ratio
and the time speed-up over full Muon with their intervals, and each predictor's prediction.

The regimes (:data:`REGIMES`; ``dropmuon campaign --list`` prints them with their settings):

* ``minibatch`` — today's protocol: the paper's CNN on mnist5k at one learning rate;
* ``full-batch`` — every step on a fixed training subset (the whole of mnist5k on a GPU: the
  paper's batch of 8192 exceeds its 4000 images), where the deterministic theorems cover the run
  up to their constants;
* ``tuned`` / ``tuned-theory`` — each schedule at its own learning rate, tuned on seeds disjoint
  from the evaluation seeds, for Muon's common rate and for the theorems' radii ``η/π_i``;
* ``phase`` — the phase-optimal schedule against the static optimum, epoch-shift and full;
* ``resnet`` — a second model, the residual CNN with BatchNorm, on mnist5k.

On a CPU the sizes are those of a 2-core machine (seed counts from the power analysis of the
minibatch pilot: 47 paired seeds give intervals within ±10% at its spread); on a GPU
(``device="cuda"``) the paper's width and batch sizes with 40 seeds, so that the whole campaign
runs unchanged when a GPU is lent. Every experiment resumes, so a killed campaign restarts where
it stopped.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from dropmuon.theory._io import write_json_atomic

from .plan import PRESETS

__all__ = ["REGIMES", "regime_settings", "regime_config", "run_campaign", "campaign_rows"]

# the minibatch regime is ``--preset paper-gpu``: on a GPU as it stands, on a CPU with the seed count
# of the power analysis (47 paired seeds: intervals within ±10% at the MNIST pilot's spread)
_MNIST_GPU = dict(PRESETS["paper-gpu"]["cuda"])
_MNIST_CPU = dict(PRESETS["paper-gpu"]["cpu"], seeds=47)
_GRID = (0.025, 0.05, 0.1, 0.2, 0.4)  # log-spaced, factor 2, centred on the paper's 0.1

#: regime → ``{"about": what it tests, "cpu": settings, "cuda": settings}``; the settings are
#: :class:`~dropmuon.verification.torchside.plan.ExperimentConfig` fields, ``seeds`` a count
REGIMES = {
    "minibatch": {"about": "today's protocol: minibatch Muon at one learning rate for every schedule",
                  "cpu": dict(_MNIST_CPU), "cuda": dict(_MNIST_GPU)},
    "full-batch": {"about": "every step on a fixed training subset: exact gradients, the deterministic theorems' "
                            "setting",
                   # sized by a 3-seed pilot on the 2-core EPYC (docs/results.md): about 6 min of wall clock per
                   # seed at 1000 examples (full Muon ~60 steps of ~1 s, the slowest run 150), so 20 seeds fit in
                   # about 2 hours; 300 steps at most keeps the pilot runs (a share of the largest experiment)
                   # near a tenth of the training
                   "cpu": dict(_MNIST_CPU, batch="full", train_examples=1000, eval_every=5, max_steps=300,
                               seeds=20),
                   "cuda": dict(_MNIST_GPU, batch="full", eval_every=5, max_steps=400)},
    "tuned": {"about": "each schedule at its own tuned learning rate (Muon's common rate)",
              "cpu": dict(_MNIST_CPU, lr_grid=_GRID, tune_runs=2),
              "cuda": dict(_MNIST_GPU, lr_grid=_GRID, tune_runs=3)},
    "tuned-theory": {"about": "each schedule at its own tuned base rate under the theorems' radii eta/pi_i",
                     "cpu": dict(_MNIST_CPU, lr_grid=_GRID, tune_runs=2, radius_rule="inverse-inclusion"),
                     "cuda": dict(_MNIST_GPU, lr_grid=_GRID, tune_runs=3, radius_rule="inverse-inclusion")},
    "phase": {"about": "the phase-optimal schedule (the optimum of each phase's constants) against the static "
                       "optimum, epoch-shift and full",
              "cpu": dict(_MNIST_CPU, samplings=("full", "optimal-max", "epoch-shift", "phase-optimal")),
              "cuda": dict(_MNIST_GPU, samplings=("full", "optimal-max", "epoch-shift", "phase-optimal"))},
    "resnet": {"about": "a second model: the residual CNN with BatchNorm (7 layers) on mnist5k",
               "cpu": dict(_MNIST_CPU, model="resnet", width=1.0),
               "cuda": dict(_MNIST_GPU, model="resnet", width=4.0)},
}


def regime_settings(name: str, device: str = "cpu") -> dict:
    """The settings of regime ``name`` on ``device`` (``cuda…`` takes the GPU sizes, anything
    else the CPU sizes).

    >>> regime_settings("full-batch")["batch"], regime_settings("minibatch", "cuda")["width"]
    ('full', 1.0)
    """
    if name not in REGIMES:
        raise ValueError(f"unknown regime {name!r}; choose from: {', '.join(REGIMES)}")
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    return dict(REGIMES[name][kind])


def regime_config(name: str, device: str = "cpu", **overrides):
    """The :class:`~dropmuon.verification.torchside.plan.ExperimentConfig` of regime
    ``name`` on ``device``; ``overrides`` replace its settings (``seeds`` a count or a tuple)."""
    from .plan import ExperimentConfig

    s = dict(regime_settings(name, device), **overrides)
    seeds = s.pop("seeds")
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    return ExperimentConfig(seeds=seeds, device=device, **s)


def campaign_rows(name: str, summary: dict) -> list[dict]:
    """One row per schedule of a regime's experiment summary: per-step, iteration and time
    speed-ups over full Muon (``mean``, ``low``, ``high``, ``n``, ``decided``) and each predictor's
    predicted speed-up on accuracy (``None`` where it makes none)."""
    preds = {}
    for d in (summary.get("predictors") or {}).get("accuracy") or []:
        for s, r in d["schedules"].items():
            preds.setdefault(s, {})[d["label"] if d["label"] != d["name"] else d["name"]] = r["predicted_speedup"]
    rows = []
    for s, r in summary["rows"].items():
        pick = ("mean", "low", "high", "n", "decided")
        rows.append({"regime": name, "schedule": s,
                     "speedup_time": {k: r["speedup_time"].get(k) for k in pick},
                     "speedup_per_step": {k: r["speedup_per_step"].get(k) for k in pick},
                     "iterations_ratio": {k: r["speedup_iterations"].get(k) for k in pick},
                     "reached": r["reached"], "runs": r["runs"], "predicted": preds.get(s, {})})
    return rows


def run_campaign(regimes=None, *, device: str = "cpu", out, progress=None, resume: bool = True,
                 overrides: dict | None = None, stop_after: str | None = None) -> dict:
    """Run the named ``regimes`` (default all, in :data:`REGIMES`' order) one after the other into
    ``OUT/<regime>/``, each a full closed loop that writes its predictions before its first run;
    ``overrides`` change every regime's settings (e.g. ``{"seeds": 3}`` for a dry run). Writes
    ``OUT/campaign.json`` (atomically, after every regime, so a partial campaign is readable):
    ``{"device", "regimes": {name: {"about", "settings", "summary"}}, "rows": [...]}`` with
    :func:`campaign_rows` for the figure. Returns that record. The regimes of an earlier
    ``OUT/campaign.json`` made on the same device and not run now are kept in it, so the campaign
    can be run one regime at a time.

    ``stop_after`` (``"calibration"`` or ``"tuning"``) runs each regime only that far
    (:func:`~dropmuon.verification.torchside.experiment.run_experiment`) and writes no
    ``campaign.json``; the record then lists ``{name: "stopped_after": …}`` and no rows."""
    from .experiment import run_experiment

    names = list(REGIMES) if regimes is None else list(regimes)
    for n in names:
        regime_settings(n, device)  # every name checked before the first run
    out = Path(out)
    record = _earlier_record(out / "campaign.json", device, names)
    for n in names:
        cfg = regime_config(n, device, **(overrides or {}))
        res = run_experiment(cfg, out=out / n, progress=progress, resume=resume, stop_after=stop_after)
        if stop_after is not None:
            record["regimes"][n] = {"about": REGIMES[n]["about"], "settings": asdict(cfg),
                                    "stopped_after": stop_after,
                                    "tuned_lr": (res["tuning"] or {}).get("lr")}
            continue
        summary = res["summary"]
        record["regimes"][n] = {"about": REGIMES[n]["about"], "settings": asdict(cfg), "summary": summary}
        rows = [r for r in record["rows"] if r["regime"] != n] + campaign_rows(n, summary)
        record["rows"] = sorted(rows, key=lambda r: list(REGIMES).index(r["regime"]))  # stable: schedules keep order
        record["regimes"] = {k: record["regimes"][k] for k in REGIMES if k in record["regimes"]}
        write_json_atomic(out / "campaign.json", record)
    if stop_after is not None:
        record["stopped_after"] = stop_after
    return record


def _earlier_record(path: Path, device: str, names) -> dict:
    """The campaign record to add to: ``path``'s regimes that this call does not run, when it
    was made on the same device (so that running one regime at a time builds up one record), else
    an empty record."""
    import warnings

    from dropmuon.theory._io import read_json

    empty = {"device": str(device), "regimes": {}, "rows": []}
    if not path.exists():
        return empty
    try:
        old = read_json(path, "campaign record")
        if not isinstance(old, dict) or old.get("device") != str(device):
            return empty
        keep = {n: r for n, r in old["regimes"].items() if n not in names}
        return {"device": str(device), "regimes": keep,
                "rows": [r for r in old["rows"] if r["regime"] in keep]}
    except (ValueError, KeyError, TypeError) as e:
        warnings.warn(f"{path}: {e}; starting a new campaign record", RuntimeWarning, stacklevel=3)
        return empty
