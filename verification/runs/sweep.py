"""Sweeps: a grid of problems × theorems × sampling distributions × seeds from a TOML file, one
bound check per grid point, run through :mod:`dropmuon.verification.runs.execution` (local processes or Dask),
each point's result saved as it arrives, and one table (CSV and JSON) at the end.

A configuration (``dropmuon sweep CONFIG.toml``)::

    name = "demo"
    K = 5                                   # iterations per check
    seeds = [0, 1, 2]                       # problem/sampling seeds
    theorems = ["smooth-deterministic", "smooth-constant-radius"]

    [[problems]]
    name = "spectral-quadratic"
    kind = "separable-quadratic"            # | coupled-quadratic | deep-linear | l0l1-radial
    curvature = [1.0, 4.0, 2.0]
    shapes = [[3, 4], [2, 3], [4, 2]]
    norms = "spectral"

    [[distributions]]
    name = "uniform"
    kind = "uniform"                        # | full | rpt (start_probs) | independent (pi)

    [theorem_options.inexact-constant-radius]
    lmo = { kind = "perturbed", delta = 0.3, mode = "overshoot" }

Problem fields follow the constructors of :mod:`dropmuon.verification.synthetic.problems` (``curvature, shapes,
norms, l1`` and ``noise`` — Gaussian gradient noise, for T3 — for a separable quadratic; ``shapes,
norms, coupling, scales`` for a coupled one; ``dims, R`` for a deep linear network; ``c, a,
shapes, norms, x0_scale`` for the cosh problem). A theorem that does not apply to a problem (T2
without (L0,L1) constants, T3 without noise, …) gives a row with ``status = "not applicable"`` and
the reason, not an error.
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dropmuon.theory import RPT, Independent
from dropmuon.theory._io import write_json_atomic, write_text_atomic

__all__ = ["SweepConfig", "load_sweep", "sweep_tasks", "run_sweep", "TABLE_COLUMNS", "PROBLEM_KINDS"]

#: the kinds of problem a sweep can build, with the fields each accepts
PROBLEM_KINDS = {
    "separable-quadratic": ("curvature", "shapes", "norms", "l1", "noise"),
    "coupled-quadratic": ("shapes", "norms", "coupling", "scales", "noise"),
    "deep-linear": ("dims", "R", "samples", "init_scale"),
    "l0l1-radial": ("c", "a", "shapes", "norms", "x0_scale"),
}
_DIST_KINDS = {"full": (), "uniform": (), "rpt": ("start_probs",), "independent": ("pi",)}
#: the fields each kind cannot do without
_REQUIRED = {
    "separable-quadratic": ("curvature", "shapes"), "coupled-quadratic": ("shapes",), "deep-linear": ("dims",),
    "l0l1-radial": ("c", "a", "shapes"), "rpt": ("start_probs",), "independent": ("pi",),
}

#: the largest ``K`` a sweep accepts. A check runs up to ``mc_paths`` (default 1000) Monte Carlo
#: paths of ``K`` Drop-Muon steps per grid point, about 0.3 ms per step on one core for the small
#: problems of a sweep: K = 10⁵ is already hours per point; beyond it a sweep cannot finish.
MAX_K = 100_000
#: a sweep estimated at more optimizer steps than this (grid points × K × paths) warns up front
WARN_STEPS = 10**8
#: rough seconds per optimizer step on one core, for the estimate in the warning
STEP_SECONDS = 3e-4

#: the columns of the sweep's table, in order
#: (``status``: ``ok`` or ``not applicable``; ``verdict``: the check's status, one of
#: :data:`dropmuon.verification.synthetic.checks.STATUSES`; ``holds``: ``verdict == "holds"``)
TABLE_COLUMNS = ("problem", "theorem", "distribution", "seed", "status", "statement", "observed", "bound",
                 "ratio", "verdict", "holds", "method", "n", "kind", "note")


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: named problem and distribution specifications, theorems, seeds, ``K``,
    per-theorem options (keyword arguments of :func:`verification.check_theorem`)."""

    name: str
    K: int
    seeds: tuple
    theorems: tuple
    problems: tuple
    distributions: tuple
    theorem_options: dict = field(default_factory=dict)

    def grid(self) -> list[tuple]:
        """``(problem, theorem, distribution, seed)`` for every grid point, in table order."""
        return [(p["name"], t, d["name"], s) for p in self.problems for t in self.theorems
                for d in self.distributions for s in self.seeds]

    def as_dict(self) -> dict:
        return {"name": self.name, "K": self.K, "seeds": list(self.seeds), "theorems": list(self.theorems),
                "problems": list(self.problems), "distributions": list(self.distributions),
                "theorem_options": self.theorem_options}


