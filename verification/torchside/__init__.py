"""The torch side (behind the ``torch`` extra): the :class:`DropMuon` optimizer (Muon on the sampled
layers' matrices, an AdamW companion for their biases and norms) with layers found for any model
(:meth:`DropMuon.from_model`), the training step that realises Drop-Muon's savings, built-in
models and offline data, measured costs and constants, timed training runs, the closed loop, and
data-parallel training under ``torch.distributed`` (``docs/torch.md``). Importing this package
imports torch; the rest of :mod:`verification` never does.

The modules, in an order that reads top-down:

* ``optimizer`` — the :class:`DropMuon` optimizer and its truncated-backward training step;
  ``layers`` — a model's layers, input first, from a forward trace;
* ``cnn``, ``models`` — the paper's CNN, a residual CNN and a transformer language model;
  ``data`` — offline data sets; ``tasks`` — losses, metrics and evaluation; ``build`` — a model
  from a factory, with its optimizer;
* ``costs``, ``constants``, ``noise`` — measured per-layer costs, layer-wise constants and
  gradient noise; ``environment`` — what a timing depends on;
* ``training`` — timed training under a layer-sampling schedule;
* the closed loop: ``plan`` — its settings, presets, shared setup and the schedules with their
  predicted cost; ``calibration`` — the constants and costs the schedules come from;
  ``preregistration`` — the predictions, written before the first run; ``speedups`` — paired
  speed-ups, seed counts and the summary; ``experiment`` — the loop itself (and the front that
  re-exports the names of ``plan``, ``calibration`` and ``speedups``); ``campaign`` — the
  regimes, one experiment each;
* ``distributed`` — data-parallel Drop-Muon."""

from .build import Built, build_model, optimizer_for, resolve_factory
from .calibration import measure_network
from .cnn import CNN, make_cnn
from .constants import LayerConstants, estimate_constants
from .costs import CostMeasurement, layer_sets, measure_costs
from .data import DATASETS, Dataset, load_data, load_digits, load_mnist5k, load_npz, load_text
from .distributed import (DistributedRun, LaunchError, StepStats, broadcast_parameters, distributed_layers_step,
                          draw_global_batches, draw_layer_sets, launch_local, shard, train_distributed)
from .experiment import run_experiment
from .layers import ModelLayers, check_optimizer, model_layers, parameter_use_order
from .models import BUILTIN_MODELS, ResidualCNN, TransformerLM, make_residual_cnn, make_transformer_lm
from .optimizer import (DropMuon, dropmuon_training_step, freeze_below, freeze_except, layer_matrix_shape,
                        layers_step)
from .plan import ExperimentConfig
from .tasks import Objective, evaluate, objective_for
from .training import TrainResult, train

__all__ = [
    "DropMuon", "dropmuon_training_step", "layers_step", "freeze_below", "freeze_except", "layer_matrix_shape",
    "ModelLayers", "model_layers", "parameter_use_order", "check_optimizer",
    "Built", "build_model", "optimizer_for", "resolve_factory",
    "Objective", "objective_for", "evaluate",
    "CNN", "make_cnn", "ResidualCNN", "TransformerLM", "make_residual_cnn", "make_transformer_lm", "BUILTIN_MODELS",
    "DATASETS", "Dataset", "load_data", "load_digits", "load_mnist5k", "load_text", "load_npz",
    "CostMeasurement", "measure_costs", "layer_sets", "LayerConstants", "estimate_constants", "measure_network",
    "train", "TrainResult", "ExperimentConfig", "run_experiment",
    "distributed_layers_step", "train_distributed", "launch_local", "shard", "draw_layer_sets",
    "draw_global_batches", "broadcast_parameters", "StepStats", "DistributedRun", "LaunchError",
]
