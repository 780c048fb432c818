"""Image-classification data without a network: scikit-learn's bundled handwritten digits
(8 × 8, 1797 images, 10 classes) by default, or a local ``.npz`` with the usual MNIST-style arrays
``x_train, y_train, x_test, y_test``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "load_digits", "load_npz", "load_data"]


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors: images ``N × C × H × W`` (float32 in [0, 1]) and integer labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def to(self, device) -> "Dataset":
        """The same data on ``device``."""
        return Dataset(*(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)), self.name)


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's handwritten digits, split with ``seed`` (stratified by shuffling).

    >>> d = load_digits()
    >>> d.image_shape, d.num_classes, len(d.x_train) + len(d.x_test)
    ((1, 8, 8), 10, 1797)
    """
    from sklearn.datasets import load_digits as _load

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got test_fraction = {test_fraction!r}")
    bunch = _load()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return Dataset(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]),
                   torch.from_numpy(y[te]), "sklearn-digits")


def _images(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"{name} must have shape N × H × W or N × C × H × W; got {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite values")
    return a


def load_npz(path) -> Dataset:
    """A local ``.npz`` with ``x_train, y_train, x_test, y_test`` (images ``N×H×W`` or
    ``N×C×H×W``, uint8 scaled to [0, 1] or float; labels ``N`` integers ≥ 0)."""
    try:
        f = np.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the data file {str(path)!r}: {e}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f]
    if missing:
        raise ValueError(f"the data file {str(path)!r} lacks {', '.join(missing)} (has {', '.join(f.files)})")
    xs, ys = {}, {}
    for part in ("train", "test"):
        x = _images(f"x_{part}", f[f"x_{part}"])
        y = np.asarray(f[f"y_{part}"])
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"y_{part} must be a vector of {len(x)} labels (one per image); got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise ValueError(f"y_{part} must hold non-negative integer labels; got dtype {y.dtype}")
        xs[part], ys[part] = x, y.astype(np.int64)
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise ValueError(f"train and test images differ in shape: {xs['train'].shape[1:]} vs {xs['test'].shape[1:]}")
    return Dataset(torch.from_numpy(xs["train"]), torch.from_numpy(ys["train"]), torch.from_numpy(xs["test"]),
                   torch.from_numpy(ys["test"]), str(path))


def load_data(path=None, seed: int = 0) -> Dataset:
    """``load_npz(path)`` when a path is given, else :func:`load_digits`."""
    return load_digits(seed) if path is None else load_npz(path)