def _fail(where: str, msg: str):
    raise ValueError(f"sweep configuration, {where}: {msg}")


def _named_list(raw, what: str, kinds: dict) -> tuple:
    if not isinstance(raw, list) or not raw:
        _fail(what, f"give at least one [[{what}]] table")
    out, names = [], set()
    for k, item in enumerate(raw, start=1):
        where = f"{what} #{k}"
        if not isinstance(item, dict):
            _fail(where, "must be a table")
        name, kind = item.get("name"), item.get("kind")
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "._-" for c in name):
            _fail(where, f"needs a name of letters, digits and ._- ; got name = {name!r}")
        if name in names:
            _fail(where, f"the name {name!r} is used twice")
        names.add(name)
        if kind not in kinds:
            _fail(f"{where} ({name})", f"unknown kind {kind!r}; choose one of: {', '.join(kinds)}")
        extra = set(item) - {"name", "kind"} - set(kinds[kind])
        if extra:
            _fail(f"{where} ({name})", f"unknown field(s) {sorted(extra)} for kind {kind!r}; allowed: "
                                       f"{', '.join(kinds[kind]) or 'none'}")
        missing = [k for k in _REQUIRED.get(kind, ()) if k not in item]
        if missing:
            _fail(f"{where} ({name})", f"missing field(s) {missing} for kind {kind!r}")
        out.append(dict(item))
    return tuple(out)


