"""What a run of Drop-Muon does and whether a theorem covers it: the step kinds a check can run
(:data:`STEP_KINDS`, :data:`RUN_STEPS`), a run's settings in the terms the theorems' settings are
stated in (:class:`RunSettings`), and a theorem's verdict on a run (:class:`Coverage`, from
:meth:`dropmuon.theory.theorem.Theorem.covers`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_scalar

__all__ = ["RunSettings", "Coverage", "STEP_KINDS", "RUN_STEPS"]

#: the step kinds a check knows how to run (``verification.synthetic.checks``): ``sharp`` (``γ_i = 1/L_i``,
#: i.e. radius ``‖∇_i f‖_*/L_i``), ``constant-radius`` (``t_i = η/π_i``, with momentum ``β`` when
#: the theorem has that parameter) and ``adaptive-radius`` (Gluon's ``‖g_i‖_*/(L0_i + L1_i‖g_i‖_*)``)
STEP_KINDS = ("sharp", "constant-radius", "adaptive-radius")
#: how a run steps: the theorems' step kinds, plus ``common-lr``, Muon's one learning rate for
#: every sampled layer (radius ``η`` whatever ``π_i``: the constant-radius rule ``η/π_i`` only
#: when every ``π_i = 1``)
RUN_STEPS = STEP_KINDS + ("common-lr",)
_STEP_TEXT = {"sharp": "sharp steps 1/L_i", "constant-radius": "radii eta/pi_i",
              "adaptive-radius": "Gluon's adaptive radius", "common-lr": "one learning rate for every layer"}


@dataclass(frozen=True)
class RunSettings:
    """What a run of Drop-Muon does, in the terms the theorems' settings are stated in.

    ``full_batch``: every step uses the exact gradient (``False``: minibatch gradients, A3);
    ``momentum``: ``β``, the weight on the new gradient (1: none; PyTorch's ``momentum = μ`` is
    ``β = 1 − μ``); ``exact_lmo``: the direction is the exact polar factor (``False``: Newton–Schulz,
    inexact with some ``δ > 0``); ``step``: one of :data:`RUN_STEPS`; ``full_sampling``: every
    layer every step (``π ≡ 1``); ``iid``: the sampled sets are i.i.d. over the steps (A4; an
    epoch-shift schedule is not).

    >>> muon = RunSettings(full_batch=False, momentum=0.05, exact_lmo=False, step="common-lr")
    >>> muon.step, muon.full_sampling
    ('common-lr', True)
    """

    full_batch: bool
    momentum: float
    exact_lmo: bool
    step: str
    full_sampling: bool = True
    iid: bool = True

    def __post_init__(self):
        for name in ("full_batch", "exact_lmo", "full_sampling", "iid"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {name} = {getattr(self, name)!r}")
        object.__setattr__(self, "momentum", check_scalar("momentum", self.momentum, "probability"))
        if self.step not in RUN_STEPS:
            raise ValueError(f"unknown step {self.step!r}; choose one of: {', '.join(RUN_STEPS)}")

    @property
    def effective_step(self) -> str:
        """The step kind the run has: Muon's common rate is the constant-radius rule under full
        sampling (``η/π_i = η``)."""
        return "constant-radius" if self.step == "common-lr" and self.full_sampling else self.step


@dataclass(frozen=True)
class Coverage:
    """Whether a theorem covers a run (``applies``), and every reason it does not (``reasons``,
    empty when it applies)."""

    theorem: str
    applies: bool
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "covers this run" if self.applies else "does not cover this run: " + "; ".join(self.reasons)
