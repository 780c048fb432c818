"""What a training run minimises and what it reports: the loss and the metric of a task
(classification, regression, language modelling), user-supplied or the defaults for the data, and
the evaluation of a model on a whole data set in ``eval()`` mode with gradients off."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .layers import first_line

__all__ = ["Objective", "objective_for", "evaluate", "check_setup", "classification_accuracy", "token_accuracy",
           "sequence_cross_entropy", "negative_mse"]


def classification_accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max is the label."""
    return (output.argmax(-1) == target).double().mean()  # double: chunk means recombine exactly


def sequence_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over all ``B × T`` positions (logits ``B × T × V``)."""
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


#: the fraction of positions whose arg-max is the next token: the same computation over ``B × T``
token_accuracy = classification_accuracy


def negative_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``−mean (output − target)²`` (a metric where higher is better)."""
    return -torch.nn.functional.mse_loss(output.reshape(target.shape), target)


def _mse(output, target):
    return torch.nn.functional.mse_loss(output.reshape(target.shape), target)


@dataclass(frozen=True)
class Objective:
    """A task's ``loss(output, target)`` (a scalar tensor, the mean over the batch) and
    ``metric(output, target)`` (higher is better; the mean over the batch, so that chunk means
    weighted by chunk size give the mean over a data set). ``bounded``: the metric lies in
    ``[0, 1]`` (an accuracy), so a target must too."""

    loss: Callable
    metric: Callable
    metric_name: str
    bounded: bool

    def check_target(self, target, name: str = "target_acc") -> None:
        """A clear error for a target the metric cannot reach (``name``: the option's name)."""
        if target is None:
            return
        if isinstance(target, bool) or not (isinstance(target, (int, float)) and math.isfinite(target)):
            raise ValueError(f"the target {self.metric_name} must be a finite number; got {name} = {target!r}")
        if self.bounded and not 0 < target <= 1:
            raise ValueError(f"the target {self.metric_name} must be in (0, 1]; got {name} = {target!r}")


_DEFAULTS = {
    "classification": (torch.nn.functional.cross_entropy, classification_accuracy, "accuracy", True),
    "language-model": (sequence_cross_entropy, token_accuracy, "token accuracy", True),
    "regression": (_mse, negative_mse, "negative MSE", False),
}


def objective_for(task: str = "classification", loss_fn=None, metric=None, metric_name: str | None = None) -> Objective:
    """The objective of a task (``"classification"``: cross-entropy and accuracy;
    ``"language-model"``: next-token cross-entropy and token accuracy; ``"regression"``: mean
    squared error and its negative), with ``loss_fn``/``metric`` replacing the defaults. A
    user's metric is taken as unbounded unless it is the default one."""
    if task not in _DEFAULTS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(_DEFAULTS)}")
    loss0, metric0, name0, bounded0 = _DEFAULTS[task]
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"the loss must be callable; got {type(loss_fn).__name__}")
    if metric is not None and not callable(metric):
        raise ValueError(f"the metric must be callable; got {type(metric).__name__}")
    return Objective(loss_fn or loss0, metric or metric0,
                     metric_name or (name0 if metric is None else getattr(metric, "__name__", "metric")),
                     bounded0 if metric is None else False)


def _scalar(value, what: str) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"the {what} must return a scalar; got a tensor of shape {tuple(value.shape)} "
                             f"(reduce it, e.g. with .mean())")
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"the {what} must return a scalar; got {type(value).__name__}")


def evaluate(model, x: torch.Tensor, y: torch.Tensor, objective: Objective, chunk: int = 256) -> tuple[float, float]:
    """``(metric, loss)`` of ``model`` on the whole of ``(x, y)``, in chunks, in ``eval()`` mode
    (BatchNorm uses its running statistics, dropout is off) with gradients off; the model's
    training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        metric = loss = 0.0
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                out = model(x[i:i + chunk])
                n = len(x[i:i + chunk])
                metric += _scalar(objective.metric(out, y[i:i + chunk]), "metric") * n
                loss += _scalar(objective.loss(out, y[i:i + chunk]), "loss") * n
        return metric / len(x), loss / len(x)
    finally:
        model.train(was_training)


def check_setup(model, data, objective: Objective, device="cpu", n: int = 4) -> None:
    """Run the model, the loss and the metric on ``n`` training examples and raise a one-line
    ``ValueError`` when any of them fails or the loss is not a finite scalar — before a long run
    starts, not minutes into it."""
    x, y = data.x_train[:n].to(device), data.y_train[:n].to(device)
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # the user's model on the user's data: report it as bad input
        raise ValueError(f"the model failed on a batch of shape {tuple(x.shape)} from {data.name!r}: "
                         f"{first_line(e)}") from None
    for what, fn in (("loss", objective.loss), ("metric", objective.metric)):
        try:
            v = fn(out, y)
        except Exception as e:
            raise ValueError(f"the {what} failed on the model's output of shape {tuple(out.shape)} and targets of "
                             f"shape {tuple(y.shape)} from {data.name!r}: {first_line(e)}") from None
        v = _scalar(v, what)
        if what == "loss" and not math.isfinite(v):
            raise ValueError(f"the loss is not finite on the first examples of {data.name!r} (got {v})")