def load_sweep(source) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML file path or an already parsed ``dict``; every problem and
    distribution is built once (seed 0) so that a bad field fails here, naming it, not in a worker."""
    from dropmuon.theory import theorems as registry

    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ValueError(f"cannot read the sweep configuration {str(source)!r}: {e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"the sweep configuration {str(source)!r} is not valid TOML: {e}") from None
        except UnicodeDecodeError as e:  # TOML is UTF-8; the decoder's message names no file
            raise ValueError(f"the sweep configuration {str(source)!r} is not UTF-8 text (byte "
                             f"0x{e.object[e.start]:02x} at offset {e.start})") from None
    elif isinstance(source, dict):
        raw = source
    else:
        raise ValueError(f"a sweep configuration is a TOML path or a dict; got {type(source).__name__}")
    allowed = {"name", "K", "seeds", "theorems", "problems", "distributions", "theorem_options"}
    extra = set(raw) - allowed
    if extra:
        _fail("top level", f"unknown key(s) {sorted(extra)}; allowed: {', '.join(sorted(allowed))}")
    name = raw.get("name", "sweep")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "._-" for c in name):
        _fail("name", f"letters, digits and ._- ; got {name!r}")
    K = raw.get("K")
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        _fail("K", f"a positive integer number of iterations; got K = {K!r}")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                             for s in seeds):
        _fail("seeds", f"a non-empty list of non-negative integers; got seeds = {seeds!r}")
    if len(set(seeds)) != len(seeds):
        _fail("seeds", f"seeds must be distinct; got {seeds}")
    ths = raw.get("theorems")
    if not isinstance(ths, list) or not ths:
        _fail("theorems", f"a non-empty list of theorem names; got theorems = {ths!r}")
    for t in ths:
        if t not in registry:
            _fail("theorems", f"unknown theorem {t!r}; known: {', '.join(registry)}")
    problems = _named_list(raw.get("problems"), "problems", PROBLEM_KINDS)
    dists = _named_list(raw.get("distributions"), "distributions", _DIST_KINDS)
    opts = raw.get("theorem_options", {})
    if not isinstance(opts, dict) or any(t not in ths for t in opts):
        _fail("theorem_options", f"one table per theorem of the sweep; got {sorted(opts) if isinstance(opts, dict) else opts!r}")
    for t, v in opts.items():
        if not isinstance(v, dict):
            _fail(f"theorem_options.{t}", f"must be a table of options; got {v!r}")
    if K > MAX_K:
        _fail("K", f"K = {K} is above the limit {MAX_K}: each grid point runs up to {_paths(opts, ths[0])} "
                   f"Monte Carlo paths of K steps (~{_steps_text(K * _paths(opts, ths[0]))} steps per point); "
                   f"use a smaller K")
    cfg = SweepConfig(name, K, tuple(seeds), tuple(ths), problems, dists, {t: dict(v) for t, v in opts.items()})
    for p in problems:
        try:
            prob = build_problem(p, 0)
        except (ValueError, TypeError) as e:
            _fail(f"problem {p['name']!r}", str(e))
        for d in dists:
            try:
                dist = build_distribution(d)
            except (ValueError, TypeError) as e:
                _fail(f"distribution {d['name']!r}", str(e))
            if not isinstance(dist, _Deferred) and dist.nlayers != prob.nlayers:
                _fail(f"distribution {d['name']!r}", f"has {dist.nlayers} layers but problem {p['name']!r} has "
                                                      f"{prob.nlayers}")
    for t, o in cfg.theorem_options.items():
        try:
            _check_options(o)
        except (ValueError, TypeError) as e:
            _fail(f"theorem_options.{t}", str(e))
    steps = estimated_steps(cfg)
    if steps > WARN_STEPS:
        import warnings

        warnings.warn(f"sweep {cfg.name!r}: {len(cfg.grid())} grid points at K = {K} is about {_steps_text(steps)} "
                      f"optimizer steps (~{steps * STEP_SECONDS / 3600:.3g} core-hours); lower K, seeds or paths "
                      f"if that is not meant", RuntimeWarning, stacklevel=2)
    return cfg


def _paths(opts: dict, theorem: str) -> int:
    o = opts.get(theorem, {}) if isinstance(opts, dict) else {}
    n = o.get("mc_paths", 1000) if isinstance(o, dict) else 1000
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1000


def _steps_text(n: float) -> str:
    return f"{n:.1e}".replace("e+0", "e").replace("e+", "e")


def estimated_steps(cfg: SweepConfig) -> int:
    """An upper estimate of the optimizer steps of a sweep: per grid point, ``K`` steps on each
    of (at most) ``mc_paths`` paths."""
    per = {t: _paths(cfg.theorem_options, t) for t in cfg.theorems}
    return sum(cfg.K * per[t] for _, t, _, _ in cfg.grid())


def build_problem(spec: dict, seed: int):
    """The problem of a sweep specification, with ``seed``."""
    from ..synthetic.problems import CoupledQuadratic, DeepLinear, L0L1Radial, SeparableQuadratic, Stochastic

    kw = {k: v for k, v in spec.items() if k not in ("name", "kind", "noise")}
    kind = spec["kind"]
    if kind == "separable-quadratic":
        curv = kw.pop("curvature", None)
        if curv is None:
            raise ValueError("needs curvature = [one per layer]")
        prob = SeparableQuadratic(curv, kw.pop("shapes"), kw.pop("norms", "frobenius"), seed=seed, **kw)
    elif kind == "coupled-quadratic":
        prob = CoupledQuadratic(kw.pop("shapes"), kw.pop("norms", "frobenius"), seed=seed, **kw)
    elif kind == "deep-linear":
        prob = DeepLinear(kw.pop("dims"), seed=seed, **kw)
    else:
        prob = L0L1Radial(kw.pop("c"), kw.pop("a"), kw.pop("shapes"), kw.pop("norms", "frobenius"), seed=seed, **kw)
    if "noise" in spec:
        prob = Stochastic(prob, spec["noise"])
    return prob


def build_distribution(spec: dict):
    """The sampling distribution of a sweep specification."""
    kind = spec["kind"]
    if kind == "rpt":
        return RPT(spec["start_probs"])
    if kind == "independent":
        return Independent(spec["pi"])
    return _Deferred(kind)


@dataclass(frozen=True)
class _Deferred:
    """``full``/``uniform``: the size comes from the problem."""

    kind: str

    def resolve(self, b: int):
        return RPT.full(b) if self.kind == "full" else RPT.uniform(b)


def _resolve(dist, b: int):
    return dist.resolve(b) if isinstance(dist, _Deferred) else dist


def _check_options(opts: dict) -> dict:
    from ..synthetic.dropmuon import LMO

    out = dict(opts)
    if "lmo" in out:
        lmo = out["lmo"]
        if not isinstance(lmo, dict):
            raise ValueError(f"lmo must be a table like {{ kind = 'perturbed', delta = 0.3 }}; got {lmo!r}")
        out["lmo"] = LMO(**lmo)
    allowed = {"lmo", "eta", "beta", "l1", "statements", "mc_paths", "max_exact", "method", "delta_prior"}
    extra = set(out) - allowed
    if extra:
        raise ValueError(f"unknown option(s) {sorted(extra)}; allowed: {', '.join(sorted(allowed))}")
    return out


def _point(problem: dict, theorem: str, distribution: dict, seed: int, K: int, options: dict) -> list[dict]:
    """One grid point (runs in a worker): the check's rows, or one ``not applicable`` row."""
    from ..synthetic.checks import NotApplicable, check_theorem

    base = {"problem": problem["name"], "theorem": theorem, "distribution": distribution["name"], "seed": seed}
    prob = build_problem(problem, seed)
    dist = _resolve(build_distribution(distribution), prob.nlayers)
    try:
        results = check_theorem(theorem, prob, dist, K, seed=seed, **_check_options(options))
    except NotApplicable as e:
        return [dict(base, status="not applicable", note=" ".join(str(e).split()))]
    return [dict(base, status="ok", statement=r.statement, observed=r.observed, bound=r.bound, ratio=r.ratio,
                 verdict=r.status, holds=bool(r.holds), method=r.method, n=int(r.n), kind=r.kind, note=r.note) for r in results]


