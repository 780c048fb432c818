"""The torch side (behind the ``torch`` extra): the :class:`DropMuon` optimizer and the training
step that realises Drop-Muon's savings. Importing this package imports torch; the rest of
:mod:`verification` never does."""

from .optimizer import DropMuon, dropmuon_training_step, freeze_below, layer_matrix_shape

__all__ = ["DropMuon", "dropmuon_training_step", "freeze_below", "layer_matrix_shape"]
