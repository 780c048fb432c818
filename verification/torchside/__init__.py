"""The torch side (behind the ``torch`` extra): the :class:`DropMuon` optimizer and the training
step that realises Drop-Muon's savings, the paper's CNN and offline data, measured costs and
constants, timed training runs and the closed loop (``docs/torch.md``). Importing this package
imports torch; the rest of :mod:`verification` never does."""

from .cnn import CNN, make_cnn
from .costs import CostMeasurement, measure_costs
from .data import Dataset, load_data, load_digits, load_npz
from .experiment import ExperimentConfig, run_experiment
from .optimizer import DropMuon, dropmuon_training_step, freeze_below, freeze_except, layer_matrix_shape
from .training import TrainResult, train

__all__ = [
    "DropMuon", "dropmuon_training_step", "freeze_below", "freeze_except", "layer_matrix_shape",
    "CNN", "make_cnn", "Dataset", "load_data", "load_digits", "load_npz", "CostMeasurement", "measure_costs",
    "train", "TrainResult", "ExperimentConfig", "run_experiment",
]
