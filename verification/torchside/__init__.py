"""The torch side (behind the ``torch`` extra): the :class:`DropMuon` optimizer and the training
step that realises Drop-Muon's savings. Importing this package imports torch; the rest of
:mod:`verification` never does."""

from .cnn import CNN, make_cnn
from .costs import CostMeasurement, measure_costs
from .data import Dataset, load_data, load_digits, load_npz
from .optimizer import DropMuon, dropmuon_training_step, freeze_below, freeze_except, layer_matrix_shape

__all__ = [
    "DropMuon", "dropmuon_training_step", "freeze_below", "freeze_except", "layer_matrix_shape",
    "CNN", "make_cnn", "Dataset", "load_data", "load_digits", "load_npz", "CostMeasurement", "measure_costs",
]
