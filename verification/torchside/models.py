"""Built-in models beyond the paper's CNN (``docs/data.md``): a small residual CNN with BatchNorm
and a small decoder-only transformer language model, their factories ``factory(data) → nn.Module``
(the caller seeds torch first), a name registry, and the language-model loss and metric."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .cnn import CNN

__all__ = [
    "ResidualCNN", "TransformerLM", "make_residual_cnn", "make_transformer_lm", "BUILTIN_MODELS",
    "DEFAULT_DATA",
]


def _check_width(width) -> None:
    if not width > 0:
        raise ValueError(f"width must be positive; got width = {width!r}")


def _channels(k: int, width: float) -> int:
    return max(1, int(round(k * width)))


class _ResidualBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the input (identity) or its 1×1-conv + BN
    projection when the channel count or the stride changes; then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut_conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(c_out)
        else:
            self.shortcut_conv = self.shortcut_bn = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))
        return torch.relu(out + skip)


class ResidualCNN(nn.Module):
    """A small residual CNN: stem conv3×3(16w) → BN → ReLU; a residual block 16w → 32w with
    stride 2 (1×1-conv projection shortcut); a residual block 32w → 32w (identity shortcut);
    global average pool; linear head with bias. ``w`` is ``width``; convolutions have no bias
    (BatchNorm follows each).

    ``stem_stride=2`` halves the resolution at the stem (used by :func:`make_residual_cnn` for
    inputs of 16 pixels or more, e.g. 28 × 28 MNIST, to keep a CPU step fast); 8 × 8 digits keep
    stride 1.

    There is no ``dropmuon_layers``: the layers are found automatically from a forward trace, one
    per convolution or linear map (seven here: stem, two convolutions and a projection in block 1,
    two convolutions in block 2, head), each BatchNorm's scale and shift attached to the
    convolution before it, the head's bias to the head.

    >>> m = ResidualCNN(in_channels=1, num_classes=10)
    >>> m.eval()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: float = 1.0, *, stem_stride: int = 1):
        super().__init__()
        _check_width(width)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2; got stem_stride = {stem_stride!r}")
        c1, c2 = _channels(16, width), _channels(32, width)
        self.stem = nn.Conv2d(in_channels, c1, 3, stride=stem_stride, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.block1 = _ResidualBlock(c1, c2, stride=2)
        self.block2 = _ResidualBlock(c2, c2, stride=1)
        self.head = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        return self.head(x.mean(dim=(2, 3)))


class _Embedding(nn.Module):
    """Token embedding plus a learned position embedding: one Drop-Muon layer."""

    def __init__(self, vocab_size: int, context: int, d_model: int):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(context, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.token(x) + self.position(torch.arange(x.shape[1], device=x.device))


class _TransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (causal attention)."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, mlp_ratio * d_model)
        self.fc2 = nn.Linear(mlp_ratio * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class _Head(nn.Module):
    """Final LayerNorm and the output projection to the vocabulary: one Drop-Muon layer."""

    def __init__(self, d_model: int, vocab_size: int):
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.ln(x))


class TransformerLM(nn.Module):
    """A decoder-only, pre-LayerNorm transformer language model: token + learned position
    embedding (``embed``), ``n_layers`` blocks of causal multi-head self-attention (one ``qkv``
    linear map, an output projection; :func:`torch.nn.functional.scaled_dot_product_attention`
    with ``is_causal=True``) and an MLP (linear → GELU → linear, hidden ``mlp_ratio · d_model``),
    then a final LayerNorm and a linear head without bias, untied from the embedding (``head``).
    ``forward(x)`` maps token ids ``B × T`` (``T ≤ context``) to logits ``B × T × vocab_size``.

    Drop-Muon's layers are :meth:`dropmuon_layers`: the embedding, each block, the head.

    >>> m = TransformerLM(vocab_size=11, context=8, d_model=16, n_heads=2)
    >>> m(torch.zeros(3, 5, dtype=torch.long)).shape, len(m.dropmuon_layers())
    (torch.Size([3, 5, 11]), 4)
    """

    def __init__(self, vocab_size: int, context: int = 64, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 mlp_ratio: int = 4):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("context", context), ("d_model", d_model),
                        ("n_layers", n_layers), ("n_heads", n_heads), ("mlp_ratio", mlp_ratio)):
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"{name} must be a positive integer; got {name} = {v!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads; got d_model = {d_model}, n_heads = {n_heads}")
        self.context = context
        self.embed = _Embedding(vocab_size, context, d_model)
        self.blocks = nn.ModuleList(_TransformerBlock(d_model, n_heads, mlp_ratio) for _ in range(n_layers))
        self.head = _Head(d_model, vocab_size)

    def dropmuon_layers(self) -> list[nn.Module]:
        """Drop-Muon's layers, input first: ``[embed, block 1, …, block n, head]`` (the head holds
        the final LayerNorm and the output projection). Every trainable parameter is in exactly
        one of them."""
        return [self.embed, *self.blocks, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] > self.context:
            raise ValueError(f"input must be token ids B × T with T ≤ context = {self.context}; got shape "
                             f"{tuple(x.shape)}")
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def make_residual_cnn(data, *, width: float = 1.0) -> ResidualCNN:
    """A :class:`ResidualCNN` for a classification :class:`~dropmuon.verification.torchside.data.Dataset`
    of images ``C × H × W``: ``C`` input channels, ``data.num_classes`` outputs, stem stride 2
    when ``min(H, W) ≥ 16``. Initialised from torch's global generator (seed it first)."""
    shape = data.input_shape
    if data.task != "classification" or len(shape) != 3:
        raise ValueError(f"the residual CNN needs images C × H × W with class labels; {data.name!r} is "
                         f"{data.task} with inputs of shape {shape}")
    return ResidualCNN(shape[0], data.num_classes, width, stem_stride=2 if min(shape[1:]) >= 16 else 1)