_ROW_KEYS = {"problem", "theorem", "distribution", "seed", "status"}


def _decode_point(rows):
    """A grid point's rows as saved (a list of row tables); anything else raises ``ValueError``, so
    that a damaged task file is run again instead of breaking the table."""
    if (not isinstance(rows, list) or not rows
            or not all(isinstance(r, dict) and _ROW_KEYS <= set(r) for r in rows)
            or any(r["status"] == "ok" and not {"holds", "ratio", "kind"} <= set(r) for r in rows)):
        raise ValueError("not a list of sweep rows")
    if any(r["status"] == "ok" and "verdict" not in r for r in rows):
        raise ValueError("written before checks had a verdict column (holds / within-tolerance / inconclusive / "
                         "violated)")
    return rows


def _key(problem, theorem, dist, seed) -> str:
    return f"{problem}--{theorem}--{dist}--s{seed}"


def sweep_tasks(config: SweepConfig) -> list:
    """One :class:`~dropmuon.verification.runs.execution.Task` per grid point."""
    from .execution import Task

    probs = {p["name"]: p for p in config.problems}
    dists = {d["name"]: d for d in config.distributions}
    return [Task(_key(p, t, d, s), _point, (probs[p], t, dists[d], s, config.K, config.theorem_options.get(t, {})))
            for p, t, d, s in config.grid()]


def _table_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(TABLE_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in TABLE_COLUMNS})
    return buf.getvalue()


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return v


def run_sweep(config, out, *, jobs: int = 1, scheduler: str | None = None, resume: bool = True,
              progress: bool | None = None, fail_after: int | None = None) -> dict:
    """Run every grid point (``OUT/tasks/<point>.json`` as each finishes; a re-run resumes), then
    write ``OUT/table.csv`` and ``OUT/table.json`` (one row per checked statement, in grid order).
    Returns ``{"rows", "summary", "table_csv", "table_json"}``."""
    from .execution import run_tasks

    cfg = config if isinstance(config, SweepConfig) else load_sweep(config)
    out = Path(out)
    per_point = run_tasks(sweep_tasks(cfg), results=out / "tasks", jobs=jobs, scheduler=scheduler,
                          decode=_decode_point, manifest={"sweep": cfg.as_dict()}, resume=resume, progress=progress,
                          label=f"sweep {cfg.name}", fail_after=fail_after)
    rows = [r for rs in per_point for r in rs]
    checked = [r for r in rows if r["status"] == "ok"]
    ratios = np.array([r["ratio"] for r in checked if r["ratio"] is not None and r["kind"] in ("bound", "tight")
                       and math.isfinite(r["ratio"])])
    summary = {
        "points": len(per_point), "rows": len(rows), "checks": len(checked),
        # "failed": not shown to hold (exit status 1); the verdicts are counted apart
        "failed": sum(not r["holds"] for r in checked),
        "holds": sum(r["verdict"] == "holds" for r in checked),
        "violated": sum(r["verdict"] == "violated" for r in checked),
        "within_tolerance": sum(r["verdict"] == "within-tolerance" for r in checked),
        "inconclusive": sum(r["verdict"] == "inconclusive" for r in checked),
        "not_applicable": sum(r["status"] == "not applicable" for r in rows),
        "ratio_max": float(ratios.max()) if ratios.size else None,
        "ratio_median": float(np.median(ratios)) if ratios.size else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "table.csv", out / "table.json"
    write_text_atomic(csv_path, _table_csv(rows))
    write_json_atomic(json_path, {"config": cfg.as_dict(), "summary": summary, "columns": list(TABLE_COLUMNS),
                                  "rows": rows})
    return {"rows": rows, "summary": summary, "table_csv": csv_path, "table_json": json_path}