def make_transformer_lm(data, *, d_model: int = 64, n_layers: int = 2, n_heads: int = 4) -> TransformerLM:
    """A :class:`TransformerLM` for a language-model dataset: ``data.vocab_size`` tokens, context
    ``data.x_train.shape[1]``. Initialised from torch's global generator (seed it first)."""
    if data.task != "language-model":
        raise ValueError(f"the transformer needs a language-model dataset (e.g. 'text'); {data.name!r} is {data.task}")
    return TransformerLM(data.vocab_size, int(data.x_train.shape[1]), d_model, n_layers, n_heads)


def _cnn(data, *, width: float = 1.0) -> CNN:
    """The paper's :class:`CNN` for image classification data (torch's global generator, so
    ``torch.manual_seed(s)`` first gives the same weights as ``make_cnn(..., seed=s)``)."""
    if data.task != "classification" or len(data.input_shape) != 3:
        raise ValueError(f"the CNN needs images C × H × W with class labels; {data.name!r} is {data.task} "
                         f"with inputs of shape {data.input_shape}")
    return CNN(data.input_shape[0], data.num_classes, width)


def _resnet(data, *, width: float = 1.0) -> ResidualCNN:
    """:func:`make_residual_cnn` with channel counts scaled by ``width``."""
    return make_residual_cnn(data, width=width)


def _transformer(data, *, width: float = 1.0) -> TransformerLM:
    """:func:`make_transformer_lm` with ``d_model = 64 · width`` rounded to a multiple of the 4
    heads (at least 4); depth and heads fixed."""
    _check_width(width)
    n_heads = 4
    return make_transformer_lm(data, d_model=max(1, round(64 * width / n_heads)) * n_heads, n_heads=n_heads)


#: Model name → factory ``f(data, *, width=1.0) → nn.Module`` (seed torch before calling).
BUILTIN_MODELS = {"cnn": _cnn, "resnet": _resnet, "transformer": _transformer}
#: Model name → the dataset name (:data:`~dropmuon.verification.torchside.data.DATASETS`) it runs on by default.
DEFAULT_DATA = {"cnn": "digits", "resnet": "digits", "transformer": "text"}
